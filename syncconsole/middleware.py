"""Request-wide safety: headers every answer carries, and sessions that end when idle."""

import time

from django.conf import settings
from django.contrib.auth import logout

PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer", "camera", "geolocation", "gyroscope", "magnetometer", "microphone",
        "payment", "usb", "interest-cohort", "browsing-topics",
    )
)  # fmt: skip

LAST_ACTIVITY = "_last_activity"
# A session is written at most once a minute to note activity, not on every request.
ACTIVITY_RESOLUTION = 60


class PermissionsPolicyMiddleware:
    """No page of ours needs a camera, a microphone, a location or payments: say so."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


def idle_limit(user):
    """Seconds of inactivity after which this user's session ends: staff shorter than customers."""
    return settings.STAFF_SESSION_IDLE_SECONDS if user.is_staff else settings.PORTAL_SESSION_IDLE_SECONDS


def note_login(sender, request, user, **kwargs):
    """user_logged_in receiver: the idle clock starts at the login (no extra session write later)."""
    if request is not None and hasattr(request, "session"):
        request.session[LAST_ACTIVITY] = int(time.time())
        request.session.set_expiry(idle_limit(user))


class IdleSessionMiddleware:
    """Log out a session idle for longer than its limit; note activity at most once a minute."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            limit = idle_limit(user)
            last = request.session.get(LAST_ACTIVITY)
            if last is not None and now - last > limit:
                logout(request)
            elif last is None or now - last >= ACTIVITY_RESOLUTION:
                request.session[LAST_ACTIVITY] = now
                request.session.set_expiry(limit)
        return self.get_response(request)
