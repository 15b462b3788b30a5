"""A queued sync session run by a thread of the test process while a browser page watches it.

Tasks run inline in the tests, so "Sync now" would answer only when the sync
is done: a test that wants to see a sync move queues the session
(`start_sync(..., enqueue=False)`) and starts this thread when the page is
ready. The thread closes its database connections when it ends; an exception
it raised is kept in `error` for the test to assert on.
"""

import threading

from django.db import connections

from integrations.sync import runner


class SessionThread(threading.Thread):
    def __init__(self, session_id):
        super().__init__(daemon=True)
        self.session_id = session_id
        self.error = None

    def run(self):
        try:
            runner.run_session(self.session_id, worker="browser-test")
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            connections.close_all()

    def join_if_started(self, timeout=60):
        if self.ident:
            self.join(timeout)
