#!/usr/bin/env python3
"""WebSocket benchmark: evserver against gunicorn with gevent-websocket and uWSGI's WebSocket
API, one worker each, side by side in one run.

For each server (pinned to CPU 0; the load generator, ``evserver bench``, to CPU 1):

1. **idle memory**: opens N/2 WebSockets and reads the server's resident memory, closes them,
   then opens N (default 5,000) and reads it again. Per connection: the growth from N/2 to N
   open, over the N/2 more (what each connection costs: memory a worker touches once, whatever
   the number of connections, such as the pages of its receive buffers, is in the first half;
   the memory the first round gave back is reused by the second's first half, and what was
   returned to the system counts again, so the figure errs high, not low); and the growth of
   N open over the fresh server, over N, with those one-off costs in it;
2. **broadcast**: while they are open, POSTs a message to ``/publish`` every half second, which
   the server sends to all N; the figure is how long each message took to reach its *last*
   subscriber (``evserver bench --subscribers``' "last delivery"), and every delivery's
   latency;
3. **echo**: one WebSocket client sends small messages at a fixed rate and the server sends each
   back (publish over the WebSocket, one subscriber): round-trip latency and messages/s, and
   the server's CPU time per message.

With ``--rounds R`` every server is measured R times, in turn (the order rotating from one
round to the next, so a machine that slows down or speeds up weighs on all of them alike), and
each figure is the median of its rounds; each round's broadcast time is listed below the table.

The apps are app_evserver.py, app_gevent.py and app_uwsgi.py (the same routes). The peers live
in benchmarks/.venv-websocket (created on first use). Prints a Markdown table with ratios
against evserver on io_uring; ``--out FILE`` writes it too.

    python3 benchmarks/websocket/measure.py
    python3 benchmarks/websocket/measure.py --clients 1000 --servers evserver-io_uring,gevent-websocket
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = HERE.parent / ".venv-websocket"
VENV_BIN = VENV / "bin"
LOGS = VENV / "logs"
# evserver-send-loop: io_uring, the app broadcasting with a loop of ws.send instead of one
# evserver.websocket.broadcast call.
SERVERS = ["evserver-io_uring", "evserver-poll", "evserver-send-loop", "gevent-websocket", "uwsgi"]
BASELINE = "evserver-io_uring"
PEERS = ["uwsgi==2.0.31", "gunicorn==23.0.0", "gevent==26.9.0", "gevent-websocket==0.10.1"]

# The COMET benchmark's helpers: the process tree, fd limit, CPU pinning, free ports.
_spec = importlib.util.spec_from_file_location("comet_run", HERE.parent / "comet" / "run.py")
comet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(comet)


def log(message: str) -> None:
    print(f"[websocket] {message}", file=sys.stderr, flush=True)


def ensure_venv(install: bool) -> None:
    comet.ensure_peer_venv(VENV, PEERS, "gevent, geventwebsocket", install, say=log)


def server_command(name: str, port: int, clients: int) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    env.pop("EVSERVER_WORKERS", None)
    if name.startswith("evserver-"):
        backend = name.split("-", 1)[1]
        if backend == "send-loop":
            backend = "io_uring"
            env["BENCH_WS_SEND_LOOP"] = "1"
        command = [sys.executable, "-m", "evserver", "app_evserver:application"]
        command += ["-l", f"127.0.0.1:{port}", "--backend", backend, "--log-level", "warning"]
        command += ["--backlog", "4096", "--websocket-ping", "0"]
    elif name == "gevent-websocket":
        command = [str(VENV_BIN / "gunicorn"), "-w", "1"]
        command += ["-k", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"]
        command += ["--worker-connections", str(clients + 1000), "--backlog", "4096"]
        command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "app_gevent:application"]
    elif name == "uwsgi":
        # The app uses evserver.comet's pure-Python channel from the repository.
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "python"), str(HERE)])
        command = [str(VENV_BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}"]
        command += ["--wsgi-file", "app_uwsgi.py", "--gevent", str(clients + 100)]
        command += ["--listen", "4096", "--max-fd", str(clients * 3 + 500)]
        command += ["--disable-logging", "--die-on-term", "--buffer-size", "8192"]
    else:
        raise ValueError(name)
    return command, env


class Server(comet.Server):
    """A server of this benchmark: the COMET benchmark's process handling (pinning, logs,
    RSS and CPU of the process tree, stopping), with this benchmark's commands; ``stats()``
    is its ``/stats``."""

    def __init__(self, name: str, clients: int, cpu: int) -> None:
        self.port = comet.free_port()
        command, env = server_command(name, self.port, clients)
        self.launch(name, command, env, cpu, cwd=HERE, logs=LOGS)

    def open_websockets(self) -> int:
        return self.stats()["open"]


def bench(args: list[str], cpu: int) -> subprocess.Popen:
    command = ["taskset", "-c", str(cpu), sys.executable, "-m", "evserver", "bench", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{what}: evserver bench failed: {err.strip()}")
    return json.loads(out)


def open_all(server: Server, a: argparse.Namespace, count: int, duration: int):
    """Starts ``evserver bench`` with ``count`` subscribers, publishing to them every half
    second for ``duration`` seconds; answers it and the server's RSS once all are open."""
    base = f"http://127.0.0.1:{server.port}"
    fanout = bench(
        ["--subscribers", str(count), "--publish", f"{base}/publish", "-R", "2",
         "-d", f"{duration}s", "--json", "-", f"ws://127.0.0.1:{server.port}/ws"],
        a.client_cpu,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while server.open_websockets() < count:
        if fanout.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: the {count} WebSockets did not all open")
        time.sleep(0.1)
    time.sleep(0.5)
    return fanout, server.rss()


def all_closed(server: Server) -> None:
    deadline = time.monotonic() + 60
    while server.open_websockets() > 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: the first WebSockets did not all close")
        time.sleep(0.1)
    time.sleep(0.5)


def measure(name: str, a: argparse.Namespace) -> dict:
    server = Server(name, a.clients, a.server_cpu)
    try:
        time.sleep(0.5)
        fresh = server.rss()
        half = a.clients // 2
        fanout, held_half = open_all(server, a, half, 2)
        finished(fanout, name)
        all_closed(server)
        fanout, held = open_all(server, a, a.clients, a.duration)
        ws = f"ws://127.0.0.1:{server.port}"
        broadcast = finished(fanout, name)
        cpu_before = server.cpu_seconds()
        echo = finished(
            bench(["--subscribers", "1", "--publish", "ws", "-R", str(a.echo_rate),
                   "-d", f"{a.duration}s", "--json", "-", f"{ws}/echo"], a.client_cpu),
            name,
        )  # fmt: skip
        cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    echoed = echo["deliveries"]
    return {
        "server": name,
        "kb_per_ws": (held - held_half) / (a.clients - half) / 1024,
        "kb_per_ws_total": (held - fresh) / a.clients / 1024,
        "broadcast_last_p50_ms": broadcast["last_delivery"]["percentiles"]["p50"] / 1000,
        "broadcast_last_max_ms": broadcast["last_delivery"]["max"] / 1000,
        "delivery_p99_ms": broadcast["latency"]["percentiles"]["p99"] / 1000,
        "broadcast_lost": broadcast["lost"],
        "echo_p50_us": echo["latency"]["percentiles"]["p50"],
        "echo_p99_us": echo["latency"]["percentiles"]["p99"],
        "echo_per_sec": echo["deliveries_per_sec"],
        "echo_lost": echo["lost"],
        "echo_cpu_us": cpu / echoed * 1e6 if echoed else float("nan"),
    }


def median_row(rounds: list[dict]) -> dict:
    """One server's figures over its rounds: the median of each, and the rounds' broadcast
    times."""
    row = {"server": rounds[0]["server"]}
    for key, value in rounds[0].items():
        if isinstance(value, (int, float)):
            row[key] = statistics.median(r[key] for r in rounds)
    row["broadcast_rounds"] = [r["broadcast_last_p50_ms"] for r in rounds]
    return row


def table(rows: list[dict], a: argparse.Namespace) -> str:
    base = next((r for r in rows if r["server"] == BASELINE), rows[0])

    def ratio(r: dict, key: str) -> str:
        return f"{r[key] / base[key]:.2f}" if base[key] else "-"

    lines = [
        (
            f"WebSocket benchmark, {datetime.date.today()}, {platform.node()}, "
            f"kernel {platform.release()}, Python {platform.python_version()}; one worker each, "
            f"server on CPU {a.server_cpu}, evserver bench on CPU {a.client_cpu}; {a.clients} "
            f"WebSockets, a broadcast every 0.5 s for {a.duration} s; echo at {a.echo_rate}/s"
            + (f"; medians of {a.rounds} rounds, servers in turn." if a.rounds > 1 else ".")
        ),
        "",
        (
            "| server | KB per idle WebSocket | ratio | growth over the fresh server, per WebSocket (KB)"
            " | broadcast to all: last delivery p50 / max (ms)"
            " | ratio (p50) | delivery p99 (ms) | lost | echo p50 / p99 (µs) | echo msgs/s"
            " | server CPU per echo (µs) | ratio |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['server']} | {r['kb_per_ws']:.2f} | {ratio(r, 'kb_per_ws')} "
            f"| {r['kb_per_ws_total']:.2f} "
            f"| {r['broadcast_last_p50_ms']:.1f} / {r['broadcast_last_max_ms']:.1f} "
            f"| {ratio(r, 'broadcast_last_p50_ms')} | {r['delivery_p99_ms']:.1f} "
            f"| {r['broadcast_lost'] + r['echo_lost']} "
            f"| {r['echo_p50_us']:.0f} / {r['echo_p99_us']:.0f} | {r['echo_per_sec']:.0f} "
            f"| {r['echo_cpu_us']:.1f} | {ratio(r, 'echo_cpu_us')} |"
        )
    if a.rounds > 1:
        lines.append("")
        lines.append("Broadcast to all, last delivery p50 in each round (ms):")
        lines.append("")
        for r in rows:
            times = ", ".join(f"{t:.1f}" for t in r["broadcast_rounds"])
            lines.append(f"- {r['server']}: {times}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--echo-rate", type=int, default=2000, help="echo messages per second")
    p.add_argument("--servers", default=",".join(SERVERS))
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--rounds", type=int, default=1, help="times each server is measured")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    names = [s for s in a.servers.split(",") if s]
    if any(not n.startswith("evserver-") for n in names):
        ensure_venv(not a.no_install)
    comet.raise_fd_limit(a.clients * 3 + 1000)
    measured: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(a.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            log(f"{name}, round {round_ + 1}: {a.clients} WebSockets, broadcast, echo")
            measured[name].append(measure(name, a))
            log(json.dumps(measured[name][-1]))
    rows = [median_row(measured[name]) for name in names]
    text = table(rows, a)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
