"""``manage.py runevserver [addrport]``: Django's ``runserver`` with evserver underneath.

Everything but the server is Django's own: the address forms and default (127.0.0.1:8000),
``--ipv6``, the banner, system checks, the unapplied-migrations warning, the autoreloader
(``--noreload``) and, with ``django.contrib.staticfiles`` installed, static files when DEBUG is
on (``--nostatic``, ``--insecure``). A line per request goes to standard output, as with
runserver (``--noaccesslog`` turns it off). Like runserver, it is threaded unless
``--nothreading``: views run on a pool of ``--threads`` threads (8) per worker, so a view that
blocks on the database does not hold up the others, and parked requests (fdevent waits) take
no thread. evserver adds ``--workers``, ``--threads`` and ``--backend``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import autoreload

import evserver

if apps.is_installed("django.contrib.staticfiles"):
    # Its runserver adds --nostatic/--insecure and wraps the handler in StaticFilesHandler.
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as RunserverCommand,
    )
else:
    from django.core.management.commands.runserver import Command as RunserverCommand

BACKENDS = ("auto", "io_uring", "poll")
#: Threads per worker when threaded (runserver starts a thread per request; a bounded pool
#: serves a developer's handful of concurrent requests the same way).
DEFAULT_THREADS = 8


class Command(RunserverCommand):
    help = "Starts evserver for development, with Django's autoreloader and checks."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--workers",
            "-w",
            type=_workers,
            default=1,
            metavar="N",
            help="Number of evserver worker processes, or 'auto' for one per core "
            "(more than 1 needs --noreload).",
        )
        parser.add_argument(
            "--noaccesslog",
            action="store_false",
            dest="access_log",
            help="Tells evserver to NOT log each request on standard output.",
        )
        parser.add_argument(
            "--threads",
            type=_positive,
            default=DEFAULT_THREADS,
            metavar="N",
            help=f"Threads per worker that run views (default {DEFAULT_THREADS}; "
            "--nothreading runs them on the worker's event loop).",
        )
        parser.add_argument(
            "--backend",
            choices=BACKENDS,
            default="auto",
            help="evserver's event-loop backend (default: auto).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] != 1 and options["use_reloader"]:
            raise CommandError(
                "--workers above 1 needs --noreload: the autoreloader restarts one process"
            )
        super().handle(*args, **options)

    def run(self, **options: Any) -> None:
        """Runs the server, under the autoreloader unless ``--noreload``."""
        if not options["use_reloader"]:
            self.inner_run(None, **options)
            return
        if os.environ.get(autoreload.DJANGO_AUTORELOAD_ENV) != "true":
            # The parent process only restarts the child below; it runs no server.
            autoreload.run_with_reloader(self.inner_run, **options)
            return
        # The child serves from a thread while the reloader watches files in the main thread,
        # and exits with status 3 to be restarted. It leaves by os._exit: the server's thread is
        # still in the event loop, and the interpreter must not be torn down under it.
        status = 0
        try:
            autoreload.run_with_reloader(self.inner_run, **options)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
        _exit_now(status)

    def inner_run(self, *args: Any, **options: Any) -> None:
        # As runserver: raise here an error that ManagementUtility silenced for the reloader.
        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            check_kwargs = BaseCommand.get_check_kwargs(self, options)
            check_kwargs["display_num_errors"] = True
            self.check(**check_kwargs)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()

        handler = self.get_handler(*args, **options)
        self.on_bind(self.port)
        self.stdout.flush()
        status = evserver.run(handler, *self.evserver_options(options))
        if status != 0:
            # evserver printed why (a busy port, a refused backend); sys.exit does not work
            # from the reloader's thread.
            _exit_now(status)
        shutdown_message = options.get("shutdown_message", "")
        if shutdown_message:
            self.stdout.write(shutdown_message)

    def evserver_options(self, options: dict[str, Any]) -> list[str]:
        """The ``evserver`` command-line options for this run."""
        result = ["--listen", self.listen_address(), "--backend", options["backend"]]
        if options["access_log"]:
            result += ["--access-log", "-"]  # a line per request, as runserver prints
        if options["workers"] != 1:
            result += ["--workers", str(options["workers"])]
        threads = options["threads"] if options.get("use_threading", True) else 1
        result += ["--threads", str(threads)]
        return result

    def listen_address(self) -> str:
        addr = self.addr
        if addr == "0":
            addr = "0.0.0.0"
        if self.use_ipv6:
            if not self._raw_ipv6:
                # A host name with --ipv6: listen on its IPv6 address, as runserver does.
                try:
                    info = socket.getaddrinfo(addr, None, socket.AF_INET6, socket.SOCK_STREAM)
                except socket.gaierror as e:
                    raise CommandError(f"cannot resolve {addr!r} to an IPv6 address: {e}") from e
                addr = str(info[0][4][0])
            return f"[{addr}]:{self.port}"
        return f"{addr}:{self.port}"


def _workers(text: str) -> int | str:
    """``--workers``: a positive number, or ``auto`` (evserver's one per core)."""
    if text == "auto":
        return text
    return _positive(text, "a positive number of workers or 'auto'")


def _positive(text: str, what: str = "a positive number") -> int:
    """``--threads`` (and ``--workers``): a positive number."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _exit_now(status: int) -> None:
    """Leaves the process at once, after flushing what it printed and logged."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
