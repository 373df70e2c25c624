from __future__ import annotations

from django.urls import path

from assessments.reviews import views

urlpatterns = [
    path("pilots/<int:pk>/reviews/", views.pilot_reviews, name="pilot-reviews"),
    path("pilots/<int:pk>/reviews/new/", views.meeting_new, name="meeting-new"),
    path("pilots/<int:pk>/gate/", views.pilot_gate, name="pilot-gate"),
    path("meetings/<int:pk>/", views.meeting_detail, name="meeting"),
    path("meetings/<int:pk>/edit/", views.meeting_edit, name="meeting-edit"),
    path("meetings/<int:pk>/status/", views.meeting_status, name="meeting-status"),
    path("meetings/<int:pk>/invite.ics", views.meeting_ics_download, name="meeting-ics"),
    path("meetings/<int:pk>/present/", views.meeting_present, name="meeting-present"),
    path("meetings/<int:pk>/decide/", views.meeting_decide, name="meeting-decide"),
    path("responses/<int:pk>/comments/", views.response_comments, name="response-comments"),
    path("responses/<int:pk>/conditions/", views.condition_new, name="condition-new"),
    path("conditions/<int:pk>/status/", views.condition_status, name="condition-status"),
]
