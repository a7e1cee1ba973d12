"""Slow, idle and vanishing clients against a real server process, measured from the outside:
the server's RSS and open file descriptors come from /proc/PID/."""

from __future__ import annotations

import os
import resource
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

import pytest
from support import assert_serves, idle_connections_possible, request

#: The behaviour these tests show is the same inline and in thread mode.
BOTH_MODES = True

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")

# Starts evserver with a low soft limit on open files (and a higher hard one).
LOW_SOFT_LIMIT = [
    sys.executable,
    "-c",
    (
        "import os, resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, "
        "resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        "os.execv(sys.executable, [sys.executable, '-m', 'evserver', *sys.argv[1:]])"
    ),
]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def soft_nofile(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard) if hard != "unlimited" else -1
    raise AssertionError("no open files limit")


def kernel_queued(client: socket.socket) -> int:
    """Bytes of the connection ``client`` held by the kernel: the server end's unacknowledged
    send queue plus the client end's unread receive queue (from /proc/net/tcp)."""
    local = "%08X:%04X" % (0x0100007F, client.getsockname()[1])  # noqa: UP031 - /proc's format
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        tx, rx = (int(x, 16) for x in fields[4].split(":"))
        if fields[1] == local:
            total += rx  # the client's receive queue
        elif fields[2] == local:
            total += tx  # the server's send queue towards the client
    return total


def test_the_server_raises_its_open_files_limit_to_the_hard_limit(serve):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    server = serve("clientapp:application", command=LOW_SOFT_LIMIT)
    soft, server_hard = soft_nofile(server.worker_pid)
    assert soft > 256, "the soft limit was left as the server was started with"
    assert soft == server_hard or hard == resource.RLIM_INFINITY
    assert_serves(server)


# --- slow clients --------------------------------------------------------------------------------

HEADER_TIMEOUT = 3
BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(module_serve):
    return module_serve(
        "clientapp:application",
        "--header-timeout",
        str(HEADER_TIMEOUT),
        "--body-timeout",
        str(BODY_TIMEOUT),
    )


def stats(server) -> dict[str, int]:
    with server.connect() as conn:
        conn.send(request("GET", "/_stats"))
        return conn.response().json()


def trickle(server, start: bytes, drops: bytes, pause: float) -> tuple[bytes, float]:
    """Sends ``start``, then ``drops`` one byte every ``pause`` seconds until the server
    answers or closes; returns what it sent back and when its answer came."""
    sock = server.address.connect()
    sock.sendall(start)
    got = b""
    t0 = time.monotonic()
    try:
        for byte in drops:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(pause)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            got += data
            if not data or b"\r\n\r\n" in got:
                break
        elapsed = time.monotonic() - t0
        sock.settimeout(5)
        while data := sock.recv(65536):
            got += data
    except ConnectionResetError:
        elapsed = time.monotonic() - t0
    finally:
        sock.close()
    return got, elapsed


def test_a_head_sent_one_byte_a_second_is_cut_off_at_the_header_timeout(server):
    raw = request("GET", "/alive", headers=[("X-Padding", "p" * 40)])
    got, elapsed = trickle(server, b"", raw, pause=1.0)
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    # Cut off at the timeout (checked every half second), long before the head was complete.
    assert HEADER_TIMEOUT - 0.5 <= elapsed <= HEADER_TIMEOUT + 3, elapsed
    assert_serves(server)


def test_a_body_trickling_in_is_cut_off_at_the_body_timeout_from_the_end_of_its_head(server):
    """One byte every half second would keep a per-byte deadline alive for ever."""
    head = request("POST", "/alive", headers=[("Content-Length", "1000")])
    got, elapsed = trickle(server, head, b"x" * 40, pause=0.5)
    assert got.startswith(b"HTTP/1.1 408 "), got[:100]
    assert BODY_TIMEOUT - 0.5 <= elapsed <= BODY_TIMEOUT + 3, elapsed
    assert_serves(server)


def test_a_slow_reader_of_a_100_mb_stream_costs_memory_bounded_by_the_high_water_mark(server):
    total = 100 * 1024 * 1024
    with server.connect() as conn:  # warm up: the same path once, small
        conn.send(request("GET", "/big?bytes=4194304"))
        assert len(conn.response().body) == 4194304
    before = rss_kib(server.worker_pid)
    produced_before = stats(server)["produced"]
    sock = server.address.connect()
    sock.sendall(request("GET", f"/big?bytes={total}"))
    received = 0
    head_len = None
    first = b""
    peak = before
    ahead = in_kernel = 0
    paused = False
    try:
        while head_len is None or received < head_len + total:
            data = sock.recv(1 << 20)
            assert data, f"closed after {received} bytes"
            received += len(data)
            if head_len is None:
                first += data
                if b"\r\n\r\n" in first:
                    head_len = first.index(b"\r\n\r\n") + 4
                    assert first.startswith(b"HTTP/1.1 200 ")
            if received // 2_000_000 != (received - len(data)) // 2_000_000:
                time.sleep(0.05)  # a slow client: it stalls every 2 MB
                peak = max(peak, rss_kib(server.worker_pid))
            if not paused and received > 10_000_000:
                paused = True
                time.sleep(1.0)  # stop reading: the server must stop producing
                ahead = stats(server)["produced"] - produced_before - received
                in_kernel = kernel_queued(sock)
                peak = max(peak, rss_kib(server.worker_pid))
    finally:
        sock.close()
    assert received == head_len + total
    # What the app produced beyond what the client took is in the kernel's socket buffers;
    # what the server itself holds is under the 64 KiB high-water mark plus one chunk.
    held = ahead - in_kernel
    print(
        f"RSS before {before} KiB, peak {peak} KiB; app ahead of the client {ahead} bytes, "
        f"{in_kernel} of them in the kernel, {held} in the server"
    )
    assert 0 <= held <= 2 * 65536, (ahead, in_kernel)
    growth = (peak - before) * 1024
    assert growth < 16 * 1024 * 1024, f"RSS grew {growth} bytes while streaming 100 MB"


# --- idle clients --------------------------------------------------------------------------------

IDLE = int(os.environ.get("EVSERVER_TEST_IDLE", "10000"))


def latencies(server, n: int = 300) -> list[float]:
    out = []
    with server.connect() as conn:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.send(request("GET", "/alive"))
            assert conn.response().status == 200
            out.append(time.perf_counter() - t0)
    return out


def test_idle_keep_alive_connections_do_not_slow_active_clients(server):
    count = idle_connections_possible(IDLE)
    latencies(server, 50)  # warm up
    without = latencies(server)
    base_fds = open_fds(server.worker_pid)
    idle = []
    try:
        for _ in range(count):
            idle.append(server.address.connect())
        for sock in idle:
            sock.sendall(request("GET", "/alive"))
        for sock in idle:  # each is answered, then idles on keep-alive
            got = b""
            while not got.endswith(b"alive\n"):
                chunk = sock.recv(4096)
                assert chunk, "an idle connection was closed"
                got += chunk
        assert open_fds(server.worker_pid) >= count
        with_idle = latencies(server)
    finally:
        for sock in idle:
            sock.close()
    m0, m1 = statistics.median(without), statistics.median(with_idle)
    p0, p1 = (sorted(x)[int(len(x) * 0.99)] for x in (without, with_idle))
    print(
        f"{count} idle: median {m0 * 1e3:.3f} -> {m1 * 1e3:.3f} ms, "
        f"p99 {p0 * 1e3:.3f} -> {p1 * 1e3:.3f} ms"
    )
    # Loose on purpose (a shared machine): a cost per idle connection on each request would
    # multiply the latency many times over.
    assert m1 < 3 * m0 + 0.002, (m0, m1)
    wait_for(
        lambda: open_fds(server.worker_pid) <= base_fds, "idle connections' fds were not freed"
    )


def wait_for(predicate, message: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


# --- vanishing clients ---------------------------------------------------------------------------

DISCONNECTS = int(os.environ.get("EVSERVER_TEST_DISCONNECTS", "10000"))
STAGES = ["mid-head", "mid-body", "mid-chunked-body", "parked", "mid-stream", "pipelined"]


def vanish(sock: socket.socket, reset: bool) -> None:
    """Closes the client end: with a reset (SO_LINGER 0) or an orderly FIN."""
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_until(sock: socket.socket, n: int) -> None:
    got = 0
    while got < n:
        data = sock.recv(65536)
        assert data, "closed early"
        got += len(data)


def disconnect_at(server, stage: str, count: int, key: str = "") -> None:
    """Opens ``count`` connections that vanish at ``stage`` (every other one with a reset)."""
    q = f"key={key}" if key else "k="
    batch: list[socket.socket] = []
    for i in range(count):
        sock = server.address.connect()
        if stage == "mid-head":
            sock.sendall(b"GET /alive HTTP/1.1\r\nHost: t\r\nX-Half: ")
        elif stage == "mid-body":
            sock.sendall(request("POST", "/upload", headers=[("Content-Length", "100000")]))
            sock.sendall(b"x" * 5000)
        elif stage == "mid-chunked-body":
            sock.sendall(request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")]))
            sock.sendall(b"1000\r\n" + b"y" * 100)
        elif stage == "parked":
            sock.sendall(request("GET", f"/park?{q}"))
            batch.append(sock)
            if len(batch) == 100 or i == count - 1:
                n = len(batch)
                wait_for(lambda: stats(server)["parked"] >= n, "requests not parked")  # noqa: B023
                for j, s in enumerate(batch):
                    vanish(s, reset=j % 2 == 0)
                batch = []
            continue
        elif stage == "mid-stream":
            sock.sendall(request("GET", f"/stream?{q}"))
            read_until(sock, 100_000)
        elif stage == "pipelined":
            sock.sendall(request("GET", f"/stream?{q}") + request("GET", "/alive") * 3)
            read_until(sock, 100_000)
        vanish(sock, reset=i % 2 == 0)


def settled(server, base_fds: int) -> bool:
    s = stats(server)
    return (
        s["started"] == s["closed"] and s["parked"] == 0 and open_fds(server.worker_pid) <= base_fds
    )


@pytest.mark.parametrize("stage", STAGES)
def test_a_client_vanishing_gets_close_called_once(server, stage):
    key = f"vanish-{stage}-{time.monotonic_ns()}"
    disconnect_at(server, stage, 1, key)
    if stage in ("parked", "mid-stream", "pipelined"):
        server.wait_for_event(key, "close")
        time.sleep(0.1)
        assert server.events(key) == ["close"]
    assert_serves(server)


def test_after_10000_disconnects_fds_and_rss_are_back_where_they_started(server):
    per_stage = max(DISCONNECTS // len(STAGES), 1)
    for stage in STAGES:  # warm up with a full round: first-time allocations are not leaks
        disconnect_at(server, stage, per_stage)
    base_fds = open_fds(server.worker_pid) + 1  # + the stats connection
    wait_for(lambda: settled(server, base_fds), "the warm-up did not settle")
    time.sleep(0.3)  # the stats connection's own fd goes too
    base_fds = open_fds(server.worker_pid)
    base_rss = rss_kib(server.worker_pid)
    for stage in STAGES:
        disconnect_at(server, stage, per_stage)
    wait_for(lambda: settled(server, base_fds + 1), "fds or iterables were not released")
    wait_for(lambda: open_fds(server.worker_pid) <= base_fds, "fds were not released")
    fds, rss = open_fds(server.worker_pid), rss_kib(server.worker_pid)
    s = stats(server)
    print(
        f"{per_stage * len(STAGES)} disconnects: fds {base_fds} -> {fds}, RSS {base_rss} -> {rss} KiB, {s}"
    )
    assert fds <= base_fds
    assert rss <= base_rss * 1.05, (base_rss, rss)
    assert_serves(server)
