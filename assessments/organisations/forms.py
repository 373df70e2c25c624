from __future__ import annotations

from django import forms

from assessments.organisations.models import Role
from assessments.text import ONE_LINE


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    username = forms.SlugField(
        max_length=150, help_text="Letters, digits, hyphens and underscores.", validators=[ONE_LINE]
    )
    first_name = forms.CharField(max_length=150, required=False, validators=[ONE_LINE])
    last_name = forms.CharField(max_length=150, required=False, validators=[ONE_LINE])
    roles = forms.MultipleChoiceField(choices=Role.choices, widget=forms.CheckboxSelectMultiple)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
