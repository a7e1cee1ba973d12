"""A chat room on a broadcast channel: a WebSocket where the browser can open one, server-sent
events otherwise, and a long-poll fallback.

One worker, messages in memory::

    evserver examples.chat                 # then open http://127.0.0.1:8080/ in two windows

Several workers (or machines), messages through Redis::

    EVSERVER_CHAT_REDIS=redis://127.0.0.1:6379/0 evserver examples.chat -w 4

The room (page, ``/chat/ws``, ``/chat/events``, ``/chat/poll``, ``/chat/say``) is
:class:`evserver.chat.Chat`; this file chooses its channel and mounts it. Add
``?transport=sse`` or ``?transport=poll`` to the page's URL to use server-sent events or
long-poll instead of the WebSocket.
"""

import os

from evserver.chat import Chat, room_channel

room = Chat(room_channel("room", os.environ.get("EVSERVER_CHAT_REDIS")), prefix="/chat")


def application(environ, start_response):
    if environ.get("PATH_INFO") in ("", "/"):
        environ["PATH_INFO"] = "/chat"  # the room's page
    return room(environ, start_response)
