"""Endpoints for the slow, idle and vanishing client suites: a 100 MB stream, a request parked
on an fdevent wait that never fires, an endless stream, and an upload sink. Every response
iterable counts its start and its close() in STATS, read back with GET /_stats."""

import os

from recorder import query, record, respond, respond_json, with_common_routes

TEXT = [("Content-Type", "text/plain")]
STATS = {"started": 0, "closed": 0, "parked": 0, "produced": 0}
CHUNK = b"x" * 65536
# A pipe nobody writes to: a readable wait on it never fires.
NEVER_READY, _KEEP_WRITER = os.pipe()


class Counted:
    """Wraps a generator: counts it in STATS and records close() under ``key``."""

    def __init__(self, gen, key):
        self.gen = gen
        self.key = key
        STATS["started"] += 1

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.gen)

    def close(self):
        STATS["closed"] += 1
        if self.key:
            record(self.key, "close")
        self.gen.close()


def big(total):
    """``total`` bytes in 64 KiB chunks, counting what was produced."""
    sent = 0
    while sent < total:
        chunk = CHUNK[: min(len(CHUNK), total - sent)]
        sent += len(chunk)
        STATS["produced"] += len(chunk)
        yield chunk


def park(environ):
    STATS["parked"] += 1
    try:
        yield environ["x-wsgiorg.fdevent.readable"](NEVER_READY)
        yield b"woke up"
    finally:
        STATS["parked"] -= 1


def endless():
    while True:
        yield CHUNK


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    key = q.get("key", "")
    if path == "/_stats":
        return respond_json(start_response, STATS)
    if path == "/big":
        total = int(q["bytes"])
        start_response("200 OK", [*TEXT, ("Content-Length", str(total))])
        return Counted(big(total), key)
    if path == "/park":
        start_response("200 OK", TEXT)
        return Counted(park(environ), key)
    if path == "/stream":
        start_response("200 OK", TEXT)
        return Counted(endless(), key)
    if path == "/upload":
        n = len(environ["wsgi.input"].read())
        return respond(start_response, f"{n}\n")
    return respond(start_response, "no route\n", "404 Not Found")


application = with_common_routes(application)
