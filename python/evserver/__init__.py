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

__all__ = ["__version__"]
