"""The smallest app, and the names the command-line tests point at."""

import logging

from recorder import respond, with_common_routes


@with_common_routes
def application(environ, start_response):
    if environ["PATH_INFO"] == "/log":
        # Shows the --log-level setting: the server's own logger, at two levels.
        logging.getLogger("evserver").info("info-marker from the app")
        logging.getLogger("evserver").warning("warning-marker from the app")
    return respond(start_response, "Hello, world!\n")


def other(environ, start_response):
    return respond(start_response, "other\n")


def make_app():
    """An application factory: `hello:make_app()`."""
    return other


class _Holder:
    app = staticmethod(other)


holder = _Holder()  # a dotted name: `hello:holder.app`

VALUE = 42  # not callable: `hello:VALUE`
