"""The COMET toolkit over a real server: the broadcast channel (wake-up, resume by id, bounded
history, publishing from another thread) through the SSE, long-poll and multipart helpers."""

from __future__ import annotations

import json
import uuid

import pytest
from comet_support import EventStream, new_channel, open_sse, publish, streams_on
from support import assert_serves, exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("cometapp:application")


# --- the channel through SSE -------------------------------------------------------------------


def test_every_parked_client_gets_the_message(server):
    ch = new_channel()
    with streams_on([server] * 20, ch) as streams:
        [mid] = publish(server, ch, "hello")
        for stream in streams:
            assert stream.next_event() == {"id": str(mid), "data": "hello"}
        assert_serves(server)


def test_messages_arrive_in_order_with_their_event_names(server):
    ch = new_channel()
    stream = open_sse(server, ch)
    with stream.conn:
        ids = publish(server, ch, "x", n=3, event="tick")
        got = [stream.next_event() for _ in ids]
        assert [int(e["id"]) for e in got] == ids == sorted(ids)
        assert all(e["event"] == "tick" for e in got)


def test_reconnect_with_last_event_id_gets_what_it_missed(server):
    ch = new_channel()
    ids = publish(server, ch, n=4)
    stream = open_sse(server, ch, headers=[("Last-Event-ID", str(ids[1]))])
    with stream.conn:
        assert [int(stream.next_event()["id"]) for _ in range(2)] == ids[2:]
        [later] = publish(server, ch, "later")
        assert stream.next_event() == {"id": str(later), "data": "later"}


def test_resume_from_a_query_parameter_too(server):
    ch = new_channel()
    ids = publish(server, ch, n=2)
    stream = open_sse(server, ch, f"&lastEventId={ids[0]}")
    with stream.conn:
        assert int(stream.next_event()["id"]) == ids[1]


def test_resume_gets_only_what_the_bounded_history_still_holds(server):
    ch = new_channel("small")  # history of 5
    ids = publish(server, ch, n=8)
    stream = open_sse(server, ch, headers=[("Last-Event-ID", "0")])
    with stream.conn:
        assert [int(stream.next_event()["id"]) for _ in range(5)] == ids[3:]


def test_publish_from_another_thread_wakes_the_waiters(server):
    ch = new_channel()
    with streams_on([server] * 3, ch) as streams:
        exchange(server, request("GET", f"/publish-later?ch={ch}&delay=0.3&data=threaded"))
        for stream in streams:
            assert stream.next_event()["data"] == "threaded"


def test_a_waiter_that_got_its_message_does_not_spin(server):
    """After a publish the rung bell is never waited on again: the stream stays quiet (no
    repeated events, no busy loop) until the next message."""
    ch = new_channel()
    stream = open_sse(server, ch, "&heartbeat=30")
    with stream.conn:
        publish(server, ch, "one")
        assert stream.next_event()["data"] == "one"
        assert stream.conn.read_some(0.5) == b""
        publish(server, ch, "two")
        assert stream.next_event()["data"] == "two"


def test_heartbeat_comments_while_idle_and_retry_first(server):
    ch = new_channel()
    conn = server.connect()
    with conn:
        conn.send(request("GET", f"/sse?ch={ch}&heartbeat=0.2&retry=2.5"))
        assert conn.head().status == 200
        stream = EventStream(conn)
        assert stream.next_block() == "retry: 2500\n:"
        assert stream.next_block() == ":"  # a heartbeat
        assert stream.next_block() == ":"


def test_stream_with_a_timeout_ends_and_multiline_data_is_split(server):
    ch = new_channel()
    stream = open_sse(server, ch, "&timeout=1")
    with stream.conn:
        publish(server, ch, "a%0Ab")
        assert stream.next_event()["data"] == "a\nb"
        with pytest.raises(EOFError):
            stream.next_event()


def test_client_gone_while_parked_closes_the_stream(server):
    ch = new_channel()
    key = uuid.uuid4().hex
    stream = open_sse(server, ch, f"&key={key}")
    stream.conn.close()
    server.wait_for_event(key, "closed")
    assert_serves(server)


# --- long-poll ---------------------------------------------------------------------------------


def poll(server, ch: str, query: str = "", timeout: float = 15):
    with server.connect(timeout=timeout) as conn:
        conn.send(request("GET", f"/poll?ch={ch}{query}"))
        resp = conn.response()
    assert resp.status == 200, resp
    assert resp.header("Content-Type") == "application/json"
    return resp.json()


def test_long_poll_times_out_with_the_current_id(server):
    ch = new_channel()
    ids = publish(server, ch, n=2)
    assert poll(server, ch, "&timeout=0.2") == {"timeout": True, "last_id": ids[-1]}


def test_long_poll_gets_one_message_per_response(server):
    ch = new_channel()
    ids = publish(server, ch, n=3)
    assert poll(server, ch, "&last_id=0") == {"id": ids[0], "event": None, "data": "m0"}
    assert poll(server, ch, f"&last_id={ids[0]}")["id"] == ids[1]


def test_long_poll_waits_parked_for_the_next_message(server):
    ch = new_channel()
    conns = []
    for _ in range(5):
        conn = server.connect()
        conn.send(request("GET", f"/poll?ch={ch}&timeout=10"))
        conns.append(conn)
    assert all(c.read_some(0.2) == b"" for c in conns)
    [mid] = publish(server, ch, "wake")
    for conn in conns:
        with conn:
            assert conn.response().json() == {"id": mid, "event": None, "data": "wake"}


def test_long_poll_reports_messages_lost_from_history(server):
    ch = new_channel("small")
    ids = publish(server, ch, n=7)
    assert poll(server, ch, "&last_id=0") == {
        "id": ids[2],
        "event": None,
        "data": "m2",
        "missed": 2,
    }


# --- multipart/x-mixed-replace -------------------------------------------------------------------


def test_multipart_push_sends_the_latest_then_each_new_message(server):
    ch = new_channel()
    publish(server, ch, "old", n=2)
    conn = server.connect()
    with conn:
        conn.send(request("GET", f"/push?ch={ch}"))
        head = conn.head()
        assert head.header("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
        first = conn.read_chunk()
        assert first == (
            b"--frame\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nold\r\n"
        )
        publish(server, ch, "new")
        assert conn.read_chunk().endswith(b"Content-Length: 3\r\n\r\nnew\r\n")


def test_head_of_a_stream_has_no_body(server):
    resp = exchange(server, request("HEAD", f"/sse?ch={new_channel()}"), method="HEAD")
    assert resp.status == 200
    assert json.dumps(resp.header("Cache-Control")) == '"no-cache"'


# --- the channel over a WebSocket ---------------------------------------------------------------


def ws_url(server, path: str) -> str:
    return f"ws://{server.address.netloc}{path}"


def test_a_channel_over_websockets_both_ways(server):
    from websockets.sync.client import connect

    ch = new_channel()
    with connect(ws_url(server, f"/ws?ch={ch}")) as a, connect(ws_url(server, f"/ws?ch={ch}")) as b:
        # Published by an ordinary request: both WebSockets get it, as JSON.
        (first,) = publish(server, ch, "hello", event="greeting")
        for ws in (a, b):
            assert json.loads(ws.recv(timeout=10)) == {
                "id": first, "event": "greeting", "data": "hello"
            }  # fmt: skip
        # Sent by one client: published on the channel, so both get it.
        a.send("from a")
        for ws in (a, b):
            message = json.loads(ws.recv(timeout=10))
            assert (message["id"], message["data"]) == (first + 1, "from a")


def test_a_websocket_resumes_after_its_last_id(server):
    from websockets.sync.client import connect

    ch = new_channel()
    ids = publish(server, ch, n=3)
    with connect(ws_url(server, f"/ws?ch={ch}&last_id={ids[0]}")) as ws:
        got = [json.loads(ws.recv(timeout=10))["id"] for _ in range(2)]
    assert got == ids[1:]


def test_the_websocket_endpoint_answers_400_to_a_plain_request(server):
    resp = exchange(server, request("GET", f"/ws?ch={new_channel()}"))
    assert resp.status == 400
