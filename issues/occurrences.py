"""An issue's occurrences over time, from what is stored: the issue page's strip chart and table.

An issue keeps no row per occurrence. It keeps how many syncs met it
(`occurrences`: the recorder counts an issue once per session that meets
it), when it was first and last seen, and the first and last of those
sessions. What can honestly be said of the syncs in between:

- a problem of the whole sync (no item) is the session's own error: a
  session in the range met it exactly when it ended with the issue's code;
- an item's problem is not recorded per sync: the first and the last session
  met it, and `occurrences` says how many did in all, not which of those in
  between (shown as "not recorded", with their count of item problems).

The range is the integration's sessions queued from the first session (from
the first-seen time when retention removed that session) to the last one,
newest first, at most SESSIONS_SHOWN of them: one query on the
(integration, queued_at) index, whatever the history's length.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from issues.models import SyncIssue
from syncconsole.charts import TimeScale, num
from syncconsole.words import counted

SESSIONS_SHOWN = 60
MET, NOT_MET, NOT_RECORDED = "met", "not met", "not recorded"
COLOURS = {MET: "#b91c1c", NOT_MET: "#15803d", NOT_RECORDED: "#9ca3af"}
LEFT, RIGHT, MIDDLE = 16, 16, 22  # px: margins, the dots' line


@dataclass(frozen=True)
class Occurrence:
    """One session of the range and whether it met the issue (MET, NOT_MET or NOT_RECORDED)."""

    session: object
    met: str

    @property
    def title(self):
        s = self.session
        local = timezone.localtime(s.queued_at)
        outcome = s.get_state_display() + (f" ({s.error_code_id})" if s.error_code_id else "")
        met = {MET: "met this issue", NOT_MET: "did not meet it", NOT_RECORDED: "not recorded whether it met it"}
        return f"Session {s.pk} · {outcome} · queued {local:%b} {local.day} {local:%H:%M} · {met[self.met]}"


@dataclass(frozen=True)
class Dot:
    x: str
    colour: str
    filled: bool
    title: str


def _session_model():
    return SyncIssue._meta.get_field("last_session").related_model


def sessions_in_range(issue):
    """(the range's sessions newest first, whether older ones were left out)."""
    first, last = issue.first_session, issue.last_session
    start = first.queued_at if first is not None else issue.first_seen_at
    end = last.queued_at if last is not None else issue.last_seen_at
    rows = list(
        _session_model()
        .objects.filter(integration_id=issue.integration_id, queued_at__gte=start, queued_at__lte=end)
        .only("pk", "state", "error_code", "queued_at", "finished_at", "items_failed", "items_warnings")
        .order_by("-queued_at", "-pk")[: SESSIONS_SHOWN + 1]
    )
    return rows[:SESSIONS_SHOWN], len(rows) > SESSIONS_SHOWN


def whether_met(issue, session):
    if session.pk in (issue.first_session_id, issue.last_session_id):
        return MET
    if not issue.external_id:  # the session's own error
        return MET if session.error_code_id == issue.error_code_id else NOT_MET
    return NOT_RECORDED


def strip_chart(occurrences, width=640):
    """A dot per session on a time line (the numbers for _occurrences_svg.html), or None without one."""
    if not occurrences:
        return None
    moments = [o.session.queued_at for o in occurrences]
    first, last = min(moments), max(moments)
    pad = max((last - first) * 0.04, timedelta(minutes=5))
    scale = TimeScale(first - pad, last + pad, LEFT, width - RIGHT)
    dots = [
        Dot(num(scale.x(o.session.queued_at)), COLOURS[o.met], o.met == MET, o.title)
        for o in sorted(occurrences, key=lambda o: o.session.queued_at)
    ]
    return {
        "width": str(width),
        "height": str(MIDDLE + 40),
        "middle": str(MIDDLE),
        "tick_bottom": str(MIDDLE + 10),
        "label_y": str(MIDDLE + 22),
        "left": str(LEFT),
        "right": str(width - RIGHT),
        "dots": dots,
        "ticks": scale.ticks(most=5),
    }


def summary(issue):
    """One sentence: how often, from when to when."""
    seen = counted(issue.occurrences, "sync")
    first, last = timezone.localtime(issue.first_seen_at), timezone.localtime(issue.last_seen_at)
    if issue.occurrences == 1:
        return f"Seen in 1 sync, on {first:%Y-%m-%d %H:%M}."
    return f"Seen in {seen} between {first:%Y-%m-%d %H:%M} and {last:%Y-%m-%d %H:%M}."


def occurrences_context(issue):
    """What the issue page's "Occurrences over time" panel shows (the issue comes with its first and last session)."""
    sessions, truncated = sessions_in_range(issue)
    occurrences = [Occurrence(s, whether_met(issue, s)) for s in sessions]
    known = sum(1 for o in occurrences if o.met == MET)
    return {
        "summary": summary(issue),
        "per_item": bool(issue.external_id),
        "occurrences": occurrences,
        "truncated": truncated,
        "shown": len(occurrences),
        "known_met": known,
        "first_session_gone": issue.first_session_id is None,
        "last_session_gone": issue.last_session_id is None,
        "chart": strip_chart(occurrences),
    }
