"""Fixtures: evserver processes started on free ports, once per backend.

``serve(...)`` (per test) and ``module_serve(...)`` (shared by the tests of one module) start
``python -m evserver ARGS --backend B -l 127.0.0.1:0`` in tests/apps and return a
:class:`support.Server` once it printed its ready line. Both are parametrized over the
backends by the ``backend`` fixture; where the kernel refuses io_uring the io_uring tests skip
with the server's reason. A module that sets ``BOTH_MODES = True`` runs its servers once more
in thread mode (``--threads 4``, the ``app_mode`` fixture): the behaviour it tests is shared;
``APP_MODES = ["threads"]`` runs them in thread mode only.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Server, ServerDidNotStart, start_server

BACKENDS = ["io_uring", "poll"]
MODES = ["inline", "threads"]
#: Pool threads of a server in thread mode.
THREADS = 4

# A suite started in the background (`bash .ci/run &` from a script, nohup, cron) inherits
# SIGINT (and maybe SIGHUP, SIGQUIT) ignored, and an ignored disposition survives exec: every
# process the tests start would ignore them too (Django's autoreloader would never see Ctrl-C).
# A handled signal is reset to its default on exec, so handling them here gives the processes
# the tests start their default dispositions back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
for _sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
    if signal.getsignal(_sig) is signal.SIG_IGN:
        signal.signal(_sig, lambda *_: None)

# Let the unit tests import the package from the source tree when it is not installed.
try:
    import evserver  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

_io_uring_refused: list[str] = []


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "io_uring" and _io_uring_refused:
        pytest.skip(f"the kernel refuses io_uring here: {_io_uring_refused[0]}")
    return request.param


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``app_mode``: inline, and thread mode too in modules with ``BOTH_MODES = True``; a
    module may name its own list as ``APP_MODES``."""
    if "app_mode" in metafunc.fixturenames:
        both = getattr(metafunc.module, "BOTH_MODES", False)
        modes = getattr(metafunc.module, "APP_MODES", MODES if both else MODES[:1])
        metafunc.parametrize("app_mode", modes, scope="module")


def _mode_args(mode: str) -> list[str]:
    return ["--threads", str(THREADS)] if mode == "threads" else []


def _starter(backend: str, started: list[Server], mode: str = "inline") -> Callable[..., Server]:
    def start(
        *args: str, env: dict[str, str] | None = None, defaults: bool = True, **kwargs
    ) -> Server:
        """``defaults``: add ``-l 127.0.0.1:0`` (unless -l is given) and ``--backend``; without
        them the caller passes the backend some other way (e.g. EVSERVER_BACKEND)."""
        argv = list(args)
        if defaults:
            if not any(a in ("-l", "--listen") or a.startswith("--listen=") for a in argv):
                argv += ["-l", "127.0.0.1:0"]
            argv += ["--backend", backend]
            if not any(a == "--threads" or a.startswith("--threads=") for a in argv):
                argv += _mode_args(mode)
        try:
            server = start_server(argv, env=env, **kwargs)
        except ServerDidNotStart as e:
            if backend == "io_uring" and e.returncode and "io_uring" in e.stderr:
                reason = e.stderr.strip().splitlines()[-1]
                _io_uring_refused.append(reason)
                pytest.skip(f"the kernel refuses io_uring here: {reason}")
            raise
        started.append(server)
        return server

    return start


def _stop_all(started: list[Server]) -> None:
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
        server.join_output()


@pytest.fixture
def serve(backend: str, app_mode: str) -> Iterator[Callable[..., Server]]:
    """Starts servers that live for one test: ``serve("app:application", "--opt", ...)``."""
    started: list[Server] = []
    yield _starter(backend, started, app_mode)
    _stop_all(started)


@pytest.fixture(scope="module")
def module_serve(backend: str, app_mode: str) -> Iterator[Callable[..., Server]]:
    """Like ``serve``, for servers shared by every test of a module (on one backend)."""
    started: list[Server] = []
    yield _starter(backend, started, app_mode)
    _stop_all(started)


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """Puts evserver's loggers back as they were after a test that configures them, and checks
    that the root logger was left alone."""
    names = ("evserver", "evserver.access")
    saved = {
        name: (
            list(logging.getLogger(name).handlers),
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            logging.getLogger(name).disabled,
        )
        for name in names
    }
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        for h in list(logger.handlers):
            logger.removeHandler(h)
            if h not in handlers:
                h.close()
        for h in handlers:
            logger.addHandler(h)
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
    assert (list(root.handlers), root.level) == root_state
