"""The COMET benchmark's app for fdevent servers (evserver, uWSGI in async mode).

- ``GET /wait?last_id=N``: long-poll on one broadcast channel (``evserver.comet.Channel``):
  answers at once if a message newer than N is there, else parks the request with
  ``x-wsgiorg.fdevent.readable`` on the channel until the next publish; the answer is
  ``{"id": ...}`` with a Content-Length.
- ``GET /publish``: publishes one message; answers its id.
- ``GET /stats``: how many requests are parked right now, and the channel's last id.
"""

import json
import os
from urllib.parse import parse_qs

from evserver.comet import Channel

CHANNEL = Channel("bench", history=16)
STATE = {"waiting": 0}


def application(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/wait":
        return wait(environ, start_response)
    if path == "/publish":
        return respond(start_response, {"id": CHANNEL.publish("tick").id})
    if path == "/stats":
        stats = {"waiting": STATE["waiting"], "last_id": CHANNEL.last_id, "pid": os.getpid()}
        return respond(start_response, stats)
    return respond(start_response, {"error": "not found"}, "404 Not Found")


def wait(environ, start_response):
    raw = parse_qs(environ.get("QUERY_STRING", "")).get("last_id", [""])[0]
    subscription = CHANNEL.subscribe(int(raw) if raw.isdigit() else None)
    messages = subscription.fetch(limit=1)
    if not messages:
        # uWSGI registers each wait with epoll and refuses a second wait on one fd (EEXIST),
        # so there every request waits on its own duplicate of the channel's fd. evserver
        # takes any number of waits on one fd.
        own = "uwsgi.version" in environ
        fd = os.dup(subscription.fileno()) if own else subscription.fileno()
        STATE["waiting"] += 1
        try:
            yield environ["x-wsgiorg.fdevent.readable"](fd, 300)
        finally:
            STATE["waiting"] -= 1
            if own:
                os.close(fd)
        messages = subscription.fetch(limit=1)
    body = json.dumps({"id": messages[0].id if messages else None}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    yield body


def respond(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
