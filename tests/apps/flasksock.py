"""A Flask-Sock application, unchanged from what runs under gunicorn's threads.

- ``/echo``: echoes every message until the client sends ``"bye"``; then the handler returns.
- ``/fail``: accepts, says ``"failing"``, then raises.
- ``/``: a plain Flask view.
"""

from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
sock = Sock(app)


@sock.route("/echo")
def echo(ws):
    while True:
        message = ws.receive()
        if message == "bye":
            return
        ws.send(message)


@sock.route("/fail")
def fail(ws):
    ws.send("failing")
    raise RuntimeError("the Flask-Sock handler failed on purpose")


@app.route("/")
def index():
    return "a plain Flask view"


application = app
