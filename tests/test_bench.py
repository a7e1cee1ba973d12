"""``evserver bench`` from the installed package against a real evserver, on both server
backends (and both bench backends): exact counts, JSON on standard output, exit statuses."""

from __future__ import annotations

import json

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
