"""Pilot pages. Views stay thin: they call selectors and render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from assessments.organisations.selectors import organisations_for_user
from assessments.pilots.selectors import pilots_for_organisation, portfolio_rows


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The portfolio: every pilot of the user's organisations with its scores."""
    today = timezone.localdate()
    portfolios = [
        (organisation, portfolio_rows(pilots=list(pilots_for_organisation(organisation=organisation)), today=today))
        for organisation in organisations_for_user(user=request.user)
    ]
    return render(request, "pilots/home.html", {"portfolios": portfolios})
