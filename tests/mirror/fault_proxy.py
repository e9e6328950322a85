#!/usr/bin/python3
"""A loopback reverse proxy that injects faults in front of an S3 server.

Requests are forwarded unchanged (Host header included, so SigV4
signatures stay valid) to --upstream. Faults on demand:
  GET /__control?fault=KIND&count=N[&method=PUT]   the next N matching requests
      KIND: 503 (SlowDown + Retry-After: 1), 500, reset (connection reset
            after the request was read, nothing forwarded)
  GET /__control?reset=1                           clear the faults
  GET /__stats                                     {"faults": injected so far}
Binds 127.0.0.1 on a free port and writes it to --port-file.
"""
import argparse
import http.client
import json
import os
import socket
import struct
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
FAULTS = []
STATS = {"faults": 0}
UPSTREAM = None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, headers=None):
        data = body.encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/__control":
            q = dict(urllib.parse.parse_qsl(u.query))
            with LOCK:
                if "reset" in q:
                    FAULTS.clear()
                if "fault" in q:
                    FAULTS.append({"kind": q["fault"], "count": int(q.get("count", "1")),
                                   "method": q.get("method")})
            return self.reply(200, "ok")
        if u.path == "/__stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS))
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        kind = None
        with LOCK:
            for f in FAULTS:
                if f["count"] > 0 and (not f["method"] or f["method"] == self.command):
                    f["count"] -= 1
                    kind = f["kind"]
                    STATS["faults"] += 1
                    break
        if kind == "503":
            return self.reply(503, "<Error><Code>SlowDown</Code><Message>Please reduce your request "
                              "rate.</Message></Error>", {"Retry-After": "1", "Content-Type": "application/xml"})
        if kind == "500":
            return self.reply(500, "<Error><Code>InternalError</Code><Message>We encountered an "
                              "internal error.</Message></Error>", {"Content-Type": "application/xml"})
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        conn = http.client.HTTPConnection(UPSTREAM[0], UPSTREAM[1], timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        if self.command == "HEAD":  # the object's length, not the (empty) body's
            self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    global UPSTREAM
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="host:port")
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    h, _, p = a.upstream.rpartition(":")
    UPSTREAM = (h, int(p))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
