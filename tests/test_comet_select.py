"""evserver's multi-fd wait, x-evserver.fdevent.select: the first fd ready wins and is named by
x-evserver.fdevent.ready, the others are cancelled, the timeout works, bad arguments raise."""

from __future__ import annotations

import json
import uuid

import pytest
from support import assert_serves, exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("cometapp:application")


def start_select(server, a: str, b: str, t: float, key: str = ""):
    conn = server.connect()
    conn.send(request("GET", f"/select?a={a}&b={b}&t={t}&key={key}"))
    return conn


def read_json_chunk(conn) -> dict:
    return json.loads(conn.read_chunk())


def names():
    return f"a-{uuid.uuid4().hex}", f"b-{uuid.uuid4().hex}"


@pytest.mark.parametrize("which", ["a", "b"])
def test_the_channel_that_publishes_wakes_the_request_and_is_named(server, which):
    a, b = names()
    conn = start_select(server, a, b, 10)
    with conn:
        # Parked until a publish (the head goes out with the first chunk).
        assert conn.read_some(0.3) == b""
        exchange(server, request("GET", f"/publish?ch={a if which == 'a' else b}&data=hi"))
        assert conn.head().status == 200
        assert read_json_chunk(conn) == {"ready": which, "timeout": False, "data": ["hi"]}
        # The next wait (single fd, times out) resets the outcome: no stale fd, no stale flag.
        assert read_json_chunk(conn) == {"timeout": True, "ready": None}
        assert conn.read_chunk() is None


def test_timeout_wins_when_nothing_is_published(server):
    a, b = names()
    with start_select(server, a, b, 0.2) as conn:
        assert conn.head().status == 200
        assert read_json_chunk(conn) == {"ready": None, "timeout": True, "data": []}


def test_losing_polls_are_cancelled_many_times_over(server):
    """Each select leaves a losing poll to cancel; after many rounds the server is sound and
    later publishes on the losing channel wake nobody stale."""
    a, b = names()
    for _ in range(30):
        key = uuid.uuid4().hex
        with start_select(server, a, b, 10, key) as conn:
            # Under --threads the publish could otherwise run before the select subscribed.
            server.wait_for_event(key, "subscribed")
            exchange(server, request("GET", f"/publish?ch={b}&data=x"))
            assert conn.head().status == 200
            assert read_json_chunk(conn)["ready"] == "b"
    exchange(server, request("GET", f"/publish?ch={a}&data=late"))
    assert_serves(server)


def test_readable_and_writable_in_one_wait(server):
    resp = exchange(server, request("GET", "/select-mixed"))
    assert resp.json() == {"writable_won": True}


def test_client_gone_while_parked_on_several_fds(server):
    a, b = names()
    key = uuid.uuid4().hex
    conn = start_select(server, a, b, 30, key)
    assert conn.read_some(0.3) == b""
    conn.close()
    server.wait_for_event(key, "closed")
    exchange(server, request("GET", f"/publish?ch={a}&data=nobody"))
    assert_serves(server)


def test_bad_arguments_raise_in_the_application(server):
    resp = exchange(server, request("GET", "/select-errors"))
    assert resp.json() == {
        "empty": "ValueError",
        "single": "TypeError",
        "too_many": "ValueError",
        "negative": "ValueError",
        "bad_timeout": "TypeError",
        "not_iterable": "TypeError",
        "timeout_64": True,
    }


def test_a_graceful_stop_ends_a_request_parked_on_several_fds(serve):
    """SIGTERM while a request waits on several fds: every poll of the wait is cancelled, the
    client is told to come back (503, the head had not gone out) and the worker exits clean."""
    import signal

    server = serve("cometapp:application")
    a, b = names()
    conn = start_select(server, a, b, 60)
    with conn:
        assert conn.read_some(0.3) == b""
        server.proc.send_signal(signal.SIGTERM)
        assert conn.response().status == 503
    assert server.stop() == 0
    assert "Traceback" not in server.stderr and "panicked" not in server.stderr
