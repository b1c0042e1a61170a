#!/usr/bin/env python3
"""The test's own package server for tests/fix.rs: serves ROOT on 127.0.0.1
at a free port (printed on the first line of stdout) with
`Cache-Control: max-age=86400` on every answer, so that pip stores what it
downloads in its HTTP cache (it stores nothing without a cache header).
ROOT holds a static PEP 503 index (simple/NAME/index.html) with its wheels,
and a flat apt repository (apt/Packages with the .debs).

usage: serve.py ROOT
"""
import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "max-age=86400")
        super().end_headers()

    def log_message(self, *args):
        pass


handler = functools.partial(Handler, directory=sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
