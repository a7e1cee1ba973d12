"""The `django` workload's application: a real Django view that runs a query on SQLite through
Django's database layer and renders the rows with a Django template, as a typical page does.

The database is a file made once (the first import in the server's process tree) with 20
rows; each thread of a threaded server gets its own connection, as Django gives it.
"""

import os
import sqlite3
import tempfile

import django
from django.conf import settings

DB = os.path.join(tempfile.gettempdir(), f"evserver-bench-django-{os.getuid()}.sqlite3")


def _make_database() -> None:
    if os.path.exists(DB):
        return
    partial = f"{DB}.{os.getpid()}"
    with sqlite3.connect(partial) as db:
        db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
        db.executemany(
            "INSERT INTO item (name, price) VALUES (?, ?)",
            [(f"item {i}", i * 1.25) for i in range(20)],
        )
    os.replace(partial, DB)


_make_database()
settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="benchmark-only",
    ROOT_URLCONF=__name__,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}},
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    USE_TZ=True,
)
django.setup()

from django.db import connection
from django.http import HttpResponse
from django.template import engines
from django.urls import path

PAGE = engines["django"].from_string(
    "<html><body><h1>{{ title }}</h1><table>"
    "{% for id, name, price in rows %}<tr><td>{{ id }}</td><td>{{ name }}</td>"
    "<td>{{ price|floatformat:2 }}</td></tr>{% endfor %}</table></body></html>"
)


def items(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, price FROM item WHERE price >= %s ORDER BY id", [0])
        rows = cursor.fetchall()
    return HttpResponse(PAGE.render({"title": "Items", "rows": rows}))


urlpatterns = [path("django", items)]

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
