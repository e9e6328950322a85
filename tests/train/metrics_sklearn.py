"""Compare tnrec's metrics with scikit-learn on the same scores.

usage: metrics_sklearn.py TEST_PROGRAM WORKDIR
Runs TEST_PROGRAM WORKDIR (which writes case_K.txt and case_K.json) and
checks ROC-AUC, PR-AUC (average precision) and the threshold metrics,
overall and per category."""
import json
import os
import subprocess
import sys

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score,
                             precision_score, recall_score, roc_auc_score)


def check(name, got, want, tol=1e-9):
    if got is None and (want is None or np.isnan(want)):
        return 0
    if got is None or want is None or abs(got - want) > tol:
        print(f"MISMATCH {name}: tnrec {got} sklearn {want}")
        return 1
    return 0


def compare(tag, p, y, m):
    bad = 0
    if 0 < y.sum() < len(y):
        bad += check(tag + " roc_auc", m["roc_auc"], roc_auc_score(y, p))
    else:
        bad += check(tag + " roc_auc", m["roc_auc"], None)
    if y.sum() > 0:
        bad += check(tag + " pr_auc", m["pr_auc"], average_precision_score(y, p))
    pred = (p > 0.5).astype(int)
    bad += check(tag + " accuracy", m["accuracy"], accuracy_score(y, pred))
    bad += check(tag + " precision", m["precision"], precision_score(y, pred, zero_division=0))
    bad += check(tag + " recall", m["recall"], recall_score(y, pred, zero_division=0))
    bad += check(tag + " f1", m["f1"], f1_score(y, pred, zero_division=0))
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    bad += check(tag + " csi", m["csi"], tp / (tp + fp + fn) if tp + fp + fn else 0.0)
    bad += check(tag + " far", m["far"], fp / (tp + fp) if tp + fp else 0.0)
    # CSI-best by brute force over every distinct score (p >= t positive).
    best, best_t = 0.0, None
    for t in np.unique(p)[::-1]:
        q = p >= t
        a = int((q & (y == 1)).sum())
        b = int((q & (y == 0)).sum())
        c = int((~q & (y == 1)).sum())
        v = a / (a + b + c) if a + b + c else 0.0
        if v > best:
            best, best_t = v, t
    bad += check(tag + " csi_best", m["csi_best"], best)
    if best_t is not None:
        bad += check(tag + " csi_best_threshold", m["csi_best_threshold"], float(best_t), 1e-7)
    return bad


def main():
    prog, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    subprocess.run([prog, work], check=True)
    bad = cases = 0
    k = 0
    while os.path.exists(os.path.join(work, f"case_{k}.txt")):
        data = np.loadtxt(os.path.join(work, f"case_{k}.txt"))
        p = data[:, 0].astype(np.float32).astype(np.float64)
        y = data[:, 1].astype(int)
        c = data[:, 2].astype(int)
        with open(os.path.join(work, f"case_{k}.json")) as f:
            m = json.load(f)
        bad += compare(f"case {k}", p, y, m)
        for ci, name in enumerate(["TOR", "NUL", "WRN"]):
            sel = c == ci
            if sel.sum():
                bad += compare(f"case {k} {name}", p[sel], y[sel], m["categories"][name])
        cases += 1
        k += 1
    if cases == 0:
        print("no cases written")
        return 1
    print(f"{cases} cases compared with scikit-learn, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
