from __future__ import annotations

from django.urls import path

from assessments.reports import views

urlpatterns = [
    path("pilots/<int:pk>/reports/", views.pilot_reports, name="pilot-reports"),
    path("pilots/<int:pk>/reports/new/", views.pilot_report_new, name="pilot-report-new"),
    path("reports/portfolio/", views.portfolio_report, name="portfolio-report"),
    path("reports/portfolio/new/", views.portfolio_report_new, name="portfolio-report-new"),
    path("reports/<int:pk>/status/", views.report_status, name="report-status"),
    path("reports/<int:pk>/download/", views.report_download, name="report-download"),
]
