from __future__ import annotations

from django.urls import path

from assessments.frameworks import editor

urlpatterns = [
    path("frameworks/", editor.framework_list, name="framework-list"),
    path("frameworks/<int:pk>/", editor.framework_detail, name="framework-detail"),
    path("frameworks/<int:pk>/copy/", editor.framework_copy_view, name="framework-copy"),
    path("frameworks/<int:pk>/publish/", editor.framework_publish_view, name="framework-publish"),
    path("gaps/<int:pk>/edit/", editor.gap_edit, name="gap-edit"),
    path("gaps/<int:gap_pk>/criteria/new/", editor.criterion_new, name="criterion-new"),
    path("criteria/<int:pk>/edit/", editor.criterion_edit, name="criterion-edit"),
    path("criteria/<int:pk>/delete/", editor.criterion_remove, name="criterion-delete"),
]
