#!/usr/bin/python3
"""`tnrec mirror` from a loopback fake Zenodo into a directory, through faults.

Every scenario ends with correct files or a clear failure, never a wrong
file under its final name: resets, 500/503, 429 + Retry-After, truncated
bodies, a stalled body, a wrong published MD5, an API rate limit, unsafe
names, a URL that ignores Range, a kill -9 in the middle (resume fetches
less than the whole file again), the tornet alias, --verify of a directory.
usage: test_mirror_zenodo.py TNREC_BIN SCRATCH_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from mirror_testlib import check, finish, md5

HERE = os.path.dirname(os.path.abspath(__file__))
TNREC, SCRATCH = sys.argv[1], sys.argv[2]
TORNET = ["12636522", "12637032", "12655151", "12655179", "12655183",
          "12655187", "12655716", "12655717", "12655718", "12655719"]


class Server:
    def __init__(self, root):
        pf = os.path.join(SCRATCH, "port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_zenodo.py"),
                                   "--root", root, "--port-file", pf])
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.url = "http://127.0.0.1:%s" % open(pf).read().strip()

    def ctl(self, **kw):
        q = "&".join("%s=%s" % kv for kv in kw.items())
        urllib.request.urlopen(self.url + "/_control?" + q).read()

    def stats(self):
        return json.loads(urllib.request.urlopen(self.url + "/_stats").read())

    def stop(self):
        self.p.terminate()
        self.p.wait()


def run(srv, *args, timeout=60):
    cmd = [TNREC, "mirror", "--zenodo-url", srv.url, "--retry-delay", "20"] + list(args)
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    r.elapsed = time.time() - t0
    return r


def leftovers(d):
    out = []
    for base, _, files in os.walk(d):
        out += [f for f in files if ".tnrec-" in f]
    return out


def same_tree(src, dst, names):
    ok = True
    for n in names:
        p = os.path.join(dst, n)
        ok &= os.path.isfile(p) and md5(p) == md5(os.path.join(src, n))
    return ok


def main():
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    root = os.path.join(SCRATCH, "zenodo")
    rnd = open("/dev/urandom", "rb")
    r1 = os.path.join(root, "1001")
    os.makedirs(r1)
    open(os.path.join(r1, "big.bin"), "wb").write(rnd.read(6 << 20 | 12345))
    open(os.path.join(r1, "small.txt"), "wb").write(b"TorNet catalog line\n")
    open(os.path.join(r1, "empty.dat"), "wb").close()
    names1 = ["big.bin", "small.txt", "empty.dat"]
    r3 = os.path.join(root, "1003")
    os.makedirs(r3)
    open(os.path.join(r3, "slow.bin"), "wb").write(rnd.read(12 << 20))
    for i, rid in enumerate(TORNET):
        d = os.path.join(root, rid)
        os.makedirs(d)
        open(os.path.join(d, "tornet_%d.tar.gz" % (2013 + i)), "wb").write(rnd.read(1000 + i))
    open(os.path.join(root, TORNET[0], "catalog.csv"), "wb").write(b"filename,type\n")
    srv = Server(root)
    out = lambda name: os.path.join(SCRATCH, name)
    try:
        # plain mirror, then an idempotent rerun that fetches nothing
        r = run(srv, "--connections", "4", "zenodo:1001", out("a"))
        check(r.returncode == 0, "basic mirror: rc %d %s" % (r.returncode, r.stderr))
        check(same_tree(r1, out("a"), names1), "basic mirror: files equal")
        check(not leftovers(out("a")), "basic mirror: no temp files left")
        check("copied 3" in r.stdout, "basic mirror: table says copied 3")
        srv.ctl(stats=1)
        r = run(srv, "zenodo:1001", out("a"))
        check(r.returncode == 0 and "skipped 3" in r.stdout, "rerun skips: " + r.stdout + r.stderr)
        check(srv.stats()["ranges"] == [], "rerun fetched no file bytes")

        # the newer field spelling
        srv.ctl(style="new")
        r = run(srv, "zenodo:1001", out("b"))
        check(r.returncode == 0 and same_tree(r1, out("b"), names1), "filename/filesize spelling")
        srv.ctl(style="old")

        # transient faults: the mirror ends with the right bytes
        for kind in ["reset", "500", "503", "429", "truncate"]:
            srv.ctl(reset=1)
            srv.ctl(fault=kind, count=2, key="big.bin")
            d = out("fault_" + kind)
            r = run(srv, "--connections", "3", "zenodo:1001", d)
            ok = check(r.returncode == 0, "fault %s: rc %d %s" % (kind, r.returncode, r.stderr))
            check(ok and same_tree(r1, d, names1), "fault %s: files equal" % kind)
            check(not leftovers(d), "fault %s: no temp files" % kind)
            if kind == "429":
                check(r.elapsed >= 0.9, "429: Retry-After (1 s) honoured, took %.2f s" % r.elapsed)
        # a stalled body is abandoned by the low-speed timeout and retried
        srv.ctl(reset=1)
        srv.ctl(fault="stall", count=1, key="big.bin")
        d = out("stall")
        r = run(srv, "--low-speed-time", "1", "--connections", "1", "zenodo:1001/big.bin", d)
        check(r.returncode == 0 and same_tree(r1, d, ["big.bin"]), "stall: " + r.stderr)

        # a fault that does not pass: a clear failure, nothing under the final name
        srv.ctl(reset=1)
        srv.ctl(fault="503", count=1000, key="big.bin")
        d = out("persistent")
        r = run(srv, "--retries", "2", "zenodo:1001", d)
        check(r.returncode == 1, "persistent 503: rc %d" % r.returncode)
        check("HTTP 503" in r.stderr and "big.bin" in r.stderr, "persistent 503: message: " + r.stderr)
        check(not os.path.exists(os.path.join(d, "big.bin")), "persistent 503: no final file")
        check(same_tree(r1, d, ["small.txt", "empty.dat"]), "persistent 503: the other files done")
        check("failed 1" in r.stdout, "persistent 503: table counts the failure")
        # ... and the next run, with the server healthy, resumes and finishes
        srv.ctl(reset=1)
        r = run(srv, "zenodo:1001", d)
        check(r.returncode == 0 and same_tree(r1, d, names1), "after persistent 503: rerun completes")

        # a wrong published checksum: refused, deleted, reported
        srv.ctl(reset=1)
        srv.ctl(badsum="big.bin")
        d = out("badsum")
        r = run(srv, "zenodo:1001", d)
        check(r.returncode == 1 and "MD5" in r.stderr, "bad checksum: rc %d %s" % (r.returncode, r.stderr))
        check(not os.path.exists(os.path.join(d, "big.bin")), "bad checksum: no final file")
        check(not leftovers(d), "bad checksum: temp file deleted")
        # an existing good copy is not replaced by a bad download
        r = run(srv, "zenodo:1001/big.bin", out("a"))
        check(r.returncode == 1 and md5(os.path.join(out("a"), "big.bin")) == md5(os.path.join(r1, "big.bin")),
              "bad checksum: the good copy stays")
        srv.ctl(reset=1)

        # the API itself rate-limited once
        srv.ctl(api_fault="429", count=1)
        r = run(srv, "zenodo:1001/small.txt", out("api429"))
        check(r.returncode == 0 and same_tree(r1, out("api429"), ["small.txt"]), "API 429: " + r.stderr)
        check(not os.path.exists(os.path.join(out("api429"), "big.bin")), "RECORD/FILE fetches one file")

        # bad sources: clear errors
        r = run(srv, "zenodo:1001/nope.bin", out("bad"))
        check(r.returncode == 1 and "no file 'nope.bin'" in r.stderr, "missing file: " + r.stderr)
        r = run(srv, "zenodo:999", out("bad"))
        check(r.returncode == 1 and "not found" in r.stderr, "missing record: " + r.stderr)
        r = run(srv, "zenodo:12ab", out("bad"))
        check(r.returncode == 1 and "must be a number" in r.stderr, "bad record id: " + r.stderr)
        r = run(srv, "ftp://x/y", out("bad"))
        check(r.returncode == 1 and "unknown source" in r.stderr, "bad source: " + r.stderr)
        r = subprocess.run([TNREC, "mirror", "--connections", "0", "tornet", out("bad")], capture_output=True, text=True)
        check(r.returncode == 2, "bad option value is a usage error")

        # malformed API answers: a clear error each time, never a crash
        good = json.dumps({"files": [{"key": "small.txt", "size": 20,
                                      "checksum": "md5:" + md5(os.path.join(r1, "small.txt"))}]})
        bodies = ["", "null", "[]", "{", '{"files": 3}', '{"files": [3]}', '{"files": [{}]}',
                  '{"files": [{"key": 5, "size": 1}]}', '{"files": [{"key": "a", "size": -1}]}',
                  '{"files": [{"key": "a", "size": "big"}]}', '{"files": [{"key": "a", "size": 1, "checksum": "sha1:00"}]}',
                  '{"files": [{"key": "a", "size": 1, "checksum": "md5:zz"}]}', '{"files": {"entries": 7}}',
                  '{"files": [{"key": "", "size": 1}]}', '{"files": [{"key": "/etc/passwd", "size": 1}]}',
                  '{"files": [{"key": "a\\b", "size": 1}]}', '{"files": [{"key": "a", "size": 1e300}]}',
                  '{"files": []}', "\u0000" * 10, "x" * 20000]
        for cut in range(1, len(good), 7):
            bodies.append(good[:cut])
        for i, body in enumerate(bodies):
            srv.ctl(raw=urllib.parse.quote(body))
            r = run(srv, "--retries", "0", "zenodo:1001", out("garbage%d" % i))
            check(r.returncode == 1 and "error:" in r.stderr,
                  "malformed API answer %r: rc %d %s" % (body[:60], r.returncode, r.stderr[-300:]))
        srv.ctl(raw_off=1)

        # names that would escape the destination
        srv.ctl(unsafe=1)
        d = out("unsafe") + "/inner"
        r = run(srv, "zenodo:1001", d)
        check(r.returncode == 1 and "unsafe file name '../evil'" in r.stderr, "unsafe name: " + r.stderr)
        check(not os.path.exists(out("unsafe") + "/evil"), "unsafe name: nothing written outside")
        srv.ctl(unsafe=0)

        # a URL that ignores Range: detected, fetched on one connection
        d = out("norange")
        url = srv.url + "/api/records/1003/files/slow.bin/content"
        r = run(srv, "--connections", "4", "-v", url, d)
        check(r.returncode == 0 and md5(os.path.join(d, "content")) == md5(os.path.join(r3, "slow.bin")),
              "Range ignored: " + r.stderr[-2000:])
        check("ignores Range" in r.stderr, "Range ignored: logged")
        # plain URL source with Range
        d = out("url")
        r = run(srv, "--connections", "4", srv.url + "/records/1001/files/big.bin?download=1", d)
        check(r.returncode == 0 and same_tree(r1, d, ["big.bin"]), "URL source: " + r.stderr)

        # a password in a source URL is never shown (verbose log, table, errors)
        d = out("userinfo")
        pw_url = srv.url.replace("http://", "http://user:PASSWORDmark93@") + "/records/1001/files/small.txt?download=1"
        r = run(srv, "-v", pw_url, d)
        check(r.returncode == 0 and same_tree(r1, d, ["small.txt"]), "URL with user:password: " + r.stderr)
        check("PASSWORDmark93" not in r.stdout + r.stderr, "URL password not shown")
        r = run(srv, "-v", pw_url.replace("small.txt", "absent.txt"), d)
        check(r.returncode == 1 and "PASSWORDmark93" not in r.stdout + r.stderr, "URL password not in errors")

        # the tornet alias: ten records and catalog.csv
        d = out("tornet")
        r = run(srv, "--jobs", "3", "tornet", d)
        check(r.returncode == 0 and "copied 11" in r.stdout, "tornet alias: " + r.stdout + r.stderr)
        check(os.path.isfile(os.path.join(d, "catalog.csv")) and
              os.path.isfile(os.path.join(d, "tornet_2022.tar.gz")), "tornet alias: files present")

        # verify a directory against the record; a damaged byte is found
        r = run(srv, "--verify", out("a"), "zenodo:1001")
        check(r.returncode == 0 and "verified 3" in r.stdout, "verify dir: " + r.stdout + r.stderr)
        with open(os.path.join(out("a"), "big.bin"), "r+b") as f:
            f.seek(4097)
            b = f.read(1)
            f.seek(4097)
            f.write(bytes([b[0] ^ 1]))
        r = run(srv, "--verify", out("a"), "zenodo:1001")
        check(r.returncode == 1 and "MD5" in r.stderr and "failed 1" in r.stdout, "verify finds damage: " + r.stderr)
        # ... and a mirror rerun repairs it (size equal, MD5 not: fetched again)
        r = run(srv, "zenodo:1001", out("a"))
        check(r.returncode == 0 and same_tree(r1, out("a"), names1), "rerun repairs a damaged copy")

        # rate limit: a lower bound on the time (6 MiB at 2 MiB/s)
        d = out("limited")
        r = run(srv, "--limit-rate", "2M", "--connections", "2", "zenodo:1001/big.bin", d)
        check(r.returncode == 0 and same_tree(r1, d, ["big.bin"]), "limit-rate: files equal")
        check(r.elapsed >= 1.5, "limit-rate: took %.2f s for 6 MiB at 2 MiB/s" % r.elapsed)

        # kill -9 in the middle, then resume: fewer bytes fetched again
        srv.ctl(reset=1)
        srv.ctl(rate=1500000)
        d = out("resume")
        cmd = [TNREC, "mirror", "--zenodo-url", srv.url, "--connections", "2", "zenodo:1003", d]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = os.path.join(d, "slow.bin.tnrec-state")
        recorded = 0
        t0 = time.time()
        while time.time() - t0 < 20 and recorded < (3 << 20):
            time.sleep(0.1)
            try:
                segs = json.load(open(state))["segments"]
                recorded = sum(s[2] - s[0] for s in segs)
            except (OSError, ValueError, KeyError):
                pass
        p.send_signal(signal.SIGKILL)
        p.wait()
        time.sleep(0.5)  # let the server notice the dead connections before counting
        check(recorded >= (3 << 20), "resume: progress was checkpointed before the kill (%d)" % recorded)
        check(not os.path.exists(os.path.join(d, "slow.bin")), "resume: no final file after the kill")
        srv.ctl(rate=0)
        srv.ctl(stats=1)
        r = run(srv, "--connections", "2", "zenodo:1003", d)
        sent = srv.stats()["bytes"]
        check(r.returncode == 0 and same_tree(r3, d, ["slow.bin"]), "resume: file correct: " + r.stderr)
        check(sent <= (12 << 20) - recorded, "resume: fetched %d bytes again of %d (%d recorded)"
              % (sent, 12 << 20, recorded))
        check(not leftovers(d), "resume: no temp files left")
    finally:
        srv.stop()
    return finish("test_mirror_zenodo")


if __name__ == "__main__":
    sys.exit(main())
