"""Serve hello:application with bjoern on 127.0.0.1:PORT (PORT is the only argument)."""

import sys

import bjoern
from hello import application

bjoern.run(application, "127.0.0.1", int(sys.argv[1]))
