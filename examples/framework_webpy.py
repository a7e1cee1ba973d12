"""The seed's web.py clock: one line a second, the request parked by fdevent in between.

Run it from the repository root with exactly the seed's command::

    evserver --exec "import examples.framework_webpy; application = examples.framework_webpy.application"

then ``curl -N http://127.0.0.1:8080/``.
"""

import datetime
import socket

import web

urls = ("/(.*)", "webpy_clock")


class webpy_clock:
    def GET(self, name):
        web.header("Content-Type", "text/plain", unique=True)
        environ = web.ctx.environ

        def iterable():
            sd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # any udp socket
            try:
                while True:
                    yield environ["x-wsgiorg.fdevent.readable"](sd, 1.0)
                    yield f"{datetime.datetime.now()}\n"
            except GeneratorExit:
                pass
            sd.close()

        return iterable()


application = web.application(urls, globals()).wsgifunc()
