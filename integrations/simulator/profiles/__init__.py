"""Vendor profiles: the simulator speaking real vendors' APIs, one module per vendor.

Each profile reproduces what a vendor's public documentation says about the
API a manifest (`integrations/connectors/manifests/KEY.json`) reads: paths,
answer shapes, pagination, authentication, error bodies, rate-limit headers.
Its URLs are ``/profiles/KEY/SCENARIO[.LABEL]/...``; ``/profiles`` lists the
profiles, ``/profiles/KEY/ACCOUNT/_control`` shows an account's counters (GET)
or forgets its state (DELETE).
"""

import textwrap

from ..state import ApiError
from . import connectwise, graph, hubspot, pax8, proofpoint
from .base import COUNTERS, Context, Request, serve, store_for

PROFILES = {
    profile.key: profile
    for profile in (pax8.PROFILE, connectwise.PROFILE, proofpoint.PROFILE, graph.PROFILE, hubspot.PROFILE)
}
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def root_url(base_url, key, account):
    """The root of one profile account, e.g. http://127.0.0.1:8765/profiles/pax8/healthy.t1."""
    return f"{base_url.rstrip('/')}/profiles/{key}/{account}"


def scenario_of(profile, account):
    """The scenario an account name asks for, or None."""
    name, dot, label = account.partition(".")
    if dot and (not label or not set(label) <= _LABEL_CHARS):
        return None
    return name if name in profile.scenarios else None


def respond(handler, method, segments, query, body):
    """Answer a request whose path starts with /profiles (the segments after it)."""
    if not segments:
        handler._allow(method, "GET")
        return handler._send_json(200, {"profiles": catalog(handler._base_url())})
    profile = PROFILES.get(segments[0])
    if profile is None:
        known = ", ".join(PROFILES)
        raise ApiError(404, "unknown_profile", f"No vendor profile {segments[0][:60]!r}; known: {known}")
    if len(segments) < 2 or scenario_of(profile, segments[1]) is None:
        scenarios = ", ".join(profile.scenarios)
        raise ApiError(
            404,
            "unknown_scenario",
            f"Use /profiles/{profile.key}/SCENARIO[.LABEL]/...; scenarios: {scenarios}",
        )
    account = segments[1]
    ctx = Context(store_for(handler.server), (profile.key, account))
    rest = tuple(segments[2:])
    if rest == ("_control",):
        handler._allow(method, "GET", "DELETE")
        if method == "DELETE":
            ctx.reset()
            return handler._send_json(200, {"account": account, "reset": True})
        return handler._send_json(200, ctx.stats())
    request = Request(
        method=method,
        path=rest,
        query=query,
        headers=handler.headers,
        body=body,
        root=root_url(handler._base_url(), profile.key, account),
        scenario=scenario_of(profile, account),
    )
    answer = serve(profile, ctx, request)
    handler._send(answer.status, answer.body(), answer.headers)


def catalog(base_url):
    return {
        key: {
            "label": profile.label,
            "scenarios": profile.scenarios,
            "urls": profile.urls(root_url(base_url, key, "SCENARIO")),
        }
        for key, profile in PROFILES.items()
    }


def help_text(width=76):
    """The profiles' part of the simulator's --help."""
    lines = []

    def wrapped(text, indent="    "):
        lines.extend(
            textwrap.wrap(
                text,
                width,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_on_hyphens=False,
                break_long_words=False,
            )
        )

    for key, profile in PROFILES.items():
        lines.append(f"  {key}: {profile.label}")
        wrapped(f"ROOT is /profiles/{key}/SCENARIO[.LABEL]")
        wrapped(
            "Manifest settings: " + ", ".join(f"{name}={url}" for name, url in profile.urls("ROOT").items())
        )
        for line in profile.help_lines():
            wrapped(line)
        wrapped("Credentials: " + profile.credentials)
        for name, text in profile.scenarios.items():
            parts = textwrap.wrap(text, width - 19, break_on_hyphens=False) or [""]
            lines.append(f"    {name:<14} {parts[0]}")
            lines.extend(f"    {'':<14} {more}" for more in parts[1:])
    return "\n".join(lines)


__all__ = ["COUNTERS", "PROFILES", "help_text", "respond", "root_url"]
