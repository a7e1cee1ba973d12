"""The soak's application (benchmarks/soak.py): small answers, uploads, chunked streams,
fdevent waits that time out or wake, and requests that park until their client vanishes.
Every response iterable it returns counts its start and its close() in STATS (GET /_stats)."""

import json
import os
import socket

TEXT = [("Content-Type", "text/plain")]
STATS = {"started": 0, "closed": 0, "parked": 0}
NEVER_READY, _KEEP_WRITER = os.pipe()  # nobody writes: a wait on it never fires


class Counted:
    def __init__(self, gen):
        self.gen = gen
        STATS["started"] += 1

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.gen)

    def close(self):
        STATS["closed"] += 1
        self.gen.close()


def fixed(start_response, body):
    start_response("200 OK", [*TEXT, ("Content-Length", str(len(body)))])
    return [body]


def stream(n):
    for i in range(n):
        yield b"chunk %d\n" % i


def wait_timeout(environ):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        yield environ["x-wsgiorg.fdevent.readable"](sock, 0)
        yield b"timeout" if environ["x-wsgiorg.fdevent.timeout"] else b"woke"
    finally:
        sock.close()


def wait_wake(environ):
    a, b = socket.socketpair()
    try:
        b.send(b"!")
        yield environ["x-wsgiorg.fdevent.readable"](a, 5)
        yield b"timeout" if environ["x-wsgiorg.fdevent.timeout"] else b"woke"
    finally:
        a.close()
        b.close()


def park(environ):
    STATS["parked"] += 1
    try:
        yield environ["x-wsgiorg.fdevent.readable"](NEVER_READY)
        yield b"woke"
    finally:
        STATS["parked"] -= 1


def endless():
    chunk = b"s" * 16384
    while True:
        yield chunk


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/alive":
        return fixed(start_response, b"alive\n")
    if path == "/upload":
        n = len(environ["wsgi.input"].read())
        return fixed(start_response, b"%d\n" % n)
    if path == "/_stats":
        return fixed(start_response, json.dumps(STATS).encode())
    start_response("200 OK", TEXT)
    if path == "/stream":
        return Counted(stream(8))
    if path == "/wait-timeout":
        return Counted(wait_timeout(environ))
    if path == "/wait-wake":
        return Counted(wait_wake(environ))
    if path == "/park":
        return Counted(park(environ))
    if path == "/endless":
        return Counted(endless())
    return [b"no route\n"]
