"""Finding the WSGI application the server runs: ``module:attr``, ``--exec`` or ``--framework``.

The engine calls :func:`load` once at startup. Every failure is a :class:`LoadError` whose
message is one line; the engine prints it as ``evserver: error: <message>`` and exits 1.

When the user's own code fails (an exception while their module is imported, while their
``--exec`` code runs, or inside an application factory), that is a bug in their code: the
traceback is printed to stderr first, trimmed to the user's frames, and the ``LoadError``
that follows still gives the one final line naming what failed.
"""

from __future__ import annotations

import builtins
import importlib
import keyword
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

__all__ = ["LoadError", "load", "watch_roots"]

FRAMEWORKS = ("demo", "django")


class LoadError(Exception):
    """The application could not be loaded; ``str(error)`` is one line for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.splitlines()))


def load(app: str | None, exec_code: str | None, framework: str | None) -> Callable[..., Any]:
    """Returns the WSGI application named by exactly one of the three sources.

    With none of them the built-in demo is served.
    """
    given = [
        name
        for name, value in (("APP", app), ("--exec", exec_code), ("--framework", framework))
        if value is not None
    ]
    if len(given) > 1:
        raise LoadError(f"give only one of APP, --exec and --framework (got {' and '.join(given)})")
    _put_cwd_first_on_path()
    if app is not None:
        application = _load_spec(app)
    elif exec_code is not None:
        application = _load_exec(exec_code)
    else:
        application = _load_framework(framework if framework is not None else "demo")
    _adapt_frameworks()
    return application


def _adapt_frameworks() -> None:
    """Django's GZipMiddleware swallows the empty chunks of fdevent waits: when the
    application imported it, make it pass them (:func:`evserver.django.patch_django_gzip`)."""
    if "django.middleware.gzip" in sys.modules:
        from evserver.django import patch_django_gzip

        patch_django_gzip()


def watch_roots(app: str | None) -> list[str]:
    """The directories ``--reload`` watches: the current directory and the directory of the
    application's top-level package or module, found without importing it."""
    import importlib.util

    roots = [os.getcwd()]
    if app:
        _put_cwd_first_on_path()
        top = app.split(":", 1)[0].split(".", 1)[0]
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            where = os.path.dirname(spec.origin)
            if spec.submodule_search_locations:  # a package: watch the folder it lives in
                where = os.path.dirname(where)
            if not any(part in where for part in ("site-packages", "dist-packages")):
                roots.append(where)
    unique: list[str] = []
    for root in map(os.path.realpath, roots):
        if root not in unique:
            unique.append(root)
    return unique


def _put_cwd_first_on_path() -> None:
    """Makes modules in the current directory importable, first, as gunicorn does."""
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)


def _load_spec(spec: str) -> Callable[..., Any]:
    """``module``, ``module:attr``, ``module:attr.sub`` or ``module:factory()``."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep:
        attr_path = "application"
    call = attr_path.endswith("()")
    if call:
        attr_path = attr_path[:-2]
    if not _dotted_name(module_name) or not _dotted_name(attr_path):
        raise LoadError(
            f"invalid application {spec!r}: expected 'module', 'module:name' or "
            "'module:factory()', e.g. 'myproject.wsgi:application'"
        )
    obj: Any = _import(module_name)
    parts = attr_path.split(".")
    for i, part in enumerate(parts):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = (
                f"module {module_name!r}"
                if i == 0
                else repr(f"{module_name}:{'.'.join(parts[:i])}")
            )
            raise LoadError(f"{owner} has no attribute {part!r}") from None
    name = f"{module_name}:{attr_path}"
    if call:
        _require_callable(obj, name)
        try:
            obj = obj()
        except Exception:  # noqa: BLE001 - the user's factory may raise anything
            _print_user_traceback()
            raise LoadError(f"application factory '{name}()' raised {_summary()}") from None
        if not callable(obj):
            raise LoadError(
                f"application factory '{name}()' returned {_describe(obj)}, not a WSGI callable"
            )
        return obj
    _require_callable(obj, name)
    return obj


def _load_exec(code: str) -> Callable[..., Any]:
    """Runs ``--exec`` code in a fresh namespace; it must bind ``application``."""
    try:
        compiled = compile(code, "<--exec>", "exec")
    except SyntaxError as e:
        raise LoadError(f"--exec code has a syntax error: {e.msg} (column {e.offset})") from None
    namespace: dict[str, Any] = {"__name__": "__evserver_exec__", "__builtins__": builtins}
    try:
        exec(compiled, namespace)  # noqa: S102 - running the user's --exec code is the point
    except (Exception, SystemExit):  # noqa: BLE001 - the user's code may raise anything
        _print_user_traceback()
        raise LoadError(f"--exec code raised {_summary()}") from None
    if "application" not in namespace:
        raise LoadError("--exec code did not bind 'application'")
    application = namespace["application"]
    if not callable(application):
        raise LoadError(
            f"'application' bound by --exec is not callable (it is {_describe(application)})"
        )
    return application


def _load_framework(framework: str) -> Callable[..., Any]:
    if framework == "demo":
        from evserver.demo import application

        return application
    if framework == "django":
        return _load_django()
    raise LoadError(f"unknown framework {framework!r} (choose one of: {', '.join(FRAMEWORKS)})")


def _load_django() -> Callable[..., Any]:
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if not settings_module:
        raise LoadError(
            "--framework django needs DJANGO_SETTINGS_MODULE, "
            "e.g. DJANGO_SETTINGS_MODULE=mysite.settings"
        )
    try:
        from django.core.wsgi import get_wsgi_application
    except ImportError as e:
        raise LoadError(f"--framework django needs Django installed: {e}") from None
    # Import the settings ourselves first so that a missing settings module is one clear line.
    _import(settings_module)
    try:
        application = get_wsgi_application()
    except Exception:  # noqa: BLE001 - the user's project may raise anything
        _print_user_traceback()
        raise LoadError(
            f"Django failed to start with settings {settings_module!r}: {_summary()}"
        ) from None
    _reenable_evserver_loggers()
    return application


def _reenable_evserver_loggers() -> None:
    """Undoes ``disable_existing_loggers`` for evserver's loggers after Django's LOGGING.

    Django's ``dictConfig`` disables every logger that already exists and that its LOGGING does
    not name; evserver's error log must survive that. Loggers LOGGING does name are left alone.
    """
    import logging

    from django.conf import settings

    named = set((getattr(settings, "LOGGING", None) or {}).get("loggers", {}))
    for name in ("evserver", "evserver.access"):
        if name not in named:
            # The access log stays off through its level when it was not asked for.
            logging.getLogger(name).disabled = False


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            # The module itself (or a package on its path) does not exist: no traceback.
            raise LoadError(f"cannot import module {module_name!r}: {e}") from None
        _print_user_traceback()
        raise LoadError(f"error while importing module {module_name!r}: {_summary()}") from None
    except (Exception, SystemExit):  # noqa: BLE001 - the user's module may raise anything
        _print_user_traceback()
        raise LoadError(f"error while importing module {module_name!r}: {_summary()}") from None


def _require_callable(obj: object, name: str) -> None:
    if not callable(obj):
        raise LoadError(f"'{name}' is not callable (it is {_describe(obj)})")


def _describe(obj: object) -> str:
    """``an int``, ``a str``, ``None``, ``a module``: what a value is, for an error message."""
    if obj is None:
        return "None"
    kind = type(obj).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind}"


def _dotted_name(text: str) -> bool:
    return bool(text) and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in text.split(".")
    )


def _summary() -> str:
    """``ZeroDivisionError: division by zero`` for the exception being handled, on one line."""
    exc = sys.exc_info()[1]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _print_user_traceback() -> None:
    """Prints the exception being handled, without the frames of this module and importlib."""
    exc_type, exc, tb = sys.exc_info()
    assert exc_type is not None and exc is not None
    tb = _skip_loader_frames(tb)
    traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
    sys.stderr.flush()


def _skip_loader_frames(tb: TracebackType | None) -> TracebackType | None:
    def ours(t: TracebackType) -> bool:
        filename = t.tb_frame.f_code.co_filename
        return (
            filename == __file__
            or filename.startswith("<frozen importlib")
            or filename == importlib.__file__
        )

    while tb is not None and ours(tb) and tb.tb_next is not None:
        tb = tb.tb_next
    return tb
