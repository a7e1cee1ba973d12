"""The COMET helpers inside Django responses (a one-file project): SSE, long-poll and
multipart bodies in ``StreamingHttpResponse``, and a publish view."""

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
)
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from evserver.comet import Channel, longpoll, multipart, sse

NEWS = Channel("news")


def events(request):
    body = sse.stream(request.environ, NEWS, heartbeat=30)
    return StreamingHttpResponse(body, headers=dict(sse.HEADERS))


def poll(request):
    body = longpoll.stream(request.environ, NEWS, timeout=10)
    return StreamingHttpResponse(body, headers=dict(longpoll.HEADERS))


def push(request):
    return StreamingHttpResponse(
        multipart.stream(request.environ, NEWS), headers=dict(multipart.headers())
    )


@csrf_exempt
def publish(request):
    return JsonResponse({"id": NEWS.publish(request.body.decode()).id})


urlpatterns = [
    path("events", events),
    path("poll", poll),
    path("push", push),
    path("publish", publish),
]

application = get_wsgi_application()
