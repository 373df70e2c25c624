from __future__ import annotations

from django.urls import path

from assessments.frameworks import views

urlpatterns = [
    path("frameworks/", views.framework_list, name="framework-list"),
    path("frameworks/<int:pk>/", views.framework_detail, name="framework-detail"),
    path("frameworks/<int:pk>/copy/", views.framework_copy_view, name="framework-copy"),
    path("frameworks/<int:pk>/publish/", views.framework_publish_view, name="framework-publish"),
    path("gaps/<int:pk>/edit/", views.gap_edit, name="gap-edit"),
    path("gaps/<int:gap_pk>/criteria/new/", views.criterion_new, name="criterion-new"),
    path("criteria/<int:pk>/", views.criterion_detail, name="criterion-detail"),
    path("criteria/<int:pk>/edit/", views.criterion_edit, name="criterion-edit"),
    path("criteria/<int:pk>/delete/", views.criterion_remove, name="criterion-delete"),
]
