#!/usr/bin/python3
"""`tnrec build --holdout`: whole storms kept out of a build, end to end
with the real binary.

usage: test_build_holdout.py --tnrec BIN --tmp DIR

The samples come from `tnrec synth`, linked under TorNet file names that
put four samples on each day and let some events cross midnight (two
samples of one event id on consecutive days), so the groups are bigger
than one sample. Checks:
  - the rest and the held-out builds are disjoint and together the
    whole selection; no day, no event id of the file names and no event id
    of the records sits on both sides; an event that crosses midnight
    keeps both its days on one side;
  - the held-out share is near the fraction asked;
  - each side has its own manifest with its class counts and the holdout
    in its build parameters;
  - -j1 and -j2 give byte-identical datasets; the same seed the same
    split, another seed another;
  - kill -9 in the middle of a holdout build, rerun: equal to a clean one;
  - parts 0/2 and 1/2 of a holdout build, merged, equal the whole build;
  - bad values are usage errors (exit 2); a tarball source, a file not
    named the TorNet way and a fraction that leaves a side empty are
    refused (exit 1).
"""
import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ingest_common import FAILS, check, run, same_dirs  # noqa: E402


def records(tnrec, ds):
    """(event_id, key) of every record."""
    out = run([tnrec, "dump", "--records", ds]).stdout
    rows = [l.split("\t") for l in out.splitlines() if l and not l.startswith("#")]
    return [(int(r[4]), r[6]) for r in rows]


def name_groups(key):
    """Day and event id of a TorNet file name."""
    f = os.path.basename(key).split("_")
    return f[1], int(re.match(r"\d+", f[4]).group(0))


def make_root(a):
    """Synth samples under names with four samples a day and events that
    cross midnight: every twelfth sample shares its event id with the next
    one, which falls on the next day."""
    synth = os.path.join(a.tmp, "synth")
    run([a.tnrec, "synth", synth, "--samples", "72", "--seed", "3", "--tor-fraction", "0.33", "--force"])
    files = []
    for dp, _, fs in os.walk(os.path.join(synth, "train")):
        files += [os.path.join(dp, f) for f in fs if f.endswith(".nc")]
    files.sort()
    root = os.path.join(a.tmp, "root")
    os.makedirs(os.path.join(root, "train", "2014"))
    crossing = []
    for i, path in enumerate(files):
        cat, _, _, site, _, cell = os.path.basename(path)[:-3].split("_")
        day = dt.datetime(2014, 5, 1, 20, 0, 0) + dt.timedelta(days=i // 4, hours=i % 4)
        event = 500000 + i
        if i % 12 == 3:  # i and i + 1 (the next day) are one event
            crossing.append(event)
        if i % 12 == 4:
            event = 500000 + i - 1
        name = "%s_%s_%s_%s_%ds_%s.nc" % (cat, day.strftime("%y%m%d"), day.strftime("%H%M%S"), site, event, cell)
        os.link(path, os.path.join(root, "train", "2014", name))
    return root, len(files), crossing


def build(a, root, out, *extra, ok=True):
    return run([a.tnrec, "build", root, "--split", "train", "-o", out, "-q"] + list(extra), ok=ok)


def check_sides(a, rest, held, total, fraction, crossing):
    r, h = records(a.tnrec, rest), records(a.tnrec, held)
    rk, hk = {k for _, k in r}, {k for _, k in h}
    check(not (rk & hk), "rest and held-out share no sample")
    check(len(rk) + len(hk) == total, "rest + held-out = selection (%d + %d vs %d)" % (len(rk), len(hk), total))
    rd, hd = {name_groups(k)[0] for k in rk}, {name_groups(k)[0] for k in hk}
    check(not (rd & hd), "no day on both sides: %s" % sorted(rd & hd))
    re_, he = {name_groups(k)[1] for k in rk}, {name_groups(k)[1] for k in hk}
    check(not (re_ & he), "no file-name event id on both sides: %s" % sorted(re_ & he))
    check(not ({e for e, _ in r} & {e for e, _ in h}), "no record event id on both sides")
    for ev in crossing:
        days = [name_groups(k)[0] for k in rk | hk if name_groups(k)[1] == ev]
        check(len(set(days)) == 2, "event %d crosses midnight in the fixture" % ev)
    share = len(hk) / total
    # groups hold 4 or 8 samples: the share is within one group of the goal
    check(abs(share - fraction) <= 8 / total + 1e-9, "held-out share %.3f near %.2f" % (share, fraction))
    for d, n, take in ((rest, len(rk), "rest"), (held, len(hk), "held")):
        with open(os.path.join(d, "manifest.json")) as f:
            m = json.load(f)
        check(m["records"] == n and sum(m["class_counts"]["label"].values()) == n,
              "%s: its manifest counts its %d records" % (d, n))
        check(m["build"].get("holdout") == {"fraction": fraction, "seed": 1, "take": take},
              "%s: the holdout in its build parameters: %s" % (d, m["build"].get("holdout")))
    return hk


def scenario(a):
    root, total, crossing = make_root(a)
    fraction = 0.25
    rest, held = os.path.join(a.tmp, "rest"), os.path.join(a.tmp, "held")
    build(a, root, rest, "--holdout", str(fraction), "-j2")
    build(a, root, held, "--holdout", str(fraction), "--held-out", "-j2")
    held_keys = check_sides(a, rest, held, total, fraction, crossing)

    # threads, seeds
    held1 = os.path.join(a.tmp, "held_j1")
    build(a, root, held1, "--holdout", str(fraction), "--held-out", "-j1")
    same_dirs(held1, held, "holdout -j1 vs -j2")
    held_s = os.path.join(a.tmp, "held_seed1")
    build(a, root, held_s, "--holdout", str(fraction), "--held-out", "--holdout-seed", "1")
    same_dirs(held_s, held, "default seed is 1")
    held_o = os.path.join(a.tmp, "held_seed7")
    build(a, root, held_o, "--holdout", str(fraction), "--held-out", "--holdout-seed", "7")
    other = {k for _, k in records(a.tnrec, held_o)}
    check(other != held_keys, "another seed holds out other storms")

    # resume after kill -9 gives the clean build
    args = ["--holdout", str(fraction), "--shard-records", "2", "-j1", "--zstd-level", "6"]
    clean = os.path.join(a.tmp, "clean")
    build(a, root, clean, *args)
    out = os.path.join(a.tmp, "killed")
    proc = subprocess.Popen([a.tnrec, "build", root, "--split", "train", "-o", out, "-q"] + args,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not os.path.exists(os.path.join(out, "shard-00003.tnr")) and proc.poll() is None \
            and time.time() - t0 < 60:
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    p = build(a, root, out, *args)
    check(not killed or "kept from an interrupted run" in p.stderr or os.path.exists(os.path.join(out, "manifest.json")),
          "the rerun finished the killed build")
    same_dirs(out, clean, "holdout build resumed after kill -9")
    p = build(a, root, out, "--holdout", "0.5", "--shard-records", "2", "-j1", "--zstd-level", "6", ok=False)
    check(p.returncode == 1, "a complete holdout dataset is not rebuilt with another fraction (exit %d)" % p.returncode)

    # parts merged equal the whole build
    whole = os.path.join(a.tmp, "whole")
    build(a, root, whole, "--holdout", str(fraction), "--shard-records", "3")
    parts = []
    for k in range(2):
        pd = os.path.join(a.tmp, "part%d" % k)
        build(a, root, pd, "--holdout", str(fraction), "--shard-records", "3", "--part", "%d/2" % k)
        parts.append(pd)
    merged = os.path.join(a.tmp, "merged")
    run([a.tnrec, "merge"] + parts + ["-o", merged])
    same_dirs(merged, whole, "holdout parts merged vs one build")

    # usage errors and refusals
    for bad in (["--holdout", "1.5"], ["--holdout", "0"], ["--holdout", "x"], ["--held-out"],
                ["--holdout-seed", "3"], ["--holdout", "0.2", "--holdout-seed", "-1"]):
        p = build(a, root, os.path.join(a.tmp, "bad"), *bad, ok=False)
        check(p.returncode == 2 and "holdout" in p.stderr, "%s is a usage error (exit %d)" % (bad, p.returncode))
    p = build(a, root, os.path.join(a.tmp, "none"), "--holdout", "0.001", "--held-out", ok=False)
    check(p.returncode == 1 and "holds out none" in p.stderr and "raise the fraction" in p.stderr,
          "an empty held-out side is an error naming the fix")
    tgz = os.path.join(a.tmp, "tornet_2014.tar.gz")
    with tarfile.open(tgz, "w:gz") as t:
        t.add(os.path.join(root, "train"), arcname="train")
    p = build(a, tgz, os.path.join(a.tmp, "tar"), "--holdout", "0.2", ok=False)
    check(p.returncode == 1 and "extract" in p.stderr, "a tarball source with --holdout is refused")
    odd = os.path.join(a.tmp, "odd", "train")
    os.makedirs(odd)
    os.link(os.path.join(root, "train", "2014", sorted(os.listdir(os.path.join(root, "train", "2014")))[0]),
            os.path.join(odd, "sample.nc"))
    p = build(a, os.path.dirname(odd), os.path.join(a.tmp, "odd_out"), "--holdout", "0.2", ok=False)
    check(p.returncode == 1 and "sample.nc" in p.stderr, "a file not named the TorNet way is refused")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    scenario(a)
    if FAILS:
        print("holdout: %d check(s) failed" % len(FAILS), file=sys.stderr)
        return 1
    print("holdout: all checks passed")
    shutil.rmtree(a.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
