"""Rewrites a tnrec checkpoint as format 1.1: the same bytes, minor
version 1 and a config without "data_schema" (added in 1.2), checksum
recomputed. Checkpoints written before 1.2 look like this.

usage: ckpt_old_format.py CHECKPOINT"""
import json
import struct
import sys

from ckpt_loss_scale import xxh3


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    path = sys.argv[1]
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"TNRCKPT\0":
        raise SystemExit(f"{path}: not a checkpoint")
    (clen,) = struct.unpack_from("<Q", data, 16)
    config = json.loads(data[24:24 + clen])
    if "data_schema" not in config:
        raise SystemExit(f"{path}: no data_schema to remove")
    del config["data_schema"]
    text = json.dumps(config).encode()
    body = data[:12] + struct.pack("<I", 1) + struct.pack("<Q", len(text)) + text + data[24 + clen:-8]
    with open(path, "wb") as f:
        f.write(body + struct.pack("<Q", xxh3(body)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
