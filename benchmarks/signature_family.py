#!/usr/bin/python3
"""A family of TorNet-schema archives whose tornado signatures `tnrec synth`
does not make, for choosing and judging `tnrec train`'s defaults
(docs/train.md, "Defaults from a family of signatures").

usage: signature_family.py ROOT --member NAME [--train 300] [--test 60] [--tor 0.2]
                           [--seed 1]
       signature_family.py --list

Writes ROOT/catalog.csv and ROOT/{train,test}/2014/*.nc like
benchmarks/meso_signature.py (the same writer: TorNet v1.1 variables and
attributes, NaN where there is no echo), with one member's signature.
Every sample has a storm: reflectivity blobs, the radial component of an
environmental wind plus noise in VEL, smooth uninformative KDP, RHOHV, ZDR
and WIDTH. Only the member's signature tells TOR apart; WRN samples carry
the member's decoy (the same feature in a shape that is not tornadic) or,
without one, nothing, like NUL. A member varies:

  signature  vel: a Rankine vortex's couplet of inbound and outbound radial
                  velocity across azimuth (decoy: the same turned along the
                  beam, a convergence);
             hook: a hook echo, a curved reflectivity appendage (decoy: a
                  straight one of the same length and strength);
             width: a spot of high spectrum width only (one moment);
             zdr: an arc of high differential reflectivity only (one moment);
  scale      the vortex's core radius in gates (a couplet twice as wide):
             1-2 is a tornado-vortex signature, 5-10 a mesocyclone;
  strength   the feature's peak, and the noise under it;
  coverage   partial: the storm covers part of the chip, no data around it
             and at the near and far edges; full: echo everywhere but a
             near-range gap;
  motion     gates per frame the feature moves (0: it stands still).

--list prints the members and which are kept out of tuning.
"""
import argparse
import sys

import numpy as np

import meso_signature as ms

NT, NAZ, NR, NS = ms.NT, ms.NAZ, ms.NR, ms.NS

# name: (signature, scale (gates), strength, noise, coverage, motion, decoy, tuning)
MEMBERS = {
    "meso":              ("vel", (5, 10), (20, 35), 3.0, "partial", 1.0, True, True),
    "tvs-full":          ("vel", (1, 2), (25, 40), 3.0, "full", 2.0, True, True),
    "hook":              ("hook", (4, 12), (15, 25), 2.0, "partial", 1.0, True, True),
    "width":             ("width", (3, 6), (4, 8), 1.0, "partial", 0.0, False, True),
    "tvs-partial-weak":  ("vel", (1, 2), (15, 25), 4.0, "partial", 1.0, True, False),
    "meso-full-static":  ("vel", (6, 10), (15, 30), 5.0, "full", 0.0, False, False),
    "zdr-arc":           ("zdr", (6, 14), (1.5, 3.0), 0.4, "partial", 1.0, False, False),
}


def echo_mask(rng, storm, coverage):
    """Where the radar sees echo: the storm's blobs above a threshold, less
    a near-range gap and the chip's far edge (partial), or everything but
    the near-range gap (full)."""
    if coverage == "full":
        echo = np.ones((NAZ, NR), bool)
        echo[:, :int(rng.integers(2, 8))] = False
        return echo
    echo = storm > 0.25
    echo[:, :int(rng.integers(4, 20))] = False
    echo[:, NR - int(rng.integers(1, 30)):] = False
    return echo


def tube(points, sigma):
    """Sum over a polyline's points of a Gaussian of sd sigma gates, as the
    maximum over points: a smooth tube of height 1 along the line."""
    a = np.arange(NAZ)[:, None, None]
    r = np.arange(NR)[None, :, None]
    pa, pr = points[:, 0][None, None, :], points[:, 1][None, None, :]
    d2 = np.min((a - pa) ** 2 + (r - pr) ** 2, axis=2)
    return np.exp(-d2 / (2 * sigma ** 2))


def hook_points(ca, cr, size, curved, turn):
    """A hook: a spiral about (ca, cr) from radius size/3 out to size over
    1.3 turns of a circle (turned by `turn`); not curved: a straight
    segment of the same length."""
    u = np.linspace(0, 1, 60)
    if curved:
        th = turn + u * 1.3 * 2 * np.pi * 0.75
        rad = size / 3 + u * (size - size / 3)
        return np.stack([ca + rad * np.sin(th), cr + rad * np.cos(th)], axis=1)
    length = 1.3 * 2 * np.pi * 0.75 * (2 * size / 3)
    return np.stack([ca + (u - 0.5) * length * np.sin(turn), cr + (u - 0.5) * length * np.cos(turn)], axis=1)


def disc(ca, cr, radius):
    a = np.arange(NAZ)[:, None] - ca
    r = np.arange(NR)[None, :] - cr
    return np.exp(-(a ** 2 + r ** 2) / (2 * radius ** 2))


def make_sample(rng, member, cat):
    """Fields (time, azimuth, range, sweep) float32 of one sample."""
    sig, scale, strength, noise, coverage, motion, decoy, _ = MEMBERS[member]
    f = {v: np.empty((NT, NAZ, NR, NS), np.float32) for v in ms.VARS}
    storm = ms.blobs(rng, int(rng.integers(2, 5)), 25)
    echo = echo_mask(rng, storm, coverage)
    wind, direction = rng.uniform(5, 25), rng.uniform(0, 2 * np.pi)
    az = np.deg2rad(np.linspace(0, 60, NAZ))[:, None] + direction
    radial = wind * np.cos(az) * np.ones((1, NR))
    ca, cr = rng.uniform(25, NAZ - 25), rng.uniform(45, NR - 50)
    size, peak = rng.uniform(*scale), rng.uniform(*strength)
    da, dr = rng.uniform(-1, 1, 2) * motion
    turn = rng.uniform(0, 2 * np.pi)
    carry = cat == "TOR" or (cat == "WRN" and decoy)
    reach = int(2 * size + 3 * motion + 6)
    echo[max(0, int(ca) - reach):int(ca) + reach, max(0, int(cr) - reach):int(cr) + reach] = True
    for t in range(NT):
        fa, fr = ca + da * t, cr + dr * t
        feature = None
        if carry and sig in ("hook", "zdr"):
            feature = tube(hook_points(fa, fr, size, cat == "TOR", turn), 1.5)
        elif carry and sig == "width":
            feature = disc(fa, fr, size)
        for s in range(NS):
            fade = 1 - 0.1 * s
            dbz = 5 + 55 * storm + rng.normal(0, 2, (NAZ, NR))
            vel = radial + rng.normal(0, noise if sig == "vel" else 3.0, (NAZ, NR))
            zdr = 0.5 + 2 * storm + rng.normal(0, noise if sig == "zdr" else 0.4, (NAZ, NR))
            width = 2 + 3 * storm + np.abs(rng.normal(0, noise if sig == "width" else 1.0, (NAZ, NR)))
            if carry and sig == "vel":
                vel += ms.vortex(fa, fr, size, peak * fade, cat == "WRN")
            if feature is not None and sig == "hook":
                dbz += peak * fade * feature
            if feature is not None and sig == "zdr":
                zdr += peak * fade * feature
            if feature is not None and sig == "width":
                width += peak * fade * feature
            fields = {
                "DBZ": dbz,
                "VEL": np.clip(vel, -64, 64),
                "KDP": 0.5 + 1.5 * storm + rng.normal(0, 0.3, (NAZ, NR)),
                "RHOHV": 0.97 - 0.05 * storm + rng.normal(0, 0.01, (NAZ, NR)),
                "ZDR": zdr,
                "WIDTH": width,
            }
            for v in ms.VARS:
                x = fields[v].astype(np.float32)
                x[~echo] = np.nan
                f[v][t, :, :, s] = x
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?")
    ap.add_argument("--member", choices=sorted(MEMBERS))
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--tor", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the members and exit")
    a = ap.parse_args()
    if a.list:
        for name, m in MEMBERS.items():
            print("%-18s %-6s scale %-8s strength %-10s noise %-4s %-8s motion %-4s decoy %-3s %s" % (
                name, m[0], "%g-%g" % m[1], "%g-%g" % m[2], m[3], m[4], m[5], "yes" if m[6] else "no",
                "tuning" if m[7] else "held out"))
        return
    if not a.root or not a.member:
        ap.error("ROOT and --member are required (or --list)")
    if not (0 < a.tor < 1) or a.train < 1 or a.test < 1:
        ap.error("--train and --test must be positive and --tor between 0 and 1")
    # One stream per member and seed, so members do not share draws.
    rng = np.random.default_rng([a.seed, sorted(MEMBERS).index(a.member)])
    ms.archive(a.root, a.train, a.test, a.tor, rng, lambda cat: make_sample(rng, a.member, cat))


if __name__ == "__main__":
    sys.exit(main())
