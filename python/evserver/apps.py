"""The ``evserver`` Django app: ``runevserver``, and Django's ``GZipMiddleware`` made to pass
the empty chunks of fdevent waits (see :func:`evserver.django.patch_django_gzip`)."""

from __future__ import annotations

from django.apps import AppConfig


class EvserverConfig(AppConfig):
    name = "evserver"
    verbose_name = "evserver"

    def ready(self) -> None:
        from evserver.django import patch_django_gzip

        patch_django_gzip()
