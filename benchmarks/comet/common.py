"""What the COMET benchmark's two apps share: the routes and the JSON responses."""

import json
import os

STATE = {"waiting": 0}


def make_app(wait, publish, last_id):
    """The WSGI app: ``/wait`` is ``wait(environ, start_response)``, ``/publish`` answers
    ``{"id": publish()}``, ``/stats`` the parked count and ``last_id()``."""

    def application(environ, start_response):
        path = environ.get("PATH_INFO")
        if path == "/wait":
            return wait(environ, start_response)
        if path == "/publish":
            return respond(start_response, {"id": publish()})
        if path == "/stats":
            stats = {"waiting": STATE["waiting"], "last_id": last_id(), "pid": os.getpid()}
            return respond(start_response, stats)
        return respond(start_response, {"error": "not found"}, "404 Not Found")

    return application


def respond(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
