#!/usr/bin/python3
"""A loopback imitation of Zenodo's records API and file URLs, with faults.

Serves ROOT/<record>/<file> as record <record>:
  GET /api/records/<id>                        JSON, files[] with key/size/checksum
                                               (or filename/filesize with style=new)
  GET /records/<id>/files/<key>?download=1     the bytes, honouring Range
  GET /api/records/<id>/files/<key>/content    the bytes, ignoring Range (as reported)
Control (for tests):
  GET /_control?fault=KIND&count=N[&key=K]     inject KIND into the next N file answers
      KIND: reset (RST half way through the body), 500, 503, 429 (Retry-After),
            truncate (close early), stall (send nothing for a while)
  GET /_control?badsum=KEY                     publish a wrong MD5 for KEY
  GET /_control?style=new|old                  field spelling of the API
  GET /_control?rate=BYTES_PER_S               throttle each file answer (0 = none)
  GET /_control?api_fault=429&count=N          fault the API answers
  GET /_control?unsafe=1                       add a file named ../evil to every record
  GET /_control?raw=TEXT                       answer every API call with TEXT
  GET /_control?raw_off=1                      back to real answers
  GET /_control?reset=1                        clear faults and statistics
  GET /_stats                                  {"bytes": body bytes sent, "requests": n, "ranges": [...]}
Binds 127.0.0.1 on a free port and writes it to --port-file.
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {}


def reset_state():
    with LOCK:
        STATE.clear()
        STATE.update(faults=[], api_faults=[], badsum=set(), style="old", rate=0,
                     bytes=0, requests=0, ranges=[], unsafe=False, raw=None)


reset_state()
MD5_CACHE = {}


def md5_of(path):
    st = os.stat(path)
    k = (path, st.st_size, st.st_mtime_ns)
    if k not in MD5_CACHE:
        h = hashlib.md5()
        with open(path, "rb") as f:
            for blk in iter(lambda: f.read(1 << 20), b""):
                h.update(blk)
        MD5_CACHE[k] = h.hexdigest()
    return MD5_CACHE[k]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = "."

    def log_message(self, fmt, *args):
        pass

    def send_plain(self, code, body, extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def take_fault(self, which, key):
        with LOCK:
            lst = STATE[which]
            for f in lst:
                if f["count"] > 0 and (not f.get("key") or f["key"] == key):
                    f["count"] -= 1
                    return f["kind"]
        return None

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        parts = [urllib.parse.unquote(p) for p in u.path.split("/")]
        if u.path == "/_control":
            return self.control(q)
        if u.path == "/_stats":
            with LOCK:
                body = json.dumps({"bytes": STATE["bytes"], "requests": STATE["requests"],
                                   "ranges": STATE["ranges"]})
            return self.send_plain(200, body, {"Content-Type": "application/json"})
        with LOCK:
            STATE["requests"] += 1
        # /api/records/<id>
        if len(parts) == 4 and parts[1] == "api" and parts[2] == "records":
            return self.record_json(parts[3])
        # /records/<id>/files/<key>
        if len(parts) >= 5 and parts[1] == "records" and parts[3] == "files":
            return self.serve_file(parts[2], "/".join(parts[4:]), honour_range=True)
        # /api/records/<id>/files/<key>/content
        if len(parts) >= 7 and parts[1] == "api" and parts[4] == "files" and parts[-1] == "content":
            return self.serve_file(parts[3], "/".join(parts[5:-1]), honour_range=False)
        return self.send_plain(404, '{"status": 404, "message": "not found"}')

    def control(self, q):
        with LOCK:
            if "reset" in q:
                pass
            if "fault" in q:
                STATE["faults"].append({"kind": q["fault"], "count": int(q.get("count", "1")),
                                        "key": q.get("key")})
            if "api_fault" in q:
                STATE["api_faults"].append({"kind": q["api_fault"], "count": int(q.get("count", "1"))})
            if "badsum" in q:
                STATE["badsum"].add(q["badsum"])
            if "style" in q:
                STATE["style"] = q["style"]
            if "rate" in q:
                STATE["rate"] = int(q["rate"])
            if "raw" in q:
                STATE["raw"] = q["raw"]
            if "raw_off" in q:
                STATE["raw"] = None
            if "unsafe" in q:
                STATE["unsafe"] = q["unsafe"] == "1"
            if "stats" in q:
                STATE["bytes"] = 0
                STATE["requests"] = 0
                STATE["ranges"] = []
        if "reset" in q:
            reset_state()
        return self.send_plain(200, "ok")

    def record_json(self, rid):
        kind = self.take_fault("api_faults", None)
        if kind == "429":
            return self.send_plain(429, "slow down", {"Retry-After": "1", "X-RateLimit-Limit": "60",
                                                      "X-RateLimit-Remaining": "0"})
        if kind in ("500", "503"):
            return self.send_plain(int(kind), "busy")
        with LOCK:
            raw = STATE["raw"]
        if raw is not None:
            return self.send_plain(200, raw, {"Content-Type": "application/json"})
        d = os.path.join(self.root, rid)
        if not rid.isdigit() or not os.path.isdir(d):
            return self.send_plain(404, '{"status": 404, "message": "PID does not exist."}',
                                   {"Content-Type": "application/json"})
        files = []
        with LOCK:
            style, bad, unsafe = STATE["style"], set(STATE["badsum"]), STATE["unsafe"]
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            md5 = md5_of(p)
            if name in bad:
                md5 = "0" * 32 if md5 != "0" * 32 else "1" * 32
            if style == "new":
                e = {"filename": name, "filesize": os.path.getsize(p), "checksum": "md5:" + md5}
            else:
                e = {"key": name, "size": os.path.getsize(p), "checksum": "md5:" + md5}
            e["links"] = {"self": "%s/api/records/%s/files/%s/content" % (self.base(), rid, name)}
            files.append(e)
        if unsafe:
            files.append({"key": "../evil", "size": 3, "checksum": "md5:" + "0" * 32})
        body = json.dumps({"id": int(rid), "files": files, "metadata": {"title": "record " + rid}})
        return self.send_plain(200, body, {"Content-Type": "application/json"})

    def base(self):
        return "http://%s:%d" % self.server.server_address[:2]

    def serve_file(self, rid, key, honour_range):
        p = os.path.join(self.root, rid, key)
        if "/" in key or key.startswith(".") or not os.path.isfile(p):
            return self.send_plain(404, "no such file")
        size = os.path.getsize(p)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng and honour_range and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a)
            end = int(b) if b else size - 1
            end = min(end, size - 1)
            if start >= size:
                return self.send_plain(416, "", {"Content-Range": "bytes */%d" % size})
            status = 206
        with LOCK:
            STATE["ranges"].append([start, end])
        kind = self.take_fault("faults", key)
        if kind in ("500", "503"):
            return self.send_plain(int(kind), "<html>server busy</html>", {"Content-Type": "text/html"})
        if kind == "429":
            return self.send_plain(429, "rate limited", {"Retry-After": "1", "X-RateLimit-Limit": "60",
                                                         "X-RateLimit-Remaining": "0"})
        n = end - start + 1
        self.send_response(status)
        self.send_header("Content-Length", str(n))
        self.send_header("Accept-Ranges", "bytes" if honour_range else "none")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        if self.command == "HEAD":
            return
        if kind == "stall":
            time.sleep(4)
        limit = n
        if kind in ("reset", "truncate"):
            limit = max(1, n // 2)
        with LOCK:
            rate = STATE["rate"]
        sent = 0
        t0 = time.time()
        try:
            with open(p, "rb") as f:
                f.seek(start)
                while sent < limit:
                    blk = f.read(min(64 << 10, limit - sent))
                    if not blk:
                        break
                    self.wfile.write(blk)
                    sent += len(blk)
                    with LOCK:
                        STATE["bytes"] += len(blk)
                    if rate:
                        ahead = sent / rate - (time.time() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if kind == "reset":
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif kind == "truncate":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    Handler.root = a.root
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
