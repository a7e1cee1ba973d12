"""Typed stub of ``evserver._evserver``, the engine (a Rust extension module).

Applications meet these classes through the environ (``wsgi.input``, ``wsgi.file_wrapper``,
the ``x-wsgiorg.fdevent`` callables); only :func:`main` and :func:`cli_help` are called
directly, by the ``evserver`` command and the README generator.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeAlias, final

__version__: str

class _HasFileno(Protocol):
    def fileno(self) -> int: ...

_Fd: TypeAlias = int | _HasFileno
_ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]

def main(argv: Sequence[str], app: Callable[..., Any] | None = None) -> int:
    """Runs the ``evserver`` command with ``argv`` (program name first); returns the exit
    status. With ``app``, that WSGI callable is served."""

def cli_help() -> str:
    """``evserver --help`` as printed on a 100-column terminal."""

def broadcast(websockets: Iterable[Any], message: str | bytes | bytearray | memoryview) -> int:
    """``evserver.websocket.broadcast``: one message to many WebSockets."""

@final
class FileWrapper:
    """``wsgi.file_wrapper``: a regular file behind it is sent with sendfile."""

    filelike: Any
    blksize: int
    def __init__(self, filelike: Any, blksize: int = 8192) -> None: ...
    def __iter__(self) -> FileWrapper: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

@final
class Input:
    """``wsgi.input``: the request body, read in advance."""

    def read(self, size: int | None = None, /) -> bytes: ...
    def readline(self, size: int | None = None, /) -> bytes: ...
    def readlines(self, hint: int | None = None, /) -> list[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...

@final
class StartResponse:
    """The per-request ``start_response``; the application is given its bound method."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = None,
    ) -> Callable[[bytes], None]: ...
    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: _ExcInfo | None = None,
    ) -> Callable[[bytes], None]: ...
    def write(self, data: bytes) -> None: ...

@final
class FdeventWait:
    """``x-wsgiorg.fdevent.readable`` / ``writable``: records a wait and returns ``b""``,
    which the application yields."""

    def __call__(self, fd: _Fd, timeout: float | None = None, /) -> bytes: ...

@final
class FdeventSelect:
    """``x-evserver.fdevent.select``: a wait that ends when any of several fds is ready."""

    def __call__(
        self,
        readable: Iterable[_Fd] | None,
        writable: Iterable[_Fd] | None = None,
        timeout: float | None = None,
        /,
    ) -> bytes: ...

@final
class TimeoutFlag:
    """``x-wsgiorg.fdevent.timeout`` (true when the last wait timed out), also
    ``x-evserver.fdevent.ready`` (called: the fd that ended the last wait, or None)."""

    def __bool__(self) -> bool: ...
    def __call__(self) -> int | None: ...
