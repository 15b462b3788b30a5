"""The public one-click unsubscribe page, `/alerts/unsubscribe/<token>/` (RFC 8058): no login, the token is the key."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from alerts import unsubscribe


def _page(request, template, context, status=200):
    response = render(request, template, context, status=status)
    response["Referrer-Policy"] = "no-referrer"
    return response


# Mail providers send the one-click POST without a session or a CSRF token
# (RFC 8058 section 3.1); the signed token is what authorises it.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request, token):
    """GET: a page with a button (link scanners open links, they do not press buttons). POST: opt out."""
    try:
        membership = unsubscribe.membership_for(token)
    except unsubscribe.BadToken as exc:
        return _page(request, "alerts/unsubscribe_invalid.html", {"message": str(exc)}, status=400)
    context = {"membership": membership, "tenant": membership.tenant, "address": membership.user.email}
    if request.method == "GET":
        return _page(request, "alerts/unsubscribe.html", context)
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    changed = unsubscribe.opt_out(membership, via="one-click (RFC 8058)" if one_click else "confirmation page")
    return _page(request, "alerts/unsubscribed.html", {**context, "changed": changed})
