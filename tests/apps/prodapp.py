"""Endpoints for the production suite (workers, signals, limits). Each response names the
worker's pid; events that outlive a worker (``close()`` called) go to the file named by
``PRODAPP_EVENTS``, one line each, since the server runs several processes."""

import os
import time

from recorder import query, respond

VERSION = "one"


def log_event(line):
    path = os.environ.get("PRODAPP_EVENTS")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class Parked:
    """A long-poll that waits on a pipe nobody writes to; ``close()`` is logged."""

    def __init__(self, environ, start_response, key, seconds):
        self.environ = environ
        self.start_response = start_response
        self.key = key
        self.seconds = seconds
        self.read_fd, self.write_fd = os.pipe()

    def __iter__(self):
        log_event(f"parked {self.key}")
        yield self.environ["x-wsgiorg.fdevent.readable"](self.read_fd, self.seconds)
        self.start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"woke"

    def close(self):
        os.close(self.read_fd)
        os.close(self.write_fd)
        log_event(f"closed {self.key}")


def stream(environ, start_response, count, interval):
    """``count`` chunks, one every ``interval`` seconds, waiting with fdevent between them."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    read_fd, write_fd = os.pipe()
    try:
        for i in range(count):
            yield f"chunk {i}\n".encode()
            yield environ["x-wsgiorg.fdevent.readable"](read_fd, interval)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    q = query(environ)
    if path == "/alive":
        return respond(start_response, "alive\n")
    if path == "/pid":
        return respond(start_response, str(os.getpid()))
    if path == "/version":
        return respond(start_response, VERSION)
    if path == "/sleep":  # blocks the worker's loop, as a stuck application does
        time.sleep(float(q.get("s", "1")))
        return respond(start_response, "slept")
    if path == "/park":
        return Parked(environ, start_response, q.get("key", "park"), float(q.get("t", "60")))
    if path == "/stream":
        return stream(environ, start_response, int(q.get("n", "5")), float(q.get("i", "0.2")))
    if path == "/multiprocess":
        return respond(start_response, str(environ["wsgi.multiprocess"]))
    if path == "/headers":
        return respond(start_response, "ok", headers=[("X-Custom", "custom-value")])
    return respond(start_response, "not found\n", "404 Not Found")
