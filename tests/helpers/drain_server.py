#!/usr/bin/env python3
"""A real HTTP server for curtain's --pre-stop-http tests (Python's http.server).

    drain_server.py DIR

Listens on 127.0.0.1 (a free port, written to DIR/port once listening) and
appends "METHOD PATH MONO_NS" to DIR/requests for every request, CLOCK_MONOTONIC
like the test app's records. /status/NNN answers NNN, /early/NNN answers
103 Early Hints (an interim answer, with a header) and then NNN, /hang never
answers, anything else answers 204.
"""
import http.server
import os
import sys
import threading
import time

DIR = sys.argv[1]
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        with LOCK, open(os.path.join(DIR, "requests"), "a") as log:
            log.write(f"{self.command} {self.path} {time.monotonic_ns()}\n")
        if self.path == "/hang":
            threading.Event().wait()
        parts = self.path.split("/")
        code = int(parts[2]) if len(parts) > 2 and parts[1] in ("status", "early") else 204
        if parts[1] == "early":
            self.send_response_only(103)
            self.send_header("Link", "</style.css>; rel=preload")
            self.end_headers()
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = handle_one

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
tmp = os.path.join(DIR, "port.tmp")
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.rename(tmp, os.path.join(DIR, "port"))
server.serve_forever()
