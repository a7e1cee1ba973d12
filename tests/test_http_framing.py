"""How responses and requests are framed on the wire: lengths, chunks, keep-alive, pipelining.

Raw sockets throughout, so that every byte the server sends is seen.
"""

import email.utils
import hashlib
import socket
import time

import pytest
from support import chunked, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

MIB = 1 << 20


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("httpapp:application")


def get(server, target, version="HTTP/1.1", method="GET", headers=None):
    """One request on a new connection; returns the response and whether the server closed
    the connection after it (waiting up to 0.3 s for that)."""
    with server.connect() as conn:
        conn.send(request(method, target, headers=headers, version=version))
        resp = conn.response(method)
        return resp, conn.is_closed(timeout=0.3)


# --- response framing --------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/list", "/tuple"])
def test_list_or_tuple_body_is_sent_with_content_length(server, target):
    resp, _ = get(server, target)
    assert resp.status == 200
    assert resp.header("Content-Length") == "11"
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"hello world"


@pytest.mark.parametrize("kind", ["list", "tuple"])
def test_a_list_iterator_body_is_sent_with_content_length_and_closed(server, kind):
    # Django's HttpResponse iterates as iter([content]): the items are all in memory, so
    # nothing is gained by streaming them one send at a time.
    key = f"list-iterator-{kind}"
    query = f"key={key}" + ("&tuple=1" if kind == "tuple" else "")
    resp, closed = get(server, f"/list-iterator?{query}")
    assert resp.status == 200
    assert resp.header("Content-Length") == "11"
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"hello world"
    assert not closed
    assert server.wait_for_event(key, "close") == ["close"]


def test_streamed_body_on_http11_is_chunked(server):
    resp, closed = get(server, "/gen")
    assert resp.framing == "chunked"
    assert resp.header("Content-Length") is None
    assert resp.body == b"hello world"
    assert not closed, "a chunked response must leave the connection open"


def test_streamed_body_with_apps_content_length_is_not_chunked(server):
    resp, closed = get(server, "/gen-with-length")
    assert resp.framing == "length"
    assert resp.header("Content-Length") == "11"
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"hello world"
    assert not closed


def test_streamed_body_on_http10_is_delimited_by_closing(server):
    with server.connect() as conn:
        conn.send(request("GET", "/gen", version="HTTP/1.0"))
        resp = conn.head()
        assert resp.header("Transfer-Encoding") is None, "no chunked encoding for HTTP/1.0"
        assert resp.header("Content-Length") is None
        assert conn.read_to_eof() == b"hello world"


def test_empty_streamed_body_is_a_complete_response(server):
    with server.connect() as conn:
        conn.send(request("GET", "/empty-gen"))
        resp = conn.response()
        assert resp.status == 200
        assert resp.body == b""
        assert resp.framing in ("chunked", "length")
        conn.send(request("GET", "/list"))
        assert conn.response().body == b"hello world"


def test_large_streamed_body_arrives_intact(server):
    def pattern(i):  # the blocks apps/httpapp.py sends
        return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)

    resp, _ = get(server, "/big?mb=8")
    assert len(resp.body) == 8 * MIB
    assert resp.body == b"".join(pattern(i) for i in range(8))


@pytest.mark.parametrize("mb", [1, 6])
def test_large_list_body_arrives_intact_and_in_order(server, mb):
    # Small and large items of a list (6 MiB: more than the server queues at once).
    def pattern(i):
        return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)

    with server.connect() as conn:
        for _ in range(2):  # and the connection stays usable after it
            conn.send(request("GET", f"/big-list?mb={mb}"))
            resp = conn.response()
            assert resp.status == 200
            assert resp.body == b"".join(b"<%d>" % i + pattern(i) for i in range(mb))


# --- responses without a body ------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/list", "/gen", "/gen-with-length"])
def test_head_response_has_no_body(server, target):
    # The HEAD response and a GET pipelined behind it: if the server sent any body bytes
    # (or a chunked terminator) after the HEAD response, the GET's status line is garbled.
    with server.connect() as conn:
        conn.send(request("HEAD", target) + request("GET", "/id?after-head"))
        head = conn.response("HEAD")
        assert head.status == 200
        after = conn.response()
        assert after.status == 200
        assert after.body == b"/id?after-head"


@pytest.mark.parametrize("code", [204, 304])
@pytest.mark.parametrize("app_body", ["", "1"], ids=["app-sends-nothing", "app-sends-bytes"])
def test_204_and_304_responses_have_no_body(server, code, app_body):
    with server.connect() as conn:
        conn.send(request("GET", f"/status?code={code}&body={app_body}") + request("GET", "/id?x"))
        resp = conn.response()
        assert resp.status == code
        assert resp.header("X-Status") == str(code)
        assert resp.header("Transfer-Encoding") is None, "no chunked framing without a body"
        after = conn.response()
        assert (after.status, after.body) == (200, b"/id?x"), "body bytes after a bodiless status"


# --- headers the server adds -------------------------------------------------------------------


def test_date_and_server_headers_are_added(server):
    resp, _ = get(server, "/list")
    assert len(resp.all("Date")) == 1
    date = email.utils.parsedate_to_datetime(resp.header("Date"))
    assert abs(date.timestamp() - time.time()) < 10
    assert resp.header("Date").endswith(" GMT")
    assert len(resp.all("Server")) == 1
    assert resp.header("Server")


def test_apps_own_date_and_server_headers_are_kept(server):
    resp, _ = get(server, "/own-date-server")
    assert resp.all("Date") == ["Mon, 01 Jan 2001 00:00:00 GMT"]
    assert resp.all("Server") == ["my-own/1.0"]


# --- keep-alive --------------------------------------------------------------------------------


def test_http11_connection_is_kept_alive(server):
    with server.connect() as conn:
        for i in range(5):
            conn.send(request("GET", f"/id?{i}"))
            resp = conn.response()
            assert resp.body == f"/id?{i}".encode()
            assert "close" not in (resp.header("Connection") or "").lower()
        conn.send(request("GET", "/gen"))
        assert conn.response().body == b"hello world"
        conn.send(request("GET", "/list"))
        assert conn.response().body == b"hello world"


def test_http11_connection_close_is_honoured(server):
    resp, closed = get(server, "/list", headers=[("Connection", "close")])
    assert resp.body == b"hello world"
    assert "close" in (resp.header("Connection") or "").lower()
    assert closed


def test_connection_close_with_unread_input_still_delivers_the_whole_response(server):
    def pattern(i):  # the blocks apps/httpapp.py sends
        return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)

    # The client asked to close but sent more behind its request: closing at once with that
    # input unread would reset the connection and destroy the response's tail in transit.
    with server.connect() as conn:
        conn.send(
            request("GET", "/big-list?mb=4", headers=[("Connection", "close")])
            + request("GET", "/id?unread")
        )
        # Read slowly, so that the response's tail waits in the server's send buffer.
        received = bytearray()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        while data := conn.sock.recv(65536):
            received += data
            time.sleep(0.002)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b"".join(b"<%d>" % i + pattern(i) for i in range(4))


def test_http10_connection_closes_by_default(server):
    resp, closed = get(server, "/list", version="HTTP/1.0")
    assert resp.body == b"hello world"
    assert closed


def test_http10_keep_alive_on_request(server):
    with server.connect() as conn:
        for i in range(3):
            conn.send(
                request(
                    "GET", f"/id?{i}", version="HTTP/1.0", headers=[("Connection", "keep-alive")]
                )
            )
            resp = conn.response()
            assert resp.body == f"/id?{i}".encode()
            assert "keep-alive" in (resp.header("Connection") or "").lower()
        assert not conn.is_closed(timeout=0.3)


def test_http10_keep_alive_streamed_body_still_closes(server):
    # Without chunked encoding a stream has no end but the end of the connection.
    with server.connect() as conn:
        conn.send(
            request("GET", "/gen", version="HTTP/1.0", headers=[("Connection", "keep-alive")])
        )
        resp = conn.head()
        assert resp.header("Content-Length") is None
        assert conn.read_to_eof() == b"hello world"


# --- pipelining --------------------------------------------------------------------------------


def test_pipelined_requests_in_one_send_are_answered_in_order(server):
    with server.connect() as conn:
        conn.send(b"".join(request("GET", f"/id?{i}") for i in range(10)))
        for i in range(10):
            assert conn.response().body == f"/id?{i}".encode()


def test_pipelined_answers_wait_for_a_slow_first_request(server):
    with server.connect() as conn:
        conn.send(
            request("GET", "/sleep?ms=300")
            + request("GET", "/id?second")
            + request("POST", "/echo", body=b"third")
            + request("GET", "/gen")
        )
        assert conn.response().body == b"slept 0.3"
        assert conn.response().body == b"/id?second"
        assert conn.response().body == b"third"
        assert conn.response().body == b"hello world"


def test_pipelined_request_split_across_sends(server):
    data = request("GET", "/id?a") + request("POST", "/echo", body=b"xyz") + request("GET", "/id?c")
    with server.connect() as conn:
        for i in range(0, len(data), 7):
            conn.send(data[i : i + 7])
            time.sleep(0.002)
        assert [conn.response().body for _ in range(3)] == [b"/id?a", b"xyz", b"/id?c"]


# --- request bodies ----------------------------------------------------------------------------


def test_content_length_request_body_is_read(server):
    body = bytes(range(256)) * 100
    with server.connect() as conn:
        conn.send(request("POST", "/echo", body=body))
        resp = conn.response()
        assert resp.body == body
        assert resp.header("X-Content-Length") == str(len(body))


def test_chunked_request_body_is_decoded(server):
    body = chunked(b"hello", b" ", b"chunked " * 1000, b"world")
    with server.connect() as conn:
        conn.send(request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=body))
        resp = conn.response()
        assert resp.body == b"hello " + b"chunked " * 1000 + b"world"
        assert resp.header("X-Input-Terminated") == "True"
        conn.send(request("GET", "/id?next"))
        assert conn.response().body == b"/id?next", "the connection continues after the body"


def test_chunked_request_body_with_extensions_and_trailer(server):
    body = b'5;name=value\r\nhello\r\n6 ; x="y"\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'
    with server.connect() as conn:
        conn.send(request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=body))
        assert conn.response().body == b"hello world"


def test_chunked_request_body_sent_slowly(server):
    with server.connect() as conn:
        conn.send(request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]))
        for piece in (b"4\r\nwiki", b"\r\n", b"5\r\npedia\r", b"\n0\r\n", b"\r\n"):
            time.sleep(0.05)
            conn.send(piece)
        assert conn.response().body == b"wikipedia"


def test_expect_100_continue_is_answered_before_the_body(server):
    with server.connect() as conn:
        conn.send(
            request("POST", "/echo", headers=[("Expect", "100-continue"), ("Content-Length", "5")])
        )
        interim = conn.head()
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        conn.send(b"hello")
        resp = conn.response()
        assert resp.status == 200
        assert resp.body == b"hello"


def test_expect_100_continue_with_chunked_body(server):
    with server.connect() as conn:
        conn.send(
            request(
                "POST",
                "/echo",
                headers=[("Expect", "100-continue"), ("Transfer-Encoding", "chunked")],
            )
        )
        assert conn.head().status == 100
        conn.send(chunked(b"after ", b"continue"))
        assert conn.response().body == b"after continue"


# --- the app's own Content-Length --------------------------------------------------------------


def test_app_sending_less_than_its_content_length_closes_the_connection(server):
    with server.connect() as conn:
        conn.send(request("GET", "/shorter-than-length"))
        resp = conn.head()
        assert resp.header("Content-Length") == "100"
        rest = conn.read_to_eof()  # ends: the server closed rather than wait or go on
        assert rest == b"only nine"


def test_app_sending_more_than_its_content_length_closes_the_connection(server):
    with server.connect() as conn:
        conn.send(request("GET", "/longer-than-length"))
        resp = conn.head()
        assert resp.header("Content-Length") == "3"
        rest = conn.read_to_eof()
        assert len(rest) <= 3, f"sent more than the Content-Length: {rest!r}"
        assert b"hello".startswith(rest)
