"""What test apps share: an in-process event log the tests read back, and the /alive route.

Apps record what happened to a request (``close`` called, ``GeneratorExit`` seen, a wait's
result) under a key the test chose; the test reads it with ``GET /_events?key=KEY``, which
answers a JSON list. The server runs one worker, so one dict holds it all.
"""

import json
from collections import defaultdict
from urllib.parse import parse_qs

EVENTS: defaultdict[str, list[str]] = defaultdict(list)


def record(key, event):
    EVENTS[key].append(event)


def query(environ):
    """The query string as a dict of single values."""
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def respond(start_response, body, status="200 OK", content_type="text/plain", headers=()):
    """A complete response with a Content-Length."""
    if isinstance(body, str):
        body = body.encode()
    start_response(
        status,
        [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
    )
    return [body]


def respond_json(start_response, value, status="200 OK"):
    return respond(start_response, json.dumps(value), status, "application/json")


def with_common_routes(app):
    """Adds ``/alive`` and ``/_events`` to ``app``."""

    def wrapped(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/alive":
            return respond(start_response, "alive\n")
        if path == "/_events":
            return respond_json(start_response, EVENTS.get(query(environ)["key"], []))
        return app(environ, start_response)

    return wrapped
