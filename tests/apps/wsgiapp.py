"""Endpoints for the WSGI suite: the environ, wsgi.input, write(), exc_info, close(), errors,
header validation and wsgi.file_wrapper. Each route shows one PEP 3333 rule."""

import hashlib
import io
import json
import socket
import sys
import wsgiref.validate

from recorder import query, record, respond, respond_json, with_common_routes

TEXT = [("Content-Type", "text/plain")]


def environ_dump(environ, start_response):
    special = {
        "wsgi.version",
        "wsgi.url_scheme",
        "wsgi.multithread",
        "wsgi.multiprocess",
        "wsgi.run_once",
        "wsgi.input_terminated",
    }
    out = {
        "keys": sorted(environ),
        "types": {k: type(k).__name__ + ":" + type(v).__name__ for k, v in environ.items()},
        "values": {k: v for k, v in environ.items() if isinstance(v, str) or k in special},
        "input_methods": [
            m
            for m in ("read", "readline", "readlines", "__iter__")
            if hasattr(environ["wsgi.input"], m)
        ],
        "errors_methods": [
            m for m in ("write", "writelines", "flush") if hasattr(environ["wsgi.errors"], m)
        ],
        "fdevent_callable": [
            callable(environ.get("x-wsgiorg.fdevent.readable")),
            callable(environ.get("x-wsgiorg.fdevent.writable")),
        ],
        "timeout_flag": bool(environ.get("x-wsgiorg.fdevent.timeout", "missing")),
    }
    return respond_json(start_response, out)


def input_ops(environ, start_response):
    """Reads the body in the way ``mode`` says and answers what it got, as latin-1 JSON."""
    inp = environ["wsgi.input"]
    mode = query(environ)["mode"]
    if mode == "read":
        got = [inp.read(), inp.read()]
    elif mode == "read-sizes":
        got = [inp.read(0), inp.read(1), inp.read(5), inp.read(-1), inp.read(10)]
    elif mode == "read-none":
        got = [inp.read(None), inp.read(None)]
    elif mode == "readline":
        got = [inp.readline(), inp.readline(), inp.readline(), inp.readline(3), inp.readline()]
        got += [inp.readline() for _ in range(10)]
    elif mode == "readlines":
        got = inp.readlines()
    elif mode == "readlines-hint":
        got = [b"|".join(inp.readlines(10)), inp.read()]
    elif mode == "iterate":
        got = list(inp)
    elif mode == "mixed":
        got = [inp.read(3), inp.readline(), next(iter(inp)), inp.read(4), *inp.readlines()]
    else:
        raise ValueError(mode)
    return respond_json(start_response, [g.decode("latin-1") for g in got])


def input_digest(environ, start_response):
    """The length and sha256 of the body, read in 64 KiB pieces (a body to spill to disk)."""
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        block = inp.read(65536)
        if not block:
            break
        h.update(block)
        n += len(block)
    return respond_json(
        start_response,
        {"length": n, "sha256": h.hexdigest(), "content_length": environ.get("CONTENT_LENGTH")},
    )


def use_write(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"one ")
    write(b"two ")
    if query(environ).get("stream"):
        return iter([b"three ", b"four"])
    return [b"three ", b"four"]


def exc_info_before_headers(environ, start_response):
    start_response("200 OK", [*TEXT, ("X-First", "1")])
    try:
        raise ValueError("replaced before headers went out")
    except ValueError:
        start_response("500 Internal Server Error", [*TEXT, ("X-Second", "1")], sys.exc_info())
    return [b"replaced"]


def exc_info_after_headers(environ, start_response):
    key = query(environ)["key"]
    start_response("200 OK", TEXT)
    yield b"partial"
    try:
        raise KeyError("late failure")
    except KeyError:
        try:
            start_response("500 Internal Server Error", TEXT, sys.exc_info())
            record(key, "start_response returned")
        except KeyError as e:
            record(key, f"re-raised {type(e).__name__} {e}")
    yield b" and the rest"


class ClosingBody:
    """A response iterable that records its close() calls, and can fail or stream forever."""

    def __init__(self, key, mode, environ):
        self.key = key
        self.mode = mode
        self.environ = environ
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.n += 1
        if self.mode == "error-first" or (self.mode == "error-later" and self.n == 2):
            raise RuntimeError(f"closing-body-{self.mode}")
        if self.mode == "endless":
            return b"x" * 65536
        if self.n > 3:
            raise StopIteration
        return b"chunk%d " % self.n

    def close(self):
        record(self.key, "close")


def closing(environ, start_response):
    q = query(environ)
    start_response("200 OK", TEXT)
    return ClosingBody(q["key"], q["mode"], environ)


def fail_in_app(environ, start_response):
    raise RuntimeError("secret-detail-in-app " + query(environ).get("marker", ""))


def fail_in_body(environ, start_response):
    start_response("200 OK", TEXT)
    if query(environ)["when"] == "first":
        raise ZeroDivisionError("secret-detail-in-body")
    yield b"first chunk"
    # A short wait, so that the headers and the first chunk are surely out before the error.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        yield environ["x-wsgiorg.fdevent.readable"](sock, 0.05)
    finally:
        sock.close()
    raise ZeroDivisionError("secret-detail-after-headers")


def bad_header(environ, start_response):
    kind = query(environ)["kind"]
    if kind == "value-crlf":
        start_response("200 OK", [*TEXT, ("X-Bad", "a\r\nInjected: yes")])
    elif kind == "value-lf":
        start_response("200 OK", [*TEXT, ("X-Bad", "a\nInjected: yes")])
    elif kind == "name-crlf":
        start_response("200 OK", [*TEXT, ("X-Bad\r\nInjected", "yes")])
    elif kind == "status-crlf":
        start_response("200 OK\r\nInjected: yes", TEXT)
    return [b"must not be sent"]


def errors_stream(environ, start_response):
    errors = environ["wsgi.errors"]
    errors.write("wsgi-errors-marker " + query(environ)["marker"] + "\n")
    errors.writelines(["wsgi-errors-lines\n"])
    errors.flush()
    return respond(start_response, "logged\n")


class RecordingFile(io.BytesIO):
    """A file-like object without a file descriptor, whose close() is recorded."""

    def __init__(self, data, key):
        super().__init__(data)
        self.key = key

    def close(self):
        record(self.key, "file closed")
        super().close()


def file_wrapper(environ, start_response):
    q = query(environ)
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("source") == "bytesio":
        f = RecordingFile(q["data"].encode(), q["key"])
    else:
        f = open(q["path"], "rb")  # noqa: SIM115 - the server closes it through the wrapper
        if q.get("offset"):
            f.seek(int(q["offset"]))
    if q.get("length"):
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)


@with_common_routes
def application(environ, start_response):
    path = environ["PATH_INFO"]
    route = environ_dump if path.startswith("/environ") else ROUTES.get(path)
    if route is None:
        return respond(start_response, "no route\n", "404 Not Found")
    return route(environ, start_response)


ROUTES = {
    "/input": input_ops,
    "/input-digest": input_digest,
    "/write": use_write,
    "/exc-info-before-headers": exc_info_before_headers,
    "/exc-info-after-headers": exc_info_after_headers,
    "/closing": closing,
    "/fail-in-app": fail_in_app,
    "/fail-in-body": fail_in_body,
    "/bad-header": bad_header,
    "/errors": errors_stream,
    "/file": file_wrapper,
}


# --- the same kinds of request under wsgiref's validator -------------------------------------


def _validated_inner(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/post":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", TEXT)
        return [b"got " + body]
    if path == "/stream":
        return _validated_stream(environ, start_response)
    if path == "/write":
        write = start_response("200 OK", TEXT)
        write(b"written ")
        return [b"returned"]
    if path == "/lines":
        inp = environ["wsgi.input"]
        lines = [inp.readline(), *inp.readlines()]
        start_response("200 OK", TEXT)
        return [json.dumps([x.decode() for x in lines]).encode()]
    if path == "/no-content":
        start_response("204 No Content", [])
        return []
    start_response("200 OK", [*TEXT, ("Content-Length", "6")])
    return [b"valid\n"]


def _validated_stream(environ, start_response):
    start_response("200 OK", TEXT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(3):
            yield environ["x-wsgiorg.fdevent.readable"](sock, 0.01)
            yield b"tick %d\n" % i
    finally:
        sock.close()


validated = with_common_routes(wsgiref.validate.validator(_validated_inner))
