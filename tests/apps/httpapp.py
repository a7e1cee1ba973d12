"""Endpoints for the HTTP framing and error suites: each shows one way a body can be framed."""

import hashlib
import socket

from recorder import query, record, respond, with_common_routes

MIB = 1 << 20


def pattern(i):
    """Deterministic 1 MiB block number ``i`` of /big."""
    return hashlib.sha256(str(i).encode()).digest() * (MIB // 32)


def gen(*chunks):
    yield from chunks


class ListBacked:
    """A response object shaped like Django's HttpResponse: iterating it gives a list's
    iterator, and it has a close() the server must call."""

    def __init__(self, key, chunks, as_tuple=False):
        self.key = key
        self.chunks = tuple(chunks) if as_tuple else list(chunks)

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        record(self.key, "close")


@with_common_routes
def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    text = [("Content-Type", "text/plain")]
    if path == "/list":
        start_response("200 OK", text)
        return [b"hello ", b"world"]
    if path == "/tuple":
        start_response("200 OK", text)
        return (b"hello ", b"world")
    if path == "/gen":
        start_response("200 OK", text)
        return gen(b"hello ", b"world")
    if path == "/list-iterator":
        start_response("200 OK", text)
        return ListBacked(q.get("key", ""), [b"hello ", b"world"], as_tuple="tuple" in q)
    if path == "/gen-with-length":
        start_response("200 OK", [*text, ("Content-Length", "11")])
        return gen(b"hello ", b"world")
    if path == "/empty-gen":
        start_response("200 OK", text)
        return gen()
    if path == "/status":
        # A bodiless status; with body=1 the app (wrongly) yields bytes the server must drop.
        start_response(f"{q['code']} Whatever", [("X-Status", q["code"])])
        return gen(b"must not be sent") if q.get("body") else gen()
    if path == "/own-date-server":
        start_response(
            "200 OK",
            [*text, ("Date", "Mon, 01 Jan 2001 00:00:00 GMT"), ("Server", "my-own/1.0")],
        )
        return [b"own"]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response(
            "200 OK",
            [
                *text,
                ("X-Content-Length", environ.get("CONTENT_LENGTH", "")),
                ("X-Input-Terminated", str(environ.get("wsgi.input_terminated"))),
            ],
        )
        return [body]
    if path == "/id":
        return respond(start_response, f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}")
    if path == "/sleep":
        return sleep(environ, start_response, int(q["ms"]) / 1000)
    if path == "/big-list":
        # Blocks of 1 MiB between small pieces, as a list: the server may queue a list whole.
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [piece for i in range(int(q["mb"])) for piece in (b"<%d>" % i, pattern(i))]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (pattern(i) for i in range(int(q["mb"])))
    if path == "/shorter-than-length":
        start_response("200 OK", [*text, ("Content-Length", "100")])
        return gen(b"only ", b"nine")
    if path == "/longer-than-length":
        start_response("200 OK", [*text, ("Content-Length", "3")])
        return gen(b"hello")
    return respond(start_response, f"no route {path}\n", "404 Not Found")


def sleep(environ, start_response, seconds):
    """Answers after ``seconds``, parked with fdevent (so that pipelining order means something)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        yield environ["x-wsgiorg.fdevent.readable"](sock, seconds)
        body = f"slept {seconds}".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        yield body
    finally:
        sock.close()
