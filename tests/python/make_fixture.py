"""tests/python/make_fixture.py: the datasets the Python tests read.

usage: make_fixture.py TNREC_BINARY SCRATCH_DIR
SCRATCH/src: 24 synthetic TorNet samples (30% TOR); SCRATCH/<dtype> for
float32, float16 and uint8: the train and test splits built with
--dtype <dtype> into shards of at most 10 records (so a dataset has
several shards)."""
import os
import shutil
import subprocess
import sys


def run(*cmd):
    r = subprocess.run(cmd)
    if r.returncode != 0:
        print("make_fixture: %s exited %d" % (" ".join(cmd), r.returncode), file=sys.stderr)
        sys.exit(1)


def main():
    tnrec, scratch = sys.argv[1], sys.argv[2]
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    src = os.path.join(scratch, "src")
    run(tnrec, "synth", src, "--samples", "24", "--seed", "7", "--tor-fraction", "0.3", "-j", "2")
    for dt in ("float32", "float16", "uint8"):
        run(tnrec, "build", src, "-o", os.path.join(scratch, dt), "--dtype", dt, "--shard-records", "10",
            "-j", "2", "-q")
    open(os.path.join(scratch, "ready"), "w").close()
    print("make_fixture: ok")


main()
