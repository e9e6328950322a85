#!/usr/bin/python3
"""In a build without libcurl, `tnrec mirror` still exists and says what to
install. usage: test_mirror_stub.py TNREC_BIN"""
import subprocess
import sys

r = subprocess.run([sys.argv[1], "mirror", "tornet", "/nonexistent/never-created"],
                   capture_output=True, text=True)
ok = r.returncode == 1 and "not compiled in" in r.stderr and "libcurl4-openssl-dev libssl-dev" in r.stderr
h = subprocess.run([sys.argv[1], "mirror", "--help"], capture_output=True, text=True)
ok &= h.returncode == 0 and "zenodo:RECORD" in h.stdout
print("stub answer:", r.stderr.strip())
sys.exit(0 if ok else 1)
