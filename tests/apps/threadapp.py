"""Views that block, for the thread-mode suite (``--threads N``).

- ``/barrier?key=K&n=N``: blocks until N requests of key K are inside at once (5 s at most);
  answers ``met`` or ``broken``: N threads ran the application together, or not.
- ``/hold?key=K&dir=D``: blocks until the file ``D/K`` exists (10 s at most), as a slow query
  does; its response iterable records ``close`` under K.
- ``/sleep?t=S``: ``time.sleep(S)`` (a database driver releases the GIL the same way).
- ``/stuck?t=S``: sleeps S seconds inside ``a_stuck_view`` (for ``--timeout``).
- ``/wait?ch=C``: a long-poll on channel C (parked on an fdevent wait, holding no thread);
  ``/publish?ch=C`` wakes every request parked on it.
- ``/stream?n=N&key=K``: N chunks with an fdevent wait between them; ``close`` under K.
- ``/threads``: the worker's OS thread count and ``wsgi.multithread``.
"""

import os
import threading
import time

from evserver.comet import Channel
from recorder import query, record, respond, respond_json, with_common_routes

BARRIERS: dict[str, threading.Barrier] = {}
CHANNELS: dict[str, Channel] = {}
LOCK = threading.Lock()


def shared(table, key, make):
    with LOCK:
        if key not in table:
            table[key] = make()
        return table[key]


class Recorded:
    """A one-chunk response iterable whose ``close()`` is recorded."""

    def __init__(self, key, body):
        self.key, self.body = key, body

    def __iter__(self):
        yield self.body

    def close(self):
        record(self.key, "close")


def barrier(environ, start_response):
    q = query(environ)
    b = shared(BARRIERS, q["key"], lambda: threading.Barrier(int(q["n"])))
    try:
        b.wait(timeout=5)
        outcome = "met"
    except threading.BrokenBarrierError:
        outcome = "broken"
    return respond(start_response, outcome)


def hold(environ, start_response):
    q = query(environ)
    key, flag = q["key"], os.path.join(q["dir"], q["key"])
    record(key, "holding")
    deadline = time.monotonic() + 10
    while not os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(key, b"released" if os.path.exists(flag) else b"not released")


def sleep(environ, start_response):
    time.sleep(float(query(environ)["t"]))
    return respond(start_response, "slept")


def a_stuck_view(seconds):
    time.sleep(seconds)


def stuck(environ, start_response):
    a_stuck_view(float(query(environ)["t"]))
    return respond(start_response, "unstuck")


def wait(environ, start_response):
    sub = shared(CHANNELS, query(environ)["ch"], lambda: Channel("c")).subscribe()
    record(query(environ).get("key", "-"), "parked")
    yield environ["x-wsgiorg.fdevent.readable"](sub, 60)
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"timeout" if environ["x-wsgiorg.fdevent.timeout"] else b"woken"


def publish(environ, start_response):
    shared(CHANNELS, query(environ)["ch"], lambda: Channel("c")).publish("x")
    return respond(start_response, "published")


class Stream:
    def __init__(self, environ, key, n):
        self.environ, self.key, self.n = environ, key, n
        self.read_fd, self.write_fd = os.pipe()

    def __iter__(self):
        for i in range(self.n):
            yield f"chunk {i}\n".encode()
            yield self.environ["x-wsgiorg.fdevent.readable"](self.read_fd, 0.05)

    def close(self):
        os.close(self.read_fd)
        os.close(self.write_fd)
        record(self.key, "close")


def stream(environ, start_response):
    q = query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Stream(environ, q["key"], int(q["n"]))


def threads(environ, start_response):
    """The worker's OS threads (from /proc) and the multithread flag."""
    with open("/proc/self/status") as f:
        count = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    return respond_json(
        start_response, {"count": count, "multithread": environ["wsgi.multithread"]}
    )


ROUTES = {
    "/barrier": barrier,
    "/hold": hold,
    "/sleep": sleep,
    "/stuck": stuck,
    "/wait": wait,
    "/publish": publish,
    "/stream": stream,
    "/threads": threads,
}


def _app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)


application = with_common_routes(_app)
