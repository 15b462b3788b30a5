"""gunicorn's access log without the secrets some URLs carry (deploy/gunicorn.conf.py names it).

A re-authentication link (/reauth/<token>/), a password-reset link
(/portal/password-reset/<uid>/<token>/) and an alert email's unsubscribe link
(/alerts/unsubscribe/<token>/) hold a live token in their path, and the pages
they open send it on as the referrer of what they load. Every value
a log line may show passes through `redact` first.
"""

import re

from gunicorn.glogging import Logger

SECRET_IN_PATH = re.compile(r"(/reauth/|/unsubscribe/|/password-reset/[^/?#\s\"]+/)[^/?#\s\"]+")
MASK = r"\1[redacted]"


def redact(value):
    return SECRET_IN_PATH.sub(MASK, value) if isinstance(value, str) else value


class AccessLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        return {name: redact(value) for name, value in super().atoms(resp, req, environ, request_time).items()}
