"""The x-wsgiorg.fdevent extension: waits, the timeout flag, parking, and what ends a wait.

Rules as in design.md §6; the choice for a non-empty chunk yielded with a wait pending is
evserver's own (send it, then park) and is documented in the README.
"""

import itertools
import json
import socket
import time
import uuid

import pytest
from support import assert_serves, exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("fdapp:application")


def new_key():
    return uuid.uuid4().hex


def result_of(server, target, timeout=15):
    with server.connect(timeout=timeout) as conn:
        conn.send(request("GET", target))
        resp = conn.response()
    assert resp.status == 200, resp
    return json.loads(resp.body)


def event_port(server, key):
    events = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        events = server.events(key)
        ports = [int(e.split()[1]) for e in events if e.startswith("port ")]
        if ports:
            return ports[0]
        time.sleep(0.02)
    raise AssertionError(f"the app never reported its port: {events}")


# --- the timeout flag --------------------------------------------------------------------------


@pytest.mark.parametrize("fd_kind", ["socket-object", "int-fd"])
def test_wait_that_times_out_sets_the_timeout_flag(server, fd_kind):
    target = "/timeout?t=0.2" + ("&int=1" if fd_kind == "int-fd" else "")
    result = result_of(server, target)
    assert result["timeout"] is True
    assert 0.15 <= result["elapsed"] < 3


def test_timeout_flag_starts_false_on_the_next_request_of_a_connection(server):
    # The flag object of a finished request may be reused for the next one: it must be reset.
    with server.connect(timeout=15) as conn:
        results = []
        for target in ["/timeout?t=0.1", "/flag", "/timeout?t=0.1", "/flag"]:
            conn.send(request("GET", target))
            resp = conn.response()
            assert resp.status == 200, resp
            results.append(json.loads(resp.body)["timeout"])
    assert results == [True, False, True, False]


def test_integer_timeout_is_accepted(server):
    result = result_of(server, "/timeout?t=1")
    assert result["timeout"] is True
    assert 0.9 <= result["elapsed"] < 4


def test_zero_timeout_on_an_idle_fd_times_out_at_once(server):
    result = result_of(server, "/timeout?t=0")
    assert result["timeout"] is True
    assert result["elapsed"] < 1


def test_readable_wait_woken_by_data_clears_the_timeout_flag(server):
    key = new_key()
    with server.connect() as conn:
        conn.send(request("GET", f"/udp?key={key}"))
        port = event_port(server, key)
        time.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"ping", ("127.0.0.1", port))
        result = json.loads(conn.response().body)
    assert result["first"] is True, "the first, short wait timed out"
    assert result["timeout"] is False, "the flag is reset when a wait ends by readiness"
    assert result["data"] == "ping"
    assert result["elapsed"] < 5


def test_writable_wait_on_a_socket_with_room_is_ready_at_once(server):
    result = result_of(server, "/writable")
    assert result["timeout"] is False
    assert result["elapsed"] < 0.25


def test_writable_wait_on_a_full_socket_times_out(server):
    result = result_of(server, "/writable?full=1")
    assert result["timeout"] is True
    assert result["elapsed"] >= 0.25


def test_wait_on_a_socket_whose_peer_closed_ends_at_once(server):
    result = result_of(server, "/hangup")
    assert result["timeout"] is False
    assert result["elapsed"] < 2


@pytest.mark.parametrize("kind", ["readable", "writable"])
def test_regular_file_is_always_ready(server, kind):
    result = result_of(server, f"/regular-file?kind={kind}")
    assert result["timeout"] is False
    assert result["elapsed"] < 2


def test_several_requests_waiting_on_one_fd_all_wake(server):
    key = new_key()
    conns = [server.connect() for _ in range(5)]
    try:
        for conn in conns:
            conn.send(request("GET", f"/shared?key={key}"))
        port = event_port(server, key)
        deadline = time.monotonic() + 5
        while server.events(key).count("waiting") < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(b"wake", ("127.0.0.1", port))
        assert [conn.response().body for conn in conns] == [b"woken"] * 5
    finally:
        for conn in conns:
            conn.close()


# --- when headers go out -----------------------------------------------------------------------


def test_waits_before_start_response(server):
    with server.connect() as conn:
        conn.send(request("GET", "/before-start-response"))
        resp = conn.response()
    assert resp.status == 200
    assert json.loads(resp.header("X-Flags")) == [True, True, True]
    assert resp.body == b"after three waits"


def test_no_byte_is_sent_while_parked_before_the_first_chunk(server):
    with server.connect() as conn:
        conn.send(request("GET", "/late?t=0.6"))
        t0 = time.monotonic()
        early = conn.read_some(timeout=0.4)
        assert early == b"", f"sent before the first non-empty chunk: {early!r}"
        resp = conn.response()
        assert time.monotonic() - t0 >= 0.5
    assert resp.status == 200
    assert resp.body == b"late body"


def test_empty_chunks_without_a_wait_are_skipped(server):
    resp = exchange(server, request("GET", "/empty-chunks"))
    # Sent as a chunk, an empty chunk would end the body early ("0\r\n\r\n").
    assert resp.body == b"ab"


def test_only_empty_chunks_give_an_empty_response(server):
    with server.connect() as conn:
        conn.send(request("GET", "/empty-chunks?only=1") + request("GET", "/alive"))
        resp = conn.response()
        assert (resp.status, resp.body) == (200, b"")
        assert conn.response().body == b"alive\n"


def test_chunk_yielded_with_a_wait_pending_is_sent_then_the_request_parks(server):
    with server.connect() as conn:
        conn.send(request("GET", "/chunk-with-pending-wait"))
        t0 = time.monotonic()
        head = conn.head()
        first = conn.read_chunk()
        first_at = time.monotonic() - t0
        assert first == b"sent-before-parking\n"
        assert first_at < 0.4, "the chunk must go out before the wait, not after it"
        result = json.loads(conn.read_chunk())
        assert conn.read_chunk() is None
    assert head.status == 200
    assert result["timeout"] is True
    assert result["elapsed"] >= 0.4


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_a_wait_recorded_but_never_yielded_is_dropped_with_a_warning(server, kind):
    """The response ends normally and the keep-alive connection serves the next request."""
    with server.connect() as conn:
        conn.send(request("GET", f"/unyielded-wait?kind={kind}") + request("GET", "/alive"))
        resp = conn.response()
        assert (resp.status, resp.body) == (200, b"done\n")
        assert conn.response().body == b"alive\n"
    line = server.wait_for_output(rf"never yielded.*GET /unyielded-wait\?kind={kind}")
    assert "[WARNING]" in line


def test_second_call_before_yielding_raises_and_the_first_wait_stands(server):
    result = result_of(server, "/second-call")
    assert result["second_call"] == "RuntimeError"
    assert result["timeout"] is True
    assert 0.15 <= result["elapsed"] < 5, "the first wait (0.2 s), not the second (10 s)"


def test_successive_waits_pace_a_stream(server):
    with server.connect() as conn:
        conn.send(request("GET", "/ticks?n=4&ms=100"))
        t0 = time.monotonic()
        resp = conn.response()
        elapsed = time.monotonic() - t0
    lines = resp.body.decode().splitlines()
    assert [line.split()[:2] for line in lines] == [["tick", str(i)] for i in range(4)]
    stamps = [float(line.split()[2]) for line in lines]
    assert all(b - a >= 0.08 for a, b in itertools.pairwise(stamps))
    assert 0.35 <= elapsed < 5


# --- disconnects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["no-timeout", "with-timeout", "after-headers"],
)
def test_disconnect_while_parked_closes_the_iterable(server, variant):
    key = new_key()
    target = f"/park?key={key}"
    if variant == "with-timeout":
        target += "&t=30"
    if variant == "after-headers":
        target += "&headers=1"
    conn = server.connect()
    conn.send(request("GET", target))
    server.wait_for_event(key, "parked")
    if variant == "after-headers":
        assert conn.head().status == 200
    conn.close()
    events = server.wait_for_event(key, "finally")
    assert events == ["parked", "GeneratorExit", "fd still open", "finally"]
    assert_serves(server)


def test_disconnect_with_a_half_closed_socket_while_parked(server):
    key = new_key()
    conn = server.connect()
    conn.send(request("GET", f"/park?key={key}"))
    server.wait_for_event(key, "parked")
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    assert server.wait_for_event(key, "finally")[:2] == ["parked", "GeneratorExit"]


# --- scale and robustness ----------------------------------------------------------------------


def test_many_concurrent_parked_requests_all_complete(server):
    n = 500
    conns = []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            conns.append(server.connect(timeout=30))
        for conn in conns:
            conn.send(request("GET", "/timeout?t=0.5"))
        results = [json.loads(conn.response().body) for conn in conns]
        elapsed = time.monotonic() - t0
    finally:
        for conn in conns:
            conn.close()
    assert len(results) == n
    assert all(r["timeout"] is True for r in results)
    # Waited side by side, not one after the other (which would take 250 s).
    assert elapsed < 15, elapsed


def test_bad_arguments_raise_in_the_app(server):
    result = result_of(server, "/bad-arguments")
    assert result == {
        "str-fd": "TypeError",
        "float-fd": "TypeError",
        "none-fd": "TypeError",
        "object-without-fileno": "TypeError",
        "fileno-returning-str": "TypeError",
        "negative-fd": "ValueError",
        "negative-timeout": "ValueError",
        "nan-timeout": "ValueError",
        "str-timeout": "TypeError",
        "no-arguments": "TypeError",
        "writable-str-fd": "TypeError",
        "writable-negative-timeout": "ValueError",
    }
    assert_serves(server)
