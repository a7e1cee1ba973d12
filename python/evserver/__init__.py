"""evserver: an asynchronous WSGI server with a Rust engine, built for COMET.

Run it with the ``evserver`` command (or ``python -m evserver``). This package stays light on
import: the engine, ``evserver._evserver``, is loaded only when the server starts.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("evserver")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def run(app: object, *options: str) -> int:
    """Serve the WSGI callable ``app`` with command-line ``options``; return the exit status.

    ``options`` are the ``evserver`` command's flags, e.g.
    ``evserver.run(application, "--listen", "0.0.0.0:8000")``. It returns after a clean stop
    (SIGINT or SIGTERM). Called from a thread other than the main one, it installs no signal
    handlers.
    """
    from evserver import _evserver

    return _evserver.main(["evserver", *options], app)


__all__ = ["__version__", "run"]
