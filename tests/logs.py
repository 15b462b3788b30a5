"""Capturing what the real logging configuration writes, as production writes it (JSON lines)."""

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings

from syncconsole import logs


class CapturedLog:
    def __init__(self, stream):
        self.stream = stream

    @property
    def text(self):
        return self.stream.getvalue()

    def lines(self):
        """Every line parsed as JSON (a line that is not JSON fails the test)."""
        parsed = []
        for line in self.text.splitlines():
            try:
                parsed.append(json.loads(line))
            except ValueError:  # pragma: no cover - the assertion says which line
                pytest.fail(f"not a JSON log line: {line!r}")
        return parsed

    def events(self, event, **matching):
        return [
            line
            for line in self.lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in matching.items())
        ]


@pytest.fixture
def json_log():
    """LOGGING as production has it (LOG_FORMAT=json), at DEBUG, written to a buffer for the test."""
    logging.config.dictConfig(logs.logging_config(fmt="json", level="DEBUG"))
    handler = logging.getLogger().handlers[0]
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        yield CapturedLog(stream)
    finally:
        logging.config.dictConfig(settings.LOGGING)
