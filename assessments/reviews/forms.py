"""Forms for meetings, decisions, comments and conditions: they parse; the services decide."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils import timezone

from assessments.organisations.models import Role
from assessments.reviews.models import SIGNING_ROLES, DecisionKind
from assessments.text import PlainTextValidator

ROLE_CHOICES = [(role, Role(role).label) for role in SIGNING_ROLES]


class MeetingForm(forms.Form):
    scheduled_at = forms.DateTimeField(
        label="When", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    duration_minutes = forms.IntegerField(label="Minutes", min_value=5, max_value=480, initial=60)
    location = forms.CharField(label="Where", max_length=300, required=False, validators=[PlainTextValidator()])
    participants = forms.MultipleChoiceField(label="Who", widget=forms.CheckboxSelectMultiple, required=True)

    def __init__(self, *args: Any, people: list[tuple[User, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.people = {f"{user.pk}:{role}": (user, role) for user, role in people}
        participants = self.fields["participants"]
        assert isinstance(participants, forms.ChoiceField)
        participants.choices = [
            (key, f"{user.get_full_name() or user.get_username()} — {Role(role).label}")
            for key, (user, role) in self.people.items()
        ]

    def chosen(self) -> list[tuple[User, str]]:
        return [self.people[key] for key in self.cleaned_data["participants"]]


def meeting_initial(people: list[tuple[User, str]], owners: set[int]) -> dict[str, Any]:
    """Tomorrow at ten, an hour, the four signing roles and the pilot's owners."""
    tomorrow = timezone.localtime() + dt.timedelta(days=1)
    return {
        "scheduled_at": tomorrow.replace(hour=10, minute=0, second=0, microsecond=0),
        "duration_minutes": 60,
        "participants": [
            f"{user.pk}:{role}"
            for user, role in people
            if role in SIGNING_ROLES or (role == Role.OWNER and user.pk in owners)
        ],
    }


class MinutesForm(forms.Form):
    minutes = forms.CharField(label="Minutes (Markdown)", widget=forms.Textarea(attrs={"rows": 8}), required=False)


class DecisionForm(forms.Form):
    role = forms.ChoiceField(label="Signing for", choices=ROLE_CHOICES)
    decision = forms.ChoiceField(choices=DecisionKind.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    must_change = forms.CharField(
        label="What must change (for a rejection)", widget=forms.Textarea(attrs={"rows": 2}), required=False
    )

    def roles_limit(self, roles: list[str]) -> None:
        """Offer only the roles the person may still sign for."""
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = [(r, Role(r).label) for r in roles]


class CommentForm(forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 2}), max_length=10_000)
    parent = forms.IntegerField(required=False, widget=forms.HiddenInput)
    meeting = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ConditionForm(forms.Form):
    role = forms.ChoiceField(label="Raised for", choices=ROLE_CHOICES)
    text = forms.CharField(label="Condition", widget=forms.Textarea(attrs={"rows": 2}), max_length=10_000)
    owner = forms.TypedChoiceField(label="Owner", coerce=int)
    due_date = forms.DateField(label="Due", widget=forms.DateInput(attrs={"type": "date"}))
    meeting = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, members: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = {m.pk: m for m in members}
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ChoiceField)
        owner.choices = [(m.pk, m.get_full_name() or m.get_username()) for m in members]

    def roles_limit(self, roles: list[str]) -> None:
        """Offer only the roles the person holds."""
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = [(r, Role(r).label) for r in roles]


class ConditionCloseForm(forms.Form):
    action = forms.ChoiceField(choices=[("met", "Mark met"), ("waive", "Waive")])
    resolution = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=10_000)
