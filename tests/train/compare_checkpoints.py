"""Compare the weights of two tnrec checkpoints (.tnck).

usage: compare_checkpoints.py A B TOLERANCE
Reads the trainable parameters and BN state of both (format in
train/checkpoint.h) and fails if their relative L2 difference exceeds
TOLERANCE (0 means bit-identical)."""
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"TNRCKPT\0":
        raise SystemExit(f"{path}: not a checkpoint")
    pos = 16
    (clen,) = struct.unpack_from("<Q", data, pos)
    pos += 8 + clen
    (n,) = struct.unpack_from("<Q", data, pos)
    params = np.frombuffer(data, "<f4", n, pos + 8)
    pos += 8 + 4 * n
    (m,) = struct.unpack_from("<Q", data, pos)
    state = np.frombuffer(data, "<f4", m, pos + 8)
    return np.concatenate([params, state]).astype(np.float64)


def main():
    a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    if a.shape != b.shape:
        print(f"different sizes {a.shape} {b.shape}")
        return 1
    rel = np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)
    print(f"{len(a)} values, relative L2 difference {rel:.3e}, max abs difference {np.abs(a - b).max():.3e} (tolerance {tol:g})")
    if tol == 0:
        return 0 if np.array_equal(a, b) else 1
    return 0 if rel <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
