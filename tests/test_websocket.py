"""WebSocket (``evserver.websocket``) with a real client (the ``websockets`` library, which
offers permessage-deflate as browsers do) and raw sockets for what no polite client sends:
the handshake and its refusals, echo in both directions, the conversation's endings (1000,
1011, the peer's close), sends from another request, the size limit, protocol errors. Both
backends, inline and thread mode."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import struct
import time
import uuid

import pytest
from support import Server, exchange, request, status_get, status_json
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BOTH_MODES = True


@pytest.fixture(scope="module")
def server(module_serve) -> Server:
    return module_serve("wsapp", "--websocket-max-message", "100000")


def url(server: Server, path: str) -> str:
    return f"ws://{server.address.netloc}{path}"


def upgrade_request(path: str, **override: str | None) -> bytes:
    headers = {
        "Host": "test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    for name, value in override.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"GET {path} HTTP/1.1\r\n{lines}\r\n".encode()


def masked_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    key = os.urandom(4)
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """The next server frame: (opcode, payload)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    b0, b1 = exactly(2)
    assert not b1 & 0x80, "server frames are not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exactly(8))[0]
    return b0 & 0x0F, exactly(n)


def close_code(ws) -> int:
    """Reads until the server closes the WebSocket; the code it closed with."""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    return closed.value.rcvd.code


def raw_upgrade(server: Server, path: str, receive_buffer: int | None = None) -> socket.socket:
    """A raw WebSocket on ``path``; ``receive_buffer``: the client's SO_RCVBUF (a small one
    makes a slow reader, whose kernel takes little before the server must hold the rest)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    sock.sendall(upgrade_request(path))
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def test_echo_text_and_binary_with_compression(server):
    with connect(url(server, "/echo")) as ws:
        assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
        for message in ["hello", "κόσμε" * 1000, b"\x00\x01binary", b"z" * 70_000]:
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_echo_without_compression(server):
    with connect(url(server, "/echo"), compression=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain " * 100)
        assert ws.recv(timeout=10) == "plain " * 100


def test_subprotocol_and_extra_headers(server):
    with connect(url(server, "/subprotocol"), subprotocols=["one", "two"]) as ws:
        assert ws.subprotocol == "two"
        assert ws.response.headers["X-Chosen"] == "yes"
        ws.send("x")
        assert ws.recv(timeout=10) == "x"


def test_the_end_of_the_iterable_closes_with_1000(server):
    with connect(url(server, "/end")) as ws:
        assert ws.recv(timeout=10) == "bye"
        assert close_code(ws) == 1000


def test_an_exception_closes_with_1011_and_is_logged(server):
    with connect(url(server, "/fail")) as ws:
        assert ws.recv(timeout=10) == "about to fail"
        assert close_code(ws) == 1011
    server.wait_for_output(r"RuntimeError: the conversation failed on purpose")


def test_start_response_after_the_handshake_reraises_the_exception_it_is_given(server):
    # The server lets go of start_response once the 101 is out; one the application kept
    # still behaves as after any head: given exc_info, it re-raises.
    with connect(url(server, "/late-start")) as ws:
        assert ws.recv(timeout=10) == "re-raised: a failure after the handshake"
        assert close_code(ws) == 1000


def test_the_peer_closing_ends_the_conversation_without_a_traceback(server):
    key = uuid.uuid4().hex
    with connect(url(server, f"/closed?key={key}")) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        ws.close(code=4001, reason="done here")
    deadline = time.monotonic() + 10
    while (ended := exchange(server, request("GET", f"/ended?key={key}")).body) == b"":
        assert time.monotonic() < deadline, "the conversation never saw the close"
        time.sleep(0.05)
    assert ended == b"4001 done here"


def test_any_request_may_send_to_an_open_websocket(server):
    with connect(url(server, "/listen")) as a, connect(url(server, "/listen")) as b:
        assert a.recv(timeout=10) == "listening"
        assert b.recv(timeout=10) == "listening"
        sent = exchange(server, request("GET", "/broadcast?m=news")).body
        assert int(sent) >= 2
        assert a.recv(timeout=10) == "news"
        assert b.recv(timeout=10) == "news"


@pytest.mark.parametrize("kind", ["text", "binary", "bytearray"])
def test_broadcast_reaches_every_open_websocket_and_skips_closed_ones(server, kind):
    with connect(url(server, "/end")) as gone:
        assert gone.recv(timeout=10) == "bye"
        with pytest.raises(ConnectionClosed):
            gone.recv(timeout=10)
    # `a` agreed to permessage-deflate and gets the message compressed (it is long enough);
    # `b` did not, and gets the frame encoded once for every such WebSocket.
    plain = connect(url(server, "/listen"), compression=None)
    with connect(url(server, "/listen")) as a, plain as b:
        assert a.recv(timeout=10) == "listening"
        assert b.recv(timeout=10) == "listening"
        news = "news-" + "n" * 200
        query = f"m={news}" + ("" if kind == "text" else f"&{kind}=1")
        answer = exchange(server, request("GET", f"/broadcast-all?{query}")).body
        sent, listeners, ended = map(int, answer.split())
        assert ended >= 1 and listeners >= 2
        assert sent == listeners, "every open WebSocket, and none of the closed ones"
        expected = news if kind == "text" else news.encode()
        assert a.recv(timeout=10) == expected
        assert b.recv(timeout=10) == expected


def test_broadcast_refuses_what_it_cannot_send(server):
    errors = exchange(server, request("GET", "/broadcast-wrong")).body.decode().splitlines()
    assert errors == [
        "broadcast() sends to WebSockets, not object",
        "broadcast() sends str or bytes, not int",
    ]


def test_a_message_over_the_limit_closes_with_1009_and_one_at_it_passes(server):
    with connect(url(server, "/echo"), compression=None, max_size=None) as ws:
        ws.send(b"x" * 100_000)
        assert len(ws.recv(timeout=10)) == 100_000
        ws.send(b"x" * 100_001)
        assert close_code(ws) == 1009


def test_a_protocol_error_closes_with_1002(server):
    with raw_upgrade(server, "/echo") as sock:
        sock.sendall(masked_frame(0x1, b"unmasked", mask=False))
        opcode, payload = read_frame(sock)
        assert opcode == 0x8
        assert struct.unpack("!H", payload[:2])[0] == 1002


def test_frames_sent_right_behind_the_handshake_are_kept(server):
    sock = server.address.connect()
    sock.settimeout(10)
    with sock:
        sock.sendall(upgrade_request("/echo") + masked_frame(0x1, b"early"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert read_frame(sock) == (0x1, b"early")
        sock.sendall(masked_frame(0x9, b"are you there"))
        assert read_frame(sock) == (0xA, b"are you there")


@pytest.mark.parametrize(
    ("override", "status"),
    [
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),
        ({"Connection": "keep-alive"}, 400),
    ],
)
def test_bad_upgrades_are_refused_before_the_application(server, override, status):
    answer = exchange(server, upgrade_request("/plain", **override))
    assert answer.status == status
    if status == 426:
        assert answer.header("Sec-WebSocket-Version") == "13"


def test_websocket_headers_without_upgrade_are_an_ordinary_request(server):
    raw = upgrade_request("/plain", Upgrade=None, Connection=None)
    assert exchange(server, raw).body == b"plain"
    # An application that does not accept answers as usual.
    assert exchange(server, upgrade_request("/plain")).body == b"websocket"


def test_open_websockets_are_counted_on_the_status_page_and_in_the_metrics(serve):
    server = serve("wsapp", "-s", "127.0.0.1:0")

    def count() -> int:
        return status_json(server)["workers"][0]["websockets"]

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 10
        while count() != n:
            assert time.monotonic() < deadline, f"{count()} WebSockets shown, not {n}"
            time.sleep(0.05)

    with connect(url(server, "/echo")) as a, connect(url(server, "/echo")) as b:
        a.send("x")
        b.send("y")
        assert (a.recv(timeout=10), b.recv(timeout=10)) == ("x", "y")
        wait_for(2)
        metrics = status_get(server, "/metrics").body.decode()
        assert re.search(r"^evserver_websockets\{.*\} 2$", metrics, re.MULTILINE), metrics
    wait_for(0)


def test_a_graceful_stop_closes_open_websockets_with_1001_before_its_timeout(serve):
    server = serve("wsapp", "--graceful-timeout", "3")
    with connect(url(server, "/echo")) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        server.proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        # The conversation goes on through the graceful stop ...
        ws.send("still")
        assert ws.recv(timeout=10) == "still"
        # ... and gets 1001 a second before the graceful timeout.
        code = close_code(ws)
        waited = time.monotonic() - stopped
    assert code == 1001
    assert 1.5 <= waited <= 3.0, waited
    assert server.proc.wait(timeout=10) == 0


def test_a_conversation_sending_to_a_slow_reader_waits_for_the_socket_to_drain(server):
    key = uuid.uuid4().hex
    n, size = 512, 65536  # 32 MiB in all
    sock = raw_upgrade(server, f"/flood?n={n}&size={size}&key={key}", 32 * 1024)

    def flooded() -> tuple[int, int]:
        text = exchange(server, request("GET", f"/flooded?key={key}")).body.decode()
        sent, peak = text.split() if text else (0, 0)
        return int(sent), int(peak)

    deadline = time.monotonic() + 10
    while flooded()[0] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(1.0)  # the client reads nothing meanwhile
    sent, peak = flooded()
    # Only what the kernel's buffers took, plus the high-water mark, went out; the rest waits
    # in the application (without backpressure all 512 were queued at once).
    assert sent < n // 2, sent
    assert peak <= 1 << 20, peak
    # Nothing is lost: the client now reads every message, in order.
    for i in range(n):
        opcode, payload = read_frame(sock)
        assert opcode == 0x2 and len(payload) == size, (i, opcode, len(payload))
        assert payload[0] == payload[-1] == i % 256, i
    assert flooded()[0] == n
    sock.close()


def test_a_client_that_stops_reading_is_dropped_past_the_queue_limit(serve):
    server = serve("wsapp", "--websocket-max-queue", "65536")
    slow = raw_upgrade(server, "/listen", 32 * 1024)
    assert read_frame(slow) == (0x1, b"listening")
    with connect(url(server, "/listen")) as healthy:
        assert healthy.recv(timeout=10) == "listening"
        failed = 0
        for _ in range(200):  # 256 KiB a time; the kernel's buffers take a few MiB at most
            sent, failed = map(
                int, exchange(server, request("GET", "/broadcast?size=262144")).body.split()
            )
            healthy.recv(timeout=10)
            if failed:
                break
        assert failed == 1 and sent == 1
        # The healthy client goes on; the slow one's connection was dropped.
        healthy.send("still here")
        assert healthy.recv(timeout=10) == "still here"
    server.wait_for_output(r"dropping a WebSocket client that stopped reading")
    slow.settimeout(10)
    with pytest.raises((ConnectionResetError, AssertionError)):
        while True:
            read_frame(slow)  # what the kernel still held, then the end
    slow.close()


def test_silent_websockets_are_pinged_and_closed_when_pongs_stop(serve):
    server = serve("wsapp", "--websocket-ping", "1")
    sock = raw_upgrade(server, "/echo")
    started = time.monotonic()
    assert read_frame(sock) == (0x9, b"evserver")  # a ping after a second of silence
    assert time.monotonic() - started >= 0.9
    sock.sendall(masked_frame(0xA, b"evserver"))  # answered: the WebSocket lives on
    sock.sendall(masked_frame(0x1, b"still here"))
    assert read_frame(sock) == (0x1, b"still here")
    # Silent again: another ping; left unanswered, the server closes with 1011.
    assert read_frame(sock) == (0x9, b"evserver")
    opcode, payload = read_frame(sock)
    assert opcode == 0x8
    assert struct.unpack("!H", payload[:2])[0] == 1011
    assert payload[2:] == b"keepalive ping timeout"
    sock.sendall(masked_frame(0x8, payload[:2]))
    sock.settimeout(5)
    assert sock.recv(1) == b""
    sock.close()


def test_no_pings_with_websocket_ping_0(serve):
    server = serve("wsapp", "--websocket-ping", "0")
    sock = raw_upgrade(server, "/echo")
    sock.settimeout(2.5)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.close()
