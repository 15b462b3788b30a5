"""The public re-authentication page, `/reauth/<token>/`: no login, the token is the key.

The first GET of a usable link moves its token into the session and
redirects to `/reauth/continue/` (the pattern of Django's
PasswordResetConfirmView), so the token does not stay in the address bar,
the access logs or a Referer header.
"""

from django import forms
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from integrations import credential_checks, reauth
from integrations.connectors.base import get_connector_class
from syncconsole import limits


def credentials_form(connector_class, settings, data=None):
    """A form with one field per credential the integration's auth type needs."""
    fields = {}
    for spec in connector_class.credential_fields_for(settings):
        widget = forms.PasswordInput(render_value=False) if spec.secret else forms.TextInput()
        fields[spec.name] = forms.CharField(
            label=spec.label, required=spec.required, widget=widget, max_length=2000, help_text=spec.help
        )
    form_class = type("CredentialsForm", (forms.Form,), fields)
    return form_class(data)


SESSION_KEY = "_reauth_token"
CONTINUE = "continue"


def unusable(request, reason, message, status):
    response = render(request, "reauth/unusable.html", {"reason": reason, "message": message}, status=status)
    response["Referrer-Policy"] = "no-referrer"
    return response


@sensitive_post_parameters()
@never_cache
@require_http_methods(["GET", "POST"])
def reauth_page(request, token):
    address = limits.client_address(request)
    wait = limits.over("reauth_token_failures", address)
    if wait is not None:
        return limits.limited_page(request, wait, "Too many re-authentication links that do not work were tried from your network.")
    if token == CONTINUE:
        token = request.session.get(SESSION_KEY, "")
        if not token:
            return unusable(
                request, "missing", "This page needs the link from your email: open that link again.", 400
            )
    try:
        link = reauth.find_link(token)
    except reauth.LinkUnusable as exc:
        request.session.pop(SESSION_KEY, None)
        if exc.reason == "unknown":
            limits.hit("reauth_token_failures", address)
        return unusable(request, exc.reason, exc.message, exc.http_status)
    if request.method == "GET" and request.resolver_match.kwargs["token"] != CONTINUE:
        request.session[SESSION_KEY] = token
        response = redirect(reverse("reauth", args=[CONTINUE]))
        response["Referrer-Policy"] = "no-referrer"
        return response
    integration = link.integration
    connector_class = get_connector_class(integration.connector)
    context = {"integration": integration, "connector": connector_class, "link": link}
    if request.method == "GET":
        reauth.mark_opened(link)
        return render(request, "reauth/form.html", {**context, "form": credentials_form(connector_class, integration.settings)})

    form = credentials_form(connector_class, integration.settings, request.POST)
    if not form.is_valid():
        return render(request, "reauth/form.html", {**context, "form": form}, status=400)
    submitted = {k: v for k, v in form.cleaned_data.items() if v}
    try:
        _, session = reauth.complete(token, submitted)
    except reauth.CredentialsRejected as exc:
        context.update(form=credentials_form(connector_class, integration.settings), rejected=exc.message)
        return render(request, "reauth/form.html", context, status=400)
    except reauth.LinkUnusable as exc:
        request.session.pop(SESSION_KEY, None)
        return unusable(request, exc.reason, exc.message, exc.http_status)
    request.session.pop(SESSION_KEY, None)
    warnings = [shared.text() for shared in credential_checks.shared_mailboxes(submitted)]
    return render(request, "reauth/done.html", {**context, "session": session, "warnings": warnings})
