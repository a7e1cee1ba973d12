"""The ``evserver`` Django app: ``runevserver``, and a check for middleware that breaks waits."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks

STOCK_GZIP = "django.middleware.gzip.GZipMiddleware"


class EvserverConfig(AppConfig):
    name = "evserver"
    verbose_name = "evserver"

    def ready(self) -> None:
        checks.register(check_middleware, checks.Tags.compatibility)


def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``evserver.W001`` when Django's GZipMiddleware would swallow fdevent waits."""
    from django.conf import settings

    if STOCK_GZIP not in (getattr(settings, "MIDDLEWARE", None) or []):
        return []
    return [
        checks.Warning(
            f"{STOCK_GZIP} drops the empty chunks a streaming view yields when it waits with "
            "fdevent, so such views fail under it.",
            hint="Use 'evserver.django.GZipMiddleware' instead: the same compression, and "
            "waits reach the server.",
            id="evserver.W001",
        )
    ]
