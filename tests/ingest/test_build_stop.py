#!/usr/bin/python3
"""`tnrec build` that stops before the end keeps its finished work, and a
build with nothing usable is an error. The real binary throughout.

usage: test_build_stop.py SCENARIO --tnrec BIN --tmp DIR
scenarios:
  strict    --strict stops on a cut-short file: finished shards and the
            progress file stay, the partial shard goes, a resume line is
            printed; with a file before the resume point gone the rerun
            refuses; with the bad file removed the same command resumes
            (kept shards not rewritten) and equals a clean build
  fsize     a write fails (RLIMIT_FSIZE, ulimit -f) after two small shards:
            the same, resumed without the limit
  diskfull  the output tmpfs fills up after two shards (needs root and
            mount, else exit 77): the same; then a rerun on the tmpfs made
            read-only fails and keeps everything; resumed after growing it
  signal    SIGINT (-j1) and SIGTERM (-j2) mid-build: exit 130 / 143 with
            one line saying how to resume; the rerun resumes and equals a
            clean build
  signal_http  SIGINT while a tarball streamed over http (127.0.0.1)
            stalls: the build stops at once, keeps its shards and resumes
  empty     no .nc files, only cut-short files, a split or years that
            select nothing: exit 1 naming the source, the selection and the
            skip reasons by count; no manifest
"""
import argparse
import http.server
import os
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

import netCDF4

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_build_samples as samples  # noqa: E402
from ingest_common import FAILS, check, run, same_dirs, shards  # noqa: E402

PROGRESS = ".tnrec-build-progress.json"


def stamps(d):
    """inode and mtime of each shard: a rewritten shard changes both."""
    return {f: (st.st_ino, st.st_mtime_ns) for f in shards(d) for st in [os.stat(os.path.join(d, f))]}


def no_temporaries(d, what):
    tmp = [f for f in os.listdir(d) if ".tmp." in f]
    check(not tmp, "%s: no temporary file left (%s)" % (what, tmp))


def check_stopped(out, p, rc, what, min_shards=1):
    """After a stop: exit code, kept shards and progress, no manifest or
    partial shard, a line saying how to resume. Returns the kept shards'
    stamps."""
    check(p.returncode == rc, "%s: exit %d (got %d): %s" % (what, rc, p.returncode, p.stderr))
    files = os.listdir(out) if os.path.isdir(out) else []
    check("manifest.json" not in files, "%s: no manifest" % what)
    check(PROGRESS in files, "%s: progress file kept (%s)" % (what, files))
    kept = shards(out) if os.path.isdir(out) else []
    check(len(kept) >= min_shards, "%s: at least %d finished shard(s) kept (%s)" % (what, min_shards, kept))
    if os.path.isdir(out):
        no_temporaries(out, what)
        for s in kept:
            v = run([A.tnrec, "verify", os.path.join(out, s)], ok=False)
            check(v.returncode == 0, "%s: kept %s is whole: %s" % (what, s, v.stderr))
    resume = [l for l in p.stderr.splitlines() if "resume" in l and "the same command" in l]
    check(len(resume) == 1, "%s: one line saying how to resume: %r" % (what, p.stderr))
    check(resume and ("kept in '%s'" % out) in resume[0], "%s: the line names what is kept: %r" % (what, resume))
    check(resume and "tnrec build" in resume[0] and out in resume[0], "%s: the line gives the command" % what)
    return stamps(out) if os.path.isdir(out) else {}


def check_resumed(out, clean, args, before, what, **kw):
    p = run([A.tnrec, "build"] + [a for a in args if a != "-q"], **kw)
    check("kept from an interrupted run" in p.stderr, "%s: the rerun resumes: %r" % (what, p.stderr))
    after = stamps(out)
    for f, st in before.items():
        check(after.get(f) == st, "%s: kept %s not rewritten" % (what, f))
    same_dirs(out, clean, what + " vs a clean build")


def make_src(name, count, seed, years):
    """A directory of .nc files (train only, no catalog) and a clean build
    of it (built from the same path, so the manifests can match)."""
    root = os.path.join(A.tmp, name + "_root")
    samples.make_root(root, count, seed, years)
    return os.path.join(root, "train")


def flatten(path):
    """Make a sample's radar fields constant: its record compresses to
    almost nothing."""
    with netCDF4.Dataset(path, "a") as ds:
        for v in samples.VARS:
            ds.variables[v][:] = 0.0
        ds.variables["range_folded_mask"][:] = 0


def nc_files(d):
    out = []
    for dp, _, fs in os.walk(d):
        out += [os.path.join(dp, f) for f in fs if f.endswith(".nc")]
    return sorted(out, key=lambda p: os.path.relpath(p, d))


def scenario_strict():
    src = make_src("strict", 14, 31, [2013, 2014])
    args = ["-o", None, "--shard-records", "2", "-j1", "--strict"]
    clean = os.path.join(A.tmp, "clean")
    run([A.tnrec, "build", src] + [clean if a is None else a for a in args])
    # a cut-short file that sorts after the 2013 files (upper case first)
    good = nc_files(src)[0]
    bad = os.path.join(src, "2013", "bad_zz.nc")
    with open(good, "rb") as f, open(bad, "wb") as g:
        g.write(f.read()[:4000])
    out = os.path.join(A.tmp, "out")
    cmd = [src] + [out if a is None else a for a in args]
    p = run([A.tnrec, "build"] + cmd, ok=False)
    check("bad_zz.nc" in p.stderr, "--strict names the bad file: %r" % p.stderr)
    before = check_stopped(out, p, 1, "--strict", min_shards=2)
    # an input before the resume point gone: the rerun refuses rather than
    # mixing two selections, and touches nothing
    first = nc_files(src)[0]
    os.rename(first, first + ".away")
    p = run([A.tnrec, "build"] + cmd, ok=False)
    check(p.returncode == 1 and "not the ones selected now" in p.stderr and out in p.stderr,
          "inputs changed before the resume point: refused: %d %r" % (p.returncode, p.stderr))
    check(stamps(out) == before and os.path.exists(os.path.join(out, PROGRESS)),
          "inputs changed before the resume point: shards and progress untouched")
    os.rename(first + ".away", first)
    os.unlink(bad)
    check_resumed(out, clean, cmd, before, "--strict")


def scenario_fsize():
    src = make_src("fsize", 12, 37, [2013])
    files = nc_files(src)
    for f in files[:4]:
        flatten(f)  # shards 0 and 1 are small, shard 2 is not
    args = [src, "--shard-records", "2", "-j1", "-q"]
    clean = os.path.join(A.tmp, "clean")
    run([A.tnrec, "build", "-o", clean] + args)
    sizes = [os.path.getsize(os.path.join(clean, s)) for s in shards(clean)]
    limit = max(sizes[0], sizes[1], os.path.getsize(os.path.join(clean, "manifest.json"))) + 65536
    check(limit < sizes[2], "the limit (%d) lies between the small shards and shard 2 (%s)" % (limit, sizes))
    out = os.path.join(A.tmp, "out")

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = run([A.tnrec, "build", "-o", out] + args, ok=False, preexec_fn=limited)
    check("shard-00002" in p.stderr and "File too large" in p.stderr,
          "the error names the shard and the cause: %r" % p.stderr)
    before = check_stopped(out, p, 1, "RLIMIT_FSIZE", min_shards=2)
    check(sorted(before) == ["shard-00000.tnr", "shard-00001.tnr"], "the two small shards kept: %s" % sorted(before))
    check_resumed(out, clean, ["-o", out] + args, before, "RLIMIT_FSIZE")


def mount_tmpfs(d, size):
    os.makedirs(d, exist_ok=True)
    if os.geteuid() != 0:
        return False
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", d], capture_output=True)
    return p.returncode == 0


def scenario_diskfull():
    src = make_src("full", 12, 41, [2013])
    args = [src, "--shard-records", "2", "-j1", "-q"]
    clean = os.path.join(A.tmp, "clean")
    run([A.tnrec, "build", "-o", clean] + args)
    sizes = [os.path.getsize(os.path.join(clean, s)) for s in shards(clean)]
    mnt = os.path.join(A.tmp, "mnt")
    # room for two shards and a half: the third cannot be written
    kib = (sizes[0] + sizes[1] + sizes[2] // 2) // 1024
    if not mount_tmpfs(mnt, "%dk" % kib):
        print("diskfull: skipped (needs root and mount -t tmpfs)")
        return 77
    try:
        out = os.path.join(mnt, "out")
        p = run([A.tnrec, "build", "-o", out] + args, ok=False)
        check("No space left on device" in p.stderr, "the error says the disk is full: %r" % p.stderr)
        before = check_stopped(out, p, 1, "disk full", min_shards=2)
        # the target turned read-only: the rerun fails naming it and keeps everything
        run(["mount", "-o", "remount,ro", mnt])
        p = run([A.tnrec, "build", "-o", out] + args, ok=False)
        check("Read-only file system" in p.stderr, "the error says the target is read-only: %r" % p.stderr)
        check(check_stopped(out, p, 1, "read-only", min_shards=2) == before, "read-only: shards untouched")
        run(["mount", "-o", "remount,rw,size=64m", mnt])
        check_resumed(out, clean, ["-o", out] + args, before, "disk full")
    finally:
        subprocess.run(["umount", mnt])
    return 0


def scenario_signal():
    src = make_src("sig", 24, 43, [2013])
    args = [src, "--shard-records", "2", "-j1", "--zstd-level", "6"]
    clean = os.path.join(A.tmp, "clean")
    run([A.tnrec, "build", "-o", clean] + args + ["-q"])
    # SIGTERM with two threads: the workers stop inside a parallel batch
    for sig, rc, threads in ((signal.SIGINT, 130, "-j1"), (signal.SIGTERM, 143, "-j2")):
        what = signal.Signals(sig).name
        out = os.path.join(A.tmp, "out_" + what)
        args = [a if a != "-j1" else threads for a in args]
        proc = subprocess.Popen([A.tnrec, "build", "-o", out] + args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while not os.path.exists(os.path.join(out, "shard-00002.tnr")) and proc.poll() is None \
                and time.time() - t0 < 60:
            time.sleep(0.002)
        sent = proc.poll() is None
        if sent:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate()
        check(sent, "%s: the build was still running when signalled" % what)
        if not sent:
            continue
        p = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        before = check_stopped(out, p, rc, what, min_shards=3)
        check(len(stderr.strip().splitlines()) == 1, "%s: one line on stderr: %r" % (what, stderr))
        check(("interrupted by %s" % what) in stderr, "%s: the line says what stopped it" % what)
        check_resumed(out, clean, ["-o", out] + args, before, what)


class StallServer:
    """Serves one file over http on 127.0.0.1; with stall_at set, stops
    sending at that byte until released (a stalled download)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        self.stall_at = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(outer.data)))
                self.end_headers()
                sent = 0
                try:
                    while sent < len(outer.data):
                        if outer.stall_at is not None and sent >= outer.stall_at:
                            outer.stalled.set()
                            outer.release.wait(60)
                        n = min(65536, len(outer.data) - sent)
                        if outer.stall_at is not None and sent < outer.stall_at:
                            n = min(n, outer.stall_at - sent)
                        self.wfile.write(outer.data[sent:sent + n])
                        sent += n
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/%s" % (self.srv.server_address[1], os.path.basename(path))

    def stop(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()


def scenario_signal_http():
    feats = run([A.tnrec, "--version"]).stdout
    if "curl" not in feats:
        print("signal_http: skipped (built without curl)")
        return 77
    src = make_src("http", 40, 53, [2013])
    root = os.path.dirname(src)
    tar = os.path.join(A.tmp, "tornet_2013.tar")
    members = sorted(os.path.relpath(f, root) for f in nc_files(root))
    with tarfile.open(tar, "w") as t:
        for rel in members:
            t.add(os.path.join(root, rel), arcname=rel)
    with tarfile.open(tar) as t:
        offsets = [m.offset for m in t.getmembers()]
    srv = StallServer(tar)
    try:
        args = [srv.url, "--shard-records", "2", "-j1"]
        clean = os.path.join(A.tmp, "clean")
        run([A.tnrec, "build", "-o", clean] + args + ["-q"])
        # the first batch (32 samples at -j1) is written, then the stream stalls
        srv.stall_at = offsets[34]
        out = os.path.join(A.tmp, "out")
        proc = subprocess.Popen([A.tnrec, "build", "-o", out] + args, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        stalled = srv.stalled.wait(60)
        t0 = time.time()  # the first batch (shards 0..14) is written while the stream stalls
        while not os.path.exists(os.path.join(out, "shard-00014.tnr")) and proc.poll() is None \
                and time.time() - t0 < 60:
            time.sleep(0.05)
        time.sleep(0.5)
        check(stalled and proc.poll() is None, "http: the build waits on the stalled stream")
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        check(time.time() - t0 < 5, "http: stopped within 5 s of SIGINT (%.1f s)" % (time.time() - t0))
        p = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
        before = check_stopped(out, p, 130, "http SIGINT", min_shards=15)
        srv.stall_at = None
        srv.release.set()
        check_resumed(out, clean, ["-o", out] + args, before, "http SIGINT")
    finally:
        srv.stop()


def scenario_empty():
    empty = os.path.join(A.tmp, "no_nc")
    os.makedirs(empty)
    with open(os.path.join(empty, "readme.txt"), "w") as f:
        f.write("no samples here\n")
    out = os.path.join(A.tmp, "out_empty")
    p = run([A.tnrec, "build", empty, "-o", out, "--split", "train", "--years", "2013-2014"], ok=False)
    check(p.returncode == 1, "no .nc files: exit 1 (%d)" % p.returncode)
    check(("'%s'" % empty) in p.stderr and "split train" in p.stderr and "2013-2014" in p.stderr,
          "no .nc files: names the source, split and years: %r" % p.stderr)
    check(not os.path.exists(os.path.join(out, "manifest.json")), "no .nc files: no manifest")
    check(not os.path.exists(out), "no .nc files: no empty output directory left")

    src = make_src("trunc", 6, 47, [2013])
    files = nc_files(src)
    n = len(files)
    for f in files[:n - 2]:
        with open(f, "rb") as x:
            data = x.read()
        with open(f, "wb") as x:
            x.write(data[: len(data) // 3])
    for f in files[n - 2:]:
        with open(f, "wb") as x:
            x.write(b"this is no NetCDF file")
    out = os.path.join(A.tmp, "out_trunc")
    p = run([A.tnrec, "build", src, "-o", out], ok=False)
    check(p.returncode == 1, "only bad files: exit 1 (%d)" % p.returncode)
    err = [l for l in p.stderr.splitlines() if "skipped '" not in l]
    text = "\n".join(err)
    check(("'%s'" % src) in text and "split all" in text and "years all" in text,
          "only bad files: names the source and selection: %r" % text)
    check(("%d skipped" % n) in text, "only bad files: says all %d were skipped: %r" % (n, text))
    check(("%d x " % (n - 2)) in text and "2 x " in text and "NetCDF" in text, "only bad files: reasons by count: %r" % text)
    check(not os.path.exists(os.path.join(out, "manifest.json")), "only bad files: no manifest")
    check(not os.path.exists(out), "only bad files: no empty output directory left")

    root = os.path.join(A.tmp, "trunc_root")
    out = os.path.join(A.tmp, "out_years")
    p = run([A.tnrec, "build", root, "-o", out, "--years", "2019"], ok=False)
    check(p.returncode == 1 and "years 2019" in p.stderr, "years that select nothing: %d %r" % (p.returncode, p.stderr))
    check(not os.path.exists(os.path.join(out, "manifest.json")), "years that select nothing: no manifest")


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    A = ap.parse_args()
    shutil.rmtree(A.tmp, ignore_errors=True)
    os.makedirs(A.tmp)
    rc = globals()["scenario_" + A.scenario]()
    if rc == 77:
        shutil.rmtree(A.tmp, ignore_errors=True)
        return 77
    if FAILS:
        print("%s: %d check(s) failed" % (A.scenario, len(FAILS)), file=sys.stderr)
        return 1
    print("%s: all checks passed" % A.scenario)
    shutil.rmtree(A.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
