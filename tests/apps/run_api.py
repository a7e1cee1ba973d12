"""Serves a WSGI callable through ``evserver.run`` (the embedding API), from the main thread or,
with ``--in-thread`` first, from a second thread as Django's autoreloader does."""

import sys
import threading

import evserver


def application(environ, start_response):
    body = f"run api, main thread: {threading.current_thread() is threading.main_thread()}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


if __name__ == "__main__":
    options = sys.argv[1:]
    if options and options[0] == "--in-thread":
        result: list[int] = []
        worker = threading.Thread(
            target=lambda: result.append(evserver.run(application, *options[1:]))
        )
        worker.daemon = True
        worker.start()
        worker.join()
        sys.exit(result[0] if result else 1)
    sys.exit(evserver.run(application, *options))
