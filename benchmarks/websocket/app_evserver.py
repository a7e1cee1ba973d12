"""The WebSocket benchmark's app for evserver (``evserver.websocket``; inline or thread mode).

- ``/ws``: a subscriber: accepted, then parked on its WebSocket; a message it sends goes to
  every subscriber (publishing over a WebSocket), and so does one POSTed to ``/publish``.
- ``/echo``: sends every message back (round trips).
- ``/sse``, ``/poll``: subscribers over server-sent events and long-poll (``evserver.comet``
  on one channel, which every publish also reaches).
- ``POST /publish``: sends the body to every subscriber; answers how many.
- ``/stats``: ``{"open": N}``, the subscribers open.

A publish reaches the WebSockets with one ``evserver.websocket.broadcast`` call; with
``BENCH_WS_SEND_LOOP=1`` in the environment, with a loop of ``ws.send`` in Python instead (the
benchmark measures both).
"""

import os
import threading

from common import answer, not_found, published
from evserver.comet import Channel, longpoll, sse
from evserver.websocket import ConnectionClosed
from evserver.websocket import broadcast as broadcast_to

SEND_LOOP = os.environ.get("BENCH_WS_SEND_LOOP") == "1"

LOCK = threading.Lock()
SUBSCRIBERS = set()
CHANNEL = Channel("bench", history=64)


def broadcast(message):
    CHANNEL.publish(message)
    with LOCK:
        targets = list(SUBSCRIBERS)
    if not SEND_LOOP:
        return broadcast_to(targets, message)
    for ws in targets:
        try:
            ws.send(message)
        except ConnectionClosed:
            pass
    return len(targets)


def subscriber(environ, ws):
    with LOCK:
        SUBSCRIBERS.add(ws)
    try:
        while True:
            yield environ["x-wsgiorg.fdevent.readable"](ws, 3600)
            message = ws.receive()
            if message is not None:
                broadcast(message)
    finally:
        with LOCK:
            SUBSCRIBERS.discard(ws)


def echo(environ, ws):
    while True:
        yield environ["x-wsgiorg.fdevent.readable"](ws, 3600)
        message = ws.receive()
        if message is not None:
            ws.send(message)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    upgrade = environ.get("evserver.websocket")
    if path == "/ws" and upgrade:
        return subscriber(environ, upgrade.accept())
    if path == "/echo" and upgrade:
        return echo(environ, upgrade.accept())
    if path == "/sse":
        return sse.response(environ, start_response, CHANNEL)
    if path == "/poll":
        return longpoll.response(environ, start_response, CHANNEL)
    if path == "/publish":
        message = published(environ)
        return answer(start_response, {"sent": broadcast(message)})
    if path == "/stats":
        with LOCK:
            return answer(start_response, {"open": len(SUBSCRIBERS)})
    return not_found(start_response)
