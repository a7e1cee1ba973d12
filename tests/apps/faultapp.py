"""Broken applications, one per ``mode`` (GET /fault?mode=MODE&key=KEY): exceptions in the
call, in the first ``next()``, mid-stream and in ``close()``; results that are not iterables
of bytes; bad headers; ``start_response`` called twice or never. The response iterable records
each ``close()`` under KEY (read back with GET /_events?key=KEY)."""

from recorder import query, record, with_common_routes

TEXT = [("Content-Type", "text/plain")]


class Body:
    """A response iterable yielding ``items`` (an Exception instance is raised instead), whose
    close() is recorded and may itself fail."""

    def __init__(self, key, items, fail_in_close=False):
        self.key = key
        self.items = list(items)
        self.fail_in_close = fail_in_close

    def __iter__(self):
        return self

    def __next__(self):
        if not self.items:
            raise StopIteration
        item = self.items.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        record(self.key, "close")
        if self.fail_in_close:
            raise RuntimeError(f"fault-in-close {self.key}")


def fault(environ, start_response):
    q = query(environ)
    key, mode = q["key"], q["mode"]
    boom = RuntimeError(f"fault-{mode} {key}")
    if mode == "call":
        raise boom
    if mode == "first-next":
        start_response("200 OK", TEXT)
        return Body(key, [boom])
    if mode == "mid-stream":
        start_response("200 OK", TEXT)
        # Big enough chunks that the headers and the first chunk are out before the error.
        return Body(key, [b"a" * 65536, b"b" * 65536, boom])
    if mode == "close":
        start_response("200 OK", TEXT)
        return Body(key, [b"complete body"], fail_in_close=True)
    if mode == "not-iterable":
        start_response("200 OK", TEXT)
        return 42
    if mode == "str-chunk":
        start_response("200 OK", TEXT)
        return Body(key, ["text, not bytes"])
    if mode == "str-chunk-mid-stream":
        start_response("200 OK", TEXT)
        return Body(key, [b"a" * 65536, "text, not bytes"])
    if mode == "header-name-not-str":
        start_response("200 OK", [(b"X-Bytes", "v")])
        return Body(key, [b"must not be sent"])
    if mode == "header-value-not-str":
        start_response("200 OK", [("X-Int", 1)])
        return Body(key, [b"must not be sent"])
    if mode == "header-not-a-pair":
        start_response("200 OK", [("X-One",)])
        return Body(key, [b"must not be sent"])
    if mode == "status-not-str":
        start_response(b"200 OK", TEXT)
        return Body(key, [b"must not be sent"])
    if mode == "start-twice":
        start_response("200 OK", TEXT)
        start_response("201 Created", TEXT)
        return Body(key, [b"must not be sent"])
    if mode == "start-twice-in-body":
        start_response("200 OK", TEXT)
        return _start_again(key, start_response)
    if mode == "never-started":
        return Body(key, [b"must not be sent"])
    if mode == "never-started-empty":
        return Body(key, [])
    raise ValueError(mode)


def _start_again(key, start_response):
    try:
        start_response("201 Created", TEXT)
        yield b"must not be sent"
    finally:
        record(key, "close")


application = with_common_routes(fault)
