"""The General tab's schedule controls: a tenant admin pauses, resumes and sets the sync interval.

One POST-only route, `action` pause, resume or interval (with `minutes`).
The rules are `integrations.schedule_controls`'; this module reads the form
and answers: done, back to the General tab with what changed; wrong input or
a change the integration's state refuses, the General tab again with the
reason (400 or 409); a viewer, the portal's refusal page (403); another
tenant's or a deleted integration, 404.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from integrations import schedule_controls
from portal.views import base_context, general_context, portal_view, tenant_integration

ACTIONS = ("pause", "resume", "interval")


@portal_view()
@require_POST
def schedule(request, integration_id):
    integration = tenant_integration(request, integration_id)
    action, raw_minutes = request.POST.get("action", ""), request.POST.get("minutes", "").strip()
    try:
        done = _apply(request, integration, action, raw_minutes)
    except schedule_controls.Refused as refused:
        return _refused(request, integration, refused, raw_minutes)
    messages.success(request, done)
    return redirect("portal:general", integration.pk)


def _apply(request, integration, action, raw_minutes):
    """What the form asked for, applied by the service; Refused when it cannot be."""
    schedule_controls.check_may_change(request.membership, integration)
    who = {"membership": request.membership, "actor": request.user}
    if action == "pause":
        return schedule_controls.pause(integration.pk, **who)
    if action == "resume":
        return schedule_controls.resume(integration.pk, **who)
    if action == "interval":
        if not (raw_minutes.isascii() and raw_minutes.isdigit() and len(raw_minutes) <= 9):
            raise schedule_controls.Refused(
                f"Give the interval as a whole number of minutes, not {raw_minutes[:20]!r}; nothing was changed.",
                400,
            )
        return schedule_controls.set_interval(integration.pk, int(raw_minutes), **who)
    raise schedule_controls.Refused(f"Unknown action {action[:20]!r}: use pause, resume or interval.", 400)


def _refused(request, integration, refused, raw_minutes):
    if refused.status == 404:
        raise Http404(refused.message)
    if refused.status == 403:
        context = base_context(
            request,
            integration=integration,
            title="Only tenant admins can change the schedule",
            message=refused.message,
        )
        return render(request, "portal/forbidden.html", context, status=403)
    is_admin = schedule_controls.may_change(request.membership)
    context = base_context(
        request,
        **general_context(integration, is_admin=is_admin),
        schedule_error=refused.message,
        schedule_minutes=raw_minutes[:9],
    )
    return render(request, "portal/general.html", context, status=refused.status)
