#!/usr/bin/python3
"""tests/unit/policy_sig/sig_ref.py: an independent reference for meshd's request signature
and mesh identity token (policy/signature.h, policy/mesh_identity.h), built only on Python's
hmac, hashlib and base64. test_signature and test_mesh_identity run it and check that meshd
accepts what it produces and computes the same MACs.

Usage: sig_ref.py sig N    -> N lines: sig <client> <secret-b64> <path> <ts> <nonce> <body-hex|-> <header>
       sig_ref.py id N     -> N lines: id <secret-b64> <now> <path|-> <sub> <src|-> <claims|-> <token>
(claims as name=value;name=value). Vectors are seeded, so every run prints the same ones.
"""
import base64
import hashlib
import hmac
import random
import sys


# --- the request signature, as a client computes it (docs/policy-signature.md) ---------------
def grpc_frame(message: bytes) -> bytes:
    """One gRPC length-prefixed message: flag byte 0 (not compressed), 4-byte length."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def sign(client: str, secret: bytes, path: str, body: bytes, ts: int, nonce: str) -> str:
    """The x-meshd-signature header value for a call."""
    canonical = "v1\n%s\n%d\n%s\n%s" % (path, ts, nonce, hashlib.sha256(body).hexdigest())
    mac = hmac.new(secret, canonical.encode(), hashlib.sha256).digest()
    return "keyId=%s,ts=%d,nonce=%s,sig=%s" % (client, ts, nonce, base64.b64encode(mac).decode())


# --- the mesh identity token -------------------------------------------------------------------
def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def mint(secret: bytes, now: int, ttl: int, sub: str, src=None, path=None, claims=()) -> str:
    payload = "exp=%d\nsub=%s\n" % (now + ttl, sub)
    if src:
        payload += "src=%s\n" % src
    if path:
        payload += "path=%s\n" % path
    for name, value in claims:
        payload += "c.%s=%s\n" % (name, value)
    signed = "v1." + b64url(payload.encode())
    mac = hmac.new(secret, signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64url(mac)


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def word(rng, lo, hi, alphabet=ALNUM):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(20261201)
    for i in range(n):
        if mode == "sig":
            client = word(rng, 1, 20, ALNUM + "._:@-")
            secret = bytes(rng.getrandbits(8) for _ in range(rng.randint(16, 64)))
            path = "/%s.%s/%s" % (word(rng, 1, 10), word(rng, 1, 10), word(rng, 1, 12))
            body = b"".join(grpc_frame(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))))
                            for _ in range(rng.randint(0, 3)))
            ts = 1764547200 + rng.randint(0, 10**6)
            nonce = word(rng, 16, 64, ALNUM + "+/=_-~.")
            header = sign(client, secret, path, body, ts, nonce)
            print("sig", client, base64.b64encode(secret).decode(), path, ts, nonce,
                  body.hex() or "-", header)
        else:
            secret = bytes(rng.getrandbits(8) for _ in range(rng.randint(32, 64)))
            now = 1764547200 + rng.randint(0, 10**6)
            path = "/%s.Svc/%s" % (word(rng, 1, 8), word(rng, 1, 8)) if i % 2 else None
            sub = word(rng, 1, 40, ALNUM + "@.|:-")
            src = rng.choice(["jwt", "signature", "ext_authz", None])
            claims = [(word(rng, 1, 10), word(rng, 0, 30)) for _ in range(rng.randint(0, 8))]
            token = mint(secret, now, 30, sub, src, path, claims)
            print("id", base64.b64encode(secret).decode(), now, path or "-", sub, src or "-",
                  ";".join("%s=%s" % c for c in claims) or "-", token)


if __name__ == "__main__":
    main()
