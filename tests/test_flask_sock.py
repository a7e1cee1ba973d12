"""Flask-Sock (on simple-websocket) unchanged under ``--threads``: the WebSocket upgrade
request offers the connection's socket as ``environ['gunicorn.socket']``, the library answers
the handshake and speaks WebSocket on it from a pool thread, and the loop has stopped reading
it, so nothing the client sends is lost to the server. Both backends."""

from __future__ import annotations

import base64
import os
import socket
import struct

from support import Server, exchange, request
from websockets.sync.client import connect


def url(server: Server, path: str) -> str:
    return f"ws://{server.address.netloc}{path}"


def start(serve, *args: str) -> Server:
    return serve("flasksock:application", "--threads", "4", *args)


def test_echo_text_and_binary_with_compression(serve):
    server = start(serve)
    with connect(url(server, "/echo")) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=10) == b"\x00\x01binary"
        big = "x" * 200_000
        ws.send(big)
        assert ws.recv(timeout=10) == big
        ws.send("bye")
    assert exchange(server, request("GET", "/")).body == b"a plain Flask view"
    assert "Traceback" not in server.stderr


def test_conversations_end_cleanly_and_free_their_connections(serve):
    # Each ended conversation gives its connection back: with room for two at a time, ten in
    # a row all get through.
    server = start(serve, "--max-connections", "2")
    for i in range(10):
        with connect(url(server, "/echo")) as ws:
            ws.send(f"message {i}")
            assert ws.recv(timeout=10) == f"message {i}"
            ws.send("bye")
    assert exchange(server, request("GET", "/")).status == 200


def test_several_conversations_at_once_beside_plain_requests(serve):
    server = start(serve)
    with connect(url(server, "/echo")) as a, connect(url(server, "/echo")) as b:
        a.send("to a")
        b.send("to b")
        assert exchange(server, request("GET", "/")).status == 200
        assert b.recv(timeout=10) == "to b"
        assert a.recv(timeout=10) == "to a"
        a.send("bye")
        b.send("bye")


def test_a_frame_sent_right_behind_the_handshake_reaches_the_library(serve):
    server = start(serve)
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /echo HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    mask = os.urandom(4)
    payload = b"early"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask
    frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(handshake + frame)  # one write: the server reads both at once
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, "closed before the 101"
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101 "), head
        while len(rest) < 2 + len(payload):
            rest += sock.recv(4096)
        assert rest[0] == 0x81 and struct.unpack("B", rest[1:2])[0] == len(payload)
        assert rest[2 : 2 + len(payload)] == payload


def test_a_failing_handler_sends_no_http_answer_on_the_websocket(serve):
    server = start(serve)
    with connect(url(server, "/fail")) as ws:
        assert ws.recv(timeout=10) == "failing"
    server.wait_for_output(r"RuntimeError: the Flask-Sock handler failed on purpose")
    assert exchange(server, request("GET", "/")).status == 200
