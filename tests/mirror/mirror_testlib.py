"""tests/mirror/mirror_testlib.py: what the mirror test scripts share.

check() records a failed expectation and goes on, so one run reports every
failure; finish() prints the verdict and gives the exit code. Ports come
from the kernel on 127.0.0.1 only.
"""
import hashlib
import socket
import time

FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what, flush=True)
    return cond


def finish(name):
    if FAILS:
        print("%d failure(s)" % len(FAILS))
        return 1
    print("%s: all checks passed" % name)
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()
