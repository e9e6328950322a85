#!/usr/bin/python3
"""`tnrec mirror` stopped by SIGINT or SIGTERM, then resumed.

The fake Zenodo of test_mirror_zenodo.py serves a 12 MiB file slowly; the
signal comes once the state file records some of it. The run must end
within seconds with exit 130 (SIGINT) or 143 (SIGTERM) and one line
saying how to resume, keep the partial download and its state (checkpointed
on the way out, at least as far as before the signal), start no other file
and write nothing under a final name; the same command then completes with
the right bytes, fetching only what was missing.
usage: test_mirror_signal.py TNREC_BIN SCRATCH_DIR
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from mirror_testlib import check, finish
from test_mirror_zenodo import SCRATCH, TNREC, Server, leftovers, same_tree


def recorded(state):
    try:
        with open(state) as f:
            return sum(s[2] - s[0] for s in json.load(f)["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def stop_and_resume(srv, root, sig, code):
    what = signal.Signals(sig).name
    d = os.path.join(SCRATCH, "out_" + what)
    srv.ctl(reset=1)
    srv.ctl(rate=1500000)
    cmd = [TNREC, "mirror", "--zenodo-url", srv.url, "--connections", "2", "--jobs", "1",
           "zenodo:1003", "zenodo:1001", d]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = os.path.join(d, "slow.bin.tnrec-state")
    t0 = time.time()
    while time.time() - t0 < 20 and recorded(state) < (2 << 20) and p.poll() is None:
        time.sleep(0.05)
    before = recorded(state)
    running = p.poll() is None
    t1 = time.time()
    if running:
        p.send_signal(sig)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.time() - t1
    check(running and before >= (2 << 20), "%s: signalled mid-download (%d bytes recorded)" % (what, before))
    check(p.returncode == code, "%s: exit %d (got %d): %s" % (what, code, p.returncode, err))
    check(took < 5, "%s: stopped within 5 s (%.1f s)" % (what, took))
    print("%s: exit %d %.2f s after the signal, %d bytes checkpointed" % (what, p.returncode, took, recorded(state)))
    lines = [l for l in err.splitlines() if "interrupted" in l or "error" in l]
    check(len(lines) == 1 and ("interrupted by %s" % what) in lines[0] and "the same command" in lines[0]
          and "tnrec mirror" in lines[0], "%s: one line saying how to resume: %r" % (what, err))
    after = recorded(state)
    check(os.path.exists(os.path.join(d, "slow.bin.tnrec-part")), "%s: the partial download is kept" % what)
    check(after >= before, "%s: state checkpointed on the way out (%d >= %d)" % (what, after, before))
    check(not os.path.exists(os.path.join(d, "slow.bin")), "%s: nothing under the final name" % what)
    check(not any(os.path.exists(os.path.join(d, n)) for n in ("big.bin", "small.txt", "empty.dat")),
          "%s: the other record was not started" % what)
    check(not [f for f in os.listdir(d) if ".tmp." in f], "%s: no temporary file left" % what)
    time.sleep(0.5)  # let the server notice the closed connections before counting
    srv.ctl(rate=0)
    srv.ctl(stats=1)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    sent = srv.stats()["bytes"]
    check(r.returncode == 0, "%s: the rerun completes: %s" % (what, r.stderr))
    check(same_tree(os.path.join(root, "1003"), d, ["slow.bin"]) and
          same_tree(os.path.join(root, "1001"), d, ["big.bin", "small.txt", "empty.dat"]),
          "%s: the files equal the source" % what)
    total = (12 << 20) + (6 << 20 | 12345) + 20
    check(sent <= total - after, "%s: the rerun fetched %d bytes of %d (%d were kept)" % (what, sent, total, after))
    check(not leftovers(d), "%s: no temp files left after the rerun" % what)


def main():
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    root = os.path.join(SCRATCH, "zenodo")
    with open("/dev/urandom", "rb") as rnd:
        r1 = os.path.join(root, "1001")
        os.makedirs(r1)
        with open(os.path.join(r1, "big.bin"), "wb") as f:
            f.write(rnd.read(6 << 20 | 12345))
        with open(os.path.join(r1, "small.txt"), "wb") as f:
            f.write(b"TorNet catalog line\n")
        open(os.path.join(r1, "empty.dat"), "wb").close()
        r3 = os.path.join(root, "1003")
        os.makedirs(r3)
        with open(os.path.join(r3, "slow.bin"), "wb") as f:
            f.write(rnd.read(12 << 20))
    srv = Server(root)
    try:
        stop_and_resume(srv, root, signal.SIGINT, 130)
        stop_and_resume(srv, root, signal.SIGTERM, 143)
    finally:
        srv.stop()
    return finish("test_mirror_signal")


if __name__ == "__main__":
    sys.exit(main())
