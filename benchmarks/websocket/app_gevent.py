"""The WebSocket benchmark's app for gunicorn with gevent-websocket
(``-k geventwebsocket.gunicorn.workers.GeventWebSocketWorker``): the routes of
app_evserver.py written the gevent way (each WebSocket a greenlet blocked in ``receive``)."""

import json

from geventwebsocket.exceptions import WebSocketError

SUBSCRIBERS = set()


def broadcast(message):
    targets = list(SUBSCRIBERS)
    for ws in targets:
        try:
            ws.send(message)
        except WebSocketError:
            SUBSCRIBERS.discard(ws)
    return len(targets)


def answer(start_response, body):
    body = json.dumps(body).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def application(environ, start_response):
    path = environ["PATH_INFO"]
    ws = environ.get("wsgi.websocket")
    if path == "/ws" and ws is not None:
        SUBSCRIBERS.add(ws)
        try:
            while (message := ws.receive()) is not None:
                broadcast(message)
        finally:
            SUBSCRIBERS.discard(ws)
        return []
    if path == "/echo" and ws is not None:
        while (message := ws.receive()) is not None:
            ws.send(message)
        return []
    if path == "/publish":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        message = environ["wsgi.input"].read(length).decode()
        return answer(start_response, {"sent": broadcast(message)})
    if path == "/stats":
        return answer(start_response, {"open": len(SUBSCRIBERS)})
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]
