"""What the TLS suite asks for, over HTTPS: the request's scheme, large and streamed bodies,
an echoed upload, and a file through ``wsgi.file_wrapper`` (sendfile is not possible under
TLS: the file goes through the copy path).

- ``/``: JSON of ``wsgi.url_scheme`` and ``HTTPS``.
- ``/big?n=N``: N bytes, byte i being ``i % 251``.
- ``/stream``: 50 chunks of 10,000 bytes each, yielded one by one.
- ``POST /echo``: the body back.
- ``/file``: the file named by ``TLSAPP_FILE``, through ``wsgi.file_wrapper``.
"""

import json
import os
from urllib.parse import parse_qs


def pattern(n):
    return bytes(i % 251 for i in range(n))


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/big":
        n = int(parse_qs(environ.get("QUERY_STRING", ""))["n"][0])
        start_response("200 OK", [("Content-Length", str(n))])
        return [pattern(n)]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (bytes([i]) * 10_000 for i in range(50))
    if path == "/echo":
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/file":
        f = open(os.environ["TLSAPP_FILE"], "rb")  # noqa: SIM115 - the server closes it
        size = os.fstat(f.fileno()).st_size
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](f, 65536)
    body = json.dumps({k: environ.get(k) for k in ("wsgi.url_scheme", "HTTPS")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
