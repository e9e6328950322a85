"""tests/ingest/ingest_common.py: what the ingest tests share: the list of
failed checks, running a command, comparing and listing dataset folders.

A test imports what it uses (`from ingest_common import FAILS, check`) and
reports len(FAILS) at its end; FAILS is one list for the whole process."""
import filecmp
import os
import subprocess
import sys

FAILS = []


def check(cond, what):
    """Records `what` as failed unless cond; returns cond."""
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, file=sys.stderr)
    return cond


def run(args, ok=True, **kw):
    """Runs args capturing text output; with ok, a nonzero exit ends the test."""
    p = subprocess.run(args, capture_output=True, text=True, **kw)
    if ok and p.returncode != 0:
        print(p.stdout, p.stderr, file=sys.stderr)
        raise SystemExit("command failed (%d): %s" % (p.returncode, " ".join(args)))
    return p


def same_dirs(a, b, what):
    """Folders a and b hold the same files, byte for byte."""
    fa, fb = sorted(os.listdir(a)), sorted(os.listdir(b))
    check(fa == fb, "%s: same files (%s vs %s)" % (what, fa, fb))
    for f in fa:
        if f in fb:
            check(filecmp.cmp(os.path.join(a, f), os.path.join(b, f), shallow=False),
                  "%s: %s byte-identical" % (what, f))


def shards(d):
    """The shard files of dataset folder d, sorted."""
    return sorted(f for f in os.listdir(d) if f.endswith(".tnr"))
