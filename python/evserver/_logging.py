"""Logging setup: the server's own log on stderr and the optional access log.

The engine calls :func:`configure` once at startup. It logs application errors to the
``evserver`` logger (with ``exc_info``) and one Common Log Format line per response to
``evserver.access``. The root logger is never touched, so an application's own logging setup
(Django's ``LOGGING``, ``logging.basicConfig``) applies as it would under any other server.
When that setup already gave ``evserver.access`` a handler (``manage.py runevserver`` runs
after Django applied ``LOGGING``), access lines go there only: evserver adds no handler of its
own beside it.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ACCESS_LOGGER", "LEVELS", "LOGGER", "apply_config_file", "configure"]

LOGGER = "evserver"
ACCESS_LOGGER = "evserver.access"

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

FORMAT = "%(asctime)s [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Above every level: the access log is off unless asked for.
OFF = logging.CRITICAL + 10


class _EvserverHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handlers configure() installs, so that calling it again replaces them."""


class _EvserverFileHandler(logging.FileHandler):
    """The access log written to a file, opened in append mode."""


def configure(
    level: str = "info", access_log: str | None = None, error_log: str | None = None
) -> None:
    """Configures the ``evserver`` and ``evserver.access`` loggers.

    ``level`` is one of ``debug``, ``info``, ``warning``, ``error``, ``critical`` (any case).
    ``access_log`` is ``None`` (no access log), ``"-"`` (standard output) or a file path
    (appended to); ``error_log`` is where the server's own log goes: ``None`` or ``"-"`` for
    standard error, or a file path (appended to). Raises ``ValueError`` for an unknown level
    and ``OSError`` when a file cannot be opened.
    """
    try:
        numeric = LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r} (choose one of: {', '.join(LEVELS)})"
        ) from None

    access_handler: logging.Handler | None = None
    if access_log == "-":
        access_handler = _EvserverHandler(sys.stdout)
    elif access_log is not None:
        access_handler = _open_file(access_log, "access log")
    handler = (
        _EvserverHandler(sys.stderr)
        if error_log in (None, "-")
        else _open_file(error_log, "error log")
    )

    server = logging.getLogger(LOGGER)
    _remove_our_handlers(server)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    server.addHandler(handler)
    server.setLevel(numeric)
    # Our handler prints these; a handler on the root logger must not print them twice.
    server.propagate = False
    server.disabled = False

    access = logging.getLogger(ACCESS_LOGGER)
    _remove_our_handlers(access)
    if access_handler is not None and access.handlers:
        # The application's logging configuration chose where access lines go: one place.
        access_handler.close()
        access.setLevel(logging.INFO)
        access.disabled = False
        return
    access.propagate = False
    if access_handler is None:
        access.setLevel(OFF)
        access.disabled = True
    else:
        access_handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(access_handler)
        access.setLevel(logging.INFO)
        access.disabled = False


def apply_config_file(path: str) -> None:
    """Applies a ``logging.config`` file after :func:`configure`: a dictConfig in JSON when
    ``path`` ends in ``.json``, else an ini file for ``fileConfig``. Loggers the file does
    not name keep their setup (``disable_existing_loggers`` is off unless the file says so).
    Raises ``ValueError`` with one line when the file cannot be used."""
    import json
    import logging.config

    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
            config.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(config)
        else:
            if not os.path.exists(path):
                raise FileNotFoundError(path)
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as e:  # noqa: BLE001 - any problem in the file: one line
        raise ValueError(f"cannot use log config {path!r}: {type(e).__name__}: {e}") from None


def _open_file(path: str, what: str) -> logging.Handler:
    try:
        return _EvserverFileHandler(path, mode="a", encoding="utf-8")
    except OSError as e:
        raise OSError(e.errno, f"cannot open {what} {path!r}: {e.strerror}") from None


def _remove_our_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if isinstance(handler, (_EvserverHandler, _EvserverFileHandler)):
            logger.removeHandler(handler)
            handler.close()
