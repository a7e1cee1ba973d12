"""The built-in demo app on its own, driven by a stand-in for the server's fdevent calls.

(The same demo over a real server is in test_cli.py.)
"""

import json
import re
import socket
import wsgiref.util
import wsgiref.validate

import pytest
from evserver import demo


class FakeServer:
    """Calls the app like a server would, recording the fdevent waits it asks for."""

    def __init__(self):
        self.waits = []
        self.status = None
        self.headers = None

    def environ(self, path, method="GET", query=""):
        env = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
        }
        wsgiref.util.setup_testing_defaults(env)

        def readable(fd, timeout=None):
            self.waits.append((fd, timeout))
            return b""

        env["x-wsgiorg.fdevent.readable"] = readable
        env["x-wsgiorg.fdevent.writable"] = readable
        env["x-wsgiorg.fdevent.timeout"] = True  # every wait here ends by its timeout
        return env

    def start_response(self, status, headers, exc_info=None):
        self.status = status
        self.headers = dict(headers)

    def call(self, path, **kwargs):
        return demo.application(self.environ(path, **kwargs), self.start_response)


def events(chunks):
    return [json.loads(c.decode().split("data: ", 1)[1]) for c in chunks if c]


def test_page_is_complete_html_without_external_resources():
    server = FakeServer()
    body = b"".join(server.call("/"))
    assert server.status == "200 OK"
    assert server.headers["Content-Type"] == "text/html; charset=utf-8"
    assert int(server.headers["Content-Length"]) == len(body)
    page = body.decode()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert 'new EventSource("clock")' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no external resources"
    assert '<section class="card" id="chat" data-base="chat">' in page, "the chat beside it"
    assert "new WebSocket(url.href)" in page
    assert 'new EventSource(base + "/events?lastEventId=" + last)' in page


def test_clock_stream_waits_with_fdevent_between_ticks():
    server = FakeServer()
    body = server.call("/clock")
    assert server.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert server.headers["Cache-Control"] == "no-cache"
    first = next(body)
    assert first.startswith(b"retry: ")
    assert server.waits == [], "the first tick goes out at once"
    assert next(body) == b""  # a wait: the server parks the request here
    ((sock, timeout),) = server.waits
    assert isinstance(sock, socket.socket)
    assert 0.005 <= timeout <= 1.005, "wake just after the second turns"
    second = next(body)
    ticks = events([first, second])
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t["time"]) for t in ticks)
    assert b"id: 0\n" in first and b"id: 1\n" in second
    body.close()  # the client went away
    assert sock.fileno() == -1, "the socket is closed when the stream is closed"


def test_clock_stream_closed_before_it_started_leaks_nothing():
    server = FakeServer()
    body = server.call("/clock")
    body.close()
    assert server.waits == []


def test_clock_count_ends_the_stream_and_closes_the_socket():
    server = FakeServer()
    chunks = list(server.call("/clock.txt", query="count=3"))
    assert [c for c in chunks if c != b""] == [c for c in chunks if c]
    lines = [c for c in chunks if c]
    assert len(lines) == 3
    assert chunks.count(b"") == 2
    assert all(re.fullmatch(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( \S+)?\n", c) for c in lines)
    assert all(sock.fileno() == -1 for sock, _ in server.waits)


def test_head_of_the_clock_does_not_start_a_stream():
    server = FakeServer()
    assert list(server.call("/clock", method="HEAD")) == []
    assert server.status == "200 OK"
    assert server.waits == []


def test_clock_without_fdevent_explains_itself():
    server = FakeServer()
    env = server.environ("/clock")
    del env["x-wsgiorg.fdevent.readable"]
    body = b"".join(demo.application(env, server.start_response))
    assert server.status == "501 Not Implemented"
    assert b"x-wsgiorg.fdevent" in body


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [("/nope", "GET", "404 Not Found"), ("/", "POST", "405 Method Not Allowed")],
)
def test_other_requests(path, method, status):
    server = FakeServer()
    list(server.call(path, method=method))
    assert server.status == status


@pytest.mark.parametrize("path", ["/", "/clock", "/clock.txt", "/nope"])
def test_demo_passes_wsgiref_validation(path):
    server = FakeServer()
    app = wsgiref.validate.validator(demo.application)
    body = app(server.environ(path, query="count=2"), server.start_response)
    try:
        list(body)
    finally:
        body.close()
