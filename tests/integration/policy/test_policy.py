#!/usr/bin/python3
"""tests/integration/policy/test_policy.py: the policy chain end to end: real `meshd proxy`
processes with a `policy:` block in their YAML file, real grpcio clients and the Python echo
server, which reports the metadata it received (so each case asserts what the app saw).

Cases:
  jwt        tokens minted by python3-jwt (an independent implementation): valid (the app sees
             x-meshd-identity and the configured claim, a spoofed identity header is replaced),
             missing, expired, wrong audience, wrong issuer, bad signature, alg none, unknown
             kid, HS256 signed with the RSA public key (key confusion), not Bearer, optional
             rules, health exempt; each refusal is an audit record (schema-checked)
  trace      traceparent created when absent, reused when valid (new span id), replaced when
             invalid; tracestate kept or dropped; x-request-id reused, created only with
             `request-id: create`
  mesh       the identity token between nodes: two proxies in a row, the second trusts the
             first's token (no JWT needed), a forged or expired token is stripped
  signature  x-meshd-signature computed in Python: valid, replayed, expired, bad, unknown
             client, missing, a body that is not the signed one
  acl        deny and allow lists by peer and identity, X-Forwarded-For from a trusted proxy
             only
  ratelimit  burst then RESOURCE_EXHAUSTED with retry-after-ms, per peer, refusals audited
  mtls       identities from certificates (`meshd ca init` root, leaves by the openssl CLI):
             proxy -(mTLS)-> sidecar with a JWT at the proxy and no mesh secret anywhere: the
             app sees the JWT subject; grpcio clients with node certificates straight to the
             sidecar: the app sees the SPIFFE ID, identity rules (node ID, node/*, svc ID)
             allow and deny them (PERMISSION_DENIED naming identity and pattern, audited); a
             forged or unsigned identity token over plaintext, from a certificate that names
             no node, or from a node not among identity.forwarders is stripped
  reload     SIGHUP under load: a good policy takes effect, a bad one is refused with
             file:line and a config_rejected record, the old one stays, no call fails
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
from cases import Case, meshd_env, run  # noqa: E402
from mesh_certs import ca_init, issue  # noqa: E402
from procs import Fail, check, free_port, wait_until  # noqa: E402
from echo_client import EchoClient  # noqa: E402
import grpc  # noqa: E402
import jwt  # noqa: E402 (python3-jwt)
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

SCHEMA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "docs",
                      "audit-event.schema.json")
ECHO = "meshd.test.Echo"


class PolicyCase(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-it-policy-")
        self.be = self.backend("app")
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        jwks = {"keys": [
            dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())),
                 kid="rsa-1", use="sig", alg="RS256"),
            dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())),
                 kid="ec-1", use="sig", alg="ES256"),
        ]}
        self.jwks = self.write("jwks.json", json.dumps(jwks))
        self.secret = os.urandom(32)
        self.mesh_key = self.write("mesh.key", base64.b64encode(self.secret).decode() + "\n")
        self.client_secret = os.urandom(32)
        self.clients = self.write("clients.txt", "# test clients\nalice %s\n" %
                                  base64.b64encode(self.client_secret).decode())
        self.audit = os.path.join(self.dir, "audit.jsonl")

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def proxy(self, name, policy, upstream=None, extra=(), audit=True):
        """A meshd proxy with policy (YAML text under `policy:`), auditing to the case's file
        unless audit is False; .target, .cfg set."""
        port, admin = free_port(), free_port()
        cfg = self.write(name + ".yaml", "policy:\n" + policy)
        up = upstream or self.be.addr
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2",
                "--static", ECHO + "=" + up, "--static", "grpc.health.v1.Health=" + up,
                "--admin-listen", "127.0.0.1:%d" % admin, "--config", cfg,
                "--node", name] + (["--audit-file", self.audit] if audit else []) + list(extra)
        p = self.start(name, argv, env=meshd_env())
        p.wait_line(r"listening on", 15)
        p.cfg = cfg
        p.target = "127.0.0.1:%d" % port
        return p

    def token(self, key="rsa", **claims):
        now = int(time.time())
        body = {"sub": "alice", "iss": "https://issuer.test", "aud": "meshd", "iat": now,
                "exp": now + 300, "email": "alice@example.com"}
        body.update(claims)
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        if key == "rsa":
            return jwt.encode(body, self.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
        if key == "ec":
            return jwt.encode(body, self.ec, algorithm="ES256", headers={"kid": "ec-1"})
        raise ValueError(key)

    def audit_records(self):
        try:
            with open(self.audit) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def observed(r):
    """The metadata the echo server received, as a dict of lists."""
    out = {}
    for m in r.replies[0].observed.metadata:
        out.setdefault(m.key, []).append(m.value.decode("latin-1"))
    return out


def call(target, md=(), timeout=10, payload=b"x", creds=None):
    with EchoClient(target, credentials=creds) as c:
        return c.unary(payload=payload, report=True, metadata=list(md), timeout=timeout)


def stream(target, md=(), timeout=10, creds=None):
    """A server-streaming call (the second method the rules name)."""
    with EchoClient(target, credentials=creds) as c:
        return c.server_stream(payload=b"s", report=True, metadata=list(md), timeout=timeout)


def health_ok(target):
    with EchoClient(target) as c:
        try:
            c.health_check(timeout=10)
            return True
        except grpc.RpcError as e:
            print("  health:", e.code(), e.details())
            return False


def refused(r, code, text):
    return (not r.ok and r.code == code and text in (r.details or ""))


def check_schema(records):
    try:
        import jsonschema
    except ImportError:
        print("  (python3-jsonschema missing: records not schema-checked)")
        return
    with open(SCHEMA) as f:
        schema = json.load(f)
    for rec in records:
        jsonschema.validate(rec, schema)


JWT_POLICY = """
  jwt:
    jwks-file: {jwks}
    issuers: https://issuer.test
    audiences: [meshd, other]
    algorithms: [RS256, ES256]
    clock-skew: 5s
  identity: {{claims: [email]}}
  rules:
    - match: {echo}/*
      authn: jwt
    - match: {echo}/ServerStream
      authn: jwt
      optional: true
"""


def case_jwt(c):
    p = c.proxy("jwt", JWT_POLICY.format(jwks=c.jwks, echo=ECHO))
    bearer = lambda t: [("authorization", "Bearer " + t)]  # noqa: E731
    r = call(p.target, bearer(c.token()) + [("x-meshd-identity", "root"),
                                             ("x-meshd-claim-email", "root@evil")])
    check(r.ok, "a valid RS256 token passes (%s %s)" % (r.code, r.details))
    md = observed(r)
    check(md.get("x-meshd-identity") == ["alice"],
          "the app sees the token's subject, not the client's spoofed header: %s" % md)
    check(md.get("x-meshd-claim-email") == ["alice@example.com"],
          "the configured claim is forwarded (the spoofed one removed): %s" % md)
    r = call(p.target, bearer(c.token("ec", sub="bob")))
    check(r.ok and observed(r).get("x-meshd-identity") == ["bob"], "a valid ES256 token passes")
    r = call(p.target, bearer(c.token(aud=["x", "meshd"])))
    check(r.ok, "aud as an array with one of ours passes (%s)" % r.details)
    U = grpc.StatusCode.UNAUTHENTICATED
    bad = [
        ("missing", [], "meshd: authn: jwt: missing token"),
        ("expired", bearer(c.token(exp=int(time.time()) - 60)), "meshd: authn: jwt: expired"),
        ("wrong audience", bearer(c.token(aud="someone-else")), "wrong audience"),
        ("wrong issuer", bearer(c.token(iss="https://evil.test")), "wrong issuer"),
        ("not Bearer", [("authorization", "Basic YWxpY2U6eA==")], "is not a Bearer token"),
        ("garbage", bearer("not.a.token"), "meshd: authn: jwt: "),
    ]
    good = c.token()
    h, pl, sig = good.split(".")
    bad.append(("bad signature", bearer(h + "." + pl + "." + sig[::-1]), "meshd: authn: jwt: "))
    none = jwt.encode({"sub": "alice", "aud": "meshd", "iss": "https://issuer.test",
                       "exp": int(time.time()) + 60}, None, algorithm="none")
    bad.append(("alg none", bearer(none), "meshd: authn: jwt: "))
    unk = jwt.encode({"sub": "alice", "aud": "meshd", "iss": "https://issuer.test",
                      "exp": int(time.time()) + 60}, c.rsa, algorithm="RS256",
                     headers={"kid": "nobody"})
    bad.append(("unknown kid", bearer(unk), "meshd: authn: jwt: "))
    pub = c.rsa.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    body = base64.urlsafe_b64encode(json.dumps(
        {"sub": "mallory", "aud": "meshd", "iss": "https://issuer.test",
         "exp": int(time.time()) + 60}).encode()).rstrip(b"=").decode()
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"rsa-1","typ":"JWT"}').rstrip(b"=")
    signing = head.decode() + "." + body
    mac = base64.urlsafe_b64encode(hmac.new(pub, signing.encode(), hashlib.sha256).digest())
    bad.append(("HS256 with the RSA public key", bearer(signing + "." +
                                                        mac.rstrip(b"=").decode()),
                "meshd: authn: jwt: "))
    for what, md, text in bad:
        r = call(p.target, md)
        check(refused(r, U, text), "%s: UNAUTHENTICATED %r (%s %s)" % (what, text, r.code,
                                                                      r.details))
    r = stream(p.target)
    check(r.ok, "an optional rule lets an anonymous call through (%s)" % (r.details,))
    check(health_ok(p.target), "health is exempt from authn")

    def denials():
        return [x for x in c.audit_records() if x["type"] == "authn_failure"]
    wait_until(lambda: len(denials()) >= len(bad), 10, "an authn_failure record per refusal")
    recs = denials()
    check(all(x["outcome"] == "denied" and x["status"] == 16 and x["service"] == ECHO and
              x["peer"]["address"].startswith("127.0.0.1") and len(x["trace_id"]) == 32
              for x in recs), "records carry status, service, peer and trace id: %s" % recs[:2])
    check(not any(good in json.dumps(x) or sig in json.dumps(x) for x in c.audit_records()),
          "no token or signature in any record")
    check_schema(c.audit_records())


def case_trace(c):
    log = os.path.join(c.dir, "access.jsonl")
    p = c.proxy("trace", "  trace: {enabled: true, access-log: %s}\n" % log)
    r = call(p.target)
    md = observed(r)
    tp = tp0 = md.get("traceparent", [""])[0]
    check(r.ok and len(tp) == 55 and tp.startswith("00-"), "a traceparent is created: %s" % md)
    check("x-request-id" not in md, "no x-request-id is created by default: %s" % md)
    mine = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = call(p.target, [("traceparent", mine), ("tracestate", "congo=t61rcWkgMzE"),
                        ("x-request-id", "req-42")])
    md = observed(r)
    tp = md.get("traceparent", [""])[0]
    check(tp.startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and
          tp.split("-")[2] != "00f067aa0ba902b7" and tp.endswith("-01"),
          "a valid traceparent keeps its trace id, with our span as parent: %s" % tp)
    check(md.get("tracestate") == ["congo=t61rcWkgMzE"], "tracestate passed on")
    check(md.get("x-request-id") == ["req-42"], "x-request-id reused")
    r = call(p.target, [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                        ("tracestate", "a=b")])
    md = observed(r)
    tp = md.get("traceparent", [""])[0]
    check("00000000000000000000000000000000" not in tp and len(tp) == 55 and
          "tracestate" not in md, "an invalid traceparent is replaced, its tracestate dropped")

    # The chain's scan of the request (policy/chain.c scan_fields): the first of two
    # traceparent fields is the caller's; a tracestate without a traceparent is dropped; an
    # empty traceparent starts a trace; an empty x-request-id is not reused.
    other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    md = observed(call(p.target, [("traceparent", mine), ("traceparent", other)]))
    tp = md.get("traceparent", [""])
    check(len(tp) == 1 and tp[0].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-") and
          tp[0].endswith("-01"), "of two traceparents the first is continued, once: %s" % md)
    md = observed(call(p.target, [("tracestate", "congo=t61rcWkgMzE")]))
    tp = md.get("traceparent", [""])[0]
    check(len(tp) == 55 and "tracestate" not in md,
          "a tracestate without a traceparent is dropped: %s" % md)
    md = observed(call(p.target, [("traceparent", ""), ("x-request-id", "")]))
    tp = md.get("traceparent", [""])
    check(len(tp) == 1 and len(tp[0]) == 55 and tp[0].endswith("-01") and
          md.get("x-request-id", [""]) == [""],
          "an empty traceparent starts a trace, an empty x-request-id is not replaced: %s" % md)

    def lines():
        try:
            with open(log) as f:
                return [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []
    wait_until(lambda: len(lines()) >= 6, 10, "an access-log line per call")
    mine = [x for x in lines() if x["request_id"] == "req-42"]
    check(len(mine) == 1 and mine[0]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and
          mine[0]["path"] == "/%s/Unary" % ECHO and mine[0]["status"] == 0 and
          mine[0]["upstream"] == c.be.addr and mine[0]["bytes_in"] > 0 and
          mine[0]["bytes_out"] > 0 and mine[0]["peer"].startswith("127.0.0.1:") and
          mine[0]["identity"] is None and mine[0]["duration_us"] > 0,
          "the access log: trace and request id, path, status, upstream, bytes, peer, "
          "duration: %s" % mine)
    first = [x for x in lines() if x["trace_id"] == tp0[3:35]]
    check(len(first) == 1 and first[0]["request_id"] is None,
          "a call without an x-request-id is logged with request_id null: %s" % first)

    # request-id: create (Envoy's behaviour): a UUID for a call that came without one.
    p = c.proxy("trace-create", "  trace: {enabled: true, request-id: create}\n")
    md = observed(call(p.target))
    rid = md.get("x-request-id", [""])[0]
    check(len(rid) == 36 and rid[14] == "4", "request-id: create makes a UUID: %s" % md)
    md = observed(call(p.target, [("x-request-id", "req-43")]))
    check(md.get("x-request-id") == ["req-43"], "and still reuses the caller's: %s" % md)


def mint(secret, sub, ttl=30, path=None):
    lines = "exp=%d\nsub=%s\nsrc=test\n" % (int(time.time()) + ttl, sub)
    if path:
        lines += "path=%s\n" % path
    p = base64.urlsafe_b64encode(lines.encode()).rstrip(b"=").decode()
    mac = hmac.new(secret, ("v1." + p).encode(), hashlib.sha256).digest()
    return "v1.%s.%s" % (p, base64.urlsafe_b64encode(mac).rstrip(b"=").decode())


def case_mesh(c):
    pol = (JWT_POLICY.format(jwks=c.jwks, echo=ECHO) +
           "  identity: {{claims: [email], mesh-secret-file: {k}}}\n".format(k=c.mesh_key))
    inner = c.proxy("inner", pol)
    outer = c.proxy("outer", pol, upstream=inner.target)
    r = call(outer.target, [("authorization", "Bearer " + c.token(sub="carol"))])
    md = observed(r) if r.ok else {}
    check(r.ok and md.get("x-meshd-identity") == ["carol"],
          "through two nodes: the app sees the identity (%s %s)" % (r.code, r.details))
    check("x-meshd-identity-token" in md, "the last node forwards a token too")
    path = "/%s/Unary" % ECHO
    r = call(inner.target, [("x-meshd-identity-token", mint(c.secret, "dave", path=path))])
    check(r.ok and observed(r).get("x-meshd-identity") == ["dave"],
          "a node trusts a valid mesh token without a JWT (%s %s)" % (r.code, r.details))
    U = grpc.StatusCode.UNAUTHENTICATED
    for what, tok in [("forged", mint(os.urandom(32), "eve", path=path)),
                      ("expired", mint(c.secret, "eve", ttl=-100, path=path)),
                      ("for another method", mint(c.secret, "eve", path="/x.Y/Z")),
                      ("garbage", "v1.abc.def")]:
        r = call(inner.target, [("x-meshd-identity-token", tok)])
        check(refused(r, U, "missing token"), "a %s token is stripped: the call has no "
              "identity (%s %s)" % (what, r.code, r.details))


def case_sidecar(c):
    """The same chain in the sidecar role: proxy -> sidecar -> app, both with the JWT rule and
    the mesh secret; the app (behind the sidecar) asserts the identity it saw."""
    pol = (JWT_POLICY.format(jwks=c.jwks, echo=ECHO) +
           "  identity: {{claims: [email], mesh-secret-file: {k}}}\n".format(k=c.mesh_key))
    port, probe, admin = free_port(), free_port(), free_port()
    cfg = c.write("sidecar.yaml", "policy:\n" + pol)
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--app", c.be.addr,
                             "--listen", "127.0.0.1:%d" % port, "--probe-listen",
                             "127.0.0.1:%d" % probe, "--admin-listen", "127.0.0.1:%d" % admin,
                             "--workers", "2", "--config", cfg, "--audit-file", c.audit,
                             "--node", "sc"], env=meshd_env())
    sc.wait_line(r"listening on", 15)
    sc_addr = "127.0.0.1:%d" % port
    px = c.proxy("front", pol, upstream=sc_addr)
    r = call(px.target, [("authorization", "Bearer " + c.token(sub="erin"))])
    md = observed(r) if r.ok else {}
    check(r.ok and md.get("x-meshd-identity") == ["erin"] and
          md.get("x-meshd-claim-email") == ["alice@example.com"],
          "proxy -> sidecar -> app: the app sees the identity and claim (%s %s %s)"
          % (r.code, r.details, md))
    U = grpc.StatusCode.UNAUTHENTICATED
    for what, md, text in [
            ("no token", [], "meshd: authn: jwt: missing token"),
            ("expired", [("authorization", "Bearer " + c.token(exp=int(time.time()) - 60))],
             "meshd: authn: jwt: expired"),
            ("wrong audience", [("authorization", "Bearer " + c.token(aud="x"))],
             "wrong audience"),
            ("spoofed identity", [("x-meshd-identity", "root")], "missing token")]:
        r = call(sc_addr, md)
        check(refused(r, U, text), "straight to the sidecar, %s: refused %r (%s %s)"
              % (what, text, r.code, r.details))
    r = call(sc_addr, [("authorization", "Bearer " + c.token(sub="frank"))])
    check(r.ok and observed(r).get("x-meshd-identity") == ["frank"],
          "straight to the sidecar with a valid token (%s)" % r.details)
    wait_until(lambda: any(x["type"] == "authn_failure" and x["role"] == "sidecar"
                           for x in c.audit_records()), 10, "the sidecar audits its refusals")
    check_schema(c.audit_records())


def start_authz(c):
    """tests/peers/authz_server.py: HTTP check, Envoy gRPC Check, a hanging port, /jwks."""
    ports = os.path.join(c.dir, "authz.ports")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
    c.start("authz", ["/usr/bin/python3", os.path.join(repo, "tests/peers/authz_server.py"),
                      "--ports-file", ports, "--proto-dir", os.path.join(repo, "proto/ext_authz")],
            env=dict(os.environ))
    wait_until(lambda: os.path.exists(ports), 30, "the authorization server")
    with open(ports) as f:
        return json.load(f)


def http_json(port, path, body=None):
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=json.dumps(body).encode() if body is not None else None,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=5) as r:
        data = r.read()
    try:
        return json.loads(data)
    except ValueError:
        return data


def case_ext_authz(c):
    ports = start_authz(c)
    http = c.proxy("authz-http", """
  ext-authz: {url: 'http://127.0.0.1:%d/check', identity-header: x-user-id, timeout: 2s}
  rules:
    - match: %s/*
      authn: ext-authz
""" % (ports["http"], ECHO))
    r = call(http.target, [("authorization", "Bearer allow:gina")])
    check(r.ok and observed(r).get("x-meshd-identity") == ["gina"],
          "HTTP check allows; the app sees the identity it returned (%s %s)" % (r.code, r.details))
    with EchoClient(http.target) as cl:  # one connection: one worker, one cache
        md = [("authorization", "Bearer allow:jo")]
        r1 = cl.unary(payload=b"x", metadata=md, timeout=10)
        before = http_json(ports["http"], "/_stats")["checks"]
        r2 = cl.unary(payload=b"x", metadata=md, timeout=10)
        after = http_json(ports["http"], "/_stats")["checks"]
    check(r1.ok and r2.ok and after == before,
          "the same credentials again on a worker: answered from its allow cache (%d -> %d)"
          % (before, after))
    r = call(http.target, [("cookie", "session=hal")])
    check(r.ok and observed(r).get("x-meshd-identity") == ["hal"], "an SSO cookie is forwarded")
    r = call(http.target, [("authorization", "Bearer deny")])
    check(refused(r, grpc.StatusCode.PERMISSION_DENIED, "token revoked"),
          "a denial: PERMISSION_DENIED with the service's reason (%s %s)" % (r.code, r.details))
    r = call(http.target)
    check(refused(r, grpc.StatusCode.UNAUTHENTICATED, "meshd: authn: ext_authz"),
          "no credentials: UNAUTHENTICATED (%s %s)" % (r.code, r.details))
    r = call(http.target, [("authorization", "Bearer error")])
    check(refused(r, grpc.StatusCode.UNAVAILABLE, "authorization service failed"),
          "the service fails: closed by default, UNAVAILABLE (%s %s)" % (r.code, r.details))
    g = c.proxy("authz-grpc", """
  ext-authz: {grpc: '127.0.0.1:%d', identity-header: x-user-id}
  rules:
    - match: %s/*
      authn: ext-authz
""" % (ports["grpc"], ECHO))
    r = call(g.target, [("authorization", "Bearer allow:ivy")])
    check(r.ok and observed(r).get("x-meshd-identity") == ["ivy"],
          "Envoy's gRPC Check allows with an identity (%s %s)" % (r.code, r.details))
    r = call(g.target, [("authorization", "Bearer deny")])
    check(refused(r, grpc.StatusCode.PERMISSION_DENIED, "meshd: authn: ext_authz"),
          "gRPC Check denies (%s %s)" % (r.code, r.details))
    fo = c.proxy("authz-open", """
  ext-authz: {url: 'http://127.0.0.1:%d/check', timeout: 300ms, fail-open: true}
  rules:
    - match: %s/*
      authn: ext-authz
""" % (ports["hang"], ECHO))
    r = call(fo.target, [("authorization", "Bearer allow:x")])
    check(r.ok and "x-meshd-identity" not in observed(r),
          "a silent service with fail-open: allowed, without an identity (%s)" % r.details)
    r = call(http.target, [("authorization", "Bearer slow")], timeout=0.5)
    check(r.code == grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline runs while the "
          "service thinks (%s)" % r.code)
    check("ERROR" not in http.output() and http.alive(), "the proxy is fine after a call that "
          "ended while its check was pending")
    wait_until(lambda: len([x for x in c.audit_records() if x["type"] == "authn_failure"]) >= 4,
               10, "authn_failure records for the refusals")


def case_jwks_url(c):
    ports = start_authz(c)
    with open(c.jwks) as f:
        http_json(ports["http"], "/_jwks", {"status": 200, "body": f.read()})
    p = c.proxy("jwks-url", """
  jwt: {jwks-url: 'http://127.0.0.1:%d/jwks', refresh: 1s, audiences: meshd}
  rules:
    - match: %s/*
      authn: jwt
""" % (ports["http"], ECHO))
    tok = c.token()
    wait_until(lambda: call(p.target, [("authorization", "Bearer " + tok)]).ok, 10,
               "the keys fetched from the JWKS URL")
    new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(new.public_key())), kid="rsa-2",
               use="sig", alg="RS256")
    http_json(ports["http"], "/_jwks", {"status": 200, "body": json.dumps({"keys": [jwk]})})
    now = int(time.time())
    tok2 = jwt.encode({"sub": "kim", "aud": "meshd", "exp": now + 300}, new, algorithm="RS256",
                      headers={"kid": "rsa-2"})
    wait_until(lambda: call(p.target, [("authorization", "Bearer " + tok2)]).ok, 10,
               "a rotated key, picked up at the next refresh")
    r = call(p.target, [("authorization", "Bearer " + c.token())])
    check(refused(r, grpc.StatusCode.UNAUTHENTICATED, "unknown key"),
          "the retired key's tokens are refused (%s)" % r.details)
    http_json(ports["http"], "/_jwks", {"status": 500, "body": "oops"})
    time.sleep(2.5)
    check(call(p.target, [("authorization", "Bearer " + tok2)]).ok,
          "a failing JWKS URL keeps the keys in force")


def sign(client, secret, path, body, ts=None, nonce=None):
    ts = int(time.time()) if ts is None else ts
    nonce = nonce or uuid.uuid4().hex
    canon = "v1\n%s\n%d\n%s\n%s" % (path, ts, nonce, hashlib.sha256(body).hexdigest())
    mac = hmac.new(secret, canon.encode(), hashlib.sha256).digest()
    return "keyId=%s,ts=%d,nonce=%s,sig=%s" % (client, ts, nonce,
                                                base64.b64encode(mac).decode())


def case_signature(c):
    from echo_client import make_request
    p = c.proxy("sig", """
  signature: {secrets-file: %s, window: 60s}
  rules:
    - match: %s/Unary
      signature: true
""" % (c.clients, ECHO))
    path = "/%s/Unary" % ECHO
    req = make_request(payload=b"pay", report=True)
    body = req.SerializeToString()
    frame = b"\x00" + len(body).to_bytes(4, "big") + body

    def signed(hdr):
        with EchoClient(p.target) as cl:
            return cl.unary(payload=b"pay", report=True, timeout=10,
                            metadata=[("x-meshd-signature", hdr)])
    h = sign("alice", c.client_secret, path, frame)
    r = signed(h)
    check(r.ok and observed(r).get("x-meshd-identity") == ["alice"],
          "a valid signature passes; the client is the identity (%s %s)" % (r.code, r.details))
    U = grpc.StatusCode.UNAUTHENTICATED
    r = signed(h)
    check(refused(r, U, "meshd: signature: replayed"), "the same request again is a replay "
          "(%s %s)" % (r.code, r.details))
    cases = [
        ("expired", sign("alice", c.client_secret, path, frame, ts=int(time.time()) - 600),
         "expired"),
        ("unknown client", sign("zed", c.client_secret, path, frame), "unknown client"),
        ("bad signature", sign("alice", os.urandom(32), path, frame), "bad signature"),
        ("other body", sign("alice", c.client_secret, path, frame + b"\x00"), "bad signature"),
        ("malformed", "keyId=alice", "malformed signature"),
    ]
    for what, hdr, text in cases:
        r = signed(hdr)
        check(refused(r, U, "meshd: signature: " + text), "%s: %r (%s %s)" % (what, text, r.code,
                                                                             r.details))
    r = call(p.target)
    check(refused(r, U, "meshd: signature: missing signature"), "no signature: refused")
    wait_until(lambda: len([x for x in c.audit_records() if x["type"] == "signature_invalid"])
               >= len(cases) + 2, 10, "a signature_invalid record per refusal")
    check_schema(c.audit_records())


def case_acl(c):
    p = c.proxy("acl", """
  jwt: {{jwks-file: {jwks}, audiences: meshd}}
  trusted-proxies: [127.0.0.1/32]
  rules:
    - match: {echo}/Unary
      authn: jwt
      optional: true
      deny: {{identities: [mallory], peers: [10.9.9.0/24]}}
    - match: {echo}/ServerStream
      allow: {{peers: [10.1.0.0/16]}}
""".format(jwks=c.jwks, echo=ECHO))
    P = grpc.StatusCode.PERMISSION_DENIED
    bearer = lambda s: [("authorization", "Bearer " + c.token(sub=s))]  # noqa: E731
    check(call(p.target, bearer("alice")).ok, "alice passes")
    r = call(p.target, bearer("mallory"))
    check(refused(r, P, "meshd: acl: identity mallory"), "a denied identity: PERMISSION_DENIED "
          "(%s %s)" % (r.code, r.details))
    r = call(p.target, [("x-forwarded-for", "10.9.9.7")])
    check(refused(r, P, "meshd: acl: peer 10.9.9.7"), "a denied client behind a trusted proxy "
          "(%s %s)" % (r.code, r.details))
    r = stream(p.target)
    check(refused(r, P, "meshd: acl: "), "an allow list the peer is not in (%s)" % r.details)
    r = stream(p.target, [("x-forwarded-for", "10.1.2.3")])
    check(r.ok, "a client the trusted proxy vouches for is allowed (%s)" % r.details)
    wait_until(lambda: len([x for x in c.audit_records() if x["type"] == "acl_denied"]) >= 3,
               10, "an acl_denied record per refusal")
    check_schema(c.audit_records())


def case_ratelimit(c):
    p = c.proxy("rl", """
  rules:
    - match: %s/*
      rate-limit: {key: peer, rate: 2, burst: 5}
""" % ECHO)
    codes = []
    last = None
    with EchoClient(p.target) as cl:
        for _ in range(20):
            r = cl.unary(payload=b"x", timeout=10)
            codes.append(r.code)
            if not r.ok:
                last = r
    ok = codes.count(grpc.StatusCode.OK)
    check(5 <= ok <= 7, "a burst of 5 (plus what 2/s refills) passes: %d of 20" % ok)
    check(last and last.code == grpc.StatusCode.RESOURCE_EXHAUSTED and
          "meshd: ratelimit: " in last.details, "the rest: RESOURCE_EXHAUSTED (%s)" %
          (last and last.details))
    ra = last.header("retry-after-ms", True)
    check(ra and 0 < int(ra) <= 1000, "with retry-after-ms (%r)" % ra)
    check(health_ok(p.target), "health is exempt from rate limits")
    wait_until(lambda: len([x for x in c.audit_records() if x["type"] == "rate_limited"]) >=
               20 - ok, 10, "a rate_limited record per refusal")


def case_rate_workers(c):
    """The configured rate holds within 10 % with 1 and with 4 workers (the buckets are shared
    by the node's workers, not split between them)."""
    # A burst of a second's worth: the bucket holds what a pause in the offered load would
    # otherwise waste (with 20, clients stalled over 100 ms at a time on a loaded CI machine
    # and 4 workers let 11 % fewer calls through than rate x time: the limiter was exact, the
    # offered load was not continuous). A limit per worker would still allow about 4x.
    rate, burst, secs = 200, 200, 3.0
    for workers in (1, 4):
        p = c.proxy("rw%d" % workers, """
  rules:
    - match: %s/*
      rate-limit: {key: method, rate: %d, burst: %d}
""" % (ECHO, rate, burst), extra=["--workers", str(workers)])
        ok = [0]
        total = [0]
        stop = time.monotonic() + secs
        lock = threading.Lock()

        def load():
            # A channel per thread: grpcio spreads them over separate connections, which the
            # kernel spreads over the workers' SO_REUSEPORT sockets.
            with EchoClient(p.target, options=[("grpc.use_local_subchannel_pool", 1)]) as cl:
                while time.monotonic() < stop:
                    futs = [cl.echo.Unary.future(make_req(), timeout=10) for _ in range(16)]
                    for f in futs:
                        try:
                            f.result()
                            with lock:
                                ok[0] += 1
                                total[0] += 1
                        except grpc.RpcError:
                            with lock:
                                total[0] += 1
        t0 = time.monotonic()
        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        span = time.monotonic() - t0
        want = rate * span + burst
        print("  %d workers: %d of %d calls allowed in %.2f s (rate %d/s: %.0f expected)"
              % (workers, ok[0], total[0], span, rate, want), flush=True)
        check(total[0] > 2 * want, "the offered load is well above the rate (%d calls)" % total[0])
        check(abs(ok[0] - want) <= 0.1 * want, "%d workers: allowed within 10 %% of the rate "
              "(%d vs %.0f)" % (workers, ok[0], want))
        p.kill()


def make_req():
    from echo_client import make_request
    return make_request(payload=b"x")


def case_reload(c):
    p = c.proxy("reload", "  rules:\n    - match: %s/ServerStream\n      deny: {peers: [127.0.0.1]}\n"
                % ECHO)
    stop = threading.Event()
    failed = []
    done = [0]

    def load():
        with EchoClient(p.target) as cl:
            while not stop.is_set():
                r = cl.unary(payload=b"x", timeout=10)
                done[0] += 1
                if not r.ok:
                    failed.append((r.code, r.details))
    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.5)  # the load runs before, between and after the reloads
    try:
        if True:
            check(not stream(p.target).ok, "before: ServerStream denied")
            with open(p.cfg, "w") as f:
                f.write("policy:\n  rules:\n    - match: %s/Unary\n      rate-limit: "
                        "{key: peer, rate: 100000}\n" % ECHO)
            p.p.send_signal(signal.SIGHUP)
            wait_until(lambda: stream(p.target).ok, 10, "the new policy (ServerStream allowed)")
            with open(p.cfg, "w") as f:
                f.write("policy:\n  rules:\n    - match: %s/ServerStream\n      authn: kerberos\n"
                        % ECHO)
            p.p.send_signal(signal.SIGHUP)
            wait_until(lambda: "reload refused" in p.output(), 10, "the bad policy refused")
            check("reload.yaml:4: policy.rules[0].authn: 'kerberos'" in p.output(),
                  "the refusal names file:line")
            check(stream(p.target).ok, "the policy in force stays")
            time.sleep(0.5)
    finally:
        stop.set()
        t.join()
    check(done[0] > 20 and not failed, "%d calls under load during both reloads, failed: %s"
          % (done[0], failed[:3]))
    wait_until(lambda: any(x["type"] == "config_rejected" for x in c.audit_records()), 10,
               "a config_rejected record")
    check_schema(c.audit_records())


MTLS_SIDECAR_POLICY = """
  rules:
    - match: {echo}/ServerStream
      allow: {{identities: ['spiffe://mesh.test/svc/pkg.Orders', 'spiffe://mesh.test/node/ops-*',
                           alice]}}
    - match: {echo}/Unary
      deny: {{identities: ['spiffe://mesh.test/node/client-2']}}
  identity: {{forwarders: ['spiffe://mesh.test/node/fr*']}}
"""


def case_mtls(c):
    ca = os.path.join(c.dir, "ca")
    ca_init(c.args.meshd, ca, "mesh.test")
    td = "mesh.test"
    front = issue(c, ca, "front", [], td)
    side = issue(c, ca, "sc", [ECHO], td, extra_sans=["IP:127.0.0.1"])
    c1 = issue(c, ca, "client-1", ["pkg.Orders"], td)
    c2 = issue(c, ca, "client-2", [], td)
    # Verified by the same CA, but no meshd node in it: a workload of another kind.
    other = issue(c, ca, "other", [], td, sans=["URI:spiffe://mesh.test/ns/default/sa/x"])
    f = lambda d, n: os.path.join(d, n)  # noqa: E731
    port, tls_port, probe = free_port(), free_port(), free_port()
    cfg = c.write("sidecar.yaml", "policy:\n" + MTLS_SIDECAR_POLICY.format(echo=ECHO))
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--app", c.be.addr,
                             "--listen", "127.0.0.1:%d" % port, "--probe-listen",
                             "127.0.0.1:%d" % probe, "--workers", "2", "--config", cfg,
                             "--audit-file", c.audit, "--node", "sc",
                             "--tls-listen", "127.0.0.1:%d" % tls_port,
                             "--tls-cert", f(side, "cert.pem"), "--tls-key", f(side, "key.pem"),
                             "--tls-ca", f(side, "ca.pem"), "--tls-client-auth", "optional"],
                 env=meshd_env())
    sc.wait_line(r"listening on 127\.0\.0\.1:%d \(TLS\)" % tls_port, 15)
    h2c, tls = "127.0.0.1:%d" % port, "127.0.0.1:%d" % tls_port

    # 1. proxy -> mTLS -> sidecar, the JWT checked at the proxy, no mesh secret anywhere.
    px = c.proxy("front", JWT_POLICY.format(jwks=c.jwks, echo=ECHO), upstream=tls,
                 extra=["--tls-upstream-ca", f(front, "ca.pem"), "--tls-upstream-cert",
                        f(front, "cert.pem"), "--tls-upstream-key", f(front, "key.pem")])
    r = call(px.target, [("authorization", "Bearer " + c.token(sub="carol"))])
    md = observed(r) if r.ok else {}
    check(r.ok and md.get("x-meshd-identity") == ["carol"] and
          md.get("x-meshd-claim-email") == ["alice@example.com"],
          "proxy -mTLS-> sidecar -> app, no mesh secret: the app sees the JWT subject and claim "
          "(%s %s %s)" % (r.code, r.details, md))
    check("x-meshd-identity-token" not in md, "...and no identity token (the sidecar's upstream "
          "is the app, not a meshd node)")
    r = stream(px.target, [("authorization", "Bearer " + c.token(sub="alice"))])
    check(r.ok, "the proxy's caller, not the proxy node, meets the sidecar's identity rule "
          "(alice allowed: %s %s)" % (r.code, r.details))

    # 2. grpcio clients with certificates straight to the sidecar.
    def creds(d):
        return grpc.ssl_channel_credentials(open(f(d, "ca.pem"), "rb").read(),
                                            open(f(d, "key.pem"), "rb").read(),
                                            open(f(d, "cert.pem"), "rb").read())
    r = call(tls, creds=creds(c1))
    check(r.ok and observed(r).get("x-meshd-identity") == ["spiffe://mesh.test/node/client-1"],
          "a client with a node certificate: the app sees its SPIFFE ID (%s %s)"
          % (r.code, r.details))
    r = stream(tls, creds=creds(c1))
    check(r.ok, "allowed by spiffe://mesh.test/svc/pkg.Orders, a service its certificate names "
          "(%s %s)" % (r.code, r.details))
    P = grpc.StatusCode.PERMISSION_DENIED
    r = stream(tls, creds=creds(c2))
    check(refused(r, P, "meshd: acl: identity spiffe://mesh.test/node/client-2 not allowed"),
          "client-2 (no such service) is not allowed: %s %s" % (r.code, r.details))
    r = call(tls, creds=creds(c2))
    check(refused(r, P, "meshd: acl: identity spiffe://mesh.test/node/client-2 denied by "
                  "'spiffe://mesh.test/node/client-2' (rules[1], line 7)"),
          "client-2 denied by its node ID, the message names identity, pattern and rule: %s"
          % r.details)
    r = stream(tls, creds=creds(other))
    check(refused(r, P, "meshd: acl: no identity"),
          "a certificate that names no meshd node proves no identity (%s)" % r.details)
    r = stream(h2c, [("x-meshd-identity", "alice")])
    check(refused(r, P, "meshd: acl: no identity"), "h2c: a spoofed identity header is "
          "removed (%s)" % r.details)

    # 3. Forged identity tokens: stripped unless a meshd node sends them over mTLS.
    path = "/%s/ServerStream" % ECHO
    lines = "exp=%d\nsub=alice\nsrc=jwt\npath=%s\n" % (int(time.time()) + 30, path)
    unsigned = "v1.%s." % base64.urlsafe_b64encode(lines.encode()).rstrip(b"=").decode()
    for what, target, cr, tok in [
            ("unsigned, over h2c", h2c, None, unsigned),
            ("HMAC with a secret nobody configured, over h2c", h2c, None,
             mint(os.urandom(32), "alice", path=path)),
            ("unsigned, over TLS with a certificate that names no node", tls, creds(other),
             unsigned)]:
        r = stream(target, [("x-meshd-identity-token", tok)], creds=cr)
        check(refused(r, P, "meshd: acl: no identity"),
              "a forged token %s is stripped (%s %s)" % (what, r.code, r.details))
    u = "/%s/Unary" % ECHO
    forged = "v1.%s." % base64.urlsafe_b64encode(lines.replace(path, u).encode()).rstrip(
        b"=").decode()
    r = call(tls, [("x-meshd-identity-token", forged)], creds=creds(c1))
    check(r.ok and observed(r).get("x-meshd-identity") == ["spiffe://mesh.test/node/client-1"],
          "a node that is not among identity.forwarders cannot vouch for others: its unsigned "
          "token naming alice is stripped, the call is its own (%s)"
          % (observed(r) if r.ok else r.details))
    r = call(h2c, [("x-meshd-identity-token", forged)])
    check(r.ok and "x-meshd-identity" not in observed(r) and
          "x-meshd-identity-token" not in observed(r),
          "...and never reaches the app (%s)" % (observed(r) if r.ok else r.details))

    def denials():
        return [x for x in c.audit_records() if x["type"] == "acl_denied"
                and x.get("role") == "sidecar"]
    # Both of client-2's denials (rules[0]'s "not allowed" and rules[1]'s "denied by"): the
    # audit writes in batches, so the first one can be there before the second.
    rec = wait_until(lambda: next((x for x in denials() if "denied by" in x["reason"] and
                                   "client-2" in json.dumps(x)), None), 10,
                     "the identity denials audited")
    check(rec["reason"] == "denied by 'spiffe://mesh.test/node/client-2' (rules[1], line 7)" and
          rec["peer"]["identity"] == "spiffe://mesh.test/node/client-2",
          "acl_denied names the SPIFFE identity (its own field), the pattern and the rule")
    check_schema(c.audit_records())


CASES = {"jwt": case_jwt, "mtls": case_mtls, "sidecar": case_sidecar, "ext_authz": case_ext_authz,
         "jwks_url": case_jwks_url, "trace": case_trace, "mesh": case_mesh, "signature": case_signature,
         "acl": case_acl, "ratelimit": case_ratelimit, "rate_workers": case_rate_workers,
         "reload": case_reload}

if __name__ == "__main__":
    sys.exit(run(CASES, PolicyCase))
