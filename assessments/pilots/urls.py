from __future__ import annotations

from django.urls import path

from assessments.pilots import views

urlpatterns = [
    path("", views.home, name="home"),
    path("org/<slug:slug>/", views.organisation_switch, name="organisation-switch"),
    path("pilots/new/", views.pilot_new, name="pilot-new"),
    path("pilots/<int:pk>/", views.pilot_detail, name="pilot"),
    path("pilots/<int:pk>/edit/", views.pilot_edit, name="pilot-edit"),
    path("pilots/<int:pk>/export.<str:fmt>", views.pilot_export, name="pilot-export"),
    path("pilots/<int:pk>/migrate/", views.assessment_move_view, name="assessment-migrate"),
    path("pilots/<int:pk>/stage/", views.pilot_stage, name="pilot-stage"),
    path("pilots/<int:pk>/stop-conditions/", views.stop_condition_new, name="stop-condition-new"),
    path("stop-conditions/<int:pk>/status/", views.stop_condition_status, name="stop-condition-status"),
    path("responses/<int:pk>/", views.response_save, name="response-save"),
    path("responses/<int:pk>/row/", views.response_row, name="response-row"),
    path("responses/<int:pk>/evidence/", views.evidence_new, name="evidence-new"),
    path("evidence/<int:pk>/download/", views.evidence_download, name="evidence-download"),
]
