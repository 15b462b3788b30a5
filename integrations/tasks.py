"""django-q2 entry points: load by id, call a service, nothing else.

Each task's log lines carry the request id of whatever queued it (see
`syncconsole.logs`) and the ids the entry point knows.
"""

from integrations import counters, idle, retention, services
from integrations.sync import reaper, runner, scheduler
from syncconsole import logs


def run_session(session_id):
    with logs.context(session=session_id):
        session = runner.run_session(session_id)
    return None if session is None else session.state


def reap_sessions():
    return len(reaper.reap())


def schedule_due_syncs():
    return len(scheduler.tick())


def purge_deleted_integrations():
    return len(services.purge_deleted())


def deactivate_idle_development_integrations():
    return len(idle.deactivate_idle_development())


def reconcile_counters():
    return counters.reconcile()


def purge_old_rows():
    return sum(result.rows for result in retention.purge())
