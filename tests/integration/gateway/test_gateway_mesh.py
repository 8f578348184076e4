#!/usr/bin/python3
"""tests/integration/gateway/test_gateway_mesh.py: HTTP/JSON in a running mesh, with schemas
learned by reflection (no descriptor file given to meshd): a real grpcio app
(library_server.py --mesh: health and reflection) behind `meshd sidecar`, called over HTTP/1.1
through `meshd gateway` or the sidecar's own --http-listen, as a user would. One case per run:

  learn        meshd gateway --static (no descriptor set): a routed service whose schema is not
               learned yet answers 503 saying so; once the app is up the cache learns it and
               the calls work; GET /v1/gateway/schemas reports it
  deploy       meshd gateway --etcd: the app registered by its sidecar (--version v1) becomes
               callable; a rolling deploy to v2 (a new method with its own HTTP route) makes the
               new route answer, and the old routes keep answering
  merge        --descriptor-set and the cache together: the file's services win (logged), the
               other learned services are served too
  sidecar_http meshd sidecar --http-listen: the app's API over HTTP/JSON through the sidecar; an
               app restarted with a new API is re-read and its new route answers
  cc_server    the C++ grpc++ echo server (tests/peers) behind a sidecar, its schema learned by
               reflection: unary, server and client streams, metadata (Grpc-Metadata-*, the
               --gateway-headers allow-list), X-Request-Timeout, errors, h2c; through meshd gateway
               and through the sidecar's --http-listen
  policy_jwt   a JWT-protected method through the gateway and through the sidecar's HTTP port:
               401 with a JSON body without a token or with an expired one, 200 with a valid
               Authorization: Bearer token (python3-jwt)

  test_gateway_mesh.py --meshd MESHD --case NAME
"""
import argparse
import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
from test_gateway import PROTOS, check, free_port, wait_port  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402
from procs import listen_addrs  # noqa: E402  (on the path test_gateway set)

SVC = "gwtest.v1.Library"
V2_METHOD = """  rpc GetShelf(GetBookRequest) returns (Book) {
    option (google.api.http) = {
      get: "/v2/shelves/{name}"
    };
  }
  rpc Echo(Book) returns (Book);"""


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Mesh:
    """The processes of one case, in its own folder; each killed by PID at the end."""

    def __init__(self, meshd, work):
        self.meshd = meshd
        self.work = work
        self.procs = {}
        self.sets = {}
        self.etcd = None

    def descriptor_set(self, api):
        """The Library's FileDescriptorSet: api 1 as in protos/, api 2 with GetShelf."""
        if api in self.sets:
            return self.sets[api]
        src = os.path.join(HERE, "protos", "gwtest", "v1", "library.proto")
        root = os.path.join(self.work, "api%d" % api)
        os.makedirs(os.path.join(root, "gwtest", "v1"))
        text = open(src).read()
        if api == 2:
            text = text.replace("  rpc Echo(Book) returns (Book);", V2_METHOD)
        with open(os.path.join(root, "gwtest", "v1", "library.proto"), "w") as f:
            f.write(text)
        out = os.path.join(self.work, "library-v%d.pb" % api)
        subprocess.run(["protoc", "-I" + root] + ["-I" + p for p in PROTOS[1:]] +
                       ["--include_imports", "--descriptor_set_out=" + out,
                        "gwtest/v1/library.proto"], check=True)
        self.sets[api] = out
        return out

    def start(self, name, argv):
        print("starting %s: %s" % (name, " ".join(argv)), flush=True)
        log = open(os.path.join(self.work, name + ".log"), "w")
        env = dict(os.environ)
        if argv[0] == self.meshd:  # meshd warns about MESHD_* variables it does not know
            env = {k: v for k, v in env.items() if not k.startswith("MESHD_")}
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self.procs[name]

    def log(self, name):
        with open(os.path.join(self.work, name + ".log"), errors="replace") as f:
            return f.read()

    def wait_log(self, name, regex, timeout=30):
        return wait_until(lambda: re.search(regex, self.log(name)), timeout,
                          "%s to log %r" % (name, regex))

    def stop(self, name, sig=signal.SIGTERM):
        p = self.procs.pop(name)
        p.send_signal(sig)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        return p.returncode

    def app(self, name, port, api=1):
        self.start(name, [sys.executable, os.path.join(HERE, "library_server.py"),
                          "--descriptor-set", self.descriptor_set(api), "--port", str(port),
                          "--mesh"])
        wait_port(port)

    def sidecar(self, name, app_port, extra=()):
        """A sidecar for the app on app_port; returns its gRPC port."""
        port = free_port()
        argv = [self.meshd, "sidecar", "--app", "127.0.0.1:%d" % app_port,
                "--listen", "127.0.0.1:%d" % port, "--probe-listen", "127.0.0.1:0",
                "--health-interval", "300ms", "--lease-ttl", "2s", "--workers", "1",
                "--drain-timeout", "500ms",
                "--log-format", "text"]
        if self.etcd:
            argv += ["--etcd", self.etcd.url]
        self.start(name, argv + list(extra))
        wait_port(port)
        # Its other listeners open after the proxy's (one was refused under TSan in CI).
        for _, p in listen_addrs(list(extra)):
            wait_port(p)
        return port

    def gateway(self, extra=(), name="gateway"):
        """meshd gateway with an admin port; returns (http port, admin port)."""
        port, admin = free_port(), free_port()
        argv = [self.meshd, "gateway", "--listen", "127.0.0.1:%d" % port, "--workers", "2",
                "--admin-listen", "127.0.0.1:%d" % admin, "--log-format", "text"]
        if self.etcd:
            argv += ["--etcd", self.etcd.url]
        self.start(name, argv + list(extra))
        wait_port(port)
        wait_port(admin)  # (it listens after the HTTP port: refused once on a loaded machine)
        return port, admin

    def close(self, failed):
        for name in list(self.procs)[::-1]:
            self.stop(name)
        if self.etcd:
            self.etcd.kill()
        bad = []
        for f in sorted(os.listdir(self.work)):
            if f.endswith(".log"):
                text = self.log(f[:-4])
                if "Sanitizer" in text or "runtime error" in text:
                    bad.append(f)
                if failed or f[:-4] in bad:
                    sys.stderr.write("---- %s\n%s\n" % (f, text[-4000:]))
        check(not bad, "sanitizer reports in %s" % bad)


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = dict(headers or {})
    if body is not None:
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def answers(port, method, path, body=None, headers=None):
    """The JSON answer once the call gives 200 (None before)."""
    st, d = call(port, method, path, body, headers)
    return json.loads(d) if st == 200 else None


def schemas(admin):
    st, d = call(admin, "GET", "/v1/gateway/schemas")
    check(st == 200, "GET /v1/gateway/schemas: %d %r" % (st, d))
    return json.loads(d)


def svc_state(admin, name=SVC):
    for s in schemas(admin).get("schemas", []):
        if s["service"] == name:
            return s["state"]
    return None


def check_library(port):
    """The v1 routes a user calls, answered by the app."""
    j = wait_until(lambda: answers(port, "GET", "/v1/shelves/1/books/2?full=true"), 30,
                   "GET /v1/shelves/1/books/2 to answer")
    check(j["name"] == "shelves/1/books/2" and j["pages"] == "1099511627776" and
          j["genre"] == "SCIENCE", "GET with a path variable: %r" % j)
    st, d = call(port, "POST", "/v1/shelves/s1/books", {"name": "b9", "pages": 12})
    check(st == 200 and json.loads(d) == {"name": "shelves/s1/books/b9", "pages": "12"},
          "POST with a JSON body: %d %r" % (st, d))
    st, d = call(port, "POST", "/%s/Echo" % SVC, {"title": "plain"})
    check(st == 200 and json.loads(d) == {"title": "plain"}, "generic POST: %d %r" % (st, d))


# ---- cases ----------------------------------------------------------------------------------

def case_learn(m):
    app_port = free_port()
    sc = m.sidecar("sidecar", app_port)  # the app is not up yet: nothing to learn from
    port, admin = m.gateway(["--static", "%s=127.0.0.1:%d" % (SVC, sc)])
    # The service is in the routing table, its schema not known: 503 that says so, not 404.
    wait_until(lambda: svc_state(admin) in ("failed", "fetching", "pending"), 20,
               "the cache to try the service")
    st, d = call(port, "POST", "/%s/Echo" % SVC, {"title": "x"})
    j = json.loads(d)
    check(st == 503 and j["code"] == 14 and "being learned" in j["message"],
          "before the schema is known: %d %r" % (st, d))
    st, d = call(port, "POST", "/no.such.Service/Echo", {})
    check(st == 404 and json.loads(d)["code"] == 5, "a service nobody routes: %d %r" % (st, d))
    m.app("app", app_port)
    t0 = time.monotonic()
    wait_until(lambda: answers(port, "POST", "/%s/Echo" % SVC, {}) is not None, 60,
               "the first call to answer")
    print("first HTTP answer %.0f ms after the app came up (the sidecar's health checks, the "
          "cache's backoff and one reflection fetch)" % ((time.monotonic() - t0) * 1000))
    wait_until(lambda: svc_state(admin) == "ok", 60, "the cache to learn the service")
    check_library(port)
    s = schemas(admin)
    check(s["running"] and s["held"] == 1 and s["api"]["methods"] >= 6 and
          "descriptor_set" not in s["api"], "stats %r" % s)


def case_deploy(m):
    m.etcd = Etcd(m.work)
    m.etcd.start()
    a1, a2 = free_port(), free_port()
    m.app("app-v1", a1, api=1)
    m.sidecar("sidecar-v1", a1, ["--version", "v1"])
    port, admin = m.gateway()
    wait_until(lambda: svc_state(admin) == "ok", 60, "the cache to learn v1")
    check_library(port)
    st, d = call(port, "GET", "/v2/shelves/top")
    check(st == 404, "the v2 route before the deploy: %d %r" % (st, d))
    # Rolling deploy: v2 comes up beside v1, then v1 leaves.
    m.app("app-v2", a2, api=2)
    t0 = time.monotonic()
    m.sidecar("sidecar-v2", a2, ["--version", "v2"])
    j = wait_until(lambda: answers(port, "GET", "/v2/shelves/top"), 60,
                   "the new method's route to answer")
    print("the new method's route answered %.0f ms after its sidecar started (health, "
          "registration in etcd, the watch, one reflection fetch)" % ((time.monotonic() - t0) * 1000))
    check(j == {"name": "shelf top"}, "GET /v2/shelves/top: %r" % j)
    m.stop("sidecar-v1")
    m.stop("app-v1")
    check_library(port)
    j = answers(port, "GET", "/v2/shelves/again")
    check(j == {"name": "shelf again"}, "v2 after v1 left: %r" % j)
    versions = [v["version"] for s in schemas(admin)["schemas"] if s["service"] == SVC
                for v in s["versions"]]
    check("v2" in versions, "the v2 variant in the stats: %r" % versions)


def case_merge(m):
    a = free_port()
    m.app("app", a, api=2)  # serves GetShelf; the file given to the gateway does not list it
    sc = m.sidecar("sidecar", a)
    port, admin = m.gateway(["--static", "%s=127.0.0.1:%d" % (SVC, sc),
                             "--descriptor-set", m.descriptor_set(1)])
    check_library(port)  # from the file at once
    wait_until(lambda: svc_state(admin) == "ok", 60, "the cache to learn the service")
    m.wait_log("gateway", r"descriptor-set .* describes gwtest\.v1\.Library: its schema is used")
    st, d = call(port, "GET", "/v2/shelves/x")
    check(st == 404, "the file's service wins (no GetShelf route): %d %r" % (st, d))
    api = schemas(admin)["api"]
    check(api["descriptor_set"]["overrides"] == 1 and
          api["descriptor_set"]["services"] == [SVC], "api %r" % api)


def case_sidecar_http(m):
    a = free_port()
    m.app("app", a, api=1)
    hp = free_port()
    admin = free_port()
    m.sidecar("sidecar", a, ["--http-listen", "127.0.0.1:%d" % hp,
                             "--admin-listen", "127.0.0.1:%d" % admin])
    check_library(hp)
    st, d = call(hp, "GET", "/v1/fail/NOT_FOUND")
    check(st == 404 and json.loads(d)["message"] == "failed as asked: NOT_FOUND",
          "an app error: %d %r" % (st, d))
    st, d = call(hp, "GET", "/v2/shelves/x")
    check(st == 404, "no v2 route yet: %d" % st)
    api = schemas(admin)["api"]
    check(api["generation"] >= 1 and api["methods"] >= 6, "api %r" % api)
    # The app restarts with a new API: the sidecar re-reads it on reconnect.
    m.stop("app")
    m.app("app", a, api=2)
    j = wait_until(lambda: answers(hp, "GET", "/v2/shelves/x"), 60, "the new route")
    check(j == {"name": "shelf x"}, "GET /v2/shelves/x: %r" % j)


JWT_POLICY = """policy:
  jwt:
    jwks-file: {jwks}
    issuers: https://issuer.test
    audiences: meshd
    algorithms: [RS256]
  rules:
    - match: /gwtest.v1.Library/GetBook
      authn: jwt
"""


def case_policy_jwt(m):
    import jwt  # python3-jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), kid="k1",
               use="sig", alg="RS256")
    jwks = os.path.join(m.work, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [jwk]}, f)
    cfg = os.path.join(m.work, "policy.yaml")
    with open(cfg, "w") as f:
        f.write(JWT_POLICY.format(jwks=jwks))

    def token(exp_in):
        now = int(time.time())
        return jwt.encode({"sub": "alice", "iss": "https://issuer.test", "aud": "meshd",
                           "iat": now, "exp": now + exp_in}, key, algorithm="RS256",
                          headers={"kid": "k1"})

    a = free_port()
    m.app("app", a)
    hp = free_port()
    m.sidecar("sidecar", a, ["--http-listen", "127.0.0.1:%d" % hp, "--config", cfg])
    # The gateway calls the app directly: a refusal through it is the gateway's own chain.
    port, _ = m.gateway(["--static", "%s=127.0.0.1:%d" % (SVC, a),
                         "--descriptor-set", m.descriptor_set(1), "--config", cfg])
    for where, p in [("gateway", port), ("sidecar", hp)]:
        wait_until(lambda: call(p, "GET", "/v1/shelves/1/books/2")[0] == 401, 30,
                   where + " to refuse a call without a token")
        st, d = call(p, "GET", "/v1/shelves/1/books/2")
        j = json.loads(d)
        check(st == 401 and j["code"] == 16 and "jwt: missing token" in j["message"],
              "%s, no token: %d %r" % (where, st, d))
        st, d = call(p, "GET", "/v1/shelves/1/books/2",
                     headers={"Authorization": "Bearer " + token(-60)})
        check(st == 401 and "expired" in json.loads(d)["message"],
              "%s, expired: %d %r" % (where, st, d))
        st, d = call(p, "GET", "/v1/shelves/1/books/2",
                     headers={"Authorization": "Bearer " + token(300)})
        check(st == 200 and json.loads(d)["name"] == "shelves/1/books/2",
              "%s, valid token: %d %r" % (where, st, d))
        st, d = call(p, "POST", "/%s/Echo" % SVC, {"title": "open"})
        check(st == 200, "%s: a method without a rule needs no token: %d %r" % (where, st, d))


ECHO = "meshd.test.Echo"


def meta_of(j):
    """Observed metadata of an EchoReply as JSON: {key: value} (values are base64 bytes)."""
    return {e["key"]: base64.b64decode(e.get("value", "")).decode()
            for e in j.get("observed", {}).get("metadata", [])}


def check_echo(port):
    """Every call form against meshd.test.Echo, answered by the C++ server."""
    j = wait_until(lambda: answers(port, "POST", "/%s/Unary" % ECHO,
                                   {"payload": "aGk=", "report": True},
                                   {"Grpc-Metadata-X-Test": "t1", "X-Tenant": "acme",
                                    "X-Request-Timeout": "1.5s"}),
                   60, "Unary to answer through %d" % port)
    check(j["payload"] == "aGk=" and j["serverId"] == "cc1" and
          j["observed"]["method"] == "/%s/Unary" % ECHO, "unary: %r" % j)
    md = meta_of(j)
    check(md.get("x-test") == "t1" and md.get("x-tenant") == "acme" and
          "127.0.0.1" in md.get("x-forwarded-for", ""), "metadata at the C++ server: %r" % md)
    left = int(j["observed"]["deadlineRemainingMs"])
    check(0 < left <= 1500, "X-Request-Timeout 1.5s: %d ms left at the server" % left)
    # a server stream as NDJSON
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/%s/ServerStream" % ECHO, body=json.dumps({"replyCount": 3,
                                                                  "replySize": 4}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    lines = [json.loads(x) for x in r.read().decode().splitlines() if x]
    c.close()
    check(r.status == 200 and r.getheader("Content-Type") == "application/x-ndjson" and
          [x.get("index", 0) for x in lines] == [0, 1, 2] and
          all(len(base64.b64decode(x["payload"])) == 4 for x in lines), "stream: %d %r" % (r.status, lines))
    # a client stream from an NDJSON body
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/%s/ClientStream" % ECHO,
              body='{"payload":"YQ=="}\n{"payload":"Yg=="}\n{"payload":"Yw=="}\n',
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    j = json.loads(r.read())
    c.close()
    check(r.status == 200 and j["observed"]["messagesReceived"] == "3" and j["payload"] == "Yw==",
          "client stream: %d %r" % (r.status, j))
    # an error status from the server, mapped by grpc-gateway's table
    st, d = call(port, "POST", "/%s/Unary" % ECHO, {"statusCode": 5, "statusMessage": "nope"})
    j = json.loads(d)
    check(st == 404 and j["code"] == 5 and j["message"] == "nope", "error: %d %r" % (st, d))
    # a deadline the server exceeds
    st, d = call(port, "POST", "/%s/Unary" % ECHO, {"sleepMs": 3000},
                 {"X-Request-Timeout": "200ms"})
    check(st == 504 and json.loads(d)["code"] == 4, "deadline: %d %r" % (st, d))
    # h2c (prior knowledge)
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-H",
                          "Content-Type: application/json", "-d", '{"payload":"aDI="}',
                          "http://127.0.0.1:%d/%s/Unary" % (port, ECHO)],
                         capture_output=True, text=True, timeout=30).stdout
    check(json.loads(out)["payload"] == "aDI=", "h2c: %r" % out)


def case_cc_server(m):
    """The C++ grpc++ echo server (tests/peers, reflection v1alpha and health) behind a sidecar:
    its schema is learned by reflection, no descriptor set; called through meshd gateway and
    through the sidecar's own --http-listen."""
    check(m.cc_server, "--cc-server is needed")
    app_port = free_port()
    m.start("app", [m.cc_server, "--host", "127.0.0.1", "--port", str(app_port), "--id", "cc1"])
    wait_port(app_port)
    hp = free_port()
    sc = m.sidecar("sidecar", app_port, ["--http-listen", "127.0.0.1:%d" % hp,
                                         "--gateway-headers", "x-tenant"])
    port, admin = m.gateway(["--static", "%s=127.0.0.1:%d" % (ECHO, sc),
                             "--gateway-headers", "x-tenant"])
    check_echo(port)
    wait_until(lambda: svc_state(admin, ECHO) == "ok", 30, "the cache to report Echo learned")
    check_echo(hp)


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--cc-server", help="meshd-echo-server-cc (the cc_server case)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshd-gwm-") as work:
        m = Mesh(os.path.abspath(a.meshd), work)
        m.cc_server = a.cc_server
        failed = True
        try:
            CASES[a.case](m)
            failed = False
        finally:
            m.close(failed)
    print("ok", a.case)


if __name__ == "__main__":
    main()
