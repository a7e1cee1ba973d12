"""``evserver.run(app, *options)``: the embedding API serves an object rather than a name."""

from __future__ import annotations

import sys

import pytest
from support import APPS, Response, Server, ServerDidNotStart, exchange, request, start_server


def _command(*first: str) -> list[str]:
    return [sys.executable, str(APPS / "run_api.py"), *first]


def _get(server: Server) -> Response:
    return exchange(server, request("GET", "/", host=server.address.netloc))


def test_run_serves_the_given_object(backend: str) -> None:
    server = start_server(["-l", "127.0.0.1:0", "--backend", backend], command=_command())
    try:
        response = _get(server)
        assert response.status == 200
        assert response.body == b"run api"
    finally:
        assert server.stop() == 0


def test_run_from_a_second_thread_leaves_signals_to_the_main_thread(backend: str) -> None:
    server = start_server(
        ["-l", "127.0.0.1:0", "--backend", backend], command=_command("--in-thread")
    )
    assert _get(server).body == b"run api"
    assert server.stop() == 0
    assert "the main thread handled SIGTERM" in server.stderr


def test_run_refuses_an_app_name_as_well(backend: str) -> None:
    with pytest.raises(ServerDidNotStart) as failed:
        start_server(["hello:application", "--backend", backend], command=_command())
    assert failed.value.returncode == 2
    assert "do not also name APP" in failed.value.stderr
