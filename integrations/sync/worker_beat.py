"""The heartbeat thread of every qcluster worker process.

django-q2 sends `post_spawn` in each worker process it starts, and again in
each one it starts in place of a dead, timed-out or recycled worker; `start`
(connected in IntegrationsConfig.ready) answers with a daemon thread that
beats every WORKER_HEARTBEAT_SECONDS (`heartbeats.beat`, one upsert). A thread
rather than a task: a worker busy with a three-hour sync runs no task, but its
thread beats. The thread dies with its process (SIGKILL, a time-out, a
recycle) and stops by itself when the worker is orphaned (its sentinel gone:
nothing hands it tasks any more), so beats stop when the worker can no
longer work.

After each beat, a worker of the default cluster moves people's syncs off a
dead urgent cluster (`fallback.move_waiting`), and every CLEAN_EVERY beats
the rows of long-dead workers go. A failure (the database away for a while)
is logged once, retried at the next beat, and never reaches the worker.
"""

import logging
import os
import socket
import threading

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from integrations.sync import fallback, heartbeats

logger = logging.getLogger(__name__)

CLEAN_EVERY = 120


class WorkerBeat(threading.Thread):
    def __init__(self, cluster, *, interval, parent_pid):
        super().__init__(name="worker-heartbeat", daemon=True)
        self.cluster = cluster
        self.interval = interval
        self.parent_pid = parent_pid
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.stopped = threading.Event()

    def run(self):
        beats, failing = 0, False
        try:
            while os.getppid() == self.parent_pid:
                try:
                    self.once(clean=beats % CLEAN_EVERY == 0)
                except Exception:
                    if not failing:
                        logger.warning(
                            "heartbeat of %s worker %s failed; retrying",
                            self.cluster,
                            self.pid,
                            exc_info=True,
                        )
                    failing = True
                else:
                    if failing:
                        logger.info("heartbeat of %s worker %s works again", self.cluster, self.pid)
                    failing = False
                beats += 1
                if self.stopped.wait(self.interval):
                    return
            logger.info("%s worker %s lost its cluster; no more heartbeats", self.cluster, self.pid)
        finally:
            connections.close_all()

    def once(self, *, clean=False):
        """One beat: the upsert, now and then the clean-up, and on the default cluster the fallback."""
        close_old_connections()  # a connection broken since the last beat is replaced, as per request
        now = timezone.now()
        heartbeats.beat(self.cluster, self.host, self.pid, now)
        if clean:
            heartbeats.clean(now)
        if self.cluster == settings.Q_CLUSTER["name"]:
            fallback.move_waiting(now)

    def stop(self):
        self.stopped.set()


def start(sender=None, proc_name=None, **kwargs):
    """post_spawn receiver: beat from this worker process from now on; the thread, or None.

    With inline tasks (Q_CLUSTER["sync"]) django-q2 runs each task through a
    worker loop of its own in the calling process and sends post_spawn there
    too: that process is no cluster worker and must not beat.
    """
    from django_q.conf import Conf

    if Conf.SYNC:
        return None
    interval = settings.WORKER_HEARTBEAT_SECONDS
    thread = WorkerBeat(Conf.CLUSTER_NAME, interval=interval, parent_pid=os.getppid())
    thread.start()
    return thread
