"""A chat room: server-sent events with a long-poll fallback, on a broadcast channel.

One worker, messages in memory::

    evserver examples.chat                 # then open http://127.0.0.1:8080/ in two windows

Several workers (or machines), messages through Redis::

    EVSERVER_CHAT_REDIS=redis://127.0.0.1:6379/0 evserver examples.chat -w 4

The room (page, ``/chat/events``, ``/chat/poll``, ``/chat/say``) is :class:`evserver.chat.Chat`;
this file chooses its channel and mounts it. Add ``?transport=poll`` to the page's URL to
use long-poll instead of server-sent events.
"""

import os

from evserver.chat import Chat, room_channel

room = Chat(room_channel("room", os.environ.get("EVSERVER_CHAT_REDIS")), prefix="/chat")


def application(environ, start_response):
    if environ.get("PATH_INFO") in ("", "/"):
        environ["PATH_INFO"] = "/chat"  # the room's page
    return room(environ, start_response)
