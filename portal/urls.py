"""URLs of the customer portal (namespace `portal`) and the JSON API (namespace `api`)."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from portal import views, views_controls, views_export, views_requests
from portal.api import api

portal_patterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("portal:login")), name="logout"),
    path(
        "password-reset/",
        views.PasswordResetView.as_view(
            template_name="portal/password_reset_form.html",
            email_template_name="portal/password_reset_email.txt",
            subject_template_name="portal/password_reset_subject.txt",
            success_url=reverse_lazy("portal:password_reset_done"),
        ),
        name="password_reset",
    ),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(template_name="portal/password_reset_done.html"),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="portal/password_reset_confirm.html", success_url=reverse_lazy("portal:password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="portal/password_reset_complete.html"),
        name="password_reset_complete",
    ),
    path("", views.integration_list, name="list"),
    path("api-keys/", views.api_keys, name="api_keys"),
    path("webhooks/", views.webhooks, name="webhooks"),
    path("activity/", views.activity, name="activity"),
    path("integrations/<int:integration_id>/", views.general_tab, name="general"),
    path("integrations/<int:integration_id>/progress.json", views.progress, name="progress"),
    path("integrations/<int:integration_id>/sync/", views.sync_now, name="sync"),
    path("integrations/<int:integration_id>/test-connection/", views.test_connection, name="test_connection"),
    path("integrations/<int:integration_id>/reauthenticate/", views.reauthenticate, name="reauthenticate"),
    path("integrations/<int:integration_id>/reactivate/", views.reactivate, name="reactivate"),
    path("integrations/<int:integration_id>/schedule/", views_controls.schedule, name="schedule"),
    path("integrations/<int:integration_id>/mapping/", views.mapping, name="mapping"),
    path("integrations/<int:integration_id>/issues/", views.issues_tab, name="issues"),
    path("integrations/<int:integration_id>/issues.csv", views_export.issues_csv, name="issues_csv"),
    path("integrations/<int:integration_id>/issues/<int:issue_id>/help/", views_requests.ask_for_help, name="help"),
    path("integrations/<int:integration_id>/contact-support/", views_requests.contact_support, name="contact_support"),
    path(
        "integrations/<int:integration_id>/help-requests/<int:request_id>/",
        views_requests.support_request,
        name="support_request",
    ),
    path("integrations/<int:integration_id>/records/<int:record_id>/", views.record_detail, name="record"),
]

# (patterns, "api", "api"): generated from the operations in portal/api/views.py, then a JSON 404
# for any other path.
api_urls = api.urls
