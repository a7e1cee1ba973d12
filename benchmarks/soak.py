#!/usr/bin/env python3
"""Soak: a long mixed workload against one evserver per backend, watched from /proc.

    python3 benchmarks/soak.py                       # 1,000,000 requests on each backend
    python3 benchmarks/soak.py --requests 20000      # the short version CI runs

The workload cycles through keep-alive requests (pipelined in batches), requests on
connections that close after one answer (HTTP/1.1 `Connection: close` and HTTP/1.0), uploads
(Content-Length and chunked), chunked streams, fdevent waits that time out and that wake,
and clients that vanish mid-head, mid-stream and while parked. Every answer is checked.

It passes when, on each backend: no error the workload did not ask for; the server's open fd
count after the run is what it was after the warm-up; its RSS, sampled through the run after
a warm-up (1024 uploads of 64 KiB, which write every page of io_uring's fixed pool of
receive buffers, then 10% of the requests), stays within 5% of the first sample; and every response
iterable the app started was closed. It prints one table line per backend and exits 1 on a
failure. The evserver it runs is the one `python3 -m evserver` imports (set PYTHONPATH to
test a build in place). Standard library only; Linux (/proc).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

APPS = Path(__file__).resolve().parent / "apps"
READY = re.compile(r"^evserver: ready on http://([\d.]+):(\d+) \(backend ([\w-]+), .*pid (\d+)\)$")
BATCH = 50  # keep-alive requests pipelined at once


def request(path: str, *, method: str = "GET", headers: str = "", body: bytes = b"") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: soak\r\n{headers}\r\n".encode() + body


ALIVE = request("/alive")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    backend: str
    pid: int  # the worker's
    stderr: list[str] = field(default_factory=list)

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=30)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(backend: str) -> Server:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evserver", "soak_app:application", "-l", "127.0.0.1:0"]
        + ["--backend", backend],
        cwd=APPS,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        for raw in iter(proc.stderr.readline, b""):
            lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            if READY.match(lines[-1]):
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    ready.wait(30)
    m = READY.match(lines[0]) if lines else None
    if not m:
        proc.kill()
        raise SystemExit(f"evserver did not start on {backend}:\n" + "\n".join(lines))
    # The ready line names the master; requests are served by its one worker (-w 1).
    master = int(m.group(4))
    workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(workers) != 1:
        proc.kill()
        raise SystemExit(f"expected one worker under the master, found {workers}")
    return Server(proc, m.group(1), int(m.group(2)), m.group(3), int(workers[0]), lines)


class Client:
    """One keep-alive connection with a read buffer."""

    def __init__(self, server: Server) -> None:
        self.sock = server.connect()
        self.buf = bytearray()

    def close(self) -> None:
        self.sock.close()

    def fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError(f"closed by the server; buffered {bytes(self.buf[:200])!r}")
        self.buf += data

    def response(self) -> tuple[int, bytes]:
        """One response: (status, body), by Content-Length or chunked."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self.fill()
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[: end + 4]
        status = int(head[9:12])
        m = re.search(r"(?im)^content-length: *(\d+)", head)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                self.fill()
            body = bytes(self.buf[:n])
            del self.buf[:n]
            return status, body
        if re.search(r"(?im)^transfer-encoding: *chunked", head):
            body = bytearray()
            while True:
                while (eol := self.buf.find(b"\r\n")) < 0:
                    self.fill()
                size = int(self.buf[:eol].split(b";")[0], 16)
                while len(self.buf) < eol + 2 + size + 2:
                    self.fill()
                body += self.buf[eol + 2 : eol + 2 + size]
                del self.buf[: eol + 2 + size + 2]
                if size == 0:
                    return status, bytes(body)
        return status, self.read_to_eof()

    def read_to_eof(self) -> bytes:
        while True:
            data = self.sock.recv(262144)
            if not data:
                out = bytes(self.buf)
                self.buf.clear()
                return out
            self.buf += data


@dataclass
class Tally:
    requests: int = 0
    disconnects: int = 0
    errors: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)

    def check(self, what: str, got, expected) -> None:
        self.requests += 1
        self.kinds[what] = self.kinds.get(what, 0) + 1
        if got != expected:
            self.errors.append(f"{what}: got {got!r}, expected {expected!r}")


def one_shot(server: Server, raw: bytes) -> tuple[int, bytes]:
    c = Client(server)
    try:
        c.sock.sendall(raw)
        status, body = c.response()
        if c.read_to_eof():
            raise ConnectionError("bytes after the last response")
        return status, body
    finally:
        c.close()


def vanish(sock: socket.socket, reset: bool) -> None:
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


UPLOAD = b"u" * 65536
CHUNKED_UPLOAD = b"".join(b"%x\r\n%s\r\n" % (4096, b"c" * 4096) for _ in range(4)) + b"0\r\n\r\n"


def cycle(server: Server, ka: Client, tally: Tally, n: int) -> None:
    """One round of the mixed workload (about 210 requests)."""
    for _ in range(4):  # keep-alive, pipelined
        ka.sock.sendall(ALIVE * BATCH)
        for _ in range(BATCH):
            tally.check("keep-alive", ka.response(), (200, b"alive\n"))
    ka.sock.sendall(request("/upload", method="POST", headers="Content-Length: 65536\r\n"))
    ka.sock.sendall(UPLOAD)
    tally.check("upload", ka.response(), (200, b"65536\n"))
    ka.sock.sendall(
        request("/upload", method="POST", headers="Transfer-Encoding: chunked\r\n") + CHUNKED_UPLOAD
    )
    tally.check("chunked upload", ka.response(), (200, b"16384\n"))
    ka.sock.sendall(request("/stream"))
    tally.check("stream", ka.response(), (200, b"".join(b"chunk %d\n" % i for i in range(8))))
    ka.sock.sendall(request("/wait-timeout"))
    tally.check("fdevent timeout", ka.response(), (200, b"timeout"))
    ka.sock.sendall(request("/wait-wake"))
    tally.check("fdevent wake", ka.response(), (200, b"woke"))
    tally.check(
        "connection: close",
        one_shot(server, request("/alive", headers="Connection: close\r\n")),
        (200, b"alive\n"),
    )
    tally.check("http/1.0", one_shot(server, b"GET /alive HTTP/1.0\r\n\r\n"), (200, b"alive\n"))
    # A client that vanishes, at a stage that changes every cycle.
    sock = server.connect()
    stage = n % 3
    if stage == 0:
        sock.sendall(b"GET /alive HTTP/1.1\r\nHost: soak\r\nX-Half")
    elif stage == 1:
        sock.sendall(request("/endless"))
        got = 0
        while got < 50000:
            got += len(sock.recv(65536))
    else:
        sock.sendall(request("/park"))
        time.sleep(0)  # let it park (or not: a vanishing client may come at any moment)
    vanish(sock, reset=n % 2 == 0)
    tally.disconnects += 1


def stats(server: Server) -> dict[str, int]:
    return json.loads(one_shot(server, request("/_stats", headers="Connection: close\r\n"))[1])


def settle(server: Server, fds: int, timeout: float = 20.0) -> tuple[int, dict[str, int]]:
    """Waits until the fd count is back to ``fds``, no request is parked and every iterable
    started was closed (a vanished client is noticed when the server next reads or sends)."""
    deadline = time.monotonic() + timeout
    while True:
        s = stats(server)
        time.sleep(0.1)
        now = server.fds()
        done = now <= fds and s["parked"] == 0 and s["started"] == s["closed"]
        if done or time.monotonic() > deadline:
            return now, s


def warm_up(server: Server, tally: Tally) -> None:
    """Fills every provided receive buffer of the io_uring backend (a fixed pool of 1024 x 16
    KiB that the kernel uses in turn, each page counted in RSS the first time it is written)
    a few times over, so that RSS growth after the warm-up means a leak, not first touches."""
    ka = Client(server)
    try:
        for _ in range(1024):
            ka.sock.sendall(request("/upload", method="POST", headers="Content-Length: 65536\r\n"))
            ka.sock.sendall(UPLOAD)
            tally.check("warm-up upload", ka.response(), (200, b"65536\n"))
    finally:
        ka.close()


def soak(backend: str, total: int, samples: int = 40) -> dict:
    server = start(backend)
    tally = Tally()
    try:
        warm_up(server, tally)
    except OSError as e:
        tally.errors.append(f"warm-up: {type(e).__name__}: {e}")
    ka = Client(server)
    rss: list[int] = []
    t0 = time.monotonic()
    warm = total // 10
    fds_after_warmup = None
    cpu0 = server.cpu_seconds()
    n = 0
    next_sample = warm
    step = max((total - warm) // samples, 1)
    try:
        while tally.requests < total:
            if n % 500 == 499:  # a fresh keep-alive connection now and then
                ka.close()
                ka = Client(server)
            cycle(server, ka, tally, n)
            n += 1
            if fds_after_warmup is None and tally.requests >= warm:
                ka.close()
                fds_after_warmup, _ = settle(server, 0, timeout=0.5)
                ka = Client(server)
            if tally.requests >= next_sample:
                rss.append(server.rss_kib())
                next_sample += step
            if len(tally.errors) > 20:
                break
    except (OSError, ValueError) as e:
        tally.errors.append(f"client: {type(e).__name__}: {e}")
    finally:
        ka.close()
    elapsed = time.monotonic() - t0
    cpu = server.cpu_seconds() - cpu0
    fds_end, s = settle(server, fds_after_warmup or 0)
    alive = server.proc.poll() is None
    server.proc.terminate()
    server.proc.wait(20)
    logged = [line for line in server.stderr[1:] if "[ERROR]" in line or "panicked" in line]
    rss_spread = (max(rss) - rss[0]) / rss[0] if rss else 0.0
    failures = list(tally.errors[:5])
    if not alive:
        failures.append("the server died")
    if logged:
        failures.append(f"the server logged errors: {logged[:3]}")
    if fds_after_warmup is None or fds_end > fds_after_warmup:
        failures.append(f"fd leak: {fds_after_warmup} after warm-up, {fds_end} at the end")
    if rss_spread > 0.05:
        failures.append(f"RSS grew {rss_spread:.1%} after the warm-up: {rss}")
    if s["started"] != s["closed"] or s["parked"]:
        failures.append(f"iterables not closed: {s}")
    return {
        "backend": server.backend,
        "requests": tally.requests,
        "disconnects": tally.disconnects,
        "seconds": round(elapsed, 1),
        "requests_per_second": round(tally.requests / elapsed),
        "server_cpu_us_per_request": round(cpu / max(tally.requests, 1) * 1e6, 1),
        "errors": len(tally.errors),
        "fds_after_warmup": fds_after_warmup,
        "fds_at_end": fds_end,
        "rss_kib_first": rss[0] if rss else None,
        "rss_kib_min": min(rss) if rss else None,
        "rss_kib_max": max(rss) if rss else None,
        "rss_kib_last": rss[-1] if rss else None,
        "rss_growth": round(rss_spread, 4),
        "iterables": s,
        "kinds": tally.kinds,
        "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="per backend")
    parser.add_argument("--backend", action="append", choices=["io_uring", "poll"])
    parser.add_argument("--json", action="store_true", help="print one JSON object per backend")
    args = parser.parse_args(argv)
    backends = args.backend or ["io_uring", "poll"]
    print(
        f"# soak, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{platform.node()}, Linux {platform.release()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        "| backend | requests | disconnects | s | req/s | server CPU µs/req | errors "
        "| fds warm/end | RSS KiB first/min/max/last | RSS growth | result |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for backend in backends:
        r = soak(backend, args.requests)
        ok &= not r["failures"]
        print(
            f"| {r['backend']} | {r['requests']} | {r['disconnects']} | {r['seconds']} "
            f"| {r['requests_per_second']} | {r['server_cpu_us_per_request']} | {r['errors']} "
            f"| {r['fds_after_warmup']}/{r['fds_at_end']} "
            f"| {r['rss_kib_first']}/{r['rss_kib_min']}/{r['rss_kib_max']}/{r['rss_kib_last']} "
            f"| {r['rss_growth']:.2%} | {'FAIL' if r['failures'] else 'ok'} |",
            flush=True,
        )
        if args.json:
            print(json.dumps(r))
        for failure in r["failures"]:
            print(f"  {backend}: {failure}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
