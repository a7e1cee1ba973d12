"""Django helpers for streaming views that wait with fdevent.

- :class:`GZipMiddleware`: Django's ``GZipMiddleware`` for streaming responses whose waits
  must reach the server. Django's own compresses a streaming response through a buffer and
  drops the empty chunks a view yields when it waits, so the wait never reaches the server
  (the view's next wait then raises ``RuntimeError``) and what was compressed stays in the
  buffer. This one passes every empty chunk through, after flushing the compressor, so the
  client gets everything the view made before it waits. When evserver serves a Django
  project (``'evserver'`` in ``INSTALLED_APPS``, ``--framework django``, or any application
  that imported Django's gzip middleware), :func:`patch_django_gzip` makes Django's own
  ``GZipMiddleware`` compress streams this way too, so ``MIDDLEWARE`` needs no change.
- :func:`HttpResponse`: the seed's ``HttpResponse(iterator, mimetype=...)``. Django 1.0 streamed
  an iterator given to ``HttpResponse``; Django today reads it to the end in the view, so a view
  that waits with fdevent must return a ``StreamingHttpResponse``. This function returns one
  for an iterator, and Django's ``HttpResponse`` for anything else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from gzip import GzipFile
from typing import Any

from django.http import HttpResponse as DjangoHttpResponse
from django.http import HttpResponseBase, StreamingHttpResponse
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware
from django.utils.cache import patch_vary_headers

__all__ = ["GZipMiddleware", "HttpResponse", "compress_stream", "patch_django_gzip"]

_accepts_gzip = re.compile(r"\bgzip\b")


def patch_django_gzip() -> None:
    """Makes Django's ``GZipMiddleware`` compress streaming responses with
    :func:`compress_stream`, so the empty chunks of fdevent waits reach the server.

    The middleware looks ``compress_sequence`` up in its module at each response; only that
    name is replaced. A stream without empty chunks compresses exactly as before. Idempotent.
    """
    import django.middleware.gzip as gzip_middleware

    gzip_middleware.compress_sequence = compress_stream  # type: ignore[assignment]


class GZipMiddleware(DjangoGZipMiddleware):
    """Django's ``GZipMiddleware``, with streaming responses compressed by :func:`compress_stream`.

    Non-streaming and asynchronous responses are left to Django's implementation.
    """

    def process_response(self, request: Any, response: HttpResponseBase) -> HttpResponseBase:
        if not response.streaming or response.is_async:
            return super().process_response(request, response)
        if response.has_header("Content-Encoding"):
            return response
        patch_vary_headers(response, ("Accept-Encoding",))
        if not _accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")):
            return response
        response.streaming_content = compress_stream(  # type: ignore[attr-defined]
            response.streaming_content,  # type: ignore[attr-defined]
            max_random_bytes=self.max_random_bytes,
        )
        del response.headers["Content-Length"]
        etag = response.get("ETag")
        if etag and etag.startswith('"'):
            response.headers["ETag"] = "W/" + etag
        response.headers["Content-Encoding"] = "gzip"
        return response


class _Buffer:
    """The file a ``GzipFile`` writes to; ``take()`` returns what was written since."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def compress_stream(chunks: Iterable[bytes], max_random_bytes: int = 0) -> Iterator[bytes]:
    """Gzips ``chunks`` as a stream; an empty chunk (a pending fdevent wait) flushes and passes.

    Between waits the compressor keeps its buffer, as Django's compressor does, so a large
    streamed export compresses as well as it would there. ``max_random_bytes`` pads the gzip
    header with a random-length file name, Django's mitigation of the BREACH attack.
    """
    buffer = _Buffer()
    name = b"a" * secrets.randbelow(max_random_bytes) if max_random_bytes else None
    zfile = GzipFile(filename=name, mode="wb", compresslevel=6, fileobj=buffer, mtime=0)
    with zfile:
        for chunk in chunks:
            if chunk:
                zfile.write(chunk)
                continue
            # The view is about to wait: send what it made so far, then the empty chunk.
            zfile.flush()
            data = buffer.take()
            if data:
                yield data
            yield b""
    yield buffer.take()


def HttpResponse(content: Any = b"", *args: Any, **kwargs: Any) -> HttpResponseBase:
    """Django's ``HttpResponse``, or a ``StreamingHttpResponse`` when ``content`` is an iterator.

    Accepts the seed's ``mimetype=`` as ``content_type=``.
    """
    if "mimetype" in kwargs:
        kwargs["content_type"] = kwargs.pop("mimetype")
    if isinstance(content, (bytes, bytearray, memoryview, str)) or not isinstance(
        content, Iterable
    ):
        return DjangoHttpResponse(content, *args, **kwargs)
    return StreamingHttpResponse(content, *args, **kwargs)
