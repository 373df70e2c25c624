from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from assessments.organisations.api import IsMember
from assessments.organisations.auth import ThrottledLoginView
from readiness.views import favicon

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # The admin signs in through the same throttled view as everyone else.
    path("admin/login/", ThrottledLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    # The schema describes every endpoint: members only, like the API itself.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[IsMember]), name="api-schema"),
    path("", include("assessments.organisations.urls")),
    path("", include("assessments.frameworks.urls")),
    path("", include("assessments.pilots.urls")),
    path("", include("assessments.evidence.urls")),
    path("", include("assessments.reviews.urls")),
    path("", include("assessments.reports.urls")),
    path("", include("assessments.reports.sow_urls")),
]

handler400 = "readiness.errors.bad_request"
handler403 = "readiness.errors.permission_denied"
handler404 = "readiness.errors.page_not_found"
handler500 = "readiness.errors.server_error"
