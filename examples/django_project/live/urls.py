"""URLs of the example app."""

from django.urls import path

from live import clock, views

urlpatterns = [
    path("", views.index, name="index"),
    path("clock/", clock.clock, name="clock"),
    path("clock/seed/", clock.django_clock, name="clock-seed"),
    path("chat/", views.chat_page, name="chat"),
    path("chat/say", views.chat_say, name="chat-say"),
    path("chat/events", views.chat_events, name="chat-events"),
    path("notes/", views.notes_page, name="notes"),
    path("notes/<int:pk>/", views.note_edit, name="note-edit"),
    path("notes/events", views.notes_events, name="notes-events"),
]
