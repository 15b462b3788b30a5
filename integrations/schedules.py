"""The periodic django-q2 schedules, created idempotently by name.

Applied by a migration and by `manage.py setup_schedules` (to pick up changed
intervals); never at import time.
"""

from django.conf import settings


def schedule_specs():
    return [
        {
            "name": "sync-reaper",
            "func": "integrations.tasks.reap_sessions",
            "minutes": settings.SYNC_REAPER_INTERVAL_MINUTES,
        },
        {
            "name": "sync-scheduler",
            "func": "integrations.tasks.schedule_due_syncs",
            "minutes": settings.SYNC_SCHEDULER_INTERVAL_MINUTES,
        },
        {
            "name": "purge-deleted-integrations",
            "func": "integrations.tasks.purge_deleted_integrations",
            "minutes": 24 * 60,
        },
        {
            "name": "deactivate-idle-development",
            "func": "integrations.tasks.deactivate_idle_development_integrations",
            "minutes": 24 * 60,
        },
        # Resolved issues, finished sessions, events, alerts, deliveries past their RETENTION_DAYS_*.
        {"name": "purge-old-rows", "func": "integrations.tasks.purge_old_rows", "minutes": 24 * 60},
        # Repairs drift of the counts integrations keep (open issues).
        {"name": "reconcile-counters", "func": "integrations.tasks.reconcile_counters", "minutes": 60},
        {"name": "alerts-delivery", "func": "alerts.tasks.deliver_due_alerts", "minutes": 1},
        # Catches up events whose after-commit kick was lost (the kick is the fast path).
        {"name": "alerts-events", "func": "alerts.tasks.consume_events", "minutes": 1},
        {"name": "alerts-clock-rules", "func": "alerts.tasks.check_clock_rules", "minutes": 60},
        {"name": "webhooks-delivery", "func": "alerts.tasks.deliver_due_webhooks", "minutes": 1},
    ]


def ensure_schedules(schedule_model):
    """Create or update each schedule by name; returns the names."""
    names = []
    for spec in schedule_specs():
        schedule_model.objects.update_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "schedule_type": "I",  # Schedule.MINUTES
                "minutes": spec["minutes"],
                "repeats": -1,
                # Only the main cluster runs schedules; the urgent one stays free.
                "cluster": settings.Q_CLUSTER["name"],
            },
        )
        names.append(spec["name"])
    return names
