"""A module that imports a dependency that is not installed."""

import evserver_test_no_such_dependency  # noqa: F401


def application(environ, start_response):
    raise AssertionError("never loaded")
