#!/usr/bin/env python3
"""Hybrid benchmark: one thread-mode worker (``--threads N``) holding thousands of parked
long-polls while a blocking view keeps its pool saturated.

For each backend, one evserver worker (``--threads N``, pinned to one CPU; the clients and the
load generator on the other) serves ``app_fdevent.py``:

1. ``blocking`` alone: ``evserver bench -c 50`` on ``/blocking`` (a view that sleeps 20 ms, as
   one waiting on a database does) gives the rate with nothing parked;
2. C clients park on ``/wait`` (a long-poll on an ``evserver.comet.Channel``), then the same
   load runs again: the cost of the parked clients is the drop in its rate;
3. with the load running again (every pool thread busy, requests queued), one publish: the
   time from the publish until every parked client has its whole answer;
4. throughout, the worker's thread count (``/proc/PID/status``): the pool, the loop and a few.

Only evserver runs here: no peer parks a request without holding a thread except
gunicorn's gevent worker, whose blocking view would have to be monkey-patched (see the COMET
benchmark, ``run.py``, for the parked side alone against the peers). Prints a Markdown table.

    python3 benchmarks/comet/hybrid.py                     # 2,000 clients, 16 threads
    python3 benchmarks/comet/hybrid.py --clients 500 --duration 5 --backends poll
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

from run import Parked, Server, log, percentile, pin_client, raise_fd_limit

BACKENDS = ["io_uring", "poll"]


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError(f"no thread count for pid {pid}")


def blocking_load(server: Server, args: argparse.Namespace) -> subprocess.Popen:
    """Starts ``evserver bench`` on ``/blocking`` for ``args.duration`` seconds; its JSON
    document comes on standard output."""
    url = f"http://127.0.0.1:{server.port}/blocking"
    command = [sys.executable, "-m", "evserver", "bench", "-c", str(args.connections)]
    command += ["-d", f"{args.duration}s", "--timeout", "10s", "--json", "-", url]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd="/"
    )


def rate_of(load: subprocess.Popen) -> float:
    """The requests per second a finished load reported; refuses a run with errors."""
    out, _ = load.communicate(timeout=600)
    if load.returncode != 0:
        raise RuntimeError(f"evserver bench exited with {load.returncode}")
    document = json.loads(out)
    result = document["runs"][0]
    if result["errors"]["total"]:
        raise RuntimeError(f"the blocking load had errors: {result['errors']}")
    return float(result["requests_per_sec"])


def measure(backend: str, args: argparse.Namespace) -> dict:
    extra = ("--threads", str(args.threads))
    server = Server(f"evserver-{backend}", args.clients, args.server_cpu, extra)
    try:
        pid = server.stats()["pid"]
        threads = {"idle": thread_count(pid)}
        warm = args.duration
        args.duration = 2
        rate_of(blocking_load(server, args))
        args.duration = warm
        alone = rate_of(blocking_load(server, args))
        threads["busy"] = thread_count(pid)
        log(f"{backend}: blocking alone {alone:.0f} req/s")

        parked = Parked(server, args.clients, server.stats()["last_id"], args.batch)
        try:
            threads["parked"] = thread_count(pid)
            with_parked = rate_of(blocking_load(server, args))
            log(f"{backend}: blocking with {args.clients} parked {with_parked:.0f} req/s")
            if server.stats()["waiting"] != args.clients:
                raise RuntimeError("parked clients left their wait during the load")

            load = blocking_load(server, args)
            time.sleep(args.duration / 3)
            threads["saturated"] = thread_count(pid)
            times = parked.publish_and_collect()
            threads["after"] = thread_count(pid)
            during = rate_of(load)
        finally:
            parked.close()
        log(
            f"{backend}: publish to all {args.clients} under load: "
            f"p50 {percentile(times, 50) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms"
        )
        return {
            "backend": backend,
            "alone": alone,
            "with_parked": with_parked,
            "during_publish": during,
            "cost_pct": (1 - with_parked / alone) * 100,
            "p50_ms": percentile(times, 50) * 1e3,
            "p99_ms": percentile(times, 99) * 1e3,
            "max_ms": max(times) * 1e3,
            "threads": threads,
        }
    finally:
        server.stop()


def report(results: list[dict], args: argparse.Namespace) -> None:
    import evserver

    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if "model name" in line]
    cpu = models[0] if models else platform.processor()
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"- kernel: {platform.release()}; CPU: {cpu} ({os.cpu_count()} CPUs)")
    print(f"- Python {platform.python_version()}; evserver {evserver.__version__}")
    print(
        f"- method: one worker, `--threads {args.threads}`; load `evserver bench "
        f"-c {args.connections} -d {args.duration}s` on a view sleeping 20 ms; "
        f"{args.clients} clients parked on a long-poll; one publish while the load runs"
    )
    print()
    print(
        f"| backend | blocking alone | with {args.clients} parked | cost "
        "| publish → every parked client, under load (p50 / p99 / max) "
        "| load during the publish | worker threads (idle / busy / parked / saturated) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        if "error" in r:
            print(f"| {r['backend']} | failed: {r['error']} | | | | | |")
            continue
        t = r["threads"]
        print(
            f"| {r['backend']} | {r['alone']:,.0f} req/s | {r['with_parked']:,.0f} req/s "
            f"| {r['cost_pct']:.1f}% | {r['p50_ms']:.0f} / {r['p99_ms']:.0f} / "
            f"{r['max_ms']:.0f} ms | {r['during_publish']:,.0f} req/s "
            f"| {t['idle']} / {t['busy']} / {t['parked']} / {t['saturated']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=2_000, help="parked clients")
    parser.add_argument("--threads", type=int, default=16, help="the worker's --threads")
    parser.add_argument("--connections", type=int, default=50, help="the load's connections")
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--batch", type=int, default=500, help="connections opened at a time")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--json", type=argparse.FileType("w"), help="also write the figures")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    for b in backends:
        if b not in BACKENDS:
            parser.error(f"unknown backend {b!r}; choose from {', '.join(BACKENDS)}")
    if raise_fd_limit(args.clients + args.connections + 500) < args.clients + 200:
        parser.error("the fd limit is too low for --clients")
    pin_client(args.client_cpu)
    results = []
    for backend in backends:
        try:
            results.append(measure(backend, args))
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            log(f"{backend} failed: {e}")
            results.append({"backend": backend, "error": str(e)})
    report(results, args)
    if args.json:
        json.dump({"args": {**vars(args), "json": None}, "results": results}, args.json, indent=2)


if __name__ == "__main__":
    main()
