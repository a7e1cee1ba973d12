#!/usr/bin/env python3
"""COMET benchmark: N clients parked on one worker, then one publish.

For each server (evserver on io_uring and on poll, uWSGI ``--async`` with the same fdevent app,
gunicorn ``-k gevent`` with the equivalent gevent app), every round:

1. opens N connections and sends ``GET /wait?last_id=<current id>`` on each, in batches, until
   the app reports all N parked (``GET /stats``);
2. reads the RSS of the server's process tree (first round: growth over the idle server);
3. takes the time, sends ``GET /publish``, and records when each of the N clients has its whole
   response; the figure is publish → response for every client (p50, p99, max).

The client is one process on raw non-blocking sockets and epoll, pinned to its own CPU (the
server runs pinned to another). The fd limit is raised to the hard limit. Prints a Markdown
table with ratios against evserver on io_uring. See benchmarks/README.md (COMET section).

    python3 benchmarks/comet/run.py                        # sets up its venv, 10,000 clients
    python3 benchmarks/comet/run.py --clients 2000 --rounds 2 --servers evserver-io_uring
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = HERE.parent / ".venv-comet"
VENV_BIN = VENV / "bin"
LOGS = VENV / "logs"
SERVERS = ["evserver-io_uring", "evserver-poll", "uwsgi", "gunicorn-gevent"]
BASELINE = "evserver-io_uring"


def log(message: str) -> None:
    print(f"[comet] {message}", file=sys.stderr, flush=True)


# --- setup -----------------------------------------------------------------------------------


def ensure_peer_venv(
    venv: Path, packages: list[str], imports: str, install: bool, say=None
) -> None:
    """Makes sure the peers' own venv ``venv`` has uwsgi, gunicorn and what ``imports`` names
    (``"gevent, packaging"``); if not, installs ``packages`` from PyPI into it (pip's output in
    its logs/pip.log), or exits when ``install`` is false. Shared with the WebSocket benchmark."""
    bin_dir = venv / "bin"
    if (bin_dir / "uwsgi").exists() and (bin_dir / "gunicorn").exists():
        check = [str(bin_dir / "python"), "-c", f"import {imports}"]
        if subprocess.run(check, capture_output=True, check=False).returncode == 0:
            return
    if not install:
        sys.exit(f"{venv} lacks the peers; run without --no-install")
    (say or log)(f"creating {venv} with {', '.join(packages)} (uwsgi compiles: a few minutes)")
    if not (bin_dir / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    logs = venv / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "pip.log", "w") as out:
        subprocess.run(
            [bin_dir / "pip", "install", *packages],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
        )


def ensure_venv(install: bool) -> None:
    """The peers live in a venv of their own: uwsgi, gunicorn and gevent from PyPI."""
    ensure_peer_venv(
        VENV, ["uwsgi", "gunicorn", "gevent", "packaging"], "gevent, packaging", install
    )


def raise_fd_limit(needed: int) -> int:
    """Raises the fd limit (inherited by the servers) to at least ``needed``: the soft limit up
    to the hard one, and the hard one too where allowed (root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            hard = needed
        except (ValueError, OSError) as e:
            log(f"cannot raise the hard fd limit from {hard} to {needed}: {e}")
    target = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft


def pin_client(cpu: int) -> None:
    """Pins this process (the clients, and the load generators it starts) to CPU ``cpu``."""
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:
        log(f"cannot pin the client to CPU {cpu}: {e}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_of(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    except OSError:
        return "?"
    return (
        (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else "?"
    )


# --- servers ---------------------------------------------------------------------------------


def server_command(
    name: str, port: int, clients: int, extra: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """The command line of server ``name``; ``extra`` goes to evserver (e.g. ``--threads``)."""
    env = dict(os.environ)
    # evserver (with evserver.comet) is the one this python3 imports: the installed package, or
    # a build the caller put on PYTHONPATH. The repository's python/ goes first only for the
    # peers, whose apps use evserver.comet's pure-Python channel: for evserver it could hold a
    # debug build of the engine (or none at all).
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not name.startswith("evserver-"):
        paths.insert(0, str(REPO / "python"))
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(HERE)])
    env.pop("EVSERVER_WORKERS", None)
    if name.startswith("evserver-"):
        backend = name.split("-", 1)[1]
        command = [sys.executable, "-m", "evserver", "app_fdevent:application"]
        command += ["-l", f"127.0.0.1:{port}", "--backend", backend, *extra]
    elif name == "uwsgi":
        command = [str(VENV_BIN / "uwsgi"), "--http-socket", f"127.0.0.1:{port}"]
        command += ["--wsgi-file", str(HERE / "app_fdevent.py"), "--async", str(clients + 100)]
        command += ["--ugreen", "--listen", "4096", "--disable-logging", "--die-on-term"]
        command += ["--max-fd", str(clients * 2 + 500), "--buffer-size", "8192"]
    elif name == "gunicorn-gevent":
        command = [str(VENV_BIN / "gunicorn"), "-k", "gevent", "-w", "1"]
        command += ["--worker-connections", str(clients + 1000), "--backlog", "4096"]
        command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", "app_gevent:application"]
    else:
        raise ValueError(name)
    return command, env


class Server:
    def __init__(self, name: str, clients: int, cpu: int, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        command, env = server_command(name, self.port, clients, extra)
        self.launch(name, command, env, cpu, cwd=HERE, logs=LOGS)

    def launch(
        self, name: str, command: list[str], env: dict[str, str], cpu: int, cwd: Path, logs: Path
    ) -> None:
        """Starts ``command`` pinned to ``cpu`` (its output in ``logs/NAME.log``) and waits
        until ``self.stats()`` answers."""
        self.name = name
        logs.mkdir(parents=True, exist_ok=True)
        self.stderr = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.stderr,
            stderr=self.stderr,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.stats()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{name} did not start; see {logs / (name + '.log')}")
                time.sleep(0.1)

    def get(self, path: str) -> dict:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
            raise OSError(f"unexpected answer: {head[:80]!r}")
        return json.loads(body)

    def stats(self) -> dict:
        return self.get("/stats")

    def rss(self) -> int:
        """Resident memory of the server's process tree, in bytes."""
        pids, total = tree(self.proc.pid), 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server's process tree so far."""
        ticks = 0
        for pid in tree(self.proc.pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            except (OSError, ValueError, IndexError):
                pass
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.stderr.close()


def tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


# --- the client ------------------------------------------------------------------------------


class Parked:
    """N connections, each with one long-poll request sent."""

    def __init__(self, server: Server, clients: int, last_id: int, batch: int) -> None:
        self.server = server
        self.poller = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.bufs: dict[int, bytearray] = {}
        request = (
            f"GET /wait?last_id={last_id} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        ).encode()
        opened = 0
        while opened < clients:
            n = min(batch, clients - opened)
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                s.sendall(request)
                s.setblocking(False)
                self.socks[s.fileno()] = s
                self.bufs[s.fileno()] = bytearray()
                self.poller.register(s.fileno(), select.EPOLLIN)
            opened += n
            self.wait_parked(opened)

    def wait_parked(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (waiting := self.server.stats()["waiting"]) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {waiting} of {count} clients parked")
            time.sleep(0.02)

    def publish_and_collect(self) -> list[float]:
        """Publishes, then returns each client's time from the publish to its whole response."""
        pending = set(self.socks)
        done: list[float] = []
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as pub:
            t0 = time.perf_counter()
            pub.sendall(b"GET /publish HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            deadline = time.monotonic() + 120
            while pending:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(pending)} clients got no response in 120 s")
                for fd, _ in self.poller.poll(1.0):
                    try:
                        chunk = self.socks[fd].recv(4096)
                    except BlockingIOError:
                        continue
                    buf = self.bufs[fd]
                    buf += chunk
                    if not chunk or complete(buf):
                        now = time.perf_counter()
                        if not complete(buf):
                            raise RuntimeError(f"a client got an incomplete answer: {bytes(buf)!r}")
                        done.append(now - t0)
                        pending.discard(fd)
                        self.poller.unregister(fd)
        return done

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.poller.close()


def complete(buf: bytearray) -> bool:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(buf[:end]).lower()
    if not head.startswith(b"http/1.1 200") and not head.startswith(b"http/1.0 200"):
        raise RuntimeError(f"unexpected answer: {head[:80]!r}")
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(buf) - end - 4 >= int(line.split(b":")[1])
    return False


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- one server ------------------------------------------------------------------------------


def measure(name: str, args: argparse.Namespace) -> dict:
    clients, note = args.clients, ""
    if name == "uwsgi" and clients * 2 + 500 > args.fd_limit:
        clients = (args.fd_limit - 500) // 2
        note = f"{clients} clients: 2 fds per client, fd limit {args.fd_limit}"
        log(f"uwsgi: {note}")
    server = Server(name, clients, args.server_cpu)
    try:
        for _ in range(20):  # warm up: a few publishes and polls
            server.get("/publish")
        time.sleep(0.5)
        idle = server.rss()
        latencies: list[float] = []
        rounds = []
        growth = total = 0
        for r in range(args.rounds):
            last = server.stats()["last_id"]
            parked = Parked(server, clients, last, args.batch)
            try:
                if r == 0:
                    rss = server.rss()
                    growth, total = rss - idle, rss
                cpu0 = server.cpu_seconds()
                times = parked.publish_and_collect()
                cpu = server.cpu_seconds() - cpu0
            finally:
                parked.close()
            latencies += times
            rounds.append(
                {
                    "p50_ms": percentile(times, 50) * 1e3,
                    "p99_ms": percentile(times, 99) * 1e3,
                    "max_ms": max(times) * 1e3,
                    "cpu_us_per_client": cpu / clients * 1e6,
                }
            )
            log(
                f"{name} round {r + 1}: p50 {rounds[-1]['p50_ms']:.1f} ms, "
                f"p99 {rounds[-1]['p99_ms']:.1f} ms, max {rounds[-1]['max_ms']:.1f} ms, "
                f"server CPU {rounds[-1]['cpu_us_per_client']:.0f} µs/client"
            )
            time.sleep(0.5)
        return {
            "server": name,
            "clients": clients,
            "note": note,
            "idle_rss": idle,
            "rss_growth_per_client": growth / clients,
            "rss_total_per_client": total / clients,
            "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3,
            "max_ms": max(latencies) * 1e3,
            "cpu_us_per_client": statistics.median(x["cpu_us_per_client"] for x in rounds),
            "rounds": rounds,
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000, help="connections opened at a time")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    names = [n for n in args.servers.split(",") if n]
    for n in names:
        if n not in SERVERS:
            parser.error(f"unknown server {n!r}; choose from {', '.join(SERVERS)}")
    if any(n in ("uwsgi", "gunicorn-gevent") for n in names):
        ensure_venv(not args.no_install)
    # uWSGI waits on a dup of the channel's fd per client (see app_fdevent.py): 2 fds each.
    args.fd_limit = raise_fd_limit(args.clients * 2 + 1000)
    if args.fd_limit < args.clients + 500:
        parser.error(f"the fd limit is {args.fd_limit}: lower --clients")
    pin_client(args.client_cpu)

    results = []
    for name in names:
        log(f"{name}: {args.clients} clients, {args.rounds} rounds")
        try:
            results.append(measure(name, args))
        except (RuntimeError, OSError) as e:
            log(f"{name} failed: {e}")
            results.append({"server": name, "error": str(e)})
    report(results, args)


def report(results: list[dict], args: argparse.Namespace) -> None:
    import evserver

    versions = {
        "evserver": evserver.__version__,
        "uWSGI": version_of([str(VENV_BIN / "uwsgi"), "--version"]),
        "gunicorn": version_of([str(VENV_BIN / "gunicorn"), "--version"]),
        "gevent": version_of(
            [str(VENV_BIN / "python"), "-c", "import gevent; print(gevent.__version__)"]
        ),
    }
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if "model name" in line]
    cpu = models[0] if models else platform.processor()
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"- kernel: {platform.release()}; CPU: {cpu} ({os.cpu_count()} CPUs)")
    print(
        f"- Python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    print(
        f"- method: {args.clients} clients parked on one worker (server on CPU {args.server_cpu}, "
        f"client on CPU {args.client_cpu}), then one publish; {args.rounds} rounds; latency "
        "percentiles over every client of every round; memory at the first park"
    )
    print()
    base = next((r for r in results if r["server"] == BASELINE and "error" not in r), None)
    print(
        "| server | RSS growth / client | total RSS / client | p50 | p99 | max "
        "| server CPU / client | memory vs evserver | p99 vs evserver | max vs evserver "
        "| CPU vs evserver |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if "error" in r:
            print(f"| {r['server']} | failed: {r['error']} | | | | | | | | | |")
            continue

        def ratio(key: str, r: dict = r) -> str:
            return f"{r[key] / base[key]:.2f}" if base and base[key] > 0 else "-"

        label = f"{r['server']} ({r['note']})" if r.get("note") else r["server"]
        print(
            f"| {label} | {r['rss_growth_per_client'] / 1024:.1f} KiB "
            f"| {r['rss_total_per_client'] / 1024:.1f} KiB | {r['p50_ms']:.1f} ms "
            f"| {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | {r['cpu_us_per_client']:.0f} µs "
            f"| {ratio('rss_growth_per_client')} | {ratio('p99_ms')} | {ratio('max_ms')} "
            f"| {ratio('cpu_us_per_client')} |"
        )
    print()
    for r in results:
        if "rounds" in r:
            shown = ", ".join(
                f"{x['p50_ms']:.1f}/{x['p99_ms']:.1f}/{x['max_ms']:.1f}" for x in r["rounds"]
            )
            print(f"- {r['server']} rounds (p50/p99/max ms): {shown}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )


if __name__ == "__main__":
    main()
