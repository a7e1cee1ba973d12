"""The ``live`` app; connects the post_save signal that publishes note changes."""

from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from live import signals  # noqa: F401 - connects the receivers
