"""The ``evserver`` command and ``python -m evserver``: hand the command line to the engine."""

import sys


def main() -> None:
    """Run the server with ``sys.argv`` and exit with the engine's status.

    The engine parses the arguments, prints its own errors and returns 0 after a clean stop
    (SIGINT or SIGTERM), 1 after a runtime error and 2 after a usage error.
    """
    from evserver import _evserver

    # `python -m evserver` puts the path of this file in argv[0]; name the program as the
    # user knows it in usage and error messages either way.
    argv = ["evserver", *sys.argv[1:]]
    try:
        status = _evserver.main(argv)
    except KeyboardInterrupt:  # Ctrl-C that reached Python before the engine's handler
        status = 0
    sys.exit(status)


if __name__ == "__main__":
    main()
