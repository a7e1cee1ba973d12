"""Helpers for the suites: a running evserver process, and a small HTTP/1.1 client on raw sockets.

The raw client exists because the framing tests must see exactly what the server sent (chunk
sizes, the end of a connection, the bytes after a HEAD response), which client libraries hide.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
APPS = TESTS / "apps"
READY_TIMEOUT = 20.0

READY = re.compile(
    r"^evserver: ready on (?P<addresses>.+) \(backend (?P<backend>[\w-]+), "
    r"(?P<workers>\d+) workers?, pid (?P<pid>\d+)\)$"
)


class ServerDidNotStart(Exception):
    """The server exited, or printed no ready line in time. Carries what it printed."""

    def __init__(self, message: str, returncode: int | None, stderr: str) -> None:
        super().__init__(f"{message}\n--- server stderr ---\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


def evserver_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "evserver", *args]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a server: ours without EVSERVER_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVSERVER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Address:
    kind: str  # "tcp" or "unix"
    host: str = ""
    port: int = 0
    path: str = ""
    scheme: str = "http"  # "https" under --certfile

    @classmethod
    def parse(cls, text: str) -> Address:
        if text.startswith("unix:"):
            return cls("unix", path=text[len("unix:") :])
        m = re.fullmatch(r"(https?)://(\[[0-9a-fA-F:.]+\]|[^:/]+):(\d+)", text)
        if not m:
            raise ValueError(f"unexpected address in the ready line: {text!r}")
        host, port = m.group(2).strip("[]"), int(m.group(3))
        return cls("tcp", host=host, port=port, scheme=m.group(1))

    def connect(self, timeout: float = 10.0) -> socket.socket:
        if self.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(self.path)
            return sock
        return socket.create_connection((self.host, self.port), timeout=timeout)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass
class Server:
    """A running ``evserver`` process whose stderr (and stdout) are collected as they come."""

    proc: subprocess.Popen[bytes]
    args: list[str]
    stderr_lines: list[str] = field(default_factory=list)
    stdout_lines: list[str] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    backend: str = ""
    workers: int = 0
    pid: int = 0
    ready_line: str = ""
    _ready: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    # --- starting and stopping -------------------------------------------------------------

    def _collect(self) -> None:
        def pump(stream, lines: list[str], watch_ready: bool) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                lines.append(line)
                if watch_ready and not self.ready_line and READY.match(line):
                    self.ready_line = line
                    self._ready.set()
            stream.close()
            if watch_ready:
                self._ready.set()  # exited: stop waiting

        for stream, lines, watch in (
            (self.proc.stderr, self.stderr_lines, True),
            (self.proc.stdout, self.stdout_lines, False),
        ):
            t = threading.Thread(target=pump, args=(stream, lines, watch), daemon=True)
            t.start()
            self._threads.append(t)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        self._ready.wait(timeout)
        if not self.ready_line:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                message = f"no ready line within {timeout} s from: {' '.join(self.args)}"
            else:
                self.join_output()
                message = f"server exited with status {self.proc.returncode}"
            raise ServerDidNotStart(message, self.proc.returncode, self.stderr)
        m = READY.match(self.ready_line)
        assert m
        self.addresses = [Address.parse(a) for a in m.group("addresses").split(", ")]
        self.backend = m.group("backend")
        self.workers = int(m.group("workers"))
        self.pid = int(m.group("pid"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Sends ``sig`` and returns the exit status (kills and fails after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"server did not stop within {timeout} s of signal {sig}\n{self.stderr}"
                ) from None
        self.join_output()
        return self.proc.returncode

    def join_output(self) -> None:
        for t in self._threads:
            t.join(5)

    # --- what it printed ---------------------------------------------------------------------

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return "\n".join(self.stdout_lines)

    def wait_for_output(self, pattern: str, timeout: float = 5.0, stream: str = "stderr") -> str:
        """Waits until a line matching the regex ``pattern`` appears and returns it."""
        lines = self.stderr_lines if stream == "stderr" else self.stdout_lines
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in list(lines):
                if rx.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no line matching {pattern!r} on {stream} within {timeout} s; it has:\n"
                    + "\n".join(lines)
                )
            time.sleep(0.02)

    # --- talking to it -------------------------------------------------------------------------

    @property
    def address(self) -> Address:
        return self.addresses[0]

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def host(self) -> str:
        return self.address.host

    def worker_pids(self) -> list[int]:
        """The worker processes (the children of the master whose pid the ready line names)."""
        children: list[int] = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            text = (task / "children").read_text()
            children += [int(p) for p in text.split()]
        return sorted(children)

    @property
    def worker_pid(self) -> int:
        """The pid of the only worker (``-w 1``, the default): where requests are served."""
        pids = self.worker_pids()
        assert len(pids) == 1, f"expected one worker, found {pids}"
        return pids[0]

    def url(self, path: str = "/") -> str:
        return f"{self.address.scheme}://{self.address.netloc}{path}"

    def connect(self, timeout: float = 10.0) -> RawConnection:
        return RawConnection(self.address.connect(timeout))

    def events(self, key: str) -> list[str]:
        """What the test app recorded under ``key`` (see apps/recorder.py)."""
        with self.connect() as conn:
            conn.send(request("GET", f"/_events?key={key}", host=self.address.netloc))
            return json.loads(conn.response().body)

    def wait_for_event(self, key: str, event: str, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(key)
            if event in events:
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"no event {event!r} for {key!r} in {timeout} s: {events}")
            time.sleep(0.02)


def start_server(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path = APPS,
    ready_timeout: float = READY_TIMEOUT,
    command: list[str] | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Server:
    """Starts ``evserver ARGS`` and waits for its ready line. ``pass_fds``: descriptors the
    server inherits (under the same numbers)."""
    argv = (command or evserver_command()) + args
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=server_env(env),
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    server = Server(proc, argv)
    server._collect()
    server.wait_ready(ready_timeout)
    return server


def run_evserver(
    args: list[str], env: dict[str, str] | None = None, cwd: Path = APPS, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Runs ``evserver ARGS`` that is expected to exit by itself."""
    return subprocess.run(
        evserver_command(*args),
        cwd=cwd,
        env=server_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- a raw HTTP/1.1 client ---------------------------------------------------------------------


def request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str | None = "test",
) -> bytes:
    """The bytes of one request. Adds Host (unless None) and Content-Length for a body."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    names = {n.lower() for n, _ in headers or []}
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes, trailer: bytes = b"") -> bytes:
    """A chunked request body made of ``pieces``."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return out + b"0\r\n" + trailer + b"\r\n"


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    framing: str = ""  # "length", "chunked", "close" or "none"
    chunks: list[bytes] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


class RawConnection:
    """One client connection with its own read buffer; reads never lose bytes on a timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, timeout: float | None = None) -> bool:
        """Reads more bytes into the buffer; False at end of stream."""
        if self.eof:
            return False
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        finally:
            if timeout is not None:
                self.sock.settimeout(10.0)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed mid-line; got {bytes(self.buf)!r}")
        i = self.buf.index(b"\n") + 1
        line = bytes(self.buf[:i])
        del self.buf[:i]
        return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed after {len(self.buf)} of {n} bytes")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_some(self, timeout: float) -> bytes:
        """Whatever is buffered or arrives within ``timeout``; b"" on time-out or end."""
        if not self.buf:
            try:
                self._fill(timeout)
            except TimeoutError:
                return b""
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the server closes the connection within ``timeout`` with nothing more sent."""
        if self.buf:
            return False
        try:
            return not self._fill(timeout)
        except TimeoutError:
            return False

    def head(self) -> Response:
        """Reads a status line and header fields."""
        status_line = self.readline()
        m = re.fullmatch(rb"(HTTP/\d\.\d) (\d{3})(?: (.*))?\r\n", status_line)
        if not m:
            raise AssertionError(f"bad status line {status_line!r}")
        headers = []
        while True:
            line = self.readline()
            if line == b"\r\n":
                break
            assert line.endswith(b"\r\n"), f"header line without CRLF: {line!r}"
            name, sep, value = line[:-2].partition(b":")
            assert sep, f"header line without colon: {line!r}"
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        return Response(
            m.group(1).decode(),
            int(m.group(2)),
            (m.group(3) or b"").decode("latin-1"),
            headers,
        )

    def response(self, method: str = "GET") -> Response:
        """Reads one whole response (skipping nothing: a 100 Continue is returned as is)."""
        resp = self.head()
        if method == "HEAD" or 100 <= resp.status < 200 or resp.status in (204, 304):
            resp.framing = "none"
        elif "chunked" in (resp.header("Transfer-Encoding") or "").lower():
            resp.framing = "chunked"
            resp.chunks = self.read_chunks()
            resp.body = b"".join(resp.chunks)
        elif resp.header("Content-Length") is not None:
            resp.framing = "length"
            resp.body = self.read_exact(int(resp.header("Content-Length")))
        else:
            resp.framing = "close"
            resp.body = self.read_to_eof()
        return resp

    def read_chunk(self) -> bytes | None:
        """One chunk of a chunked body; None after the last chunk and trailer."""
        size_line = self.readline()
        assert size_line.endswith(b"\r\n"), size_line
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            while self.readline() != b"\r\n":
                pass
            return None
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n", "chunk data not followed by CRLF"
        return data

    def read_chunks(self) -> list[bytes]:
        chunks = []
        while (chunk := self.read_chunk()) is not None:
            chunks.append(chunk)
        return chunks


def exchange(server: Server, raw: bytes, method: str = "GET") -> Response:
    """Sends one request on a new connection and reads the response."""
    with server.connect() as conn:
        conn.send(raw)
        return conn.response(method)


def assert_serves(server: Server) -> None:
    """Proves that the server still answers a new connection."""
    resp = exchange(server, request("GET", "/alive", host=server.address.netloc))
    assert resp.status == 200, resp
    assert resp.body == b"alive\n"


def idle_connections_possible(wanted: int) -> int:
    """Raises this process's soft limit on open files for ``wanted`` connections (plus room
    for the rest); where the hard limit is lower, as many as it allows (the server raises its
    own limit to the same hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = 1000
    if hard != resource.RLIM_INFINITY and hard < wanted + room:
        wanted = hard - room
        if wanted < 1000:
            pytest.skip(f"the hard limit on open files ({hard}) leaves too little room")
    if soft < wanted + room:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted + room, hard))
    return wanted


def status_address(server: Server) -> tuple[str, int]:
    line = server.wait_for_output(r"status page on http://")
    m = re.search(r"status page on http://([\d.]+):(\d+)", line)
    assert m, line
    return m.group(1), int(m.group(2))


def status_get(server: Server, path: str, timeout: float = 5) -> Response:
    host, port = status_address(server)
    with RawConnection(socket.create_connection((host, port), timeout=timeout)) as conn:
        conn.send(request("GET", path, host=f"{host}:{port}"))
        return conn.response()


def status_json(server: Server) -> dict:
    return json.loads(status_get(server, "/status.json").body)
