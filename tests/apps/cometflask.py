"""The COMET helpers inside Flask responses: SSE, long-poll and multipart bodies in
``flask.Response``, and a publish route."""

from evserver.comet import Channel, longpoll, multipart, sse
from flask import Flask, Response, request

app = Flask(__name__)
NEWS = Channel("news")


@app.get("/events")
def events():
    return Response(sse.stream(request.environ, NEWS, heartbeat=30), headers=sse.HEADERS)


@app.get("/poll")
def poll():
    return Response(longpoll.stream(request.environ, NEWS, timeout=10), headers=longpoll.HEADERS)


@app.get("/push")
def push():
    return Response(multipart.stream(request.environ, NEWS), headers=multipart.headers())


@app.post("/publish")
def publish():
    return {"id": NEWS.publish(request.get_data(as_text=True)).id}
