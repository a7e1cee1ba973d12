"""A gunicorn-style config file (``evserver -c FILE``, or ``./gunicorn.conf.py``): the file is
Python, run once in the master; its top-level names are settings.

The engine calls :func:`load` with the names it knows and merges what it returns under the
command line (an option given on the command line wins over the file, the file over
``EVSERVER_*`` variables). Names are gunicorn's (``bind``, ``workers``, ``accesslog``, ...)
or an evserver option's long name with ``_`` for ``-`` (``websocket_max_message``). Names
starting with ``_``, imported modules and helper functions are left alone; any other unknown
name, a gunicorn setting evserver does not have (with a true value) or a gunicorn server hook
is a :class:`ConfigError`.
"""

from __future__ import annotations

import os
import runpy
import types
from collections.abc import Mapping, Sequence

__all__ = ["ConfigError", "load"]


class ConfigError(Exception):
    """The config file cannot be used; the message is one line for the user."""


def load(
    path: str,
    options: Mapping[str, bool],
    renamed: Mapping[str, str],
    unsupported: Mapping[str, str],
    hooks: Sequence[str],
) -> list[tuple[str, list[str]]]:
    """Runs the config file at ``path``; returns its settings as ``(option, values)`` pairs.

    ``options`` maps each evserver option's long name to whether it takes a value;
    ``renamed`` maps gunicorn's names to evserver's long names (``APP`` for the application);
    ``unsupported`` maps gunicorn settings evserver lacks to the line that says so. Values come
    back as the strings the command line would carry: a flag's ``["true"]`` or ``["false"]``,
    one string per element of a list.
    """
    name = os.path.basename(path)
    try:
        namespace = runpy.run_path(path, run_name="__config__")
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist") from None
    except SyntaxError as e:
        raise ConfigError(f"config file {name}, line {e.lineno}: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - the file's own code failed: one line
        raise ConfigError(f"config file {name} raised {type(e).__name__}: {e}") from None

    settings: list[tuple[str, list[str]]] = []
    for key, value in namespace.items():
        if key.startswith("_") or isinstance(value, types.ModuleType):
            continue
        if key in hooks:
            raise ConfigError(
                f"config file {name}: server hook {key!r} is not supported by evserver "
                "(it runs no gunicorn hooks)"
            )
        option = renamed.get(key) or key.replace("_", "-")
        if option != "APP" and option not in options:
            if key in unsupported:
                if _is_unset(value):
                    continue
                raise ConfigError(f"config file {name}: {unsupported[key]}")
            if callable(value):  # a helper the file defines for itself
                continue
            raise ConfigError(
                f"config file {name}: unknown setting {key!r} "
                "(names starting with _ are left alone)"
            )
        if value is None:
            continue
        takes_value = option == "APP" or options[option]
        settings.append((option, _as_strings(name, key, option, value, takes_value)))
    return settings


def _is_unset(value: object) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == []


def _as_strings(file: str, key: str, option: str, value: object, takes_value: bool) -> list[str]:
    if not takes_value:
        if not isinstance(value, bool):
            raise ConfigError(f"config file {file}: {key} must be True or False, not {value!r}")
        return ["true" if value else "false"]
    if isinstance(value, bool):
        return ["on" if value else "off"]
    if isinstance(value, (list, tuple)):
        return [_scalar(file, key, item) for item in value]
    return [_scalar(file, key, value)]


def _scalar(file: str, key: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, os.PathLike)):
        raise ConfigError(
            f"config file {file}: {key} must be a string or a number, not {type(value).__name__}"
        )
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
