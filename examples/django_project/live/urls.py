"""URLs of the example app."""

from django.urls import path

from live import clock

urlpatterns = [
    path("clock/", clock.clock, name="clock"),
    path("clock/seed/", clock.django_clock, name="clock-seed"),
]
