from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from assessments.pilots.markup import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    """Render a note's Markdown as sanitised HTML."""
    return render_markdown(text or "")


@register.filter
def person(user: object) -> str:
    """A person's full name, else their username, else a dash."""
    if user is None:
        return "—"
    full = getattr(user, "get_full_name", lambda: "")()
    return full or str(getattr(user, "username", "—"))


@register.filter
def actor_isolated(item: object) -> SafeString:
    """An activity sentence with its actor label in ``<bdi>``, so a right-to-left name cannot reorder the rest."""
    actor, sentence = str(getattr(item, "actor", "")), str(getattr(item, "sentence", ""))
    if actor and sentence.startswith(actor):
        return format_html("<bdi>{}</bdi>{}", actor, sentence[len(actor) :])
    return format_html("<bdi>{}</bdi>", sentence)
