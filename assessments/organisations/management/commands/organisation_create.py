"""manage.py organisation_create NAME SLUG --admin USERNAME: a new tenant with its audit chain,
the default framework and a first administrator (the admin site is read-only for organisations)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from assessments.audit.context import Actor
from assessments.frameworks.loader import DEFAULT_FRAMEWORK_PATH, framework_read_file
from assessments.frameworks.services import framework_load
from assessments.organisations.models import Role
from assessments.organisations.services import membership_grant, organisation_create


class Command(BaseCommand):
    help = "Create an organisation (with its audit chain and the default framework) and name its first administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("slug")
        parser.add_argument("--admin", required=True, help="username of an existing account to make administrator")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["admin"]).first()
        if user is None:
            raise CommandError(f"No account with username '{options['admin']}'; create it first (createsuperuser).")
        actor = Actor.system("organisation_create command")
        try:
            with transaction.atomic():
                organisation = organisation_create(name=options["name"], slug=options["slug"], actor=actor)
                framework_load(organisation=organisation, spec=framework_read_file(DEFAULT_FRAMEWORK_PATH), actor=actor)
                membership_grant(organisation=organisation, user=user, role=Role.ADMIN, actor=actor)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"Created {organisation.name} ({organisation.slug}); {user.get_username()} administers it.")
