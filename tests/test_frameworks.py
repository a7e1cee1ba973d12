"""web.py and Flask from PyPI under evserver: the seed's web.py clock run with the seed's own
command from the repository root, and the Flask example streaming with fdevent."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

import pytest
from support import Server, request

REPO = Path(__file__).resolve().parent.parent
SEED_EXEC = "import examples.framework_webpy; application = examples.framework_webpy.application"


def read_lines(server: Server, path: str, count: int) -> tuple[dict[str, str], list[str]]:
    """The headers and the first ``count`` lines of a streamed response."""
    with server.connect() as conn:
        conn.send(request("GET", path, host=server.address.netloc))
        head = conn.head()
        assert head.status == 200, head
        assert head.header("Transfer-Encoding") == "chunked"
        text = b""
        while text.count(b"\n") < count:
            chunk = conn.read_chunk()
            assert chunk is not None, f"the stream ended after {text!r}"
            text += chunk
    headers = {name.lower(): value for name, value in head.headers}
    return headers, text.decode().splitlines()[:count]


def assert_spaced(times: list[datetime], seconds: float) -> None:
    """Each line came after its wait (the wait reached the server and was honoured)."""
    for earlier, later in itertools.pairwise(times):
        assert (later - earlier).total_seconds() >= seconds * 0.9, times


def test_webpy_clock_runs_with_the_seed_command(serve, backend: str) -> None:
    pytest.importorskip("web")
    # Exactly the seed's command line; where to listen and the backend come from the
    # environment so that the command stays the seed's.
    server = serve(
        "--exec",
        SEED_EXEC,
        defaults=False,
        cwd=REPO,
        env={"EVSERVER_LISTEN": "127.0.0.1:0", "EVSERVER_BACKEND": backend},
    )
    assert server.args[-2:] == ["--exec", SEED_EXEC]
    headers, lines = read_lines(server, "/anything", 3)
    assert headers["content-type"] == "text/plain"
    assert_spaced([datetime.fromisoformat(line) for line in lines], 1.0)


def test_flask_clock_streams_with_stream_with_context(serve) -> None:
    pytest.importorskip("flask")
    server = serve("examples.flask_app:app", cwd=REPO)
    headers, lines = read_lines(server, "/clock?interval=0.3", 4)
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert_spaced([datetime.fromisoformat(line) for line in lines], 0.3)

    headers, lines = read_lines(server, "/events?interval=0.3", 4)
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert lines[1] == lines[3] == ""
    assert_spaced([datetime.fromisoformat(lines[i].removeprefix("data: ")) for i in (0, 2)], 0.3)

    with server.connect() as conn:
        conn.send(request("GET", "/", host=server.address.netloc))
        page = conn.response()
    assert page.status == 200 and b'new EventSource("/events")' in page.body
