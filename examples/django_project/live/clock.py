"""The seed's clock, as Django views: one line a second, the request parked in between."""

import datetime
import socket

from django.http import StreamingHttpResponse
from evserver.django import HttpResponse


def clock(request):
    """The clock with today's Django: a StreamingHttpResponse over a generator."""

    def lines():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never receives anything
        try:
            while True:
                yield f"{datetime.datetime.now()}\n"
                yield request.environ["x-wsgiorg.fdevent.readable"](sock, 1.0)
        finally:
            sock.close()  # also when the client goes away

    return StreamingHttpResponse(lines(), content_type="text/plain")


def django_clock(request):
    """The seed's view, unchanged but for the import of ``HttpResponse`` (see evserver.django)."""

    def iterator():
        sd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            while True:
                yield request.environ["x-wsgiorg.fdevent.readable"](sd, 1.0)
                yield f"{datetime.datetime.now()}\n"
        except GeneratorExit:
            pass
        sd.close()

    return HttpResponse(iterator(), mimetype="text/plain")
