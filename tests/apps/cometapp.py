"""Endpoints for the COMET suites: channels by name, publishing (inline and from a thread),
and the SSE, long-poll and multipart helpers over them. With ``COMET_TEST_REDIS`` (a URL) and
``COMET_TEST_PREFIX`` set, the channels are Redis channels of one hub."""

import json
import os
import socket
import threading
import time

from evserver.comet import Channel, longpoll, multipart, sse, websocket
from recorder import query, record, respond_json, with_common_routes

CHANNELS: dict[str, Channel] = {}
HUB = None
if os.environ.get("COMET_TEST_REDIS"):
    from evserver.comet.redis import RedisHub

    HUB = RedisHub(os.environ["COMET_TEST_REDIS"], prefix=os.environ["COMET_TEST_PREFIX"])


def channel(name: str) -> Channel:
    if HUB is not None:
        return HUB.channel(name, history=5 if name.startswith("small") else None)
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


def select_two(environ, start_response):
    """Waits on channels ``a`` and ``b`` at once (x-evserver.fdevent.select), ``t`` seconds at
    most; answers which woke it, and what each wait's outcome looked like."""
    q = query(environ)
    subs = {name: channel(q[name]).subscribe() for name in ("a", "b")}
    fds = {sub.fileno(): name for name, sub in subs.items()}
    start_response("200 OK", [("Content-Type", "application/json")])
    key = q.get("key")
    if key:
        record(key, "subscribed")  # a publish from now on reaches this request
    try:
        yield environ["x-evserver.fdevent.select"](list(subs.values()), None, float(q["t"]))
        ready = environ["x-evserver.fdevent.ready"]()
        yield json.dumps(
            {
                "ready": fds.get(ready, ready),
                "timeout": bool(environ["x-wsgiorg.fdevent.timeout"]),
                "data": [m.data for sub in subs.values() for m in sub.fetch()],
            }
        ).encode()
        # A single wait after a select: the outcome is reset and names its fd.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            yield environ["x-wsgiorg.fdevent.readable"](sock, 0.01)
            yield json.dumps(
                {
                    "timeout": bool(environ["x-wsgiorg.fdevent.timeout"]),
                    "ready": environ["x-evserver.fdevent.ready"](),
                }
            ).encode()
    finally:
        if key:
            record(key, "closed")


def select_mixed(environ, start_response):
    """A readable idle socket and a writable one at once: the writable one wins."""
    start_response("200 OK", [("Content-Type", "application/json")])
    idle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with idle, out:
        yield environ["x-evserver.fdevent.select"]([idle], [out], 5)
        ready = environ["x-evserver.fdevent.ready"]()
        yield json.dumps({"writable_won": ready == out.fileno()}).encode()


def select_errors(environ, start_response):
    """What bad arguments to x-evserver.fdevent.select raise."""
    select = environ["x-evserver.fdevent.select"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    errors = {}
    cases = {
        "empty": lambda: select([], [], 1),
        "single": lambda: select(sock),
        "too_many": lambda: select([sock] * 65),
        "negative": lambda: select([-1]),
        "bad_timeout": lambda: select([sock], None, "soon"),
        "not_iterable": lambda: select(3.5),
    }
    with sock:
        for name, call in cases.items():
            try:
                call()
                errors[name] = None
            except Exception as e:  # noqa: BLE001 - the test wants the type
                errors[name] = type(e).__name__
        yield select([sock] * 64, None, 0)  # 64 is allowed
        errors["timeout_64"] = bool(environ["x-wsgiorg.fdevent.timeout"])
    start_response("200 OK", [("Content-Type", "application/json")])
    yield json.dumps(errors).encode()


def websocket_follow(environ, start_response):
    """The channel over a WebSocket: what the client sends is published on it."""
    q = query(environ)
    ch = channel(q["ch"])
    last = int(q["last_id"]) if "last_id" in q else None
    return websocket.response(environ, start_response, ch, last, on_message=ch.publish)


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
    "/select": select_two,
    "/select-mixed": select_mixed,
    "/select-errors": select_errors,
    "/ws": websocket_follow,
}


@with_common_routes
def application(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
