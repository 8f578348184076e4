"""tests/integration/ca/test_mesh_ca.py: the built-in mesh CA end to end, with real processes.

`meshd ca init` makes a root (and refuses to overwrite it); a CA node (`meshd proxy --ca-dir
--ca-tokens --admin-listen`) serves POST /v1/ca/sign; a second node (`--ca-url
--ca-token-file --identity-dir`) obtains a certificate that the openssl CLI verifies against
the root and shows with the node's and its service's SPIFFE IDs; with a short lifetime the node
writes new certificates before the old ones expire (while the admin API wants its own token
for everything else); a wrong token gets 401 and a service the
token does not allow 403, both with a JSON error body, and no files; every answer is audited;
a broken token file stops the CA node at start with FILE:LINE; SIGHUP reloads the tokens (a
broken file is refused, audited, and the tokens in force stay); `meshd ca verify` says why a
file is wrong. Every process is started here and killed by PID."""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lib"))
from procs import Fail, Proc, check, free_port, meshd_env, wait_until  # noqa: E402

TD = "example.org"
TOKEN_WEB = "tok-web-0123456789abcdef"
TOKEN_OTHER = "tok-other-0123456789abcdef"


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)


def x509_field(path, opt):
    r = run(["openssl", "x509", "-in", path, "-noout", opt])
    check(r.returncode == 0, "openssl x509 %s %s: %s" % (opt, path, r.stderr))
    return r.stdout.strip()


def not_after(path):
    s = x509_field(path, "-enddate").split("=", 1)[1]
    return time.mktime(time.strptime(s, "%b %d %H:%M:%S %Y GMT")) - time.timezone


def post_sign(port, token, body):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/ca/sign" % port,
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Test:
    def __init__(self, meshd):
        self.meshd = meshd
        self.dir = tempfile.mkdtemp(prefix="meshd-it-ca-")
        self.procs = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def start(self, name, argv):
        print("starting:", " ".join(argv), flush=True)
        p = Proc(name, argv, self.dir, env=meshd_env())
        self.procs.append(p)
        return p

    def node(self, name, token, extra):
        port = free_port()
        tf = self.path(name + ".token")
        with open(tf, "w") as f:
            f.write(token + "\n")
        return self.start(name, [self.meshd, "proxy", "--node", name,
                                 "--listen", "127.0.0.1:%d" % free_port(),
                                 "--admin-listen", "127.0.0.1:%d" % port,
                                 "--audit-file", "off", "--audit-spool", self.path("spool-" + name),
                                 "--ca-url", "http://127.0.0.1:%d" % self.ca_port,
                                 "--ca-token-file", tf,
                                 "--identity-dir", self.path("id-" + name)] + extra)

    def main(self):
        ca = self.path("ca")
        # 1. meshd ca init, then a refusal to overwrite.
        r = run([self.meshd, "ca", "init", "--dir", ca, "--trust-domain", TD])
        check(r.returncode == 0, "ca init: %s" % r.stderr)
        check(os.stat(os.path.join(ca, "ca-key.pem")).st_mode & 0o777 == 0o600, "key not 0600")
        check(os.stat(os.path.join(ca, "ca-cert.pem")).st_mode & 0o777 == 0o644, "cert not 0644")
        text = x509_field(os.path.join(ca, "ca-cert.pem"), "-text")
        check("CA:TRUE" in text and "Certificate Sign" in text, "root extensions:\n" + text)
        check("URI:spiffe://" + TD in text, "root SAN:\n" + text)
        before = open(os.path.join(ca, "ca-key.pem")).read()
        r = run([self.meshd, "ca", "init", "--dir", ca, "--trust-domain", TD])
        check(r.returncode == 1 and "already holds a CA" in r.stderr, "second init: %r" % (r,))
        check(open(os.path.join(ca, "ca-key.pem")).read() == before, "the root was overwritten")

        # 2. A token file with a mistake stops a CA node at start, naming file:line.
        bad = self.path("bad-tokens")
        with open(bad, "w") as f:
            f.write("# tokens\n%s web-* shop.Cart extra\n" % TOKEN_WEB)
        r = run([self.meshd, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                 "--ca-dir", ca, "--ca-tokens", bad, "--admin-listen", str(free_port())])
        check(r.returncode == 2 and bad + ":2: more than 3 fields" in r.stderr,
              "bad token file: %r" % (r,))

        # 3. The CA node.
        tokens = self.path("tokens")
        with open(tokens, "w") as f:
            f.write("# web nodes may own the shop's services\n")
            f.write("%s web-* shop.Cart,shop.Order*\n" % TOKEN_WEB)
            f.write("%s other-* -\n" % TOKEN_OTHER)
        os.chmod(tokens, 0o600)
        self.ca_port = free_port()
        audit = self.path("ca-audit.jsonl")
        # The admin API wants its own token; /v1/ca/sign takes bootstrap tokens instead.
        admin_tok = self.path("admin-token")
        with open(admin_tok, "w") as f:
            f.write("admin-secret-0123456789\n")
        cap = self.start("ca-node", [self.meshd, "proxy", "--node", "ca-node",
                                     "--listen", "127.0.0.1:%d" % free_port(),
                                     "--admin-listen", "127.0.0.1:%d" % self.ca_port,
                                     "--admin-token-file", admin_tok,
                                     "--ca-dir", ca, "--ca-tokens", tokens,
                                     "--audit-file", audit, "--audit-spool", self.path("spool")])
        wait_until(lambda: "mesh CA for spiffe://" + TD in cap.output(), 20, "the CA node")

        # 4. A node obtains a certificate; the openssl CLI verifies it and shows its SANs.
        web = self.node("web-1", TOKEN_WEB, ["--identity-service", "shop.Cart",
                                             "--identity-ip", "127.0.0.1",
                                             "--identity-dns", "web-1.example.org",
                                             "--identity-lifetime", "9s"])
        idd = self.path("id-web-1")
        cert, key, cab = (os.path.join(idd, n) for n in ("cert.pem", "key.pem", "ca.pem"))
        wait_until(lambda: os.path.exists(cert), 30, "web-1's certificate")
        check(os.stat(key).st_mode & 0o777 == 0o600, "key.pem not 0600")
        r = run(["openssl", "verify", "-CAfile", cab, cert])
        check(r.returncode == 0 and r.stdout.strip().endswith("OK"), "openssl verify: %r" % (r,))
        text = x509_field(cert, "-text")
        print(text[text.find("X509v3 extensions"):], flush=True)
        for want in ("URI:spiffe://%s/node/web-1" % TD, "URI:spiffe://%s/svc/shop.Cart" % TD,
                     "IP Address:127.0.0.1", "DNS:web-1.example.org",
                     "TLS Web Server Authentication, TLS Web Client Authentication",
                     "CA:FALSE"):
            check(want in text, "%s not in the certificate:\n%s" % (want, text))
        r = run([self.meshd, "ca", "verify", "--cert", cert, "--key", key, "--ca", cab])
        check(r.returncode == 0 and "identity: spiffe://%s/node/web-1" % TD in r.stdout and
              "service:  spiffe://%s/svc/shop.Cart" % TD in r.stdout, "ca verify: %r" % (r,))

        # 5. Rotation: new certificates replace the old ones before they expire.
        serials, deadline = [x509_field(cert, "-serial")], time.time() + 60
        while len(serials) < 3 and time.time() < deadline:
            s = x509_field(cert, "-serial")
            # whatever the file holds is valid now: it was replaced before expiry
            check(not_after(cert) > time.time() - 1, "cert.pem expired before its successor")
            if s != serials[-1]:
                serials.append(s)
                check(run(["openssl", "verify", "-CAfile", cab, cert]).returncode == 0,
                      "a rotated certificate does not verify")
                r = run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"])
                r2 = run(["openssl", "pkey", "-in", key, "-pubout"])
                check(r.stdout == r2.stdout, "cert.pem and key.pem do not match after rotation")
            time.sleep(0.2)
        check(len(serials) >= 3, "only %d certificates in 60 s: %s" % (len(serials), serials))
        print("rotated certificates:", serials, flush=True)

        # 6. A wrong token: 401 with a JSON body; a node with it gets no files.
        csr = run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.path("x.key"),
                   "-subj", "/CN=x"]).stdout
        st, body = post_sign(self.ca_port, "wrong-0123456789abcdef", {"csr": csr, "node": "web-2"})
        check(st == 401 and body.get("code") == "unauthorized" and
              body["error"].startswith("meshd: ca:"), "wrong token: %d %r" % (st, body))
        st, body = post_sign(self.ca_port, None, {"csr": csr, "node": "web-2"})
        check(st == 401, "no token: %d %r" % (st, body))
        bad_node = self.node("web-3", "wrong-token-0123456789", [])
        wait_until(lambda: "answered 401" in bad_node.output(), 30, "web-3's refusal")
        check(not os.path.exists(self.path("id-web-3", "cert.pem")), "web-3 got a certificate")

        # 7. A service the token does not allow: 403; a node asking for it gets nothing.
        st, body = post_sign(self.ca_port, TOKEN_WEB,
                             {"csr": csr, "node": "web-2", "services": ["bank.Ledger"]})
        check(st == 403 and body.get("code") == "forbidden" and "bank.Ledger" in body["error"],
              "forbidden service: %d %r" % (st, body))
        st, body = post_sign(self.ca_port, TOKEN_OTHER, {"csr": csr, "node": "web-2"})
        check(st == 403 and "may not obtain node 'web-2'" in body["error"],
              "forbidden node: %d %r" % (st, body))
        greedy = self.node("web-4", TOKEN_WEB, ["--identity-service", "bank.Ledger"])
        wait_until(lambda: "answered 403" in greedy.output(), 30, "web-4's refusal")
        check(not os.path.exists(self.path("id-web-4", "cert.pem")), "web-4 got a certificate")
        # A garbage CSR: 400 with the reason.
        st, body = post_sign(self.ca_port, TOKEN_WEB, {"csr": "garbage", "node": "web-2"})
        check(st == 400 and body.get("code") == "bad_csr", "garbage CSR: %d %r" % (st, body))

        # 8. Audit and metrics.
        def audited():
            if not os.path.exists(audit):
                return None
            recs = [json.loads(l) for l in open(audit) if l.strip()]
            types = [r["type"] for r in recs]
            return recs if "cert_issued" in types and types.count("cert_denied") >= 4 else None
        recs = wait_until(audited, 20, "cert_issued and cert_denied audit records")
        issued = [r for r in recs if r["type"] == "cert_issued"][0]
        check(issued["peer"]["identity"] == "spiffe://%s/node/web-1" % TD and
              issued["outcome"] == "success", "cert_issued record: %r" % issued)
        denied = [r for r in recs if r["type"] == "cert_denied"][0]
        check(denied["outcome"] == "denied" and
              (denied["peer"]["address"] or "").startswith("127.0.0.1:"),
              "cert_denied record: %r" % denied)
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.ca_port)
            raise Fail("/metrics answered without the admin token")
        except urllib.error.HTTPError as e:
            check(e.code == 401, "/metrics without the admin token: %d" % e.code)
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % self.ca_port,
                                     headers={"Authorization": "Bearer admin-secret-0123456789"})
        with urllib.request.urlopen(req) as r:
            m = r.read().decode()
        check(re.search(r'meshd_ca_requests_total\{result="forbidden"\} [1-9]', m) and
              re.search(r'meshd_ca_requests_total\{result="issued"\} [3-9]', m),
              "metrics:\n" + m)

        # 9. SIGHUP reloads the tokens; a broken file is refused and the tokens in force stay.
        new_tok = "tok-new-0123456789abcdef"
        st, body = post_sign(self.ca_port, new_tok, {"csr": csr, "node": "web-9"})
        check(st == 401, "a token not yet in the file: %d %r" % (st, body))
        with open(tokens, "a") as f:
            f.write("%s web-* -\n" % new_tok)
        cap.p.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded (SIGHUP)" in cap.output(), 20, "the CA's reload")
        st, body = post_sign(self.ca_port, new_tok, {"csr": csr, "node": "web-9"})
        check(st == 200 and "certificate" in body, "the new token after SIGHUP: %d %r" % (st, body))
        with open(tokens, "w") as f:
            f.write("broken\n")
        cap.p.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in cap.output(), 20, "the refused reload")
        check(tokens + ":1: expected 3 fields" in cap.output(), "the refusal names file:line")
        st, body = post_sign(self.ca_port, new_tok, {"csr": csr, "node": "web-9"})
        check(st == 200, "the tokens in force after a refused reload: %d %r" % (st, body))
        wait_until(lambda: any(json.loads(l)["type"] == "config_rejected"
                               for l in open(audit) if l.strip()), 20, "config_rejected")

        # 10. meshd ca verify names what is wrong.
        with open(self.path("garbage.pem"), "w") as f:
            f.write("not a certificate\n")
        r = run([self.meshd, "ca", "verify", "--cert", self.path("garbage.pem")])
        check(r.returncode == 1 and "no PEM certificate" in r.stderr, "garbage: %r" % (r,))
        r = run([self.meshd, "ca", "verify", "--cert", cert, "--key", self.path("x.key")])
        check(r.returncode == 1 and "does not match" in r.stderr, "mismatch: %r" % (r,))
        other = self.path("other-ca")
        run([self.meshd, "ca", "init", "--dir", other, "--trust-domain", "other.org"])
        r = run([self.meshd, "ca", "verify", "--cert", cert, "--ca",
                 os.path.join(other, "ca-cert.pem")])
        check(r.returncode == 1 and "does not verify against the CA" in r.stderr,
              "wrong CA: %r" % (r,))

    def stop(self, failed):
        for p in reversed(self.procs):
            p.kill()
        if failed:
            for p in self.procs:
                print("---- %s ----\n%s" % (p.name, p.output()[-3000:]))
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    args = ap.parse_args()
    t = Test(args.meshd)
    failed = True
    try:
        t.main()
        failed = False
        print("PASS")
    except Fail as e:
        print("FAIL:", e)
    finally:
        t.stop(failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
