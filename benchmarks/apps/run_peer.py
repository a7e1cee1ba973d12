"""Serve workloads:application with a peer that has no command line of its own.

Usage: python run_peer.py bjoern|fastwsgi PORT
"""

import sys

from workloads import application

server, port = sys.argv[1], int(sys.argv[2])
if server == "bjoern":
    import bjoern

    bjoern.run(application, "127.0.0.1", port)
elif server == "fastwsgi":
    import fastwsgi

    fastwsgi.run(wsgi_app=application, host="127.0.0.1", port=port)
else:
    sys.exit(f"run_peer.py: unknown server {server!r}")
