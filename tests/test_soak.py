"""The short soak: benchmarks/soak.py's mixed workload (keep-alive, close, uploads, streams,
fdevent waits, vanishing clients) for 20,000 requests on each backend, with its checks: no
unexpected error, no fd leak, RSS flat after the warm-up, every iterable closed. The full run
(a million requests per backend) is `python3 benchmarks/soak.py`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_short_soak_passes_every_check(backend):
    soak = load_soak()
    try:
        result = soak.soak(backend, 20_000)
    except SystemExit as e:
        if backend == "io_uring" and "io_uring" in str(e):
            pytest.skip(f"the kernel refuses io_uring here: {e}")
        raise
    print(result)
    assert result["failures"] == []
    assert result["requests"] >= 20_000
    assert result["disconnects"] > 0
    assert result["kinds"]["fdevent wake"] > 0 and result["kinds"]["chunked upload"] > 0
