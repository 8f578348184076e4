#!/usr/bin/python3
"""tests/unit/policy_jwt/make_vectors.py: JWT test vectors from an independent implementation.

Generates fresh keys with python3-cryptography (RSA 2048, EC P-256 and P-384, Ed25519, HMAC
secrets), exports them as a JWKS with python3-jwt's own JWK encoders, and mints valid and
invalid tokens with python3-jwt (PyJWT), each with the outcome meshd must reach: "ok" plus the
claims it must extract, or the exact rejection reason. Writes one JSON file:

    {"now": N, "jwks": {"main": {...}, "nokid": {...}}, "cases": [{"name", "jwks", "token",
     "expect", "rules": {...}, "sub", "iss", "exp", "extra": [...]}]}

Usage: make_vectors.py OUT.json
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import jwt
from jwt.algorithms import (ECAlgorithm, HMACAlgorithm, OKPAlgorithm, RSAAlgorithm,
                            get_default_algorithms)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

NOW = 1700000000
ISS = "https://issuer.example"
AUD = "meshd"
SKEW = 60
CLAIMS = ["email", "groups", "tenant"]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(alg_cls, key, **extra):
    d = json.loads(alg_cls.to_jwk(key))
    d.update(extra)
    return d


# ---- keys ---------------------------------------------------------------------------------
rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_enc = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
ec256 = ec.generate_private_key(ec.SECP256R1())
ec384 = ec.generate_private_key(ec.SECP384R1())
# A P-256 key whose x has a leading zero byte: python3-jwt's to_jwk writes it as 31 bytes
# (RFC 7518 wants 32); meshd must take it, as other verifiers do.
while True:
    ec_short = ec.generate_private_key(ec.SECP256R1())
    if ec_short.public_key().public_numbers().x < (1 << 248):
        break
ed = ed25519.Ed25519PrivateKey.generate()
hs = os.urandom(64)
hs512 = os.urandom(64)
other_hs = os.urandom(64)

main_keys = [
    jwk(RSAAlgorithm, rsa1.public_key(), kid="rsa-1", use="sig"),
    jwk(RSAAlgorithm, rsa2.public_key(), kid="rsa-2"),
    jwk(RSAAlgorithm, rsa_enc.public_key(), kid="rsa-enc", use="enc"),
    jwk(ECAlgorithm, ec256.public_key(), kid="ec-256"),
    jwk(ECAlgorithm, ec384.public_key(), kid="ec-384"),
    dict(jwk(ECAlgorithm, ec_short.public_key(), kid="ec-short"),
         x=b64(ec_short.public_key().public_numbers().x.to_bytes(31, "big"))),
    jwk(OKPAlgorithm, ed.public_key(), kid="ed-1"),
    jwk(HMACAlgorithm, hs, kid="hs-1"),
    jwk(HMACAlgorithm, hs512, kid="hs-512", alg="HS512"),
]
# Two RSA keys and no kids: a token is tried against each.
nokid_keys = [
    jwk(RSAAlgorithm, rsa1.public_key()),
    jwk(RSAAlgorithm, rsa2.public_key()),
]
# Only oct keys without kids: four are all tried, five are too many to try.
many_hs = [os.urandom(32) for _ in range(5)]
four_keys = [jwk(HMACAlgorithm, k) for k in many_hs[:4]]
five_keys = [jwk(HMACAlgorithm, k) for k in many_hs]
# Some bad keys among good ones (the good ones must survive).
mixed_keys = [
    jwk(RSAAlgorithm, rsa1.public_key(), kid="good-rsa"),
    jwk(RSAAlgorithm, rsa_small.public_key(), kid="small-rsa"),
    dict(jwk(ECAlgorithm, ec256.public_key(), kid="bad-point"),
         y=b64(bytes(32))),  # (x, 0) is not on P-256
    {"kty": "oct", "kid": "short", "k": b64(b"0123456789")},
    {"kty": "RSA", "kid": "padded-n", "n": "AQAB==", "e": "AQAB"},
    {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": b64(bytes(32))},
    {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
    {"kty": "foo", "kid": "foo"},
    jwk(HMACAlgorithm, hs, kid="good-hs"),
]

rsa1_pem = rsa1.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)

PRIV = {
    "rsa-1": rsa1, "rsa-2": rsa2, "rsa-enc": rsa_enc, "ec-256": ec256, "ec-384": ec384, "ec-short": ec_short,
    "ed-1": ed, "hs-1": hs, "hs-512": hs512, "other-hs": other_hs, "many-4": many_hs[3],
}


def payload(**over):
    p = {"sub": "user-1", "iss": ISS, "aud": AUD, "exp": NOW + 3600, "iat": NOW - 10,
         "email": "a@example.com", "groups": ["admin", "dev"], "tenant": 42}
    for k, v in over.items():
        if v is None:
            p.pop(k, None)
        else:
            p[k] = v
    return p


def mint(alg, key, pl=None, kid=None, headers=None):
    h = dict(headers or {})
    if kid:
        h["kid"] = kid
    return jwt.encode(pl if pl is not None else payload(), PRIV[key] if key in PRIV else key,
                      algorithm=alg, headers=h or None)


def raw(header, body, alg=None, key=None):
    """A token from raw header and payload bytes, signed with PyJWT's algorithm objects."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    pb = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = (b64(hb) + "." + b64(pb)).encode()
    if alg is None:
        return msg.decode() + "."
    a = get_default_algorithms()[alg]
    sig = a.sign(msg, a.prepare_key(PRIV[key]))
    return msg.decode() + "." + b64(sig)


def flip(token, part=2):
    """Changes one character in the middle of a part (stays canonical base64url)."""
    parts = token.split(".")
    s = parts[part]
    i = len(s) // 2
    parts[part] = s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]
    return ".".join(parts)


cases = []


def case(name, token, expect, jwks="main", rules=None, **want):
    c = {"name": name, "jwks": jwks, "token": token, "expect": expect, "rules": rules or {}}
    if expect == "ok":
        c.update({"sub": "user-1", "iss": ISS, "exp": NOW + 3600,
                  "extra": ["a@example.com", "admin,dev", "42"]})
    c.update(want)
    cases.append(c)


# ---- every algorithm verifies -------------------------------------------------------------
for alg, kid in [("HS256", "hs-1"), ("HS384", "hs-1"), ("HS512", "hs-1"), ("HS512", "hs-512"),
                 ("RS256", "rsa-1"), ("RS384", "rsa-1"), ("RS512", "rsa-1"),
                 ("PS256", "rsa-1"), ("PS384", "rsa-1"), ("PS512", "rsa-2"),
                 ("ES256", "ec-256"), ("ES384", "ec-384"), ("EdDSA", "ed-1")]:
    case(f"ok {alg} {kid}", mint(alg, kid, kid=kid), "ok")

# ---- key rotation and kid handling ---------------------------------------------------------
case("rotation: second RSA key by kid", mint("RS256", "rsa-2", kid="rsa-2"), "ok")
case("no kid: each fitting key tried (rsa-2 second)", mint("RS256", "rsa-2"), "ok")
case("no kid, keyset without kids", mint("RS256", "rsa-2"), "ok", jwks="nokid")
case("no kid, HS256: only oct keys tried", mint("HS256", "hs-1"), "ok")
case("unknown kid", mint("RS256", "rsa-1", kid="rsa-9"), "unknown key")
case("kid of a use=enc key", mint("RS256", "rsa-enc", kid="rsa-enc"), "unknown key")
case("kid of rsa-1 but signed by rsa-2", mint("RS256", "rsa-2", kid="rsa-1"), "bad signature")
case("no kid, signed by an unknown key", mint("ES256", ec.generate_private_key(ec.SECP256R1())),
     "bad signature")
case("no kid, 4 fitting keys: the 4th verifies", mint("HS256", "many-4"), "ok", jwks="four")
case("no kid, 5 fitting keys: too many to try", mint("HS256", "many-4"), "unknown key",
     jwks="five")
case("kid given, but the set has no kids", mint("HS256", "many-4", kid="k"), "unknown key",
     jwks="four")
case("no kid, no key of the type", mint("ES256", "ec-256"), "unknown key", jwks="nokid")
case("ES256 key whose x is written in 31 bytes", mint("ES256", "ec-short", kid="ec-short"), "ok")
case("kid of a key with another alg (HS512 key, HS256 token)", mint("HS256", "hs-512", kid="hs-512"),
     "wrong key type")

# ---- wrong key type, HS/RS confusion --------------------------------------------------------
case("RS256 naming an oct key", mint("RS256", "rsa-1", kid="hs-1"), "wrong key type")
case("ES384 naming a P-256 key", mint("ES384", "ec-384", kid="ec-256"), "wrong key type")
case("ES256 naming an RSA key", mint("ES256", "ec-256", kid="rsa-1"), "wrong key type")
case("EdDSA naming an EC key", mint("EdDSA", "ed-1", kid="ec-256"), "wrong key type")
hdr = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
msg = (b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(payload()).encode())).encode()
confused = msg.decode() + "." + b64(hmac.new(rsa1_pem, msg, hashlib.sha256).digest())
case("HS/RS confusion: HS256 keyed with the RSA public key, kid rsa-1", confused, "wrong key type")
hdr = {"alg": "HS256", "typ": "JWT"}
msg = (b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(payload()).encode())).encode()
confused = msg.decode() + "." + b64(hmac.new(rsa1_pem, msg, hashlib.sha256).digest())
case("HS/RS confusion without kid", confused, "bad signature")

# ---- algorithms ----------------------------------------------------------------------------
case("alg none", raw({"alg": "none", "typ": "JWT"}, payload()), "algorithm not allowed")
case("alg None (case)", raw({"alg": "None"}, payload()), "algorithm not allowed")
case("alg none with a signature", raw({"alg": "none"}, payload()) + "c2ln",
     "algorithm not allowed")
case("alg unknown", raw({"alg": "HS1024", "kid": "hs-1"}, payload()) + "c2ln",
     "algorithm not allowed")
case("alg not in the allowed list", mint("HS256", "hs-1", kid="hs-1"), "algorithm not allowed",
     rules={"algs": ["RS256", "ES256"]})
case("alg in a narrowed list", mint("ES256", "ec-256", kid="ec-256"), "ok",
     rules={"algs": ["RS256", "ES256"]})

# ---- signatures ----------------------------------------------------------------------------
for alg, kid in [("HS256", "hs-1"), ("RS256", "rsa-1"), ("PS256", "rsa-1"), ("ES256", "ec-256"),
                 ("ES384", "ec-384"), ("EdDSA", "ed-1")]:
    case(f"bad signature {alg}", flip(mint(alg, kid, kid=kid)), "bad signature")
case("payload changed after signing", flip(mint("RS256", "rsa-1", kid="rsa-1"), 1), "bad signature")
case("HS256 with another secret", mint("HS256", "other-hs", kid="hs-1"), "bad signature")
t = mint("ES256", "ec-256", kid="ec-256").split(".")
t[2] = b64(base64.urlsafe_b64decode(t[2] + "==")[:63])
case("ES256 signature one byte short", ".".join(t), "bad signature")
t = mint("EdDSA", "ed-1", kid="ed-1").split(".")
t[2] = b64(base64.urlsafe_b64decode(t[2] + "==") + b"\0")
case("EdDSA signature one byte long", ".".join(t), "bad signature")

# ---- malformed -----------------------------------------------------------------------------
good = mint("RS256", "rsa-1", kid="rsa-1")
h, p, s = good.split(".")
case("empty token", "", "malformed token")
case("two parts", h + "." + p, "malformed token")
case("four parts", good + ".x", "malformed token")
case("JWE-like five parts", good + ".a.b", "malformed token")
case("empty signature", h + "." + p + ".", "malformed token")
case("padding in the header", h + "=" * (-len(h) % 4 or 4) + "." + p + "." + s, "malformed token")
case("'+' in the signature", h + "." + p + "." + s[:10] + "+" + s[11:], "malformed token")
case("'/' in the header", "/" + h[1:] + "." + p + "." + s, "malformed token")
case("illegal character", h + "." + p + "." + s[:10] + "*" + s[11:], "malformed token")
case("whitespace", h + "." + p + " ." + s, "malformed token")
# Non-canonical: the last character of a 2-char tail carries 4 unused bits.
hb = json.dumps({"alg": "RS256", "kid": "rsa-1", "x": "y"}).encode()
while len(hb) % 3 != 1:
    hb = hb[:-1] + b" }"
hc = b64(hb)
last = hc[-1]
alt = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
hc = hc[:-1] + alt[alt.index(last) + 1]
case("non-canonical base64url (trailing bits)", hc + "." + p + "." + s, "malformed token")
case("length 1 mod 4", h + "." + p + "." + s + "A" * ((1 - len(s)) % 4 or 4), "malformed token")
case("header not JSON", b64(b"{alg:RS256}") + "." + p + "." + s, "malformed token")
case("header a JSON array", b64(b'["RS256"]') + "." + p + "." + s, "malformed token")
case("header with trailing garbage", b64(b'{"alg":"RS256"}x') + "." + p + "." + s,
     "malformed token")
case("duplicate alg in header",
     raw(b'{"alg":"none","alg":"RS256","kid":"rsa-1"}', payload(), "RS256", "rsa-1"),
     "malformed token")
case("alg not a string", raw({"alg": 256, "kid": "rsa-1"}, payload()) + s, "malformed token")
case("kid not a string", raw({"alg": "RS256", "kid": 1}, payload(), "RS256", "rsa-1"),
     "malformed token")
case("typ not a string", raw({"alg": "RS256", "kid": "rsa-1", "typ": 1}, payload(), "RS256",
                             "rsa-1"), "malformed token")
case("crit header", raw({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"], "exp": 1}, payload(),
                        "RS256", "rsa-1"), "malformed token")
case("embedded jwk header is ignored (signed by rsa-1)",
     mint("RS256", "rsa-1", kid="rsa-1",
          headers={"jwk": jwk(RSAAlgorithm, rsa2.public_key())}), "ok")
case("payload not JSON (signed)", raw({"alg": "RS256", "kid": "rsa-1"}, b"{sub:1}", "RS256",
                                      "rsa-1"), "malformed token")
case("payload an array (signed)", raw({"alg": "RS256", "kid": "rsa-1"}, b"[1,2]", "RS256",
                                      "rsa-1"), "malformed token")
case("duplicate sub in payload (signed)",
     raw({"alg": "ES256", "kid": "ec-256"},
         b'{"sub":"admin","sub":"user-1","iss":"%s","aud":"meshd","exp":%d}'
         % (ISS.encode(), NOW + 3600), "ES256", "ec-256"), "malformed token")
case("exp not a number", mint("RS256", "rsa-1", payload(exp="tomorrow"), kid="rsa-1"),
     "malformed token")
case("nbf not a number", mint("RS256", "rsa-1", payload(nbf=[1]), kid="rsa-1"), "malformed token")
case("token too long", mint("HS256", "hs-1", payload(pad="x" * 9000), kid="hs-1"),
     "token too long")
case("token over a configured limit", mint("HS256", "hs-1", kid="hs-1"), "token too long",
     rules={"max_len": 100})

# ---- times ---------------------------------------------------------------------------------
case("expired", mint("RS256", "rsa-1", payload(exp=NOW - 3600), kid="rsa-1"), "expired")
case("exp = now - skew: expired", mint("RS256", "rsa-1", payload(exp=NOW - SKEW), kid="rsa-1"),
     "expired")
case("exp = now - skew + 1: ok", mint("RS256", "rsa-1", payload(exp=NOW - SKEW + 1), kid="rsa-1"),
     "ok", exp=NOW - SKEW + 1)
case("exp = now with no skew: expired", mint("RS256", "rsa-1", payload(exp=NOW), kid="rsa-1"),
     "expired", rules={"skew": 0})
case("exp = now + 1 with no skew: ok", mint("RS256", "rsa-1", payload(exp=NOW + 1), kid="rsa-1"),
     "ok", rules={"skew": 0}, exp=NOW + 1)
case("nbf = now + skew: ok", mint("RS256", "rsa-1", payload(nbf=NOW + SKEW), kid="rsa-1"), "ok")
case("nbf = now + skew + 1: not yet valid",
     mint("RS256", "rsa-1", payload(nbf=NOW + SKEW + 1), kid="rsa-1"), "not yet valid")
case("nbf far in the future", mint("ES256", "ec-256", payload(nbf=NOW + 86400), kid="ec-256"),
     "not yet valid")
case("iat = now + skew: ok", mint("RS256", "rsa-1", payload(iat=NOW + SKEW), kid="rsa-1"), "ok")
case("iat = now + skew + 1: issued in the future",
     mint("RS256", "rsa-1", payload(iat=NOW + SKEW + 1), kid="rsa-1"), "issued in the future")
case("exp as a float", mint("RS256", "rsa-1", payload(exp=NOW + 100.5), kid="rsa-1"), "ok",
     exp=NOW + 100)
case("missing exp, required", mint("RS256", "rsa-1", payload(exp=None), kid="rsa-1"),
     "missing exp")
case("missing exp, not required", mint("RS256", "rsa-1", payload(exp=None), kid="rsa-1"), "ok",
     rules={"require_exp": False}, exp=None)

# ---- issuer and audience -------------------------------------------------------------------
case("wrong issuer", mint("RS256", "rsa-1", payload(iss="https://evil.example"), kid="rsa-1"),
     "wrong issuer")
case("missing issuer", mint("RS256", "rsa-1", payload(iss=None), kid="rsa-1"), "wrong issuer")
case("second accepted issuer", mint("RS256", "rsa-1", payload(iss="https://b.example"),
                                     kid="rsa-1"), "ok",
     rules={"issuers": ["https://a.example", "https://b.example"]}, iss="https://b.example")
case("any issuer when none configured", mint("RS256", "rsa-1", payload(iss="https://x"),
                                              kid="rsa-1"), "ok", rules={"issuers": []},
     iss="https://x")
case("issuer prefix is not a match", mint("RS256", "rsa-1", payload(iss=ISS + "/x"), kid="rsa-1"),
     "wrong issuer")
case("wrong audience", mint("RS256", "rsa-1", payload(aud="other"), kid="rsa-1"), "wrong audience")
case("missing audience", mint("RS256", "rsa-1", payload(aud=None), kid="rsa-1"), "wrong audience")
case("aud array containing ours", mint("RS256", "rsa-1", payload(aud=["x", AUD]), kid="rsa-1"),
     "ok")
case("aud array without ours", mint("RS256", "rsa-1", payload(aud=["x", "y"]), kid="rsa-1"),
     "wrong audience")
case("aud array of non-strings", mint("RS256", "rsa-1", payload(aud=[1, 2]), kid="rsa-1"),
     "wrong audience")
case("one of several configured audiences", mint("RS256", "rsa-1", payload(aud="api"),
                                                 kid="rsa-1"), "ok",
     rules={"audiences": ["web", "api"]})
case("aud not checked when none configured", mint("RS256", "rsa-1", payload(aud=None),
                                                   kid="rsa-1"), "ok", rules={"audiences": []})

# ---- forwarded claims ----------------------------------------------------------------------
case("claims absent", mint("RS256", "rsa-1", payload(email=None, groups=None, tenant=None),
                           kid="rsa-1"), "ok", extra=[None, None, None])
case("claims as other scalar types", mint("RS256", "rsa-1",
                                          payload(email=True, groups=[1, "a", False], tenant=1.5),
                                          kid="rsa-1"),
     "ok", extra=["true", "1,a,false", "1.5"])
case("no sub", mint("RS256", "rsa-1", payload(sub=None), kid="rsa-1"), "ok", sub=None)
case("sub with a newline", mint("RS256", "rsa-1", payload(sub="a\r\nx-admin: 1"), kid="rsa-1"),
     "bad claim")
case("sub not a string", mint("RS256", "rsa-1", payload(sub=7), kid="rsa-1"), "bad claim")
case("claim an object", mint("RS256", "rsa-1", payload(email={"a": 1}), kid="rsa-1"),
     "bad claim")
case("claim with a control character", mint("RS256", "rsa-1", payload(email="a\x01"), kid="rsa-1"),
     "bad claim")
case("claims too long", mint("RS256", "rsa-1", payload(email="e" * 1100), kid="rsa-1"),
     "claim too long")
case("unforwarded long claim is fine", mint("RS256", "rsa-1", payload(note="n" * 1100),
                                            kid="rsa-1"), "ok")

out = {
    "now": NOW,
    "iss": ISS,
    "aud": AUD,
    "skew": SKEW,
    "claims": CLAIMS,
    "jwks": {"main": {"keys": main_keys}, "nokid": {"keys": nokid_keys},
             "four": {"keys": four_keys}, "five": {"keys": five_keys},
             "mixed": {"keys": mixed_keys}},
    "mixed_expect": {"keys": 2, "skipped": 7,
                     "mentions": ["small-rsa", "bad-point", "short", "padded-n", "x25519", "p521",
                                  "foo"]},
    "cases": cases,
}
with open(sys.argv[1], "w") as f:
    json.dump(out, f, indent=1)
print(f"{len(cases)} cases", file=sys.stderr)
