"""The WebSocket benchmark's app for uWSGI's own WebSocket API on its gevent loop engine
(``--gevent N``): the routes of app_evserver.py. A subscriber is a greenlet that waits on its
connection and on its own duplicate of the channel's fd with ``gevent.select.poll``, as uWSGI's
documented chat does with a Redis connection; a publish puts the message on the channel
(evserver.comet's pure-Python Channel) and every subscriber sends it with
``uwsgi.websocket_send``."""

import os

import uwsgi
from common import answer, not_found, published
from evserver.comet import Channel
from gevent.select import POLLIN, poll

CHANNEL = Channel("bench", history=64)
OPEN = [0]


def subscriber(environ):
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    connection = uwsgi.connection_fd()
    subscription = CHANNEL.subscribe()
    channel_fd = os.dup(subscription.fileno())
    waits = poll()
    waits.register(connection, POLLIN)
    waits.register(channel_fd, POLLIN)
    OPEN[0] += 1
    try:
        while True:
            ready = [fd for fd, _ in waits.poll(300_000)]
            if channel_fd in ready:
                for message in subscription.fetch():
                    uwsgi.websocket_send(message.data.encode())
            # Called on a timeout too: it answers the client's pings.
            message = uwsgi.websocket_recv_nb()
            if message:
                CHANNEL.publish(message.decode())
    except OSError:  # the client went away
        return []
    finally:
        OPEN[0] -= 1
        os.close(channel_fd)


def echo(environ):
    uwsgi.websocket_handshake(environ["HTTP_SEC_WEBSOCKET_KEY"], environ.get("HTTP_ORIGIN", ""))
    connection = uwsgi.connection_fd()
    waits = poll()
    waits.register(connection, POLLIN)
    while True:
        waits.poll(300_000)
        message = uwsgi.websocket_recv_nb()
        if message:
            uwsgi.websocket_send(message)


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/ws":
        return subscriber(environ)
    if path == "/echo":
        return echo(environ)
    if path == "/publish":
        message = published(environ)
        CHANNEL.publish(message)
        return answer(start_response, {"sent": OPEN[0]})
    if path == "/stats":
        return answer(start_response, {"open": OPEN[0]})
    return not_found(start_response)
