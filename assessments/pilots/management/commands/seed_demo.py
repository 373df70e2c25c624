"""manage.py seed_demo: load the demo organisation (once) and print the demo logins."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from assessments.pilots.demo import demo_seed


class Command(BaseCommand):
    help = "Load the demo organisation, people and pilots. Running it again changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where the app will be served")

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_seed()
        state = "loaded" if result.created else "already present, left as it was"
        self.stdout.write(f"Demo organisation '{result.organisation.name}' {state}.")
        self.stdout.write(f"Sign in at {options['url']} as any of:")
        for login in result.logins:
            self.stdout.write(f"  {login.username:<10} password {login.password:<16} roles: {', '.join(login.roles)}")
