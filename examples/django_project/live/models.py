"""A note whose page updates live in every browser when it is saved."""

from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.text
