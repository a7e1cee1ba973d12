"""The COMET helpers inside Flask and Django responses, under evserver: the waits pass
through the frameworks' streaming responses and the requests park in the server."""

from __future__ import annotations

import importlib.util

import pytest
from comet_support import EventStream
from support import exchange, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

FRAMEWORKS = {"flask": "cometflask:app", "django": "cometdjango:application"}


@pytest.fixture(scope="module", params=sorted(FRAMEWORKS))
def request_framework(request):
    # Not imported here: test_loader.py puts a fake django in front for its own tests.
    if importlib.util.find_spec(request.param) is None:
        pytest.skip(f"{request.param} is not installed")
    return request.param


@pytest.fixture(scope="module")
def app_server(request_framework, module_serve):
    return module_serve(FRAMEWORKS[request_framework])


def publish(server, text: str) -> int:
    resp = exchange(server, request("POST", "/publish", body=text.encode()))
    assert resp.status == 200, resp
    return resp.json()["id"]


def test_sse_through_the_framework(app_server):
    conn = app_server.connect()
    with conn:
        conn.send(request("GET", "/events"))
        head = conn.head()
        assert head.status == 200
        assert head.header("Content-Type").startswith("text/event-stream")
        stream = EventStream(conn)
        assert stream.next_block() == ":"
        mid = publish(app_server, "framed")
        assert stream.next_event() == {"id": str(mid), "data": "framed"}


def test_long_poll_parks_through_the_framework(app_server):
    conns = []
    for _ in range(3):
        conn = app_server.connect()
        conn.send(request("GET", "/poll"))
        conns.append(conn)
    # While they are parked, the worker serves other requests.
    assert all(c.read_some(0.2) == b"" for c in conns)
    mid = publish(app_server, "wake")
    for conn in conns:
        with conn:
            resp = conn.response()
            assert resp.json() == {"id": mid, "event": None, "data": "wake"}


def test_multipart_push_through_the_framework(app_server):
    publish(app_server, "latest")
    conn = app_server.connect()
    with conn:
        conn.send(request("GET", "/push"))
        head = conn.head()
        assert head.header("Content-Type").startswith("multipart/x-mixed-replace")
        assert conn.read_chunk().endswith(b"\r\n\r\nlatest\r\n")
