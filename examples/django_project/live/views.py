"""The chat and the live notes page: plain Django views, pushed to browsers by SSE."""

import json

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from evserver.comet import sse

from live.channels import chat, notes
from live.models import Note

MAX_TEXT = 200


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "live/index.html")


def event_stream(request: HttpRequest, channel) -> StreamingHttpResponse:
    """Follows ``channel`` by server-sent events, resuming after the browser's Last-Event-ID."""
    return StreamingHttpResponse(
        sse.stream(request.environ, channel, heartbeat=15), headers=dict(sse.HEADERS)
    )


# --- chat ---------------------------------------------------------------------------------------


@require_GET
def chat_page(request: HttpRequest) -> HttpResponse:
    return render(request, "live/chat.html", {"last_id": chat.last_id})


@require_POST
def chat_say(request: HttpRequest) -> JsonResponse:
    name = request.POST.get("name", "").strip()[:40] or "anonymous"
    text = request.POST.get("text", "").strip()[:MAX_TEXT]
    if not text:
        return JsonResponse({"error": "say something"}, status=400)
    message = chat.publish(json.dumps({"name": name, "text": text}), event="said")
    return JsonResponse({"id": message.id})


@require_GET
def chat_events(request: HttpRequest) -> StreamingHttpResponse:
    return event_stream(request, chat)


# --- notes that update live on save ---------------------------------------------------------


def notes_page(request: HttpRequest) -> HttpResponse:
    """The list of notes; a POST adds one (and its post_save signal pushes it)."""
    if request.method == "POST":
        text = request.POST.get("text", "").strip()[:MAX_TEXT]
        if text:
            Note.objects.create(text=text)
        return redirect("notes")
    # The page starts from the channel's present: events after it are pushed.
    return render(
        request, "live/notes.html", {"notes": Note.objects.all(), "last_id": notes.last_id}
    )


@require_POST
def note_edit(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=pk)
    if request.POST.get("delete"):
        note.delete()
    else:
        note.text = request.POST.get("text", "").strip()[:MAX_TEXT] or note.text
        note.save()
    return redirect("notes")


@require_GET
def notes_events(request: HttpRequest) -> StreamingHttpResponse:
    return event_stream(request, notes)
