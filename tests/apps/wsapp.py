"""WebSocket test application (``evserver.websocket``), safe in thread mode.

- ``/echo``: accepts, then sends back every message until the peer closes.
- ``/end``: accepts, sends ``"bye"`` and ends: the server closes with 1000.
- ``/fail``: accepts, then raises: the server closes with 1011.
- ``/broadcast?m=TEXT`` (plain HTTP): sends TEXT to every WebSocket open on ``/listen``, from
  this request (any thread of the worker may send).
- ``/listen``: accepts, says ``"listening"``, then waits for messages and echoes them.
- ``/subprotocol``: accepts the client's second subprotocol.
- ``/plain``: a plain answer saying whether ``evserver.websocket`` was in the environ.
- ``/closed?key=K``: accepts and echoes; records how the conversation ended under K.
- ``/ended?key=K`` (plain HTTP): what ``/closed`` recorded.
- ``/flood?n=N&size=S&key=K``: accepts, then sends N binary messages of S bytes (message i
  filled with byte i % 256), yielding a short wait after each; records under K how many it
  sent and the largest ``buffered_amount`` it saw (``/flooded?key=K`` tells).
- ``/broadcast?size=S``: as ``?m=`` but S bytes of ``x``; answers ``sent failed``, failed
  being the listeners whose ``send`` raised ``ConnectionClosed``.
- ``/broadcast-all?m=TEXT[&binary=1|&bytearray=1]``: ``evserver.websocket.broadcast`` of TEXT to the
  listeners and to every WebSocket ``/end`` closed; answers ``sent listeners ended``.
- ``/late-start``: accepts, then calls ``start_response`` with an exception (as an error
  handler would): it re-raises, the head being out; sends what it raised and ends.
- ``/broadcast-wrong``: answers the errors of ``broadcast`` given a non-WebSocket target and a
  message neither str nor bytes.
"""

import sys
import threading
from urllib.parse import parse_qs

from evserver.websocket import ConnectionClosed, broadcast

LOCK = threading.Lock()
LISTENERS = []
ENDINGS = {}
FLOODS = {}
ENDED = []


def query(environ, name, default=""):
    return parse_qs(environ.get("QUERY_STRING", "")).get(name, [default])[0]


def plain(start_response, body, status="200 OK"):
    body = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, ws):
    while True:
        yield environ["x-wsgiorg.fdevent.readable"](ws, 30)
        message = ws.receive()
        if message is not None:
            ws.send(message)


def listen(environ, ws):
    with LOCK:
        LISTENERS.append(ws)
    try:
        ws.send("listening")
        yield from echo(environ, ws)
    finally:
        with LOCK:
            LISTENERS.remove(ws)


def closed(environ, ws, key):
    try:
        yield from echo(environ, ws)
    except ConnectionClosed as e:
        with LOCK:
            ENDINGS[key] = f"{e.code} {e.reason}"
        raise


def flood(environ, ws, n, size, key):
    peak = 0
    for i in range(n):
        ws.send(bytes([i % 256]) * size)
        peak = max(peak, ws.buffered_amount)
        with LOCK:
            FLOODS[key] = f"{i + 1} {peak}"
        yield environ["x-wsgiorg.fdevent.readable"](ws, 0.001)


def end(ws):
    with LOCK:
        ENDED.append(ws)
    ws.send("bye")
    yield b""


def fail(ws):
    ws.send("about to fail")
    yield b""
    raise RuntimeError("the conversation failed on purpose")


def late_start(ws, start_response):
    yield b""  # a step after accept(): the 101 is out
    try:
        raise ValueError("a failure after the handshake")
    except ValueError:
        try:
            start_response("500 Internal Server Error", [], sys.exc_info())
        except ValueError as e:
            ws.send(f"re-raised: {e}")


def application(environ, start_response):
    path = environ["PATH_INFO"]
    request = environ.get("evserver.websocket")
    if path == "/plain":
        return plain(start_response, "websocket" if request else "plain")
    if path == "/broadcast":
        with LOCK:
            targets = list(LISTENERS)
        size = int(query(environ, "size", "0"))
        message = "x" * size if size else query(environ, "m")
        failed = 0
        for ws in targets:
            try:
                ws.send(message)
            except ConnectionClosed:
                failed += 1
        if size:
            return plain(start_response, f"{len(targets) - failed} {failed}")
        return plain(start_response, str(len(targets)))
    if path == "/broadcast-all":
        with LOCK:
            listeners, ended = list(LISTENERS), list(ENDED)
        message = query(environ, "m")
        if query(environ, "binary"):
            message = message.encode()
        if query(environ, "bytearray"):
            message = bytearray(message.encode())
        sent = broadcast(listeners + ended, message)
        return plain(start_response, f"{sent} {len(listeners)} {len(ended)}")
    if path == "/broadcast-wrong":
        errors = []
        for targets, message in (([object()], "x"), ([], 42)):
            try:
                broadcast(targets, message)
            except TypeError as e:
                errors.append(str(e))
        return plain(start_response, "\n".join(errors))
    if path == "/flooded":
        with LOCK:
            return plain(start_response, FLOODS.get(query(environ, "key"), ""))
    if path == "/ended":
        with LOCK:
            return plain(start_response, ENDINGS.get(query(environ, "key"), ""))
    if request is None:
        return plain(start_response, "a WebSocket endpoint", "400 Bad Request")
    if path == "/subprotocol":
        ws = request.accept(subprotocol=request.protocols[1], headers=[("X-Chosen", "yes")])
        return echo(environ, ws)
    ws = request.accept()
    if path == "/echo":
        return echo(environ, ws)
    if path == "/listen":
        return listen(environ, ws)
    if path == "/closed":
        return closed(environ, ws, query(environ, "key"))
    if path == "/flood":
        n, size = int(query(environ, "n")), int(query(environ, "size"))
        return flood(environ, ws, n, size, query(environ, "key"))
    if path == "/end":
        return end(ws)
    if path == "/fail":
        return fail(ws)
    if path == "/late-start":
        return late_start(ws, start_response)
    return plain(start_response, "unknown", "404 Not Found")
