"""The public re-authentication page, `/reauth/<token>/`: no login, the token is the key."""

from django import forms
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from integrations import reauth
from integrations.connectors.base import get_connector_class


def credentials_form(connector_class, data=None):
    """A form with one field per credential the connector asks for."""
    fields = {}
    for spec in connector_class.credential_fields:
        widget = forms.PasswordInput(render_value=False) if spec.secret else forms.TextInput()
        fields[spec.name] = forms.CharField(label=spec.label, required=spec.required, widget=widget, max_length=2000)
    form_class = type("CredentialsForm", (forms.Form,), fields)
    return form_class(data)


@never_cache
@require_http_methods(["GET", "POST"])
def reauth_page(request, token):
    try:
        link = reauth.find_link(token)
    except reauth.LinkUnusable as exc:
        return render(request, "reauth/unusable.html", {"reason": exc.reason, "message": exc.message}, status=exc.http_status)
    integration = link.integration
    connector_class = get_connector_class(integration.connector)
    context = {"integration": integration, "connector": connector_class, "link": link}
    if request.method == "GET":
        reauth.mark_opened(link)
        return render(request, "reauth/form.html", {**context, "form": credentials_form(connector_class)})

    form = credentials_form(connector_class, request.POST)
    if not form.is_valid():
        return render(request, "reauth/form.html", {**context, "form": form}, status=400)
    try:
        _, session = reauth.complete(token, {k: v for k, v in form.cleaned_data.items() if v})
    except reauth.CredentialsRejected as exc:
        context.update(form=credentials_form(connector_class), rejected=exc.message)
        return render(request, "reauth/form.html", context, status=400)
    except reauth.LinkUnusable as exc:
        return render(request, "reauth/unusable.html", {"reason": exc.reason, "message": exc.message}, status=exc.http_status)
    return render(request, "reauth/done.html", {**context, "session": session})
