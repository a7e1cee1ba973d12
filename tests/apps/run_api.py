"""Serves a WSGI callable through ``evserver.run`` (the embedding API), from the main thread or,
with ``--in-thread`` first, from a second thread as Django's autoreloader does: then the main
thread keeps its own SIGTERM handler."""

import signal
import sys
import threading

import evserver


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"run api"]


def main_thread_stops(signum, frame):
    print("the main thread handled SIGTERM", file=sys.stderr, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    options = sys.argv[1:]
    if options and options[0] == "--in-thread":
        signal.signal(signal.SIGTERM, main_thread_stops)
        server = threading.Thread(target=evserver.run, args=(application, *options[1:]))
        server.daemon = True
        server.start()
        while server.is_alive():
            server.join(0.1)
        sys.exit(1)
    sys.exit(evserver.run(application, *options))
