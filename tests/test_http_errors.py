"""Requests the server refuses: malformed heads, smuggling attempts and size limits.

Each refusal must come with the right status, close the connection, and leave the server
serving new connections.
"""

import pytest
from support import assert_serves, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

GOOD = b"GET /alive HTTP/1.1\r\nHost: test\r\n\r\n"


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve("httpapp:application")


def refused(server, raw, status):
    """Sends ``raw``; checks the refusal, that the connection is closed, and that the server
    still serves."""
    with server.connect() as conn:
        try:
            conn.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may refuse before it read everything
        resp = conn.response()
        assert resp.status == status, f"{raw[:200]!r} got {resp.status} {resp.reason}"
        assert resp.header("Connection") and "close" in resp.header("Connection").lower()
        assert conn.is_closed(), "the connection must be closed after a refusal"
    assert_serves(server)
    return resp


# --- smuggling: ambiguous or invalid body framing ----------------------------------------------

SMUGGLING = {
    "content-length-and-transfer-encoding": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "transfer-encoding-and-content-length": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\n"
    ),
    "two-different-content-lengths": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "content-length-list-of-different-values": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!"
    ),
    "negative-content-length": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    "plus-signed-content-length": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello"
    ),
    "non-numeric-content-length": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    "hex-content-length": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello",
    "transfer-encoding-not-ending-in-chunked": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
    ),
    "transfer-encoding-gzip-only": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nhello"
    ),
    "chunked-twice": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bad-chunk-size": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    ),
    "empty-chunk-size": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n"
    ),
    "overflowing-chunk-size": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-data-without-crlf": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("raw", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_ambiguous_body_framing_is_refused_with_400(server, raw):
    refused(server, raw, 400)


def test_content_length_overflowing_64_bits_is_refused(server):
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n"
    with server.connect() as conn:
        conn.send(raw)
        resp = conn.response()
        assert resp.status in (400, 413), resp.status  # invalid, or over the body limit
        assert conn.is_closed()
    assert_serves(server)


def test_transfer_coding_we_do_not_implement_before_chunked_is_refused(server):
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    with server.connect() as conn:
        conn.send(raw)
        resp = conn.response()
        assert resp.status in (400, 501), resp.status
        assert conn.is_closed()
    assert_serves(server)


# --- malformed heads ---------------------------------------------------------------------------

MALFORMED = {
    "bare-lf-line-endings": b"GET /alive HTTP/1.1\nHost: t\n\n",
    "bare-lf-in-a-header": b"GET /alive HTTP/1.1\r\nHost: t\nX-Foo: bar\r\n\r\n",
    "bare-cr-in-a-header": b"GET /alive HTTP/1.1\r\nHost: t\r\nX-Foo: a\rX-Bar: b\r\n\r\n",
    "obsolete-line-folding": b"GET /alive HTTP/1.1\r\nHost: t\r\nX-Foo: a\r\n b\r\n\r\n",
    "space-before-colon": b"GET /alive HTTP/1.1\r\nHost : t\r\n\r\n",
    "header-without-colon": b"GET /alive HTTP/1.1\r\nHost: t\r\nNoColonHere\r\n\r\n",
    "nul-in-header-value": b"GET /alive HTTP/1.1\r\nHost: t\r\nX-Foo: a\x00b\r\n\r\n",
    "missing-host-on-http11": b"GET /alive HTTP/1.1\r\nX-Foo: bar\r\n\r\n",
    "two-host-headers": b"GET /alive HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "garbage-request-line": b"HELLO\r\n\r\n",
    "missing-version": b"GET /alive\r\nHost: t\r\n\r\n",
    "relative-target": b"GET alive HTTP/1.1\r\nHost: t\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_head_is_refused_with_400(server, raw):
    refused(server, raw, 400)


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/3.1"])
def test_unsupported_http_version_is_refused(server, version):
    refused(server, b"GET /alive " + version + b"\r\nHost: t\r\n\r\n", 505)


def test_unknown_expectation_is_refused_with_417(server):
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\nhello"
    refused(server, raw, 417)


def test_requests_before_a_malformed_one_are_answered_first(server):
    with server.connect() as conn:
        conn.send(GOOD + request("GET", "/id?second") + b"GET /alive HTTP/1.1\r\nHost : t\r\n\r\n")
        assert conn.response().body == b"alive\n"
        assert conn.response().body == b"/id?second"
        assert conn.response().status == 400
        assert conn.is_closed()


def test_bytes_after_a_refusal_are_not_served(server):
    # What follows a refused request must never be parsed as a request of its own.
    smuggled = b"GET /id?smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
    )
    with server.connect() as conn:
        conn.send(raw)
        assert conn.response().status == 400
        rest = conn.read_to_eof()
        assert rest == b"", f"served bytes after a refusal: {rest!r}"


# --- limits ------------------------------------------------------------------------------------


def test_request_line_over_the_limit_is_refused_with_414(server):
    refused(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414)


def test_request_line_just_under_the_limit_is_served(server):
    target = "/id?" + "a" * (8190 - len("GET /id? HTTP/1.1") - 10)
    with server.connect() as conn:
        conn.send(request("GET", target))
        resp = conn.response()
        assert resp.status == 200
        assert resp.body == target.encode()


def test_too_many_header_fields_are_refused_with_431(server):
    headers = [(f"X-H{i}", "v") for i in range(101)]
    refused(server, request("GET", "/alive", headers=headers), 431)


def test_header_field_over_the_limit_is_refused_with_431(server):
    refused(server, request("GET", "/alive", headers=[("X-Big", "v" * 9000)]), 431)


def test_head_over_the_limit_is_refused_with_431(server):
    # 20 fields of 4000 bytes: each under the field limit, together over 64 KiB.
    headers = [(f"X-H{i}", "v" * 4000) for i in range(20)]
    refused(server, request("GET", "/alive", headers=headers), 431)


def test_many_fields_under_the_limits_are_served(server):
    headers = [(f"X-H{i}", "v" * 500) for i in range(90)]
    with server.connect() as conn:
        conn.send(request("GET", "/alive", headers=headers))
        assert conn.response().status == 200


def test_body_over_the_limit_is_refused_with_413_before_it_is_sent(server):
    raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1073741825\r\n\r\n"
    refused(server, raw, 413)


def test_body_over_the_limit_with_100_continue_is_refused_without_continue(server):
    raw = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
        b"Content-Length: 1073741825\r\n\r\n"
    )
    refused(server, raw, 413)
