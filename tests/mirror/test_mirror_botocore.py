#!/usr/bin/python3
"""tnrec's SigV4 signer against botocore's S3 signer on the same requests.

Random S3-like requests (odd key bytes, multipart queries, extra headers,
folded whitespace) are signed by both; canonical request and signature
must agree. A third of the requests carry a session token (temporary
credentials): botocore signs it as the X-Amz-Security-Token header, which
is what SigV4Auth.add_auth adds before signing; tnrec gets it as
session_token and must add and sign the same header.
Needs python3-botocore (Debian); skips (77) without it.
"""
import os
import random
import subprocess
import sys
import urllib.parse

try:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError:
    print("botocore not installed (apt install python3-botocore): skipped")
    sys.exit(77)

TOOL = sys.argv[1]
rng = random.Random(20260)
token_rng = random.Random(777)   # separate, so the other cases stay as they were
KEY_CHARS = "abcXYZ019-_.~ /+=&?%#:@!$'()*,;" + "\u00e9\u4e2d"


def one_case(i):
    method = rng.choice(["GET", "PUT", "POST", "HEAD", "DELETE"])
    key = "".join(rng.choice(KEY_CHARS) for _ in range(rng.randint(1, 24))).strip("/") or "k"
    path = "/bucket-%d/%s" % (i % 3, key)
    params = []
    kind = rng.randint(0, 4)
    if kind == 1:
        params = [("uploads", "")]
    elif kind == 2:
        params = [("uploadId", "2~abc/DEF+=%d" % i), ("partNumber", str(rng.randint(1, 10000)))]
    elif kind == 3:
        params = [("list-type", "2"), ("prefix", "tornet/" + key), ("continuation-token", "tok en/%d" % i)]
    elif kind == 4:
        params = [("max-parts", "1000"), ("part-number-marker", "7"), ("uploadId", "x y")]
    rng.shuffle(params)
    query = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                     for k, v in params)
    payload = rng.choice(["UNSIGNED-PAYLOAD", "%064x" % rng.getrandbits(256)])
    date = "2026%02d%02dT%02d%02d%02dZ" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                                            rng.randint(0, 59), rng.randint(0, 59))
    region = rng.choice(["us-east-1", "us-west-004", "eu-central-003"])
    access = "AKID%06d" % i
    secret = "secret/%d+key" % rng.getrandbits(40)
    host = rng.choice(["127.0.0.1:9000", "s3.us-west-004.backblazeb2.com"])
    headers = [("Host", host), ("x-amz-content-sha256", payload), ("X-Amz-Date", date)]
    if rng.random() < 0.5:
        headers.append(("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="))
    if rng.random() < 0.5:
        headers.append(("x-amz-meta-md5", "%032x" % rng.getrandbits(128)))
    if rng.random() < 0.3:
        headers.append(("Content-Type", "  application/xml   ;  charset=utf-8 "))

    token = None
    if i % 3 == 0:
        token = "IQoJb3JpZ2luX2Vj/%d+%s==" % (i, "".join(token_rng.choice("abcXYZ019+/=") for _ in range(40)))

    # botocore
    url = "http://%s%s" % (host, urllib.parse.quote(path, safe="/~"))
    if query:
        url += "?" + query
    req = AWSRequest(method=method, url=url, headers=dict(headers))
    req.context["timestamp"] = date
    auth = S3SigV4Auth(Credentials(access, secret, token), "s3", region)
    if token:
        req.headers["X-Amz-Security-Token"] = token   # as add_auth does
    cr = auth.canonical_request(req)
    sts = auth.string_to_sign(req, cr)
    sig = auth.signature(sts, req)

    # tnrec: X-Amz-Date is added by the signer itself
    lines = [method, path, query, payload, region, "s3", date, access, secret]
    lines += ["%s:%s" % (k, v) for k, v in headers if k != "X-Amz-Date"]
    env = dict(os.environ)
    env.pop("MIRROR_SIGV4_SESSION_TOKEN", None)
    if token:
        env["MIRROR_SIGV4_SESSION_TOKEN"] = token
    out = subprocess.run([TOOL], input="\n".join(lines) + "\n", capture_output=True, text=True, env=env)
    if out.returncode != 0:
        print("case %d: tool failed: %s" % (i, out.stderr))
        return False
    got_sig, _, got_cr = out.stdout.partition("\n")
    got_cr = got_cr.rstrip("\n")
    if got_sig != sig or got_cr != cr:
        print("case %d differs\n--- botocore:\n%s\n%s\n--- tnrec:\n%s\n%s" % (i, cr, sig, got_cr, got_sig))
        return False
    if token and "x-amz-security-token:" + token not in got_cr:
        print("case %d: the session token is not in the canonical request" % i)
        return False
    if secret in out.stdout:
        print("case %d: the secret appears in the output" % i)
        return False
    return True


def main():
    n = 200
    bad = sum(0 if one_case(i) else 1 for i in range(n))
    print("%d of %d requests signed as botocore signs them" % (n - bad, n))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
