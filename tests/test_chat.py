"""The chat room of the demo (evserver.chat) over HTTP: posting, validation, and delivery by
server-sent events and by long-poll."""

from __future__ import annotations

import json

import pytest
from comet_support import EventStream
from support import exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

FORM = [("Content-Type", "application/x-www-form-urlencoded")]


@pytest.fixture(scope="module")
def demo(module_serve):
    return module_serve()


def say(server, body: bytes, method: str = "POST"):
    return exchange(server, request(method, "/chat/say", headers=FORM, body=body))


def test_a_message_said_reaches_sse_and_long_poll(demo):
    conn = demo.connect()
    with conn:
        conn.send(request("GET", "/chat/events"))
        assert conn.head().header("Content-Type") == "text/event-stream; charset=utf-8"
        stream = EventStream(conn)
        resp = say(demo, b"name=ann&text=hello+%F0%9F%91%8B")
        assert resp.status == 200
        mid = resp.json()["id"]
        event = stream.next_event()
        assert event["event"] == "say" and int(event["id"]) == mid
        data = json.loads(event["data"])
        assert (data["name"], data["text"]) == ("ann", "hello \N{WAVING HAND SIGN}")
        polled = exchange(demo, request("GET", f"/chat/poll?last_id={mid - 1}")).json()
        assert polled["id"] == mid and json.loads(polled["data"])["text"] == data["text"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"name=ann&text=", 400),
        (b"name=ann&text=%20%20", 400),
        (b"text=" + b"x" * 501, 400),
        (b"text=" + b"x" * 5000, 413),
    ],
)
def test_bad_messages_are_refused(demo, body, status):
    assert say(demo, body).status == status


def test_wrong_methods_and_paths(demo):
    resp = exchange(demo, request("GET", "/chat/say"))
    assert (resp.status, resp.header("Allow")) == (405, "POST")
    assert exchange(demo, request("POST", "/chat/events", body=b"x")).status == 405
    assert exchange(demo, request("GET", "/chat/nope")).status == 404


def test_name_defaults_and_is_cut(demo):
    conn = demo.connect()
    with conn:
        conn.send(request("GET", "/chat/events"))
        conn.head()
        stream = EventStream(conn)
        assert say(demo, b"text=hi").status == 200
        assert json.loads(stream.next_event()["data"])["name"] == "guest"
        assert say(demo, b"name=" + b"n" * 100 + b"&text=hi").status == 200
        assert json.loads(stream.next_event()["data"])["name"] == "n" * 40


def test_the_room_alone_on_a_page(demo):
    resp = exchange(demo, request("GET", "/chat"))
    assert resp.status == 200 and b'data-base="/chat"' in resp.body


def test_a_chunked_message_is_read_to_its_end(demo):
    from support import chunked

    headers = [*FORM, ("Transfer-Encoding", "chunked")]
    body = chunked(b"name=ann&te", b"xt=in+pieces")
    resp = exchange(demo, request("POST", "/chat/say", headers=headers, body=body))
    assert resp.status == 200, resp
    polled = exchange(demo, request("GET", f"/chat/poll?last_id={resp.json()['id'] - 1}")).json()
    assert json.loads(polled["data"])["text"] == "in pieces"


def test_the_room_over_a_websocket(demo):
    from websockets.sync.client import connect

    url = f"ws://{demo.address.netloc}/chat/ws"
    with connect(url) as ws, connect(url) as other:
        # Spoken over one WebSocket: both get it, framed as {"id", "event", "data"}.
        ws.send(json.dumps({"name": "bob", "text": "over the socket"}))
        for client in (ws, other):
            message = json.loads(client.recv(timeout=10))
            assert message["event"] == "say"
            assert json.loads(message["data"])["text"] == "over the socket"
        # Posted: the WebSockets get it too; refused input is dropped without a word.
        ws.send("not json")
        ws.send(json.dumps({"name": "bob", "text": "   "}))
        mid = say(demo, b"name=ann&text=posted").json()["id"]
        message = json.loads(other.recv(timeout=10))
        assert (message["id"], json.loads(message["data"])["name"]) == (mid, "ann")
    # A new WebSocket resumes from where it is told.
    with connect(f"{url}?last_id={mid - 1}") as late:
        assert json.loads(late.recv(timeout=10))["id"] == mid
