"""The first sync of an item type on PostgreSQL: a transaction's pages streamed into one COPY.

When the session began, the integration had no record of the item type, so
a stored row can only be one this session wrote: its pages need not be read
back before they are written. They go into one COPY that stays open while
the engine takes the next page, so that the database stores a page while
the next one is prepared instead of each side waiting for the other in
turn (the pages' issues, fingerprints and counts follow once it is closed:
the runner's `settle`). No other statement can run on the connection while
the COPY is open: the runner closes it before anything else its
transaction does.

While the COPY is open psycopg holds the connection's lock: a statement
would wait for it forever. So any statement that comes all the same (a bug,
or the rollback of a transaction that failed) first abandons the COPY, and
then fails or runs as it would after any failed statement: never a hang.

The COPY runs in a savepoint. Should the unique constraint refuse a row (the
vendor repeated an id on a later page, or a session whose lease ran out is
still writing), the savepoint takes the whole COPY back and `add` or
`close` answers False: the runner writes those pages again the usual way
(records.write_page), which reads before it writes.
"""

from django.db import IntegrityError, connection, transaction

from integrations.sync.records import RECORD_COLUMNS, RECORDS, content_of, copy_rows


class FreshCopy:
    def __init__(self, integration, session, item_type):
        self.integration, self.session, self.item_type = integration, session, item_type
        self._savepoint = self._cursor = self._opened = self._copy = None

    @property
    def is_open(self):
        return self._copy is not None

    def add(self, by_id, contents, now):
        """Write a page's items ({external id: item}); False if the COPY was refused and taken back."""
        lines = [content_of(item, contents)[2] for item in by_id.values()]
        text = copy_rows(self.integration, self.session, self.item_type, lines, now)
        if not text:
            return True
        try:
            with connection.wrap_database_errors:
                if self._copy is None:
                    self._open()
                self._copy.write(text)
        except IntegrityError as exc:
            self._end(exc)
            transaction.savepoint_rollback(self._savepoint)
            return False
        return True

    def close(self):
        """End the COPY: True if its rows are stored (or there was none), False if it was refused and taken back."""
        if self._copy is None:
            return True
        try:
            with connection.wrap_database_errors:
                self._end(None)
        except IntegrityError:
            transaction.savepoint_rollback(self._savepoint)
            return False
        transaction.savepoint_commit(self._savepoint)
        return True

    def abandon(self, exc):
        """Stop an open COPY because something else failed; the caller's transaction rolls back."""
        if self._copy is not None:
            self._end(exc)

    def _open(self):
        self._savepoint = transaction.savepoint()
        self._cursor = connection.cursor()
        self._opened = self._cursor.cursor.copy(f"COPY {RECORDS} ({RECORD_COLUMNS}) FROM STDIN")
        self._copy = self._opened.__enter__()
        connection.execute_wrappers.append(self._guard)

    def _end(self, exc):
        """Finish the COPY (exc None: may raise what the database says) or abort it with exc (never raises for it)."""
        opened, self._opened, self._copy = self._opened, None, None
        connection.execute_wrappers.remove(self._guard)
        try:
            if exc is None:
                opened.__exit__(None, None, None)
            else:
                opened.__exit__(type(exc), exc, exc.__traceback__)
        finally:
            self._cursor.close()

    def _guard(self, execute, sql, params, many, context):
        if self._copy is not None:
            self.abandon(RuntimeError(f"a statement came while the COPY was open: {sql[:200]}"))
        return execute(sql, params, many, context)
