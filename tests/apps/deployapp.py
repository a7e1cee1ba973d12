"""What deployment options change, as JSON: the process (pid, user, directory, environment,
where the module was imported) and the request's view of the client (scheme, address)."""

import json
import os
import sys

IMPORTED_IN = os.getpid()


def application(environ, start_response):
    keys = (
        "wsgi.url_scheme",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "HTTPS",
        "SERVER_NAME",
        "SERVER_PORT",
        "HTTP_HOST",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT",
    )
    body = json.dumps(
        {
            "pid": os.getpid(),
            "imported_in": IMPORTED_IN,
            "uid": os.getuid(),
            "gid": os.getgid(),
            "cwd": os.getcwd(),
            "env": os.environ.get("DEPLOY_MARK"),
            "path0": sys.path[:3],
            "environ": {k: environ.get(k) for k in keys},
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
