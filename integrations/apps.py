from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from syncconsole.middleware import note_login

        user_logged_in.connect(note_login, dispatch_uid="syncconsole-idle-clock")

        from django_q.signals import post_spawn

        from integrations.sync import worker_beat

        # Every qcluster worker process beats from a thread of its own (worker liveness, the urgent fallback).
        post_spawn.connect(worker_beat.start, dispatch_uid="integrations-worker-beat")

        from integrations import metrics, tallies
        from syncconsole import logs
        from syncconsole import metrics as exposition

        # /metrics: the tallies of every app in one query, and this app's gauges.
        exposition.register("tallies", tallies.TallyCollector())
        exposition.register("integrations", metrics.IntegrationsCollector())
        # Requests' and tasks' log lines carry their ids (tasks: the request id of whatever queued them).
        logs.connect_signals()
