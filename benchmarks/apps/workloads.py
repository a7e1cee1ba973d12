"""The application every server in the comparison serves: one route per workload.

Each route does the least a real application would for its workload, so that what is measured
is the server: the body objects are built once at import, never per request.
"""

import time

HELLO = b"Hello, World!"
BODY_10K = b"x" * 10_240
# 1 MiB as a list of sixteen 64 KiB chunks (a framework's buffered response).
BODY_1M = [b"y" * 65_536] * 16
# Streamed: 100 chunks of 1 KiB from a generator, no Content-Length (chunked on HTTP/1.1).
STREAM_CHUNK = b"z" * 1_024
STREAM_CHUNKS = 100

TEXT = [("Content-Type", "text/plain")]


def _length(size: int) -> list[tuple[str, str]]:
    return [*TEXT, ("Content-Length", str(size))]


HELLO_HEADERS = _length(len(HELLO))
HEADERS_10K = _length(len(BODY_10K))
HEADERS_1M = _length(sum(map(len, BODY_1M)))


def _stream():
    for _ in range(STREAM_CHUNKS):
        yield STREAM_CHUNK


_django = None


def _django_app():
    """The `django` workload's Django application, set up on first use."""
    global _django
    if _django is None:
        import benchdjango

        _django = benchdjango.application
    return _django


def _read_body(environ) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/":
        start_response("200 OK", HELLO_HEADERS)
        return [HELLO]
    if path == "/10k":
        start_response("200 OK", HEADERS_10K)
        return [BODY_10K]
    if path == "/1m":
        start_response("200 OK", HEADERS_1M)
        return BODY_1M
    if path == "/stream":
        start_response("200 OK", TEXT)
        return _stream()
    if path == "/echo":
        body = _read_body(environ)
        start_response("200 OK", _length(len(body)))
        return [body]
    if path == "/blocking":
        # A view waiting 20 ms on something else (a database query, another service); the
        # driver releases the GIL as time.sleep does.
        time.sleep(0.02)
        start_response("200 OK", HELLO_HEADERS)
        return [HELLO]
    if path == "/django":
        return _django_app()(environ, start_response)
    if path == "/upload":
        size = str(len(_read_body(environ))).encode()
        start_response("200 OK", _length(len(size)))
        return [size]
    start_response("404 Not Found", _length(9))
    return [b"not found"]
