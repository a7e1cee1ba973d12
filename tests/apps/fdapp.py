"""Endpoints for the fdevent suite. Each generator waits with x-wsgiorg.fdevent and reports
what it saw (the timeout flag, how long the wait took) in its body or in the event log."""

import json
import os
import socket
import threading
import time

from recorder import query, record, respond, respond_json, with_common_routes

TEXT = [("Content-Type", "text/plain")]
SHARED = {}  # key -> a UDP socket several requests wait on at once
SHARED_LOCK = threading.Lock()  # under --threads, two requests may create one at once


def timed_out(environ):
    return bool(environ["x-wsgiorg.fdevent.timeout"])


def idle_socket():
    """A UDP socket that never receives anything: waiting on it always ends by the timeout."""
    return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def wait_timeout(environ, start_response):
    """One readable wait on an idle socket, timeout ``t``; the fd passed as an int with ``int``."""
    q = query(environ)
    seconds = float(q["t"]) if "." in q["t"] else int(q["t"])
    start_response("200 OK", TEXT)
    sock = idle_socket()
    try:
        fd = sock.fileno() if q.get("int") else sock
        t0 = time.monotonic()
        yield environ["x-wsgiorg.fdevent.readable"](fd, seconds)
        elapsed = time.monotonic() - t0
        yield json.dumps({"timeout": timed_out(environ), "elapsed": elapsed}).encode()
    finally:
        sock.close()


def wait_udp(environ, start_response):
    """Waits for a datagram on a socket whose port the test reads from the event log.

    First a short wait that times out, so the flag is seen to go back to false.
    """
    key = query(environ)["key"]
    readable = environ["x-wsgiorg.fdevent.readable"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield readable(sock, 0.01)
        first = timed_out(environ)
        record(key, f"port {sock.getsockname()[1]}")
        t0 = time.monotonic()
        yield readable(sock, 10.0)
        elapsed = time.monotonic() - t0
        data = sock.recv(100) if not timed_out(environ) else b""
        start_response("200 OK", TEXT)
        result = {
            "first": first,
            "timeout": timed_out(environ),
            "data": data.decode(),
            "elapsed": elapsed,
        }
        yield json.dumps(result).encode()
    finally:
        sock.close()


def wait_shared(environ, start_response):
    """Many requests wait on one socket; one datagram wakes them all (none reads it)."""
    key = query(environ)["key"]
    with SHARED_LOCK:
        if key not in SHARED:
            SHARED[key] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            SHARED[key].bind(("127.0.0.1", 0))
            record(key, f"port {SHARED[key].getsockname()[1]}")
    record(key, "waiting")
    yield environ["x-wsgiorg.fdevent.readable"](SHARED[key], 10.0)
    start_response("200 OK", TEXT)
    yield b"timeout" if timed_out(environ) else b"woken"


def wait_writable(environ, start_response):
    """A writable wait on a socket with room (ready at once) or with a full buffer (times out)."""
    full = bool(query(environ).get("full"))
    a, b = socket.socketpair()
    try:
        if full:
            a.setblocking(False)
            try:
                while True:
                    a.send(b"x" * 65536)
            except BlockingIOError:
                pass
        t0 = time.monotonic()
        yield environ["x-wsgiorg.fdevent.writable"](a, 0.3)
        elapsed = time.monotonic() - t0
        start_response("200 OK", TEXT)
        yield json.dumps({"timeout": timed_out(environ), "elapsed": elapsed}).encode()
    finally:
        a.close()
        b.close()


def wait_hangup(environ, start_response):
    """A readable wait on a socket whose peer is closed ends at once (an exceptional state)."""
    a, b = socket.socketpair()
    b.close()
    try:
        t0 = time.monotonic()
        yield environ["x-wsgiorg.fdevent.readable"](a, 5.0)
        elapsed = time.monotonic() - t0
        start_response("200 OK", TEXT)
        yield json.dumps({"timeout": timed_out(environ), "elapsed": elapsed}).encode()
    finally:
        a.close()


def wait_regular_file(environ, start_response):
    """Waits on a regular file: always ready, never a timeout."""
    kind = query(environ)["kind"]
    with open(__file__, "rb") as f:
        t0 = time.monotonic()
        yield environ[f"x-wsgiorg.fdevent.{kind}"](f, 5.0)
        elapsed = time.monotonic() - t0
        start_response("200 OK", TEXT)
        yield json.dumps({"timeout": timed_out(environ), "elapsed": elapsed}).encode()


def waits_before_start_response(environ, start_response):
    sock = idle_socket()
    flags = []
    try:
        for _ in range(3):
            yield environ["x-wsgiorg.fdevent.readable"](sock, 0.05)
            flags.append(timed_out(environ))
        start_response("200 OK", [*TEXT, ("X-Flags", json.dumps(flags))])
        yield b"after three waits"
    finally:
        sock.close()


def late(environ, start_response):
    """start_response first, then a wait: no byte may leave before the first real chunk."""
    sock = idle_socket()
    try:
        start_response("200 OK", TEXT)
        yield b""  # an empty chunk with no wait pending: skipped
        yield environ["x-wsgiorg.fdevent.readable"](sock, float(query(environ)["t"]))
        yield b""
        yield b"late body"
    finally:
        sock.close()


def empty_chunks(environ, start_response):
    start_response("200 OK", TEXT)
    if query(environ).get("only"):
        yield b""
        yield b""
        return
    yield b""
    yield b"a"
    yield b""
    yield b"b"
    yield b""


def park(environ, start_response):
    """Parks until the client goes away; records what the generator saw."""
    q = query(environ)
    key = q["key"]
    timeout = float(q["t"]) if "t" in q else None
    sock = idle_socket()
    fd = sock.fileno()
    try:
        start_response("200 OK", TEXT)
        if q.get("headers"):
            yield b"headers out\n"
        record(key, "parked")
        while True:
            yield environ["x-wsgiorg.fdevent.readable"](sock, timeout)
            record(key, "resumed")
    except GeneratorExit:
        record(key, "GeneratorExit")
        raise
    finally:
        try:
            os.fstat(fd)
            sock.getsockname()
            record(key, "fd still open")
        except OSError as e:
            record(key, f"fd closed by someone: {e}")
        sock.close()
        record(key, "finally")


def chunk_with_pending_wait(environ, start_response):
    """A non-empty chunk yielded while a wait is pending: evserver sends it, then parks."""
    sock = idle_socket()
    try:
        start_response("200 OK", TEXT)
        environ["x-wsgiorg.fdevent.readable"](sock, 0.5)
        t0 = time.monotonic()
        yield b"sent-before-parking\n"
        elapsed = time.monotonic() - t0
        yield json.dumps({"timeout": timed_out(environ), "elapsed": elapsed}).encode()
    finally:
        sock.close()


def unyielded_wait(environ, start_response):
    """A wait recorded but never yielded: with ``kind=list`` the app then returns a finished
    list; with ``kind=generator`` the generator records it and ends."""
    sock = idle_socket()
    SHARED[f"unyielded-{id(sock)}"] = sock  # kept open: an open, idle fd never wakes a wait
    if query(environ)["kind"] == "list":
        environ["x-wsgiorg.fdevent.readable"](sock, None)
        return respond(start_response, b"done\n")

    def body():
        start_response("200 OK", TEXT)
        yield b"done\n"
        environ["x-wsgiorg.fdevent.readable"](sock, None)

    return body()


def second_call_before_yielding(environ, start_response):
    """Two calls before yielding: the second raises RuntimeError, the first wait stands."""
    first, second = idle_socket(), idle_socket()
    try:
        start_response("200 OK", TEXT)
        wait = environ["x-wsgiorg.fdevent.readable"](first, 0.2)
        try:
            environ["x-wsgiorg.fdevent.readable"](second, 10.0)
            second_call = "returned"
        except RuntimeError:
            second_call = "RuntimeError"
        t0 = time.monotonic()
        yield wait
        elapsed = time.monotonic() - t0
        result = {"second_call": second_call, "timeout": timed_out(environ), "elapsed": elapsed}
        yield json.dumps(result).encode()
    finally:
        first.close()
        second.close()


def ticks(environ, start_response):
    """The clock of the seed, fast: ``n`` lines ``ms`` milliseconds apart."""
    q = query(environ)
    sock = idle_socket()
    try:
        start_response("200 OK", TEXT)
        for i in range(int(q["n"])):
            yield environ["x-wsgiorg.fdevent.readable"](sock, int(q["ms"]) / 1000)
            yield b"tick %d %.3f\n" % (i, time.time())
    finally:
        sock.close()


def bad_arguments(environ, start_response):
    """Calls readable()/writable() wrongly; reports the exception each call raised."""
    readable = environ["x-wsgiorg.fdevent.readable"]
    writable = environ["x-wsgiorg.fdevent.writable"]
    sock = idle_socket()

    class NoFileno:
        pass

    class BadFileno:
        def fileno(self):
            return "seven"

    cases = {
        "str-fd": lambda: readable("7"),
        "float-fd": lambda: readable(1.5),
        "none-fd": lambda: readable(None),
        "object-without-fileno": lambda: readable(NoFileno()),
        "fileno-returning-str": lambda: readable(BadFileno()),
        "negative-fd": lambda: readable(-1),
        "negative-timeout": lambda: readable(sock, -1),
        "nan-timeout": lambda: readable(sock, float("nan")),
        "str-timeout": lambda: readable(sock, "1"),
        "no-arguments": lambda: readable(),
        "writable-str-fd": lambda: writable("7"),
        "writable-negative-timeout": lambda: writable(sock, -0.5),
    }
    result = {}
    for name, call in cases.items():
        try:
            value = call()
            result[name] = f"returned {value!r}"
        except (TypeError, ValueError) as e:
            result[name] = type(e).__name__
    sock.close()
    return respond_json(start_response, result)


def flag_now(environ, start_response):
    """No wait: the timeout flag as the request starts."""
    flag = environ["x-wsgiorg.fdevent.timeout"]
    return respond_json(start_response, {"timeout": bool(flag)})


@with_common_routes
def application(environ, start_response):
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return respond(start_response, "no route\n", "404 Not Found")
    return route(environ, start_response)


ROUTES = {
    "/timeout": wait_timeout,
    "/udp": wait_udp,
    "/shared": wait_shared,
    "/writable": wait_writable,
    "/hangup": wait_hangup,
    "/regular-file": wait_regular_file,
    "/before-start-response": waits_before_start_response,
    "/late": late,
    "/empty-chunks": empty_chunks,
    "/park": park,
    "/chunk-with-pending-wait": chunk_with_pending_wait,
    "/second-call": second_call_before_yielding,
    "/unyielded-wait": unyielded_wait,
    "/ticks": ticks,
    "/bad-arguments": bad_arguments,
    "/flag": flag_now,
}
