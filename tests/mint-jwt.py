#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Mint and check JWTs with a third-party library (Debian's python3-jwt) for test-jwt.

Run with /usr/bin/python3 -I (Debian's interpreter, whatever python3 is on PATH).
argv[1] is a JSON array of requests; stdout is a JSON array of answers, one per
request, in order. Keys are read from files: an HS256 secret file counts as its
bytes minus trailing CR/LF (as arbiterd reads it), an RS256 key file as PEM.

  {"op": "encode", "alg": "HS256"|"RS256", "key_file": PATH,
   "payload": {...}, "headers": {...}?}
      -> {"token": "..."}            signed by python-jwt itself
  {"op": "raw", "alg": "HS256"|"none", "key_file": PATH?,
   "header": {...} | "header_raw": "text", "payload": {...} | "payload_raw": "text"}
      -> {"token": "..."}            built by hand, for what python-jwt refuses
                                     to make: alg none, an HMAC keyed with a PEM
                                     public key, payloads that are not JSON
  {"op": "decode", "token": "...", "alg": "HS256"|"RS256", "key_file": PATH,
   "audience": "..."?, "issuer": "..."?}
      -> {"claims": {...}} or {"error": "ExceptionName: message"}
"""
import base64
import hashlib
import hmac
import json
import sys

import jwt


def read_key(path, alg):
    with open(path, "rb") as f:
        data = f.read()
    if alg.startswith("HS"):
        return data.rstrip(b"\r\n")
    return data


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def part(req, name):
    if name + "_raw" in req:
        return req[name + "_raw"].encode("utf-8")
    return json.dumps(req[name], separators=(",", ":")).encode("utf-8")


def handle(req):
    op = req["op"]
    if op == "encode":
        key = read_key(req["key_file"], req["alg"])
        token = jwt.encode(req["payload"], key, algorithm=req["alg"],
                           headers=req.get("headers"))
        return {"token": token}
    if op == "raw":
        signing_input = b64url(part(req, "header")) + "." + b64url(part(req, "payload"))
        if req["alg"] == "none":
            sig = b""
        else:
            # the file's bytes as they are: for the algorithm-confusion forgery
            # that is the RSA public key PEM, which python-jwt will not accept
            # as an HMAC secret
            with open(req["key_file"], "rb") as f:
                key = f.read()
            if req.get("strip", True):
                key = key.rstrip(b"\r\n")
            sig = hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return {"token": signing_input + "." + b64url(sig)}
    if op == "decode":
        key = read_key(req["key_file"], req["alg"])
        try:
            claims = jwt.decode(req["token"], key, algorithms=[req["alg"]],
                                audience=req.get("audience"), issuer=req.get("issuer"),
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError as e:
            return {"error": "%s: %s" % (type(e).__name__, e)}
        return {"claims": claims}
    raise SystemExit("mint-jwt.py: unknown op %r" % op)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: mint-jwt.py JSON-ARRAY-OF-REQUESTS")
    answers = [handle(req) for req in json.loads(sys.argv[1])]
    json.dump(answers, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
