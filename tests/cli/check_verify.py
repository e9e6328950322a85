"""tests/cli/check_verify.py: `tnrec verify` on good data, on a record with
a flipped byte, and on datasets whose manifest disagrees with the shards.

usage: check_verify.py DUMP_FIXTURE TNREC SCRATCH_DIR
"""
import glob
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_fixture as cf  # noqa: E402

BAD_LINE = re.compile(r"^(.*): record (\d+): (.+)$")


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def shards_of(d):
    return sorted(glob.glob(os.path.join(d, "*.tnr")))


def main():
    fixture, tnrec, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
    c = cf.Checker("check_verify")
    cf.make_fixture(fixture, scratch)
    ds = os.path.join(scratch, "ds")
    single = os.path.join(scratch, "single.tnr")

    # Good data.
    for args, want in ((["verify", ds], "ok: 7 records in 3 shards"),
                       (["verify", "-j", "2", ds], "ok: 7 records in 3 shards"),
                       (["verify", "-j3", ds], "ok: 7 records in 3 shards"),
                       (["verify", single], "ok: 3 records in 1 shards")):
        rc, out, err = cf.run(tnrec, *args)
        lines = out.splitlines()
        c.check(rc == 0, "%r: exit %d: %s" % (args, rc, err))
        c.check(lines and lines[-1].startswith(want), "%r: last line %r, want %r" % (args, lines[-1:], want))
    rc, out, err = cf.run(tnrec, "verify", os.path.join(scratch, "empty"))
    c.check(rc == 0 and out.startswith("ok: 0 records in "), "empty dataset: %d %r %r" % (rc, out, err))
    rc, out, err = cf.run(tnrec, "verify", ds, single)
    c.check(rc == 0 and len(out.splitlines()) == 2, "two good PATHs: exit %d, %r" % (rc, out))
    rc, out, err = cf.run(tnrec, "verify", "--json", ds)
    v = json.loads(out) if rc == 0 else {}
    c.check(rc == 0 and v.get("ok") is True and v.get("records") == 7 and v.get("shards") == 3
            and v.get("bad_records") == 0 and v.get("errors") == [], "verify --json: %d %r" % (rc, out))

    rc, out, err = cf.run(tnrec, "verify", "--json", ds, single)
    v = json.loads(out) if rc == 0 else []
    c.check(rc == 0 and [x["records"] for x in v] == [7, 3], "verify --json of two PATHs: %d %r" % (rc, out))

    # One flipped byte inside record 4 (second record of the second shard).
    bad = os.path.join(scratch, "ds_bad")
    shutil.copytree(ds, bad)
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", bad)
    recs = json.loads(out)["records"]
    target = recs[4]
    flip_byte(target["shard"], target["offset"] + target["size"] // 2)
    for jobs in ("1", "2"):
        rc, out, err = cf.run(tnrec, "verify", "-j", jobs, bad)
        c.check(rc == 1, "flipped byte, -j %s: exit %d" % (jobs, rc))
        lines = out.splitlines()
        hits = [BAD_LINE.match(l) for l in lines if BAD_LINE.match(l)]
        c.check(len(hits) == 1, "flipped byte: %d bad-record lines in %r" % (len(hits), out))
        if hits:
            m = hits[0]
            c.check(os.path.basename(m.group(1)) == os.path.basename(target["shard"]),
                    "bad record names shard %r, want %r" % (m.group(1), target["shard"]))
            c.check(int(m.group(2)) == target["shard_index"] == 1,
                    "bad record index %s, want %d" % (m.group(2), target["shard_index"]))
        c.check(lines and lines[-1].startswith("FAILED: 1 bad records"), "last line %r" % lines[-1:])
    rc, out, err = cf.run(tnrec, "verify", "--json", bad)
    v = json.loads(out)
    c.check(rc == 1 and v["ok"] is False and v["bad_records"] == 1 and len(v["errors"]) == 1
            and v["errors"][0]["index"] == 1 and v["errors"][0]["shard"] == target["shard"],
            "verify --json on a flipped byte: %d %r" % (rc, out))
    # The index is intact, so the summary still works; decoding that record does not.
    rc, out, err = cf.run(tnrec, "dump", bad)
    c.check(rc == 0, "dump summary of a dataset with one bad record: exit %d" % rc)
    rc, out, err = cf.run(tnrec, "dump", "--record", "4", bad)
    c.check(rc == 1 and os.path.basename(target["shard"]) in err, "dump --record 4 (bad): %d %r" % (rc, err))
    rc, out, err = cf.run(tnrec, "dump", "--record", "3", bad)
    c.check(rc == 0, "dump --record 3 (good record in the damaged shard): exit %d: %s" % (rc, err))
    # Good and bad PATHs together: exit 1, the good one still says ok.
    rc, out, err = cf.run(tnrec, "verify", ds, bad)
    c.check(rc == 1 and "ok: 7 records in 3 shards" in out, "good + bad: %d %r" % (rc, out))

    # The same on a bare shard.
    bad_single = os.path.join(scratch, "bad_single.tnr")
    shutil.copy(single, bad_single)
    rc, out, err = cf.run(tnrec, "dump", "--records", "--json", bad_single)
    r0 = json.loads(out)["records"][2]
    flip_byte(bad_single, r0["offset"] + 1)
    rc, out, err = cf.run(tnrec, "verify", bad_single)
    c.check(rc == 1 and re.search(r"bad_single\.tnr: record 2: ", out), "bare shard flipped: %d %r" % (rc, out))

    # The manifest disagrees with the shards: one deleted, one replaced by a
    # sibling (same record count), one replaced by another shard.
    gone = os.path.join(scratch, "ds_gone")
    shutil.copytree(ds, gone)
    victim = shards_of(gone)[2]
    os.remove(victim)
    rc, out, err = cf.run(tnrec, "verify", gone)
    c.check(rc == 1 and os.path.basename(victim) in (out + err), "deleted shard: %d %r %r" % (rc, out, err))
    swap = os.path.join(scratch, "ds_swap")
    shutil.copytree(ds, swap)
    s = shards_of(swap)
    shutil.copy(s[1], s[0])
    rc, out, err = cf.run(tnrec, "verify", swap)
    c.check(rc == 1 and "ds_swap" in (out + err), "sibling shard swapped in: %d %r %r" % (rc, out, err))
    other = os.path.join(scratch, "ds_other")
    shutil.copytree(ds, other)
    shutil.copy(single, shards_of(other)[2])
    rc, out, err = cf.run(tnrec, "verify", other)
    c.check(rc == 1 and "ds_other" in (out + err), "foreign shard: %d %r %r" % (rc, out, err))
    rc, out, err = cf.run(tnrec, "verify", "--json", other)
    c.check(rc == 1 and json.loads(out)["ok"] is False, "foreign shard --json: %d %r" % (rc, out))

    # Bad PATH and usage errors.
    rc, out, err = cf.run(tnrec, "verify", os.path.join(scratch, "nothing_here"))
    c.check(rc == 1 and "nothing_here" in err, "missing PATH: %d %r" % (rc, err))
    for args in (["--bogus", ds], ["-j", "0", ds], ["-j", "x", ds], ["-j"], []):
        rc, out, err = cf.run(tnrec, "verify", *args)
        c.check(rc == 2 and "hint:" in err, "verify %r: exit %d (want 2)" % (args, rc))
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
