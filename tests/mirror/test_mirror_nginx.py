#!/usr/bin/python3
"""`tnrec mirror` through nginx serving /file/<bucket>/<name> on loopback,
the way B2 files are read back behind a proxy, over http and https.

Segmented download of a proxy URL (nginx logs several 206 ranges), verify
of a URL prefix and of one object against the Zenodo record (fake Zenodo),
damage and absence found, TLS verification always on (a self-signed
server is refused without --cacert and accepted with it).
usage: test_mirror_nginx.py TNREC_BIN SCRATCH_DIR
nginx (Debian nginx-light) is run as a non-daemon with its own config,
pid and log files in SCRATCH_DIR; skipped (77) when nginx is missing, or
the openssl command (the https half needs a certificate made with it).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from mirror_testlib import FAILS, check, finish, free_port, md5

HERE = os.path.dirname(os.path.abspath(__file__))
TNREC, SCRATCH = sys.argv[1], sys.argv[2]


def find_nginx():
    for p in ("/usr/sbin/nginx", shutil.which("nginx") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


def start_nginx(nginx, www, port, tls_port, cert, key):
    conf = os.path.join(SCRATCH, "nginx.conf")
    user = "user root root;\n" if os.geteuid() == 0 else ""
    tls = ""
    if cert:
        tls = """
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location /file/ { alias %s/; }
  }""" % (tls_port, cert, key, www)
    with open(conf, "w") as f:
        f.write("""%sworker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 256; }
http {
  access_log %s/access.log;
  client_body_temp_path %s/t_body;
  proxy_temp_path %s/t_proxy;
  fastcgi_temp_path %s/t_fcgi;
  uwsgi_temp_path %s/t_uwsgi;
  scgi_temp_path %s/t_scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%d;
    location /file/ { alias %s/; }
  }%s
}
""" % ((user,) + (SCRATCH,) * 8 + (port, www, tls)))
    p = subprocess.Popen([nginx, "-p", SCRATCH, "-c", conf, "-e", os.path.join(SCRATCH, "error.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.time()
    while time.time() - t0 < 10:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            if p.poll() is not None:
                break
            time.sleep(0.1)
    p.kill()
    raise RuntimeError("nginx did not start: " + p.stderr.read().decode())


def main():
    nginx = find_nginx()
    if not nginx:
        print("nginx not installed (apt install nginx-light): skipped")
        return 77
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    os.makedirs(SCRATCH)
    # the record on the fake Zenodo and the same files in the "bucket"
    root = os.path.join(SCRATCH, "zenodo")
    rec = os.path.join(root, "3001")
    os.makedirs(rec)
    rnd = open("/dev/urandom", "rb")
    open(os.path.join(rec, "tornet_2013.tar.gz"), "wb").write(rnd.read(20 << 20 | 99))
    open(os.path.join(rec, "catalog.csv"), "wb").write(b"filename,type\ntrain/2013/a.nc,train\n")
    www = os.path.join(SCRATCH, "www")
    bucket = os.path.join(www, "tnbucket")
    shutil.copytree(rec, bucket)
    cert = key = None
    if shutil.which("openssl"):
        cert, key = os.path.join(SCRATCH, "cert.pem"), os.path.join(SCRATCH, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    port, tls_port = free_port(), free_port()
    ng = start_nginx(nginx, www, port, tls_port, cert, key)
    pf = os.path.join(SCRATCH, "zport")
    zen = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_zenodo.py"), "--root", root, "--port-file", pf])
    for _ in range(100):
        if os.path.exists(pf):
            break
        time.sleep(0.05)
    zurl = "http://127.0.0.1:%s" % open(pf).read().strip()
    base = "http://127.0.0.1:%d/file/tnbucket/" % port

    def run(*args):
        return subprocess.run([TNREC, "mirror", "--zenodo-url", zurl, "--retry-delay", "20"] + list(args),
                              capture_output=True, text=True, timeout=120)

    try:
        # segmented download through the proxy URL
        d = os.path.join(SCRATCH, "down")
        r = run("--connections", "4", base + "tornet_2013.tar.gz", base + "catalog.csv", d)
        check(r.returncode == 0 and "copied 2" in r.stdout, "download via nginx: " + r.stdout + r.stderr)
        for n in ("tornet_2013.tar.gz", "catalog.csv"):
            check(os.path.isfile(os.path.join(d, n)) and md5(os.path.join(d, n)) == md5(os.path.join(rec, n)),
                  "download via nginx: %s equal" % n)
        log = open(os.path.join(SCRATCH, "access.log")).read()
        ranges = [l for l in log.splitlines() if "tornet_2013" in l and '" 206 ' in l]
        check(len(ranges) >= 4, "nginx served %d ranged requests for the tarball" % len(ranges))

        # read-back check of the proxy prefix against the record
        r = run("--verify", base, "zenodo:3001")
        check(r.returncode == 0 and "verified 2" in r.stdout, "verify prefix: " + r.stdout + r.stderr)
        r = run("--verify", base + "catalog.csv", "zenodo:3001/catalog.csv")
        check(r.returncode == 0 and "verified 1" in r.stdout, "verify one object: " + r.stdout + r.stderr)
        r = run("--verify", base)
        check(r.returncode == 1 and "needs the sources" in r.stderr, "verify URL without sources: " + r.stderr)
        # damage and absence
        with open(os.path.join(bucket, "tornet_2013.tar.gz"), "r+b") as f:
            f.seek(12345678)
            b = f.read(1)
            f.seek(12345678)
            f.write(bytes([b[0] ^ 0x40]))
        os.unlink(os.path.join(bucket, "catalog.csv"))
        r = run("--verify", base, "zenodo:3001")
        check(r.returncode == 1 and "failed 2" in r.stdout, "verify finds damage and absence: " + r.stdout)
        check("MD5" in r.stdout + r.stderr and "404" in r.stdout + r.stderr, "verify says why: " + r.stdout)
        shutil.copy(os.path.join(rec, "catalog.csv"), bucket)

        # TLS: always verified; --cacert names the bundle
        if cert:
            tls = "https://127.0.0.1:%d/file/tnbucket/catalog.csv" % tls_port
            r = run("--retries", "0", tls, os.path.join(SCRATCH, "tls_refused"))
            check(r.returncode == 1 and "certificate" in r.stderr.lower(), "self-signed refused: " + r.stderr)
            check(not os.path.exists(os.path.join(SCRATCH, "tls_refused", "catalog.csv")), "refused: no file")
            r = run("--cacert", cert, tls, os.path.join(SCRATCH, "tls_ok"))
            check(r.returncode == 0 and md5(os.path.join(SCRATCH, "tls_ok", "catalog.csv")) ==
                  md5(os.path.join(rec, "catalog.csv")), "--cacert accepted: " + r.stderr)
            r = run("--cacert", os.path.join(SCRATCH, "nope.pem"), tls, os.path.join(SCRATCH, "tls_bad"))
            check(r.returncode == 1 and "nope.pem" in r.stderr, "missing CA bundle named: " + r.stderr)
    finally:
        zen.terminate()
        zen.wait()
        ng.terminate()
        ng.wait()
    if not cert and not FAILS:
        print("test_mirror_nginx: SKIPPED (the http checks passed): the openssl command is missing, so the "
              "https checks were not made (apt install openssl)")
        return 77
    return finish("test_mirror_nginx")


if __name__ == "__main__":
    sys.exit(main())
