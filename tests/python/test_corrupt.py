"""tests/python/test_corrupt.py: a damaged record raises tnrec.TnrecError
carrying libtnrec's message, which names the shard and the record's index
in it, from ds[i] and from batches(); the other records still read; a
truncated shard fails at open; a missing library path in TNREC_LIBRARY
fails at import with the path named.

usage: test_corrupt.py TNREC_BINARY SCRATCH_DIR"""
import os
import shutil
import subprocess
import sys

from pycommon import args, check, finish

import tnrec


def main():
    _, scratch, _ = args()
    bad = os.path.join(scratch, "corrupt")
    shutil.rmtree(bad, ignore_errors=True)
    shutil.copytree(os.path.join(scratch, "float16"), bad)
    ds = tnrec.open(bad)
    m = ds.meta(13)                      # shard 1, record 3
    shard, local = m["shard"], m["shard_index"]
    check(local == 3 and shard.endswith("shard-00001.tnr"), "record 13 is at %s:%d" % (shard, local))
    info = subprocess.run([sys.argv[1], "dump", "--records", "--json", shard], capture_output=True, check=True,
                          text=True).stdout
    import json
    off = json.loads(info)["records"][local]["offset"] + 40
    with open(shard, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))
    ds = tnrec.open(bad)                 # the index is intact: opening succeeds
    try:
        ds[13]
        check(False, "ds[13] of a damaged record did not raise")
    except tnrec.TnrecError as e:
        msg = str(e)
        check(shard in msg and "record 3" in msg, "message names the shard and record: %r" % msg)
        check(e.name == "corrupt", "error name %r" % e.name)
    check(ds[12]["label"] in (0, 1) and ds[14]["DBZ"].shape == (4, 120, 240, 2), "other records still read")
    try:
        for _ in ds.batches(4, seed=1, threads=2):
            pass
        check(False, "batches() over a damaged record did not raise")
    except tnrec.TnrecError as e:
        check(shard in str(e) and "record 3" in str(e), "batches() message: %r" % str(e))
    # a shard cut short fails at open, naming it
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) - 100)
    try:
        tnrec.open(shard)
        check(False, "a truncated shard opened")
    except tnrec.TnrecError as e:
        check(shard in str(e) and e.name == "truncated", "truncated: %s %r" % (e.name, str(e)))
    try:
        tnrec.open(os.path.join(bad, "nope"))
        check(False, "a missing path opened")
    except tnrec.TnrecError as e:
        check("nope" in str(e), "missing path: %r" % str(e))
    env = dict(os.environ, TNREC_LIBRARY=os.path.join(bad, "libmissing.so"))
    r = subprocess.run([sys.executable, "-c", "import tnrec"], env=env, capture_output=True, text=True)
    check(r.returncode != 0 and "libmissing.so" in r.stderr and "TNREC_LIBRARY" in r.stderr,
          "import with a bad TNREC_LIBRARY: %r" % r.stderr[-300:])
    shutil.rmtree(bad, ignore_errors=True)
    finish("test_corrupt")


main()
