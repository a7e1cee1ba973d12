"""Faults in the application: each gives the right response (a 500 before the headers went
out, a closed connection without a proper end after), exactly one logged error, ``close()``
of the response iterable exactly once, and a worker that goes on serving."""

from __future__ import annotations

import itertools
import re
import time

import pytest
from support import assert_serves, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

ERROR_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[ERROR\] ")
_keys = itertools.count()


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("faultapp:application")


def error_records(server, since: int) -> list[str]:
    return [line for line in server.stderr_lines[since:] if ERROR_RECORD.match(line)]


def run_fault(server, mode: str):
    """Requests ``mode``; returns the head (None if the server closed without one), the bytes
    after it, the error records logged and the close() events."""
    key = f"k{next(_keys)}"
    since = len(server.stderr_lines)
    with server.connect() as conn:
        conn.send(request("GET", f"/fault?mode={mode}&key={key}"))
        try:
            head = conn.head()
        except EOFError:
            head = None
        rest = conn.read_to_eof() if head is None or head.status != 500 else b""
        if head is not None and head.status == 500:
            rest = conn.read_exact(int(head.header("Content-Length")))
    # The error is logged by the time the response is out; give the pipe a moment.
    deadline = time.monotonic() + 2
    while not error_records(server, since) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # a second, wrong, record would show up now
    return head, rest, error_records(server, since), server.events(key)


BEFORE_HEADERS = [
    ("call", False),
    ("first-next", True),
    ("not-iterable", False),
    ("str-chunk", True),
    ("header-name-not-str", True),
    ("header-value-not-str", True),
    ("header-not-a-pair", True),
    ("status-not-str", False),  # start_response itself raises: no iterable
    ("start-twice", False),
    ("start-twice-in-body", True),
    ("never-started", True),
    ("never-started-empty", True),
]


@pytest.mark.parametrize(("mode", "has_close"), BEFORE_HEADERS, ids=[m for m, _ in BEFORE_HEADERS])
def test_a_fault_before_the_headers_gives_500_one_logged_error_and_one_close(
    server, mode, has_close
):
    head, body, errors, events = run_fault(server, mode)
    assert head is not None and head.status == 500, (head, server.stderr[-2000:])
    assert b"must not be sent" not in body and b"Traceback" not in body
    assert len(errors) == 1, errors
    assert events == (["close"] if has_close else [])
    assert_serves(server)


def test_an_exception_mid_stream_closes_the_connection_without_a_proper_end(server):
    head, rest, errors, events = run_fault(server, "mid-stream")
    assert head is not None and head.status == 200
    assert rest.count(b"a") >= 65536
    assert not rest.endswith(b"0\r\n\r\n"), "a broken stream must not look complete"
    assert len(errors) == 1, errors
    assert "fault-mid-stream" in server.stderr
    assert events == ["close"]
    assert_serves(server)


def test_str_mid_stream_closes_the_connection_without_a_proper_end(server):
    head, rest, errors, events = run_fault(server, "str-chunk-mid-stream")
    assert head is not None and head.status == 200
    assert not rest.endswith(b"0\r\n\r\n")
    assert len(errors) == 1, errors
    assert events == ["close"]
    assert_serves(server)


def test_an_exception_in_close_is_logged_once_after_a_complete_response(server):
    key = f"k{next(_keys)}"
    since = len(server.stderr_lines)
    with server.connect() as conn:
        conn.send(request("GET", f"/fault?mode=close&key={key}"))
        resp = conn.response()
        assert resp.status == 200
        assert resp.body == b"complete body"
    server.wait_for_output(f"fault-in-close {key}")
    time.sleep(0.1)
    assert len(error_records(server, since)) == 1
    assert server.events(key) == ["close"]
    assert_serves(server)


def test_the_worker_lived_through_every_fault(server):
    assert server.proc.poll() is None
    assert "panicked" not in server.stderr
