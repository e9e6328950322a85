#!/usr/bin/python3
"""`tnrec mirror`'s progress when stderr is a pipe, and --quiet.

The fake Zenodo of test_mirror_zenodo.py throttles its answers so that the
copy lasts a few seconds; --progress-interval 0.1. On the pipe (stderr and
stdout into one, as in `... 2>&1 | tee log`): every line is whole and of a
known form ("tnrec mirror: NAME: STATE" or "tnrec mirror: X of Y after N
s"), no terminal escape, each file's start line before its end line and
each exactly once (small files too, copied between two progress calls),
periodic totals lines with growing times, none after the table; with
--verbose the worker threads' log lines stay whole; a file that fails ends
on "failed"; --verify says "checking" then "verified". With --quiet: no
progress line at all, while a missing file, a 404 URL, an unreachable host
and a wrong MD5 still print their error.
usage: test_mirror_progress.py TNREC_BIN SCRATCH_DIR
"""
import os
import re
import shutil
import subprocess
import sys

from mirror_testlib import check, finish
from test_mirror_zenodo import SCRATCH, TNREC, Server, same_tree

FILES = {"1001": ["big.bin", "small.txt", "empty.dat"], "1003": ["slow.bin"]}
STATE = re.compile(r"tnrec mirror: (\S+): (waiting|copying|checking|copied|skipped|verified|failed)")
TOTALS = re.compile(r"tnrec mirror: [0-9.]+ (B|KiB|MiB|GiB) of [0-9.]+ (B|KiB|MiB|GiB) after ([0-9.]+) s")
PROGRESS = re.compile(r"tnrec mirror: (\S+: (copying|checking|copied|skipped|verified|failed)|.* after [0-9.]+ s)$")


def mirror(srv, *args):
    """Runs tnrec mirror with stdout and stderr into one pipe: the lines in
    the order they were written, and the exit code."""
    cmd = [TNREC, "mirror", "--zenodo-url", srv.url, "--retry-delay", "20"] + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    return r.returncode, r.stdout


def states(lines, name):
    return [m.group(2) for m in (STATE.fullmatch(l) for l in lines) if m and m.group(1) == name]


def check_plain(what, out, start, ends):
    """The pipe's lines: ends maps each file to the state it must end on."""
    check("\033" not in out, "%s: no terminal escape on the pipe: %r" % (what, out))
    lines = out.splitlines()
    table = next((i for i, l in enumerate(lines) if l.startswith("file ")), len(lines))
    check(table < len(lines), "%s: the table follows: %r" % (what, out))
    progress = lines[:table]
    check(not [l for l in lines[table:] if PROGRESS.match(l)],
          "%s: no progress line after the table: %r" % (what, lines[table:]))
    for name, end in ends.items():
        got = states(progress, name)
        want = [end] if end in ("failed", "skipped") else [start, end]
        check(got == want or (end == "failed" and got == [start, end]),
              "%s: %s: state lines %s, want %s" % (what, name, got, want))
    return progress


def pipe_copy(srv, root):
    d = os.path.join(SCRATCH, "pipe")
    srv.ctl(reset=1)
    srv.ctl(rate=600000)  # per answer: 2 connections per file, about 2 s for the bigger files
    rc, out = mirror(srv, "--connections", "2", "--jobs", "2", "--progress-interval", "0.1",
                     "zenodo:1001", "zenodo:1003", d)
    srv.ctl(rate=0)
    check(rc == 0, "pipe: exit 0 (got %d): %s" % (rc, out))
    ends = {n: "copied" for names in FILES.values() for n in names}
    progress = check_plain("pipe", out, "copying", ends)
    odd = [l for l in progress if not (STATE.fullmatch(l) or TOTALS.fullmatch(l))]
    check(not odd, "pipe: every line whole and of a known form: %r" % odd)
    times = [float(m.group(3)) for m in (TOTALS.fullmatch(l) for l in progress) if m]
    check(len(times) >= 2, "pipe: periodic totals lines (%d): %r" % (len(times), out))
    check(times == sorted(times) and len(set(times)) == len(times),
          "pipe: the totals lines' times grow: %s" % times)
    for rid, names in FILES.items():
        check(same_tree(os.path.join(root, rid), d, names), "pipe: record %s copied right" % rid)
    print("pipe: %d progress lines, %d of them totals" % (len(progress), len(times)))

    # the same verified: a start line before each end line there too
    rc, out = mirror(srv, "--verify", "--progress-interval", "0.1", d, "zenodo:1001", "zenodo:1003")
    check(rc == 0, "verify: exit 0 (got %d): %s" % (rc, out))
    check_plain("verify", out, "checking", {n: "verified" for names in FILES.values() for n in names})


def pipe_verbose(srv):
    """Log lines from the worker threads and progress lines share stderr."""
    d = os.path.join(SCRATCH, "verbose")
    srv.ctl(reset=1)
    srv.ctl(rate=2000000)
    rc, out = mirror(srv, "--verbose", "--connections", "4", "--jobs", "2", "--progress-interval", "0.1",
                     "zenodo:1001", "zenodo:1003", d)
    srv.ctl(rate=0)
    check(rc == 0, "verbose: exit 0 (got %d): %s" % (rc, out))
    progress = check_plain("verbose", out, "copying", {n: "copied" for names in FILES.values() for n in names})
    broken = [l for l in progress if not l.startswith("tnrec mirror: ") or l.count("tnrec mirror:") != 1]
    check(not broken, "verbose: every line whole: %r" % broken)


def pipe_failure(srv):
    d = os.path.join(SCRATCH, "badsum")
    srv.ctl(reset=1)
    srv.ctl(badsum="small.txt")
    rc, out = mirror(srv, "--progress-interval", "0.1", "zenodo:1001", d)
    check(rc == 1, "badsum: exit 1 (got %d): %s" % (rc, out))
    check_plain("badsum", out, "copying", {"small.txt": "failed", "big.bin": "copied", "empty.dat": "copied"})
    srv.ctl(reset=1)


def quiet(srv, root):
    d = os.path.join(SCRATCH, "quiet")
    srv.ctl(reset=1)
    srv.ctl(rate=1000000)
    rc, out = mirror(srv, "--quiet", "--connections", "2", "--progress-interval", "0.1", "zenodo:1003", d)
    srv.ctl(rate=0)
    check(rc == 0, "--quiet: exit 0 (got %d): %s" % (rc, out))
    check(not [l for l in out.splitlines() if l.startswith("tnrec mirror:")],
          "--quiet: no progress line over a second of copying: %r" % out)
    check(same_tree(os.path.join(root, "1003"), d, FILES["1003"]), "--quiet: the file is copied")
    cases = [
        ("a missing file", ["zenodo:1001/missing.bin"], "missing.bin"),
        ("a URL answering 404", [srv.url + "/nope/x.bin"], "404"),
        ("an unreachable host", ["--retries", "0", "http://127.0.0.1:1/x.bin"], "127.0.0.1:1"),
        ("a wrong MD5", ["zenodo:1001"], "small.txt"),
    ]
    for what, args, word in cases:
        if what == "a wrong MD5":
            srv.ctl(badsum="small.txt")
        rc, out = mirror(srv, "--quiet", "--progress-interval", "0.1", *args, os.path.join(SCRATCH, "quiet_err"))
        srv.ctl(reset=1)
        err = [l for l in out.splitlines() if l.startswith("tnrec mirror:")]
        check(rc == 1, "--quiet, %s: exit 1 (got %d): %s" % (what, rc, out))
        check(err and "error" in err[0] and word in err[0], "--quiet, %s: the error is printed: %r" % (what, out))
        check(not [l for l in err if PROGRESS.match(l)], "--quiet, %s: no progress line: %r" % (what, out))


def main():
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    root = os.path.join(SCRATCH, "zenodo")
    with open("/dev/urandom", "rb") as rnd:
        for rid in FILES:
            os.makedirs(os.path.join(root, rid))
        with open(os.path.join(root, "1001", "big.bin"), "wb") as f:
            f.write(rnd.read(2 << 20 | 777))
        with open(os.path.join(root, "1001", "small.txt"), "wb") as f:
            f.write(b"TorNet catalog line\n")
        open(os.path.join(root, "1001", "empty.dat"), "wb").close()
        with open(os.path.join(root, "1003", "slow.bin"), "wb") as f:
            f.write(rnd.read(2 << 20))
    srv = Server(root)
    try:
        pipe_copy(srv, root)
        pipe_verbose(srv)
        pipe_failure(srv)
        quiet(srv, root)
    finally:
        srv.stop()
    return finish("test_mirror_progress")


if __name__ == "__main__":
    sys.exit(main())
