from __future__ import annotations

from django import forms

from assessments.organisations.models import Role


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    username = forms.SlugField(max_length=150, help_text="Letters, digits, hyphens and underscores.")
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    roles = forms.MultipleChoiceField(choices=Role.choices, widget=forms.CheckboxSelectMultiple)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
