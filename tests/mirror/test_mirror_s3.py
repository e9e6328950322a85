#!/usr/bin/python3
"""`tnrec mirror` to a real S3 server on loopback: moto in server mode with
IAM authentication on, so a bad signature is refused.

Covers: staged and --stream mirrors (single PUT, multipart with parallel
parts, an empty object), the source MD5 as x-amz-meta-md5, an idempotent
rerun, resume after kill -9 or SIGINT in the middle of a multipart upload
(uploaded parts reused; SIGINT exits 130 and leaves the upload unfinished), a wrong source checksum (upload aborted, no object),
--abort-incomplete, --verify (listing and against the sources, damage
found), retries through a fault proxy (503 SlowDown with Retry-After, 500,
resets on PUT/POST/HEAD) and a clear failure when they do not pass, B2_* credentials, a refused secret, and that no secret ever
appears in any output (--verbose and errors included).
usage: test_mirror_s3.py TNREC_BIN SCRATCH_DIR MOTO_PYTHON
MOTO_PYTHON is a python with moto[server] and boto3; skipped (77) without.
"""
import json
import re
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from mirror_testlib import check, finish, free_port, wait_port, md5

HERE = os.path.dirname(os.path.abspath(__file__))
TNREC, SCRATCH, MOTO_PY = sys.argv[1], sys.argv[2], sys.argv[3]
SECRET_WRONG = "WRONGsecretMARKERq7Zx9"


# boto3 runs in the moto interpreter: a tiny helper process per call
BOTO = r'''
import boto3, json, sys, hashlib
ep, ak, sk, op = sys.argv[1:5]
args = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
if op == "setup":
    iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="mirror")
    iam.put_user_policy(UserName="mirror", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="mirror")["AccessKey"]
    s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                      aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
    s3.create_bucket(Bucket="tornet")
    print(json.dumps([k["AccessKeyId"], k["SecretAccessKey"]]))
    sys.exit(0)
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id=ak, aws_secret_access_key=sk)
if op == "get":
    try:
        o = s3.get_object(Bucket="tornet", Key=args["key"])
        body = o["Body"].read()
        print(json.dumps({"md5": hashlib.md5(body).hexdigest(), "size": len(body),
                          "meta": o.get("Metadata", {})}))
    except s3.exceptions.NoSuchKey:
        print(json.dumps(None))
elif op == "uploads":
    r = s3.list_multipart_uploads(Bucket="tornet", Prefix=args.get("prefix", ""))
    out = []
    for u in r.get("Uploads", []):
        parts = s3.list_parts(Bucket="tornet", Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
        out.append({"key": u["Key"], "parts": len(parts)})
    print(json.dumps(out))
elif op == "start_upload":
    u = s3.create_multipart_upload(Bucket="tornet", Key=args["key"])
    print(json.dumps(u["UploadId"]))
elif op == "put":
    s3.put_object(Bucket="tornet", Key=args["key"], Body=args["body"].encode(),
                  Metadata=args.get("meta", {}))
    print(json.dumps(True))
'''


class Moto:
    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        self.log = open(os.path.join(SCRATCH, "moto.log"), "w")
        self.p = subprocess.Popen([MOTO_PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                  stdout=self.log, stderr=self.log, env=env)
        if not wait_port(self.port):
            raise RuntimeError("moto did not start")
        self.ak, self.sk = self.boto("setup")

    def boto(self, op, **args):
        r = subprocess.run([MOTO_PY, "-c", BOTO, self.url, getattr(self, "ak", "x"),
                            getattr(self, "sk", "x"), op, json.dumps(args)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("boto3 %s failed: %s" % (op, r.stderr[-2000:]))
        return json.loads(r.stdout)

    def stop(self):
        self.p.terminate()
        self.p.wait()
        self.log.close()


def wait_parts(p, want, timeout):
    """Reads a `tnrec mirror -v` process's stderr until it has reported
    `want` parts uploaded (or ended, or timeout seconds passed). Reacting to
    tnrec's own lines, not to a poll of the server, keeps the signal inside
    the upload however slow the machine is. Returns (parts, lines read)."""
    sel = selectors.DefaultSelector()
    sel.register(p.stderr, selectors.EVENT_READ)
    got, seen, deadline = 0, [], time.time() + timeout
    while got < want and time.time() < deadline:
        if not sel.select(timeout=0.5):
            if p.poll() is not None:
                break
            continue
        line = p.stderr.readline()
        if not line:
            break
        seen.append(line)
        if re.search(r": part \d+ uploaded$", line.rstrip()):
            got += 1
    sel.close()
    return got, seen


class Zenodo:
    def __init__(self, root):
        pf = os.path.join(SCRATCH, "zport")
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_zenodo.py"),
                                   "--root", root, "--port-file", pf])
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.url = "http://127.0.0.1:%s" % open(pf).read().strip()

    def ctl(self, **kw):
        urllib.request.urlopen(self.url + "/_control?" + "&".join("%s=%s" % kv for kv in kw.items())).read()

    def stop(self):
        self.p.terminate()
        self.p.wait()


def main():
    if not os.access(MOTO_PY, os.X_OK) or subprocess.run([MOTO_PY, "-c", "import moto.server, boto3"],
                                                        capture_output=True).returncode != 0:
        print("no python with moto[server] at '%s' (python3 -m venv /opt/tnrec-moto && "
              "/opt/tnrec-moto/bin/pip install 'moto[server]'): skipped" % MOTO_PY)
        return 77
    if os.path.exists(SCRATCH):
        shutil.rmtree(SCRATCH)
    os.makedirs(SCRATCH)
    root = os.path.join(SCRATCH, "zenodo")
    rec = os.path.join(root, "2001")
    os.makedirs(rec)
    rnd = open("/dev/urandom", "rb")
    open(os.path.join(rec, "big.bin"), "wb").write(rnd.read(23 << 20 | 777))
    open(os.path.join(rec, "small.txt"), "wb").write(b"filename,type\ntrain/2013/x.nc,train\n")
    open(os.path.join(rec, "empty.dat"), "wb").close()
    names = ["big.bin", "small.txt", "empty.dat"]
    moto = Moto()
    zen = Zenodo(root)
    outputs = []

    def run(*args, env_extra=None, creds=True, timeout=120, endpoint=None):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("B2_")}
        if creds:
            env["AWS_ACCESS_KEY_ID"] = moto.ak
            env["AWS_SECRET_ACCESS_KEY"] = moto.sk
        env.update(env_extra or {})
        cmd = [TNREC, "mirror", "--zenodo-url", zen.url, "--endpoint", endpoint or moto.url, "--retry-delay", "20",
               "--staging", os.path.join(SCRATCH, "staging")] + list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        outputs.append(r.stdout + r.stderr)
        return r

    def objects_ok(prefix):
        ok = True
        for n in names:
            o = moto.boto("get", key=prefix + n)
            want = md5(os.path.join(rec, n))
            ok &= check(o is not None and o["md5"] == want and o["meta"].get("md5") == want,
                        "%s%s stored with content and x-amz-meta-md5 %s: %s" % (prefix, n, want, o))
        return ok

    try:
        # staged: download, check, upload (5 parts of 5 MiB for big.bin), clean up
        r = run("--part-size", "5M", "-v", "zenodo:2001", "s3://tornet/v1")
        check(r.returncode == 0 and "copied 3" in r.stdout, "staged mirror: " + r.stdout + r.stderr[-3000:])
        objects_ok("v1/")
        check("partNumber=5" in r.stderr, "staged mirror: multipart in 5 parts")
        check(not os.listdir(os.path.join(SCRATCH, "staging")), "staged mirror: staging emptied")
        # idempotent rerun: HEAD only
        r = run("-v", "zenodo:2001", "s3://tornet/v1")
        check(r.returncode == 0 and "skipped 3" in r.stdout, "rerun skips: " + r.stdout)
        check("PUT " not in r.stderr and "GET " + zen.url + "/records" not in r.stderr, "rerun transfers nothing")

        # stream: no local file
        shutil.rmtree(os.path.join(SCRATCH, "staging"))
        r = run("--stream", "--part-size", "5M", "--connections", "3", "zenodo:2001", "s3://tornet/stream")
        check(r.returncode == 0 and "copied 3" in r.stdout, "stream mirror: " + r.stdout + r.stderr)
        objects_ok("stream/")
        check(not os.path.exists(os.path.join(SCRATCH, "staging")), "stream mirror: nothing staged")

        # wrong published checksum in stream mode: aborted, no object, no upload left
        zen.ctl(badsum="big.bin")
        r = run("--stream", "--part-size", "5M", "zenodo:2001/big.bin", "s3://tornet/bad")
        check(r.returncode == 1 and "MD5" in r.stderr and "aborted" in r.stderr, "stream bad checksum: " + r.stderr)
        check(moto.boto("get", key="bad/big.bin") is None, "stream bad checksum: no object")
        check(moto.boto("uploads", prefix="bad/") == [], "stream bad checksum: upload aborted")
        r = run("--part-size", "5M", "zenodo:2001/big.bin", "s3://tornet/bad")
        check(r.returncode == 1 and moto.boto("get", key="bad/big.bin") is None, "staged bad checksum: no object")
        zen.ctl(reset=1)

        # kill -9 in the middle of a multipart upload, then resume reusing parts
        zen.ctl(rate=3000000)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=moto.ak, AWS_SECRET_ACCESS_KEY=moto.sk)
        p = subprocess.Popen([TNREC, "mirror", "--zenodo-url", zen.url, "--endpoint", moto.url, "--stream", "-v",
                              "--part-size", "5M", "--connections", "2", "zenodo:2001/big.bin", "s3://tornet/kill"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        wait_parts(p, 2, 60)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stderr.close()
        ups = moto.boto("uploads", prefix="kill/")
        parts = ups[0]["parts"] if ups else 0
        check(parts >= 2, "kill test: parts were uploaded before the kill (%d)" % parts)
        check(moto.boto("get", key="kill/big.bin") is None, "kill test: no object after the kill")
        zen.ctl(rate=0)
        r = run("--stream", "--part-size", "5M", "-v", "zenodo:2001/big.bin", "s3://tornet/kill")
        reused = r.stderr.count("already uploaded")
        check(r.returncode == 0 and "resuming an unfinished multipart upload" in r.stderr,
              "kill test: resumed: " + r.stderr[-3000:])
        check(reused >= 2, "kill test: %d uploaded part(s) reused" % reused)
        o = moto.boto("get", key="kill/big.bin")
        check(o and o["md5"] == md5(os.path.join(rec, "big.bin")), "kill test: object correct")
        check(moto.boto("uploads", prefix="kill/") == [], "kill test: no upload left over")

        # SIGINT in the middle of a streamed multipart upload: exit 130, one line
        # saying how to resume, the upload left unfinished (not aborted); the
        # same command resumes it reusing the parts
        zen.ctl(rate=3000000)
        cmd = [TNREC, "mirror", "--zenodo-url", zen.url, "--endpoint", moto.url, "--stream", "--part-size", "5M",
               "-v", "--connections", "2", "zenodo:2001/big.bin", "s3://tornet/sigint"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        parts, seen = wait_parts(p, 2, 60)
        running = p.poll() is None
        if running:
            p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        err = "".join(seen) + err
        outputs.append(out + err)
        check(running and parts >= 2, "SIGINT test: signalled mid-upload (%d parts)" % parts)
        check(p.returncode == 130, "SIGINT test: exit 130 (got %d): %s" % (p.returncode, err[-2000:]))
        lines = [l for l in err.splitlines() if "interrupted" in l or "error" in l]
        check(len(lines) == 1 and "interrupted by SIGINT" in lines[0] and "the same command" in lines[0],
              "SIGINT test: one line saying how to resume: %r" % err[-2000:])
        ups = moto.boto("uploads", prefix="sigint/")
        check(len(ups) == 1 and ups[0]["parts"] >= 2, "SIGINT test: the upload is left for a rerun: %s" % ups)
        check(moto.boto("get", key="sigint/big.bin") is None, "SIGINT test: no object")
        zen.ctl(rate=0)
        r = run("--stream", "--part-size", "5M", "-v", "zenodo:2001/big.bin", "s3://tornet/sigint")
        check(r.returncode == 0 and "resuming an unfinished multipart upload" in r.stderr
              and r.stderr.count("already uploaded") >= 2, "SIGINT test: resumed reusing parts: " + r.stderr[-3000:])
        o = moto.boto("get", key="sigint/big.bin")
        check(o and o["md5"] == md5(os.path.join(rec, "big.bin")), "SIGINT test: object correct")
        check(moto.boto("uploads", prefix="sigint/") == [], "SIGINT test: no upload left over")

        # the same with a staged copy: the rerun reuses the staged file and the parts
        p = subprocess.Popen([TNREC, "mirror", "--zenodo-url", zen.url, "--endpoint", moto.url,
                              "--staging", os.path.join(SCRATCH, "staging2"), "--limit-rate", "8M",
                              "--jobs", "1", "--part-size", "5M", "--connections", "2", "-v",
                              "zenodo:2001/big.bin", "s3://tornet/kill2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        wait_parts(p, 2, 60)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stderr.close()
        ups = moto.boto("uploads", prefix="kill2/")
        parts = ups[0]["parts"] if ups else 0
        check(parts >= 2, "staged kill test: parts were uploaded before the kill (%d)" % parts)
        r = run("--staging", os.path.join(SCRATCH, "staging2"), "--part-size", "5M", "-v",
                "zenodo:2001/big.bin", "s3://tornet/kill2")
        check(r.returncode == 0 and r.stderr.count("already uploaded") >= 2,
              "staged kill test: parts reused: " + r.stderr[-3000:])
        check("/records/2001/files/big.bin" not in r.stderr, "staged kill test: the staged copy was reused")
        o = moto.boto("get", key="kill2/big.bin")
        check(o and o["md5"] == md5(os.path.join(rec, "big.bin")), "staged kill test: object correct")
        check(not os.listdir(os.path.join(SCRATCH, "staging2")), "staged kill test: staging emptied")

        # faults between tnrec and the S3 server: 503 SlowDown, 500, resets
        pf = os.path.join(SCRATCH, "pport")
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "fault_proxy.py"),
                                  "--upstream", "127.0.0.1:%d" % moto.port, "--port-file", pf])
        try:
            for _ in range(100):
                if os.path.exists(pf):
                    break
                time.sleep(0.05)
            purl = "http://127.0.0.1:%s" % open(pf).read().strip()
            ctl = lambda q: urllib.request.urlopen(purl + "/__control?" + q).read()
            ctl("fault=503&count=2&method=PUT")
            ctl("fault=reset&count=2&method=PUT")
            ctl("fault=500&count=1&method=POST")
            ctl("fault=reset&count=1&method=HEAD")
            r = run("--part-size", "5M", "zenodo:2001", "s3://tornet/flaky", env_extra={}, timeout=120,
                    endpoint=purl)
            check(r.returncode == 0 and "copied 3" in r.stdout, "S3 through faults: " + r.stdout + r.stderr)
            objects_ok("flaky/")
            injected = json.loads(urllib.request.urlopen(purl + "/__stats").read())["faults"]
            check(injected == 6, "S3 faults injected: %d of 6" % injected)
            # a fault that does not pass: a clear failure and no object
            ctl("reset=1")
            ctl("fault=503&count=1000&method=PUT")
            r = run("--retries", "1", "zenodo:2001/small.txt", "s3://tornet/down", endpoint=purl)
            check(r.returncode == 1 and "503" in r.stderr, "S3 persistent 503: " + r.stderr)
            check(moto.boto("get", key="down/small.txt") is None, "S3 persistent 503: no object")
        finally:
            proxy.terminate()
            proxy.wait()

        # abandoned uploads are aborted on request
        moto.boto("start_upload", key="v1/abandoned.bin")
        check(len(moto.boto("uploads", prefix="v1/")) == 1, "an abandoned upload exists")
        r = run("--abort-incomplete", "s3://tornet/v1")
        check(r.returncode == 0 and moto.boto("uploads", prefix="v1/") == [], "--abort-incomplete: " + r.stderr)

        # verify: by listing (x-amz-meta-md5) and against the sources
        r = run("--verify", "s3://tornet/v1")
        check(r.returncode == 0 and "verified 3" in r.stdout, "verify by listing: " + r.stdout + r.stderr)
        r = run("--verify", "s3://tornet/stream", "zenodo:2001")
        check(r.returncode == 0 and "verified 3" in r.stdout, "verify against sources: " + r.stdout + r.stderr)
        meta = md5(os.path.join(rec, "small.txt"))
        moto.boto("put", key="stream/small.txt", body="tampered", meta={"md5": meta})
        r = run("--verify", "s3://tornet/stream")
        check(r.returncode == 1 and "failed 1" in r.stdout, "verify finds a damaged object: " + r.stdout)
        # a mirror rerun replaces it (same MD5 metadata, but the size differs)
        r = run("zenodo:2001", "s3://tornet/stream")
        check(r.returncode == 0 and "copied 1" in r.stdout, "rerun repairs: " + r.stdout + r.stderr)
        r = run("--verify", "s3://tornet/stream", "zenodo:2001")
        check(r.returncode == 0, "repaired object verifies: " + r.stdout)

        # B2 variable names
        r = run("--verify", "s3://tornet/v1", creds=False,
                env_extra={"B2_APPLICATION_KEY_ID": moto.ak, "B2_APPLICATION_KEY": moto.sk})
        check(r.returncode == 0, "B2_* credentials: " + r.stderr)
        # no credentials at all
        r = run("zenodo:2001", "s3://tornet/v1", creds=False)
        check(r.returncode == 1 and "AWS_ACCESS_KEY_ID" in r.stderr, "no credentials: " + r.stderr)
        # a wrong secret is refused by the server, and never shown
        r = run("-v", "--retries", "1", "zenodo:2001", "s3://tornet/denied", creds=False,
                env_extra={"AWS_ACCESS_KEY_ID": moto.ak, "AWS_SECRET_ACCESS_KEY": SECRET_WRONG})
        check(r.returncode == 1 and "SignatureDoesNotMatch" in r.stderr, "bad secret refused: " + r.stderr)
        check(moto.boto("get", key="denied/small.txt") is None, "bad secret: nothing stored")
        r = run("-v", "--verify", "s3://tornet/v1", creds=False,
                env_extra={"AWS_ACCESS_KEY_ID": moto.ak, "AWS_SECRET_ACCESS_KEY": SECRET_WRONG})
        check(r.returncode == 1 and "hint:" in r.stderr, "bad secret on verify: " + r.stderr)
        # unsafe prefixes and bad S3 URLs
        r = run("zenodo:2001", "s3://tornet/../x")
        check(r.returncode == 1 and "prefix" in r.stderr, "unsafe prefix refused: " + r.stderr)
        r = run("zenodo:2001", "s3://Bad_Bucket/x")
        check(r.returncode == 1 and "bucket name" in r.stderr, "bad bucket refused: " + r.stderr)

        # no output of any run holds a secret
        for out in outputs:
            for s in (moto.sk, SECRET_WRONG):
                if s in out:
                    check(False, "a secret appears in the output:\n" + out.replace(s, "<SECRET>")[-1500:])
    finally:
        zen.stop()
        moto.stop()
    return finish("test_mirror_s3")


if __name__ == "__main__":
    sys.exit(main())
