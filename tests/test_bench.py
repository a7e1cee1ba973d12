"""``evserver bench`` from the installed package against a real evserver, on both server
backends (and both bench backends): exact counts, JSON on standard output, exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_evserver


@pytest.mark.parametrize("bench_backend", ["io_uring", "poll"])
def test_exact_counts_in_json_on_stdout(serve, bench_backend: str) -> None:
    server = serve("hello:application")
    result = run_evserver(
        [
            "bench",
            "-n",
            "500",
            "-c",
            "4",
            "--backend",
            bench_backend,
            "--json",
            "-",
            server.url("/"),
        ]
    )
    if result.returncode == 1 and "io_uring" in result.stderr:
        pytest.skip(f"the kernel refuses io_uring here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "evserver-bench/1"
    run = doc["runs"][0]
    assert run["requests"] == 500
    assert run["sent"] == 500
    assert run["status"] == {"200": 500}
    assert run["errors"]["total"] == 0
    assert run["latency"]["count"] == 500
    assert run["latency"]["percentiles"]["p50"] <= run["latency"]["max"]
    # The human report went to standard error.
    assert "500 requests in" in result.stderr


def test_a_500_fails_an_assert_with_status_3(serve) -> None:
    server = serve("wsgiapp:application")
    url = server.url("/fail-in-app")
    result = run_evserver(["bench", "-n", "20", "-c", "2", "--assert", "errors==0", url])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "status 500: 20" in result.stdout


def test_bench_help_and_usage_errors() -> None:
    result = run_evserver(["bench", "--help"])
    assert result.returncode == 0
    assert "Usage: evserver bench" in result.stdout
    assert "--rate" in result.stdout
    result = run_evserver(["bench", "ftp://example/"])
    assert result.returncode == 2
    assert "evserver bench:" in result.stderr
    result = run_evserver(["--help"])
    assert "evserver bench URL" in result.stdout


FANOUT_APP = Path(__file__).resolve().parent.parent / "benchmarks" / "websocket"


@pytest.mark.parametrize(
    ("transport", "path", "publish"),
    [("ws", "/ws", "/publish"), ("ws", "/ws", "ws"), ("sse", "/sse", "/publish"),
     ("poll", "/poll", "/publish")],
)  # fmt: skip
def test_fan_out_mode_times_every_delivery(serve, transport, path, publish, backend) -> None:
    server = serve("app_evserver:application", cwd=FANOUT_APP)
    url = f"ws://{server.address.netloc}{path}" if transport == "ws" else server.url(path)
    result = run_evserver(
        ["bench", "--subscribers", "20", "--transport", transport, "--backend", backend,
         "--publish", publish if publish == "ws" else server.url(publish),
         "-R", "20", "-d", "1s", "--json", "-", url],
    )  # fmt: skip
    if result.returncode == 1 and "io_uring" in result.stderr:
        pytest.skip(f"the kernel refuses io_uring here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["schema"] == "evserver-bench-fanout/1"
    assert doc["config"]["transport"] == transport
    assert (doc["subscribers_ready"], doc["subscribers_failed"]) == (20, 0)
    published = doc["published"]
    assert 15 <= published <= 21
    # Every message reached every subscriber once, and each delivery was timed.
    assert doc["lost"] == 0
    assert doc["deliveries"] == published * 20
    assert doc["latency"]["count"] == published * 20
    assert doc["last_delivery"]["count"] == published
    assert 0 < doc["latency"]["percentiles"]["p50"] <= doc["latency"]["max"]
    assert doc["latency"]["histogram"]
    assert f"{published * 20} deliveries" in result.stderr


def test_fan_out_to_a_url_that_refuses_says_why(serve) -> None:
    server = serve("app_evserver:application", cwd=FANOUT_APP)
    result = run_evserver(
        ["bench", "--subscribers", "3", "--publish", server.url("/publish"),
         f"ws://{server.address.netloc}/nowhere"],
    )  # fmt: skip
    assert result.returncode == 1
    assert 'no subscriber is ready (answered "HTTP/1.1 404 Not Found")' in result.stderr
    result = run_evserver(["bench", "--subscribers", "3", server.url("/sse")])
    assert result.returncode == 2
    assert "--publish" in result.stderr
