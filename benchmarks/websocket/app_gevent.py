"""The WebSocket benchmark's app for gunicorn with gevent-websocket
(``-k geventwebsocket.gunicorn.workers.GeventWebSocketWorker``): the routes of
app_evserver.py written the gevent way (each WebSocket a greenlet blocked in ``receive``)."""

from common import answer, not_found, published
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
        message = published(environ)
        return answer(start_response, {"sent": broadcast(message)})
    if path == "/stats":
        return answer(start_response, {"open": len(SUBSCRIBERS)})
    return not_found(start_response)
