#!/usr/bin/python3
"""`tnrec merge` stopped by SIGINT or SIGTERM in the middle of a shard.

The input is one dataset of a single shard of about 500 MB (the train
fixture, incompressible noise), so a stop seen only between shards would
never stop this merge. Once merge shows its first progress line (stderr a
pipe, --progress-interval 0.1) the test freezes it with SIGSTOP, checks it
is still running and has not copied every record, sends the signal and
lets it go on (SIGCONT): the signal lands inside the shard's copy however
loaded the machine is. If merge finished before that, the test fails and
says so rather than pass.

Checks: exit 130 (SIGINT) or 143 (SIGTERM) within seconds, the error names
how far it got (fewer records than the shard holds) and says to run the
command again; OUT is gone when merge made it; an OUT that existed before
is left with what it held and nothing of merge's.
usage: test_merge_stop.py --tnrec BIN --fixture BIN --tmp DIR
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_common import FAILS, check  # noqa: E402

RECORDS = 220


def first_progress(proc):
    """The first progress line on merge's stderr, or None if it ended first."""
    for line in proc.stderr:
        if re.match(r"tnrec merge: \d+/\d+ records", line):
            return line
    return None


def stop_in_shard(src, out, sig, code):
    what = signal.Signals(sig).name
    proc = subprocess.Popen([A.tnrec, "merge", src, "-o", out, "--progress-interval", "0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = first_progress(proc)
    if line is not None:
        proc.send_signal(signal.SIGSTOP)
    running = proc.poll() is None
    done = int(re.match(r"tnrec merge: (\d+)/", line).group(1)) if line else RECORDS
    if not check(line is not None and running and done < RECORDS,
                 "%s: merge must still be copying when signalled, but it %s: progress only "
                 "after whole shards, or a disk fast enough to need more RECORDS"
                 % (what, "showed no progress" if line is None else "had ended" if not running
                    else "had copied every record by its first progress line")):
        if running:
            proc.send_signal(signal.SIGCONT)
        proc.communicate(timeout=120)
        return
    proc.send_signal(sig)
    t0 = time.time()
    proc.send_signal(signal.SIGCONT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    took = time.time() - t0
    print("%s: signalled at record %d of %d; exit %d %.2f s later" % (what, done, RECORDS, proc.returncode, took))
    check(proc.returncode == code, "%s: exit %d (got %d): %r" % (what, code, proc.returncode, err))
    check(took < 5, "%s: stopped within 5 s of the signal (%.1f s)" % (what, took))
    m = re.search(r"stopped after (\d+) of (\d+) records", err)
    check(m and int(m.group(1)) < RECORDS and int(m.group(2)) == RECORDS,
          "%s: stopped inside the shard, and says after how many records: %r" % (what, err))
    check("run the same command again" in err, "%s: says to run the command again: %r" % (what, err))


def main():
    global A
    ap = argparse.ArgumentParser()
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--tmp", required=True)
    A = ap.parse_args()
    shutil.rmtree(A.tmp, ignore_errors=True)
    os.makedirs(A.tmp)
    src = os.path.join(A.tmp, "src")
    # records of 4 x 120 x 240 x 2, about 2.4 MB each: one shard (under 512 MiB)
    subprocess.run([A.fixture, src, str(RECORDS), "5", "4", "120", "240"], check=True)
    check([f for f in os.listdir(src) if f.endswith(".tnr")] == ["shard-00000.tnr"], "the input is one shard")

    out = os.path.join(A.tmp, "out")
    stop_in_shard(src, out, signal.SIGINT, 130)
    check(not os.path.exists(out), "SIGINT: OUT, made by merge, is gone")

    # an OUT that was there before: it stays, holding only what it held
    out = os.path.join(A.tmp, "existing")
    os.makedirs(out)
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("not merge's\n")
    stop_in_shard(src, out, signal.SIGTERM, 143)
    left = sorted(os.listdir(out)) if os.path.isdir(out) else None
    check(left == ["notes.txt"], "SIGTERM: the existing OUT keeps its file and nothing of merge's (%s)" % left)

    if FAILS:
        print("%d check(s) failed" % len(FAILS), file=sys.stderr)
        return 1
    print("test_merge_stop: all checks passed")
    shutil.rmtree(A.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
