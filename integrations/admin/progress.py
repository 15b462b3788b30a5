"""The integration page's live part: the open session's progress and the status, as the page polls them.

`static/console-progress.js` asks `progress/` (IntegrationAdmin.progress_view)
every couple of seconds while a session is queued or running, moves the
progress bar, and when the session has ended puts the new status badge and
reason in place without reloading the page. The counters are the ones the
engine writes with every committed batch of pages (`sync.runner`'s
heartbeat): items seen, the vendor's announced total, pages, HTTP requests.
"""

from integrations.models import SyncSession
from integrations.statuses import DECLARATIONS
from integrations.words import counted, natural_duration, status_label


def rate_words(items, seconds):
    """'120 items/s', '3.5 items/s', or '' before there is anything to divide."""
    if not items or seconds <= 0:
        return ""
    rate = items / seconds
    return f"{rate:,.0f} items/s" if rate >= 10 else f"{rate:.1f} items/s"


def session_progress(session, now):
    """What the progress bar shows of one session (open or just ended)."""
    is_open = session.state in SyncSession.OPEN_STATES
    started = session.started_at
    end = session.finished_at or now
    elapsed = (end - started).total_seconds() if started else 0.0
    waiting = (now - session.queued_at).total_seconds() if session.state == SyncSession.State.QUEUED else 0.0
    total = session.items_total
    percent = min(100, round(session.items_seen * 100 / total)) if total else None
    if session.state == SyncSession.State.QUEUED:
        text = f"Session {session.pk} is queued, waiting {natural_duration(waiting)} for a worker."
    else:
        seen = f"{session.items_seen:,} of {counted(total, 'item')}" if total else counted(session.items_seen, "item")
        parts = [seen, counted(session.pages, "page")]
        rate = rate_words(session.items_seen, elapsed)
        if rate:
            parts.append(rate)
        parts.append(natural_duration(elapsed) + (" so far" if is_open else ""))
        verb = "is running" if is_open else f"ended: {session.get_state_display()}"
        text = f"Session {session.pk} {verb} · " + " · ".join(parts)
    return {
        "id": session.pk,
        "state": session.state,
        "state_label": session.get_state_display(),
        "open": is_open,
        "items_seen": session.items_seen,
        "items_total": total,
        "pages": session.pages,
        "http_requests": session.http_requests,
        "elapsed_seconds": round(elapsed, 1),
        "percent": percent,
        "error_code": session.error_code_id or "",
        "text": text,
    }


def progress(integration, session, now):
    """The JSON the page polls: the status as the badge shows it, and the newest session."""
    declared = DECLARATIONS.get(integration.status)
    return {
        "status": integration.status,
        "status_label": status_label(integration.status),
        "status_colour": declared.badge_colour if declared else "#6b7280",
        "status_reason": integration.status_reason,
        "session": None if session is None else session_progress(session, now),
    }
