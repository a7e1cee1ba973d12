"""``post_save``/``post_delete`` of a Note publish it on the notes channel, once committed."""

import json

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from live.channels import notes
from live.models import Note


def note_json(note: Note) -> str:
    return json.dumps({"id": note.pk, "text": note.text, "updated": note.updated.isoformat()})


@receiver(post_save, sender=Note)
def publish_saved_note(sender, instance: Note, created: bool, **kwargs) -> None:
    data = note_json(instance)
    event = "created" if created else "updated"
    # Clients must not see a change that is rolled back: publish when it is committed.
    transaction.on_commit(lambda: notes.publish(data, event=event))


@receiver(post_delete, sender=Note)
def publish_deleted_note(sender, instance: Note, **kwargs) -> None:
    data = json.dumps({"id": instance.pk})
    transaction.on_commit(lambda: notes.publish(data, event="deleted"))
