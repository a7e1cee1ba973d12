#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a figure steady enough to optimise with.

    python3 benchmarks/instructions.py                       # evserver, both backends
    python3 benchmarks/instructions.py --only evserver-io_uring --workloads hello -n 5000
    python3 benchmarks/instructions.py --only bjoern,fastwsgi   # peers, from the compare venv

The server runs under `valgrind --tool=callgrind` twice. A simple client sends the workload's
requests one after another on keep-alive connections (a new connection per request for
`close`, sixteen at a time for `pipeline`): a warmup and N requests the first time, a warmup
and 2N the second; the server then stops cleanly and callgrind writes the serving process's
totals (evserver's worker, a fork of its master, gets a file of its own). The difference of
the two totals is the work of N requests (startup, imports, warmup and shutdown cancel out),
divided by N. Counts are user-space instructions only (the serving process, Python
included); the kernel's work is not counted, so compare syscalls separately (`strace -c -f`).
Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (  # the sibling module with the servers and workloads
    APPS,
    LOGS,
    SERVERS,
    WORKLOADS,
    Workload,
    free_port,
    stop,
)

CALLGRIND_SERVERS = ["evserver-io_uring", "evserver-poll", "bjoern", "fastwsgi", "granian"]


def log(message: str) -> None:
    print(f"[instructions] {message}", file=sys.stderr, flush=True)


class Client:
    """Sends one workload's requests and reads the answers, one connection at a time."""

    def __init__(self, port: int, workload: Workload):
        self.port, self.workload = port, workload
        self.raw = workload.request()
        self.sock: socket.socket | None = None
        self.reader = None

    def connect(self) -> None:
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = self.sock.makefile("rb", buffering=1 << 20)

    def close(self) -> None:
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
            self.sock = None

    def read_response(self) -> None:
        status_line = self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, chunked = None, False
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            body = bytearray()
            while size := int(self.reader.readline().split(b";")[0], 16):
                body += self.reader.read(size)
                self.reader.readline()
            self.reader.readline()
        else:
            body = self.reader.read(length) if length is not None else self.reader.read()
        problem = self.workload.check(status, bytes(body))
        if problem is not None:
            raise ValueError(problem)

    def send(self, count: int) -> None:
        """COUNT requests (rounded up to whole pipelines)."""
        depth = self.workload.pipeline
        for _ in range(0, count, depth):
            if self.sock is None or self.workload.close:
                self.connect()
            self.sock.sendall(self.raw * depth)
            for _ in range(depth):
                self.read_response()
        if self.workload.close:
            self.close()


def total_instructions(path: str) -> int:
    """The instruction total of one callgrind dump."""
    text = Path(path).read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no totals in {path}")
    return int(match.group(1))


def serving_total(out_base: str, master_pid: int) -> int:
    """The instruction total of the process that served: the master's forked worker when
    there is one (its own file), else the server process itself."""
    files = {int(p.rsplit(".", 1)[1]): p for p in glob.glob(f"{out_base}.*")}
    others = [pid for pid in files if pid != master_pid]
    if len(others) > 1:
        raise RuntimeError(f"several processes besides the master: {sorted(others)}")
    pid = others[0] if others else master_pid
    if pid not in files:
        raise RuntimeError(f"callgrind wrote no file for the server in {out_base}.*")
    return total_instructions(files[pid])


def run_counted(server: str, workload: Workload, args: argparse.Namespace, requests: int) -> int:
    """Starts SERVER under callgrind, sends the warmup and REQUESTS requests, stops it cleanly
    and returns the serving process's instruction total."""
    port = free_port()
    out_dir = tempfile.mkdtemp(prefix="callgrind-", dir=LOGS)
    out_base = os.path.join(out_dir, "callgrind.out")
    command = [
        "valgrind",
        "--tool=callgrind",
        # One file per process: evserver's worker is a fork of its master.
        f"--callgrind-out-file={out_base}.%p",
        "--trace-children=no",
        *args.valgrind_option,
        *SERVERS[server].command(args, port),
    ]
    # The same hash seed both times, so both runs do the same startup work.
    env = dict(os.environ, PYTHONHASHSEED="0")
    if args.evserver_pythonpath and server.startswith("evserver"):
        env["PYTHONPATH"] = args.evserver_pythonpath
    stderr_path = LOGS / f"callgrind-{server}.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, cwd=APPS, env=env, stdout=stderr, stderr=stderr, start_new_session=True
        )
    try:
        client = Client(port, workload)
        deadline = time.monotonic() + args.start_timeout
        while True:
            try:
                client.send(args.warmup)
                break
            except ConnectionRefusedError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server} did not start; see {stderr_path}") from None
                time.sleep(0.5)
        client.send(requests)
        client.close()
        # A clean stop: the master stops its worker, and callgrind writes both totals.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
    finally:
        stop(process)
    total = serving_total(out_base, process.pid)
    # The profiles are large and only their totals count; a failed run keeps them to look at.
    shutil.rmtree(out_dir, ignore_errors=True)
    return total


def count(server: str, workload: Workload, args: argparse.Namespace) -> float:
    """Instructions per request of WORKLOAD on SERVER."""
    LOGS.mkdir(parents=True, exist_ok=True)
    per_run = -(-args.requests // workload.pipeline) * workload.pipeline
    once = run_counted(server, workload, args, per_run)
    twice = run_counted(server, workload, args, 2 * per_run)
    log(f"{server}, {workload.name}: {once:,} instructions with N requests, {twice:,} with 2N")
    return (twice - once) / per_run


def real_interpreter(python: str) -> str:
    """The interpreter behind PYTHON, resolved: valgrind does not follow the exec of a
    wrapper script (pyenv's shims are bash scripts)."""
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="evserver-io_uring,evserver-poll")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("-n", "--requests", type=int, default=20_000, help="counted requests")
    parser.add_argument("--warmup", type=int, default=500, help="requests before counting")
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument(
        "--evserver-python", metavar="PYTHON", help="interpreter for evserver (default: venv's)"
    )
    parser.add_argument("--evserver-pythonpath", metavar="DIR", help="PYTHONPATH for evserver")
    parser.add_argument(
        "--valgrind-option",
        action="append",
        default=[],
        metavar="OPT",
        help="extra valgrind option, e.g. --dump-instr=yes (repeatable)",
    )
    args = parser.parse_args(argv)
    # compare.py's server commands read these: instructions are counted inline (one thread),
    # over plain HTTP.
    args.app_threads = 1
    args.tls = False
    args.servers = [s for s in args.only.split(",") if s]
    args.workload_names = [w for w in args.workloads.split(",") if w]
    bad = [s for s in args.servers if s not in CALLGRIND_SERVERS]
    bad += [w for w in args.workload_names if w not in WORKLOADS]
    if bad or args.requests < 1:
        parser.error(
            f"unknown {', '.join(bad)}; servers: {', '.join(CALLGRIND_SERVERS)}; "
            f"workloads: {', '.join(WORKLOADS)}"
        )
    return args


def main() -> int:
    args = parse_args()
    if args.evserver_python:
        args.evserver_python = real_interpreter(args.evserver_python)
    servers, workloads = args.servers, args.workload_names
    print(f"instructions per request ({args.requests} requests after {args.warmup} warmup)")
    print()
    print("| workload | " + " | ".join(servers) + " |")
    print("| --- |" + " ---: |" * len(servers))
    for name in workloads:
        cells = []
        for server in servers:
            log(f"{server}: {name}")
            try:
                cells.append(f"{count(server, WORKLOADS[name], args):,.0f}")
            except (RuntimeError, ValueError, OSError) as error:
                log(f"{server} {name} failed: {error}")
                cells.append("failed")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
