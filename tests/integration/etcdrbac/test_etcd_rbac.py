#!/usr/bin/python3
"""tests/integration/etcdrbac/test_etcd_rbac.py: meshd against a real etcd 3.4 whose RBAC was
set up by scripts/etcd-rbac (docs/etcd-rbac.md).

Each case (--case NAME) starts its own etcd (random loopback ports, own data dir, simple
tokens that expire after 5 s), runs the script for two teams (cart: shop.Cart, pay: shop.Pay),
starts grpcio apps (shop_server.py), sidecars and a proxy as those users, and kills exactly
the PIDs it started at the end, also on failure.

  teams        the cart sidecar registers shop.Cart, the proxy (read-only user) routes to it;
               a sidecar claiming shop.Pay as cart is refused by etcd: one log line naming the
               key and the user, the metric counts it, it keeps serving, no shop.Pay instance
               appears; the pay user then registers shop.Pay and the proxy routes it.
  token_expiry the sidecar's keepalives are further apart than the token TTL and etcd is
               restarted (every token is forgotten): the registration and the proxy's watch
               keep working, and a sidecar started after the restart is routed.
  bad_password a wrong password exits 2 naming the user; an unreadable password file exits 2
               naming the file; the reader user cannot register anything.
  client_cert  etcd on https with --client-cert-auth (certificates made with the openssl CLI):
               etcd 3.4's JSON gateway refuses client certificates with a CN, so meshd with
               one exits 2 saying so; with a certificate without a CN (mutual TLS) plus the
               team's password, cart registers shop.Cart and is refused shop.Pay, and the
               proxy reads as meshd-reader.
"""
import argparse
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Fail, Proc, check, free_port, wait_until, meshd_env  # noqa: E402
from certs import openssl  # noqa: E402
from cases import Case, run_case  # noqa: E402

import grpc  # noqa: E402

PREFIX = "meshd/services/"
SCRIPT = os.path.join(REPO, "scripts", "etcd-rbac")


def msg(text):
    """shop.Msg{text} in protobuf bytes (field 1, a string)."""
    b = text.encode()
    return b"\x0a" + bytes([len(b)]) + b


def unmsg(data):
    return data[2:2 + data[1]].decode() if data else ""


class Env(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-it-etcdrbac-")
        self.pw = os.path.join(self.dir, "passwords")
        self.etcd = None

    # -- etcd ------------------------------------------------------------------------------
    def start_etcd(self, ports=None, tls=False):
        cp, pp = ports or (free_port(), free_port())
        self.etcd_ports = (cp, pp)
        self.tls = tls
        self.etcd_url = "%s://127.0.0.1:%d" % ("https" if tls else "http", cp)
        argv = ["etcd", "--logger=zap", "--name", "e1", "--data-dir",
                os.path.join(self.dir, "etcd"), "--listen-client-urls", self.etcd_url,
                "--advertise-client-urls", self.etcd_url,
                "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
                "--initial-cluster", "e1=http://127.0.0.1:%d" % pp,
                "--auth-token", "simple", "--auth-token-ttl", "5"]
        if tls:
            argv += ["--client-cert-auth", "--trusted-ca-file", self.pki("ca.pem"),
                     "--cert-file", self.pki("etcd.pem"), "--key-file", self.pki("etcd.key")]
        p = Proc("etcd-%d" % len(self.procs), argv, self.dir)
        self.procs.append(p)
        self.etcd = p

        def healthy():
            if not p.alive():
                raise Fail("etcd exited:\n" + p.output()[-2000:])
            try:
                with urllib.request.urlopen(self.etcd_url + "/health", timeout=1,
                                            context=self.ssl_ctx("meshd")) as r:
                    return b"true" in r.read()
            except (OSError, urllib.error.URLError):
                return False
        wait_until(healthy, 20, "etcd to be healthy")

    # -- certificates (openssl CLI) --------------------------------------------------------
    def pki(self, name):
        return os.path.join(self.dir, "pki", name)

    def make_pki(self, users):
        """A CA, etcd's server certificate for 127.0.0.1, and one client certificate per user
        (CN = the etcd user)."""
        os.makedirs(self.pki(""), exist_ok=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", self.pki("ca.key"), "-out", self.pki("ca.pem"), "-days", "2",
                "-subj", "/CN=meshd test etcd CA")
        ext = self.pki("ext.cnf")
        with open(ext, "w") as f:
            # etcd's gateway dials etcd's gRPC with the server certificate: clientAuth too
            f.write("[server]\nsubjectAltName=IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "[client]\nextendedKeyUsage=clientAuth\n")
        certs = [("etcd", "/CN=etcd", "server"), ("meshd", "/O=meshd", "client")]
        certs += [(u, "/CN=" + u, "client") for u in users]
        for name, subj, section in certs:
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", self.pki(name + ".key"), "-out", self.pki(name + ".csr"),
                    "-subj", subj)
            openssl("x509", "-req", "-in", self.pki(name + ".csr"), "-CA", self.pki("ca.pem"),
                    "-CAkey", self.pki("ca.key"), "-CAcreateserial", "-days", "1",
                    "-out", self.pki(name + ".pem"), "-extfile", ext, "-extensions", section)

    def ssl_ctx(self, user):
        if not getattr(self, "tls", False):
            return None
        ctx = ssl.create_default_context(cafile=self.pki("ca.pem"))
        ctx.load_cert_chain(self.pki(user + ".pem"), self.pki(user + ".key"))
        return ctx

    def tls_args(self, user, prefix="--etcd-"):
        if not getattr(self, "tls", False):
            return []
        return [prefix + "cacert", self.pki("ca.pem"), prefix + "cert", self.pki(user + ".pem"),
                prefix + "key", self.pki(user + ".key")]

    def rbac(self):
        tls = self.tls_args("root", "--")
        out = subprocess.run([SCRIPT, "--endpoints", self.etcd_url, "--password-dir", self.pw,
                              "--team", "cart=shop.Cart", "--team", "pay=shop.Pay"] + tls,
                             capture_output=True, text=True, timeout=120)
        print(out.stdout, out.stderr, flush=True)
        check(out.returncode == 0, "scripts/etcd-rbac set up the roles and users")
        return out.stdout

    def keys(self):
        """{key: lease} under meshd/services/, read as root."""
        tok = self.token("root")
        start = base64.b64encode(PREFIX.encode()).decode()
        end = base64.b64encode(PREFIX[:-1].encode() + b"0").decode()
        body = json.dumps({"key": start, "range_end": end}).encode()
        req = urllib.request.Request(self.etcd_url + "/v3/kv/range", data=body,
                                     headers={"Authorization": tok})
        with urllib.request.urlopen(req, timeout=5, context=self.ssl_ctx("meshd")) as r:
            out = json.loads(r.read())
        return {base64.b64decode(kv["key"]).decode(): kv.get("lease", "0")
                for kv in out.get("kvs", [])}

    def token(self, user):
        body = json.dumps({"name": user, "password": self.password(user)}).encode()
        with urllib.request.urlopen(urllib.request.Request(
                self.etcd_url + "/v3/auth/authenticate", data=body), timeout=5,
                context=self.ssl_ctx("meshd")) as r:
            return json.loads(r.read())["token"]

    def password(self, user):
        with open(os.path.join(self.pw, user)) as f:
            return f.readline().strip()

    # -- apps and meshd ------------------------------------------------------------------------
    def start_app(self, service, sid):
        p = Proc("app-%s-%d" % (sid, len(self.procs)),
                 ["/usr/bin/python3", os.path.join(HERE, "shop_server.py"), "--service", service,
                  "--id", sid], self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 30)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def start_sidecar(self, app, user, name, extra=()):
        port, probe, admin = free_port(), free_port(), free_port()
        argv = [self.args.meshd, "sidecar", "--app", app.addr,
                "--listen", "127.0.0.1:%d" % port, "--probe-listen", "127.0.0.1:%d" % probe,
                "--admin-listen", "127.0.0.1:%d" % admin, "--health-interval", "300ms",
                "--workers", "1", "--log-format", "text", "--audit-file",
                os.path.join(self.dir, name + ".audit.jsonl"), "--etcd", self.etcd_url]
        argv += self.credentials(user)
        argv += list(extra)
        p = Proc("sidecar-%s-%d" % (name, len(self.procs)), argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.addr, p.admin, p.probe = "127.0.0.1:%d" % port, admin, probe
        wait_until(lambda: p.accepts(probe), 20, "sidecar %s probes" % name)
        return p

    def start_proxy(self, user="meshd-reader"):
        port = free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                "--etcd", self.etcd_url, "--log-format", "text", "--lb", "round-robin"]
        argv += self.credentials(user)
        p = Proc("proxy-%d" % len(self.procs), argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.addr = "127.0.0.1:%d" % port
        wait_until(lambda: p.accepts(port), 20, "proxy to accept")
        return p

    def credentials(self, user):
        """The user's password file, and with TLS the client certificate without a CN."""
        return self.tls_args("meshd") + ["--etcd-user", user, "--etcd-password-file",
                                         os.path.join(self.pw, user)]

    def run_meshd(self, argv):
        out = subprocess.run([self.args.meshd] + argv, capture_output=True, text=True,
                             timeout=30, env=meshd_env())
        return out.returncode, out.stdout + out.stderr


def call(addr, service, text="hi", timeout=3):
    """One Ping through addr: (answer text, None) or (None, grpc error)."""
    with grpc.insecure_channel(addr) as ch:
        f = ch.unary_unary("/%s/Ping" % service, request_serializer=lambda b: b,
                           response_deserializer=lambda b: b)
        try:
            return unmsg(f(msg(text), timeout=timeout)), None
        except grpc.RpcError as e:
            return None, e


def routed(addr, service, want):
    def ok():
        got, _ = call(addr, service)
        return got is not None and got.startswith(want + ":")
    return ok


def metric(p, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.admin, timeout=3) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


# ---- cases ---------------------------------------------------------------------------------

def case_teams(env):
    env.start_etcd()
    out = env.rbac()
    check("role meshd-svc-shop.Cart: readwrite on meshd/services/shop.Cart/*" in out,
          "the script says what it granted")
    again = subprocess.run([SCRIPT, "--endpoints", env.etcd_url, "--password-dir", env.pw,
                            "--team", "cart=shop.Cart", "--team", "pay=shop.Pay"],
                           capture_output=True, text=True, timeout=120)
    check(again.returncode == 0 and "created" not in again.stdout,
          "running the script again creates nothing")
    cart_app = env.start_app("shop.Cart", "cart1")
    cart = env.start_sidecar(cart_app, "cart", "cart")
    proxy = env.start_proxy()
    wait_until(routed(proxy.addr, "shop.Cart", "cart1"), 30,
               "the proxy (read-only user) to route shop.Cart to the cart sidecar")
    check(any(k.startswith(PREFIX + "shop.Cart/") for k in env.keys()),
          "the cart user registered shop.Cart")

    pay_app = env.start_app("shop.Pay", "pay1")
    thief = env.start_sidecar(pay_app, "cart", "thief")
    line = r"etcd refused to register .*permission denied writing meshd/services/shop.Pay/\S+ " \
           r"as etcd user cart"
    thief.wait_line(line, 30)
    wait_until(lambda: metric(thief, "meshd_sidecar_registration_denied_total") == 1, 10,
               "the refusal to be counted")
    check(metric(thief, "meshd_sidecar_registration_denied") == 1,
          "the gauge says the registration is refused now")
    time.sleep(3)  # more retries would log more lines: there must be none
    check(len(re.findall(line, thief.output())) == 1, "the refusal is logged once")
    check(thief.alive(), "the refused sidecar keeps running")
    got, _ = call(thief.addr, "shop.Pay")
    check(got == "pay1:hi", "the refused sidecar keeps serving its app")
    check(not any(k.startswith(PREFIX + "shop.Pay/") for k in env.keys()),
          "no shop.Pay instance is in etcd")
    got, err = call(proxy.addr, "shop.Pay")
    check(got is None, "the proxy has no route to shop.Pay (%s)" % (err and err.code()))

    thief.kill()
    pay = env.start_sidecar(pay_app, "pay", "pay")
    wait_until(routed(proxy.addr, "shop.Pay", "pay1"), 30,
               "the proxy to route shop.Pay once the pay user registered it")
    check(metric(pay, "meshd_sidecar_registration_denied_total") == 0,
          "the pay sidecar was never refused")
    check(routed(proxy.addr, "shop.Cart", "cart1")(), "shop.Cart is still routed")
    rc, out = env.run_meshd(["registry", "list", "--etcd", env.etcd_url]
                            + env.credentials("meshd-reader"))
    check(rc == 0 and "shop.Cart" in out and "shop.Pay" in out,
          "`meshd registry list` as meshd-reader lists both services")


def case_token_expiry(env):
    env.start_etcd()
    env.rbac()
    app = env.start_app("shop.Cart", "cart1")
    # keepalives every 6 s: longer than the 5 s token TTL, so every one finds its token expired
    sc = env.start_sidecar(app, "cart", "cart", extra=("--lease-ttl", "18s"))
    proxy = env.start_proxy()
    wait_until(routed(proxy.addr, "shop.Cart", "cart1"), 30, "shop.Cart to be routed")
    lease = env.keys()
    check(len(lease) == 1, "one instance registered")
    sc.wait_line(r"auth token rejected .*authenticating again", 30)
    wait_until(lambda: sc.output().count("auth token rejected") >= 2, 30,
               "a second keepalive past the token TTL")
    check(env.keys() == lease, "the registration kept its lease across token expiries")
    check(routed(proxy.addr, "shop.Cart", "cart1")(), "the proxy still routes after the TTL")

    # etcd restarts: every simple token is forgotten.
    env.etcd.kill()
    env.start_etcd(env.etcd_ports)
    app2 = env.start_app("shop.Cart", "cart2")
    env.start_sidecar(app2, "cart", "cart2")
    want = {"cart1", "cart2"}

    def both():
        seen = set()
        for _ in range(4):
            got, _ = call(proxy.addr, "shop.Cart")
            if got:
                seen.add(got.split(":")[0])
        return seen == want
    wait_until(both, 60, "the proxy's watch (re-authenticated) to route both instances")
    check(env.keys().keys() >= set(lease), "the first registration survived the restart")
    check("refused" not in sc.output(), "no authentication was refused")


def case_bad_password(env):
    env.start_etcd()
    env.rbac()
    app = env.start_app("shop.Cart", "cart1")
    bad = os.path.join(env.dir, "wrong")
    with open(bad, "w") as f:
        f.write("not-the-password\n")
    base = ["sidecar", "--app", app.addr, "--listen", "127.0.0.1:0", "--etcd", env.etcd_url,
            "--log-format", "text"]
    rc, out = env.run_meshd(base + ["--etcd-user", "cart", "--etcd-password-file", bad])
    print(out)
    check(rc == 2 and "user cart" in out and "invalid user ID or password" in out,
          "a wrong password exits 2 naming the user and etcd's reason")
    missing = os.path.join(env.dir, "no-such-file")
    rc, out = env.run_meshd(base + ["--etcd-user", "cart", "--etcd-password-file", missing])
    print(out)
    check(rc == 2 and missing in out, "an unreadable password file exits 2 naming the file")
    rc, out = env.run_meshd(base + ["--etcd-user", "cart"])
    check(rc == 2 and "--etcd-password-file" in out, "a user without a password file exits 2")
    rc, out = env.run_meshd(["proxy", "--listen", "127.0.0.1:0", "--etcd", env.etcd_url,
                             "--etcd-user", "nobody", "--etcd-password-file", bad])
    check(rc == 2 and "user nobody" in out, "the proxy checks its credentials too")
    reader = env.start_sidecar(app, "meshd-reader", "reader")
    reader.wait_line(r"permission denied writing meshd/services/shop.Cart/\S+ as etcd user "
                     r"meshd-reader", 30)
    check(not env.keys(), "the read-only user registered nothing")


def case_client_cert(env):
    env.make_pki(["root", "cart"])
    env.start_etcd(tls=True)
    env.rbac()
    cart_app = env.start_app("shop.Cart", "cart1")
    rc, out = env.run_meshd(["sidecar", "--app", cart_app.addr, "--listen", "127.0.0.1:0",
                             "--etcd", env.etcd_url] + env.tls_args("cart"))
    print(out)
    check(rc == 2 and "refuses client certificates with a common name" in out,
          "a certificate with a CN (refused by etcd's gateway) exits 2 saying why")
    env.start_sidecar(cart_app, "cart", "cart")
    proxy = env.start_proxy()
    wait_until(routed(proxy.addr, "shop.Cart", "cart1"), 30,
               "the proxy (mutual TLS, user meshd-reader) to route shop.Cart")
    pay_app = env.start_app("shop.Pay", "pay1")
    thief = env.start_sidecar(pay_app, "cart", "thief")
    thief.wait_line(r"permission denied writing meshd/services/shop.Pay/\S+ as etcd user cart",
                    30)
    check(not any(k.startswith(PREFIX + "shop.Pay/") for k in env.keys()),
          "cart may not register shop.Pay over TLS either")
    thief.kill()
    env.start_sidecar(pay_app, "pay", "pay")
    wait_until(routed(proxy.addr, "shop.Pay", "pay1"), 30, "shop.Pay routed once pay registered")


CASES = {"teams": case_teams, "client_cert": case_client_cert, "token_expiry": case_token_expiry,
         "bad_password": case_bad_password}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    args = ap.parse_args()
    if not shutil.which("etcd") or not shutil.which("etcdctl"):
        print("SKIP: etcd / etcdctl not installed (etcd-server, etcd-client)")
        return 77
    return run_case(CASES, args.case, Env(args))


if __name__ == "__main__":
    sys.exit(main())
