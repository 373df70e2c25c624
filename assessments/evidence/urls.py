from __future__ import annotations

from django.urls import path

from assessments.evidence import views

urlpatterns = [
    path("pilots/<int:pk>/systems/", views.systems, name="linked-systems"),
    path("pilots/<int:pk>/systems/new/", views.system_new, name="linked-system-new"),
    path("pilots/<int:pk>/checks/new/", views.check_new, name="check-new"),
    path("systems/<int:pk>/edit/", views.system_edit, name="linked-system-edit"),
    path("checks/<int:pk>/", views.check_status, name="check-status"),
    path("checks/<int:pk>/edit/", views.check_edit, name="check-edit"),
    path("alerts/", views.alerts, name="alerts"),
]
