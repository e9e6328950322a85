#!/usr/bin/python3
"""`tnrec report` and `tnrec eval --curves` on a tiny synthetic run.

Scenarios:
  numbers  the page's ROC-AUC, PR-AUC, confusion counts and per-category
           rows equal `tnrec eval --json` on the same data; the curves
           JSON is consistent (trapezoid ROC area and the PR step sum are
           eval's AUCs exactly: the scores are not rounded; reliability
           counts add up); nothing is written to $TMPDIR
  browser  the page in headless Chromium: the charts and sample pictures
           are in the DOM, the screenshot is not blank, no console errors
           (exit 77 when chromium or Pillow is missing)
  errors   missing run directory, empty metrics.jsonl, unwritable -o,
           missing dataset, usage errors: a clear message, no file
"""
import argparse
import glob
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def run(cmd, expect=0, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if expect is not None and p.returncode != expect:
        sys.exit("FAIL: %s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                 % (" ".join(cmd), p.returncode, expect, p.stdout[-2000:], p.stderr[-2000:]))
    return p


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def fixture(tnrec, tmp):
    """synth -> build -> a two-epoch tiny training; returns (run_dir, test)."""
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    arch, train, test, rund = (os.path.join(tmp, n) for n in ("tornet", "train", "test", "run"))
    run([tnrec, "synth", arch, "--samples", "60", "--seed", "3", "--tor-fraction", "0.33", "-j", "1"])
    run([tnrec, "build", arch, "--split", "train", "-o", train])
    run([tnrec, "build", arch, "--split", "test", "-o", test])
    run([tnrec, "train", train, "--val", test, "-o", rund, "--model", "tiny", "--epochs", "2",
         "--batch", "8", "--seed", "1", "--threads", "1"])
    return rund, test


class Page(html.parser.HTMLParser):
    """Collects data-key values by the id of the enclosing table/p and by
    data-category row, and counts the images of each kind."""

    def __init__(self):
        super().__init__()
        self.stack = []          # (tag, id, category)
        self.values = {}         # (id or category, key) -> text
        self.key = None
        self.charts = 0
        self.gallery = {}        # gallery id -> pictures
        self.svg_uris = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        ctx = (tag, a.get("id"), a.get("data-category"))
        if tag not in ("img", "br"):
            self.stack.append(ctx)
        self.key = a.get("data-key")
        if tag == "img":
            if "chart" in (a.get("class") or ""):
                self.charts += 1
                self.svg_uris += a.get("src", "").startswith("data:image/svg+xml;base64,")
            for t, i, _ in self.stack:
                if t == "div" and i in ("false-alarms", "misses", "detections"):
                    check(a.get("src", "").startswith("data:image/png;base64,"), "gallery picture is not an inline PNG")
                    self.gallery[i] = self.gallery.get(i, 0) + 1

    def handle_endtag(self, tag):
        while self.stack:
            t = self.stack.pop()[0]
            if t == tag:
                break
        self.key = None

    def handle_data(self, data):
        if not self.key:
            return
        where = None
        for _, i, c in reversed(self.stack):
            if c or i:
                where = c or i
                break
        self.values[(where, self.key)] = data.strip()
        self.key = None


def number(s):
    return float("nan") if s == "NaN" else float(s)


def same(a, b, tol=1e-9):
    if a is None:
        return b != b
    return abs(a - b) <= tol * max(1.0, abs(a))


def check_exact(c, ev):
    """The curves come from the very scores eval's metrics do, not rounded
    ones: the ROC and PR areas of their points, computed as metrics.c
    does (counts recovered from the rates, sums in the same order), are
    eval's roc_auc and pr_auc to the 10 digits eval prints, and the best-CSI threshold
    (a sample's probability) is one of the curves' thresholds."""
    P, N = c["positives"], c["n"] - c["positives"]
    roc, pr = c["roc"], c["pr"]
    tps = [round(t * P) for t in roc["tpr"]]
    fps = [round(f * N) for f in roc["fpr"]]
    area = ap = 0.0
    for i in range(1, len(tps)):
        tp, fp, tp0, fp0 = float(tps[i]), float(fps[i]), float(tps[i - 1]), float(fps[i - 1])
        area += (fp - fp0) * (tp + tp0) / 2.0
        ap += (tp - tp0) / P * (tp / (tp + fp))
    # eval --json prints the doubles exactly (train/metrics.c): the areas
    # must equal them but for the summation's rounding, far finer than the
    # 6 decimals of a CSV.
    def close(x, y):
        return abs(x - y) <= 1e-12
    check(close(area / (P * N), ev["roc_auc"]),
          "ROC area of the curves %r != eval roc_auc %r" % (area / (P * N), ev["roc_auc"]))
    check(close(ap, ev["pr_auc"]), "PR area of the curves %r != eval pr_auc %r" % (ap, ev["pr_auc"]))
    check(pr["threshold"] == roc["threshold"], "ROC and PR thresholds differ")
    check(ev["csi_best_threshold"] in roc["threshold"][1:],
          "eval's best-CSI threshold %r is not a threshold of the curves (scores rounded?)" % ev["csi_best_threshold"])


def scenario_numbers(tnrec, tmp):
    rund, test = fixture(tnrec, tmp)
    curves = os.path.join(tmp, "curves.json")
    # The scores stay in memory: nothing appears in $TMPDIR.
    scratch = os.path.join(tmp, "tmpdir")
    os.makedirs(scratch)
    env = dict(os.environ, TMPDIR=scratch)
    ev = json.loads(run([tnrec, "eval", rund, test, "--json", "--curves", curves], env=env).stdout)
    page = os.path.join(tmp, "report.html")
    run([tnrec, "report", rund, "--eval", test, "-o", page, "--gallery", "2"], env=env)
    check(os.listdir(scratch) == [], "eval --curves / report left files in $TMPDIR: %s" % os.listdir(scratch))
    # Nor is one needed: a $TMPDIR that does not exist changes nothing.
    gone = dict(os.environ, TMPDIR=os.path.join(tmp, "no_such_dir"))
    again = json.loads(run([tnrec, "eval", rund, test, "--json", "--curves", curves], env=gone).stdout)
    check(again == ev, "eval --curves with a missing $TMPDIR gives other metrics")
    p = Page()
    p.feed(open(page, encoding="utf-8").read())
    v = p.values
    for k in ("roc_auc", "pr_auc", "loss"):
        check(same(ev[k], number(v[("summary", k)])), "summary %s %s != eval %s" % (k, v[("summary", k)], ev[k]))
    for k in ("tp", "fp", "fn", "tn"):
        check(int(v[("confusion-0.5", k)]) == ev[k], "confusion at 0.5: %s %s != eval %s" % (k, v[("confusion-0.5", k)], ev[k]))
    rows = {"all": ev}
    rows.update({c: m for c, m in ev["categories"].items() if m["n"]})
    for name, m in rows.items():
        for k in ("n", "positives", "roc_auc", "pr_auc", "accuracy", "precision", "recall", "far", "f1", "csi",
                  "csi_best", "csi_best_threshold"):
            check(same(m[k], number(v[(name, k)])), "metrics row %s %s: %s != eval %s" % (name, k, v[(name, k)], m[k]))
    tp, fp, fn = (int(v[("confusion-best", k)]) for k in ("tp", "fp", "fn"))
    check(tp + fn == ev["positives"], "best-CSI confusion does not hold every tornado")
    check(same(ev["csi_best"], tp / (tp + fp + fn), 1e-6), "best-CSI confusion gives CSI %g, eval %g"
          % (tp / (tp + fp + fn), ev["csi_best"]))
    check(p.charts == 9 and p.svg_uris == 9, "expected 9 inline SVG charts, found %d" % p.charts)
    pos, neg = ev["positives"], ev["n"] - ev["positives"]
    want = {"false-alarms": min(2, neg), "misses": min(2, pos), "detections": min(2, pos)}
    check(p.gallery == {k: n for k, n in want.items() if n}, "gallery rows %s, expected %s" % (p.gallery, want))

    c = json.load(open(curves))
    roc, pr = c["roc"], c["pr"]
    check(c["n"] == ev["n"] and c["positives"] == ev["positives"], "curves n/positives differ from eval")
    check(roc["threshold"][0] is None and roc["fpr"][0] == 0 and roc["tpr"][0] == 0, "ROC does not start at (0, 0)")
    check(roc["fpr"][-1] == 1 and roc["tpr"][-1] == 1, "ROC does not end at (1, 1)")
    area = sum((roc["fpr"][i] - roc["fpr"][i - 1]) * (roc["tpr"][i] + roc["tpr"][i - 1]) / 2
               for i in range(1, len(roc["fpr"])))
    check(abs(area - ev["roc_auc"]) < 1e-6, "trapezoid ROC area %g != eval roc_auc %g" % (area, ev["roc_auc"]))
    ap = sum((pr["recall"][i] - pr["recall"][i - 1]) * pr["precision"][i] for i in range(1, len(pr["recall"])))
    check(abs(ap - ev["pr_auc"]) < 1e-6, "PR step area %g != eval pr_auc %g" % (ap, ev["pr_auc"]))
    check_exact(c, ev)
    thr = [t for t in roc["threshold"][1:]]
    check(all(a > b for a, b in zip(thr, thr[1:])), "thresholds do not decrease")
    rel = c["reliability"]
    check(len(rel) == 10 and sum(b["count"] for b in rel) == ev["n"], "reliability counts do not add up to n")
    check(sum(b["positives"] for b in rel) == ev["positives"], "reliability positives do not add up")
    for b in rel:
        if b["count"]:
            check(b["lo"] <= b["mean_predicted"] <= b["hi"], "bin mean outside its bin: %s" % b)
            check(same(b["observed"], b["positives"] / b["count"]), "bin frequency wrong: %s" % b)

    text = open(page, encoding="utf-8").read()
    table = text[text.index('<table id="reliability">'):]
    table = table[:table.index("</table>")]
    counts = [int(n) for n in re.findall(r'<td data-key="count">(\d+)</td>', table)]
    check(counts == [b["count"] for b in rel], "page reliability counts %s != curves %s" % (counts, [b["count"] for b in rel]))

    # A curves file that cannot be written: the error names it, nothing appears.
    nowhere = os.path.join(tmp, "no_dir", "c.json")
    e = run([tnrec, "eval", rund, test, "--curves", nowhere], expect=1)
    check(nowhere in e.stderr, "eval --curves to a missing directory: unclear message: " + e.stderr)
    check(not os.path.exists(os.path.dirname(nowhere)), "eval --curves created a directory")

    # Without --eval: the training part alone.
    page2 = os.path.join(tmp, "train_only.html")
    run([tnrec, "report", rund, "-o", page2])
    q = Page()
    q.feed(open(page2, encoding="utf-8").read())
    check(q.charts == 3 and not q.gallery, "training-only page: %d charts, gallery %s" % (q.charts, q.gallery))
    print("ok: report numbers equal eval --json; curves JSON consistent")


def scenario_browser(tnrec, tmp):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("skip: chromium is not installed")
        sys.exit(SKIP)
    try:
        from PIL import Image
    except ImportError:
        print("skip: Pillow (python3-pil) is not installed")
        sys.exit(SKIP)
    rund, test = fixture(tnrec, tmp)
    page = os.path.join(tmp, "report.html")
    run([tnrec, "report", rund, "--eval", test, "-o", page, "--gallery", "2"])
    url = "file://" + os.path.abspath(page)
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + os.path.join(tmp, "profile"),
            "--enable-logging=stderr", "--v=0"]
    dom = run(base + ["--dump-dom", url], timeout=120)
    p = Page()
    p.feed(dom.stdout)
    check(p.charts == 9, "DOM has %d chart images, expected 9" % p.charts)
    check(p.gallery.get("false-alarms", 0) >= 1 and p.gallery.get("detections", 0) >= 1, "DOM gallery: %s" % p.gallery)
    check(dom.stdout.count("<table") >= 4, "DOM lacks the confusion and metrics tables")
    shot = os.path.join(tmp, "shot.png")
    s = run(base + ["--screenshot=" + shot, "--window-size=1280,2000", url], timeout=120)
    for log in (dom.stderr, s.stderr):
        bad = [l for l in log.splitlines() if "CONSOLE" in l or "Failed to load resource" in l
               or "Not allowed to load" in l]
        check(not bad, "browser console: " + "\n".join(bad[:5]))
    img = Image.open(shot).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    check(colours is not None and len(colours) > 100, "screenshot is nearly blank (%s colours)"
          % (len(colours) if colours else "many"))
    white = max(colours)[0] / (img.width * img.height)
    check(white < 0.97, "screenshot is %.1f%% one colour" % (100 * white))
    print("ok: page renders in chromium: %d charts, %d colours" % (p.charts, len(colours)))


def no_file(path, what):
    check(not os.path.exists(path), "%s: %s was written" % (what, path))
    left = glob.glob(path + ".tmp*") + glob.glob(os.path.join(os.path.dirname(path) or ".", "*.tmp.*"))
    check(not left, "%s: temporary files left: %s" % (what, left))


def scenario_errors(tnrec, tmp):
    if os.path.exists(tmp):
        shutil.rmtree(tmp)
    os.makedirs(tmp)
    out = os.path.join(tmp, "r.html")
    missing = os.path.join(tmp, "no_such_run")
    p = run([tnrec, "report", missing, "-o", out], expect=1)
    check(missing in p.stderr and "error" in p.stderr, "missing run dir: unclear message: " + p.stderr)
    no_file(out, "missing run dir")

    empty = os.path.join(tmp, "empty_run")
    os.makedirs(empty)
    open(os.path.join(empty, "metrics.jsonl"), "w").close()
    p = run([tnrec, "report", empty, "-o", out], expect=1)
    check("metrics.jsonl" in p.stderr and "no epochs" in p.stderr, "empty metrics: unclear message: " + p.stderr)
    no_file(out, "empty metrics")

    bad = os.path.join(tmp, "bad_run")
    os.makedirs(bad)
    with open(os.path.join(bad, "metrics.jsonl"), "w") as f:
        f.write('{"epoch": 1, "loss": 0.5}\nnot json\n')
    p = run([tnrec, "report", bad, "-o", out], expect=1)
    check("line 2" in p.stderr, "bad metrics line: unclear message: " + p.stderr)
    no_file(out, "bad metrics")

    nodir = os.path.join(tmp, "no_dir", "r.html")
    p = run([tnrec, "report", empty, "-o", nodir], expect=1)
    check(nodir in p.stderr, "unwritable -o: message does not name the file: " + p.stderr)
    check(not os.path.exists(os.path.dirname(nodir)), "unwritable -o: directory created")
    afile = os.path.join(tmp, "plain")
    open(afile, "w").close()
    p = run([tnrec, "report", empty, "-o", os.path.join(afile, "r.html")], expect=1)
    check("plain" in p.stderr, "-o under a file: unclear message: " + p.stderr)

    rund = os.path.join(tmp, "one_epoch")
    os.makedirs(rund)
    with open(os.path.join(rund, "metrics.jsonl"), "w") as f:
        f.write('{"epoch": 1, "loss": 0.5, "lr": 0.001, "best_epoch": 1}\n')
    p = run([tnrec, "report", rund, "-o", out], expect=1)  # no checkpoint to read the configuration from
    check(rund in p.stderr, "run without checkpoint: message does not name it: " + p.stderr)
    no_file(out, "run without checkpoint")

    run([tnrec, "report", "-o", out], expect=2)
    run([tnrec, "report", rund], expect=2)
    run([tnrec, "report", rund, "-o", out, "--gallery", "0"], expect=2)
    run([tnrec, "report", rund, "-o", out, "--bogus"], expect=2)
    run([tnrec, "eval", rund, rund, "--curves"], expect=2)
    no_file(out, "usage errors")
    print("ok: bad input gives clear errors and no file")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=("numbers", "browser", "errors"))
    ap.add_argument("--tnrec", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    {"numbers": scenario_numbers, "browser": scenario_browser, "errors": scenario_errors}[a.scenario](a.tnrec, a.tmp)


if __name__ == "__main__":
    main()
