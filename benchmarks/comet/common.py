"""What the COMET benchmark's two apps share: the routes and the JSON responses."""

import json
import os
import threading
import time


class Waiting:
    """How many requests are parked right now. A lock guards the count: in thread mode
    (``--threads N``) requests enter and leave their wait on several threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self.count -= 1


WAITING = Waiting()


def make_app(wait, publish, last_id):
    """The WSGI app: ``/wait`` is ``wait(environ, start_response)``, ``/publish`` answers
    ``{"id": publish()}``, ``/stats`` the parked count and ``last_id()``, ``/blocking`` waits
    20 ms as a view waiting on a database would (the hybrid benchmark's load)."""

    def application(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == "/wait":
            return wait(environ, start_response)
        if path == "/publish":
            return respond(start_response, {"id": publish()})
        if path == "/stats":
            stats = {"waiting": WAITING.count, "last_id": last_id(), "pid": os.getpid()}
            return respond(start_response, stats)
        if path == "/blocking":
            time.sleep(0.02)
            return respond(start_response, {"ok": True})
        return respond(start_response, {"error": "not found"}, "404 Not Found")

    return application


def respond(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
