"""Endpoints for the COMET suites: channels by name, publishing (inline and from a thread),
and the SSE, long-poll and multipart helpers over them."""

import threading
import time

from evserver.comet import Channel, longpoll, multipart, sse
from recorder import query, record, respond_json, with_common_routes

CHANNELS: dict[str, Channel] = {}


def channel(name: str) -> Channel:
    if name not in CHANNELS:
        # Channels named "small-..." keep a history of 5 messages.
        CHANNELS[name] = Channel(name, history=5 if name.startswith("small") else 1024)
    return CHANNELS[name]


def publish(environ, start_response):
    q = query(environ)
    ch = channel(q["ch"])
    count = int(q.get("n", "1"))
    ids = [ch.publish(q.get("data", "") or f"m{i}", q.get("event")).id for i in range(count)]
    return respond_json(start_response, {"ids": ids})


def publish_later(environ, start_response):
    """Publishes from another thread after ``delay`` seconds."""
    q = query(environ)
    ch = channel(q["ch"])

    def later():
        time.sleep(float(q.get("delay", "0.2")))
        ch.publish(q.get("data", "from a thread"))

    threading.Thread(target=later, daemon=True).start()
    return respond_json(start_response, {"scheduled": True})


def events_sse(environ, start_response):
    q = query(environ)
    heartbeat = float(q["heartbeat"]) if "heartbeat" in q else 15.0
    timeout = float(q["timeout"]) if "timeout" in q else None
    body = sse.response(
        environ,
        start_response,
        channel(q["ch"]),
        heartbeat=heartbeat,
        timeout=timeout,
        retry=float(q["retry"]) if "retry" in q else None,
    )
    return _recorded(q.get("key"), body)


def poll(environ, start_response):
    q = query(environ)
    body = longpoll.response(
        environ, start_response, channel(q["ch"]), timeout=float(q.get("timeout", "10"))
    )
    return _recorded(q.get("key"), body)


def push(environ, start_response):
    q = query(environ)
    return multipart.response(environ, start_response, channel(q["ch"]), boundary="frame")


def _recorded(key, body):
    """Records ``closed`` under ``key`` when the body ends (GeneratorExit included)."""
    try:
        yield from body
    finally:
        if key:
            record(key, "closed")


ROUTES = {
    "/publish": publish,
    "/publish-later": publish_later,
    "/sse": events_sse,
    "/poll": poll,
    "/push": push,
}


@with_common_routes
def application(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
