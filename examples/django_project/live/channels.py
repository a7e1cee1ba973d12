"""The broadcast channels of the example, one per feature.

They live in the server process: a publish reaches the clients of this process. A note saved in
another process (``manage.py shell``, a second worker) reaches them only through a channel
shared between processes (see the README's COMET section).
"""

from evserver.comet import Channel

chat = Channel("chat", history=200)
notes = Channel("notes", history=200)
