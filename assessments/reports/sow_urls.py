from __future__ import annotations

from django.urls import path

from assessments.reports import sow_views

urlpatterns = [
    path("pilots/<int:pk>/sow/", sow_views.sow_page, name="sow"),
    path("pilots/<int:pk>/sow/edit/", sow_views.sow_edit, name="sow-edit"),
    path("pilots/<int:pk>/sow.<str:fmt>", sow_views.sow_download, name="sow-download"),
]
