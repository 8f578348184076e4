#!/usr/bin/python3
"""tests/integration/tls/test_tls.py: TLS on `meshd proxy` with real grpcio peers.

Certificates come from tests/tls/mkcerts.sh (the openssl CLI) in the case's temp folder. Cases:
  side_by_side   a grpcio TLS client (grpc.ssl_channel_credentials) on --tls-listen and an h2c
                 client on --listen, both to a plaintext app; TLS 1.2 and 1.3 both accepted
  tls_main       --listen itself is TLS: an h2c client is refused, the failure counted
                 (meshd_tls_handshake_failures_total{reason="protocol"}) and logged once
  upstream       h2c client -> proxy -> a grpcio TLS app (--tls-upstream-ca), and a server
                 name that the app's certificate does not carry refused (reason="verify")
  bad_certs      expired, not yet valid, key that does not match, CA that does not verify,
                 garbage PEM, missing file: each refused at start, file and reason in stderr
  client_auth    --tls-client-auth require: a client without a certificate refused (counted
                 as no_peer_certificate), one with a certificate served
  rotation       new certificate files while a load loop runs; SIGHUP, then a change picked up
                 by the file check alone: 0 failed calls, new handshakes see the new certificate
  resumption     a second connection resumes the first one's session (a ticket)
  route_tls_reload  a service's upstream-tls files are checked for changes like the node's own
                 certificates: its CA replaced on disk (no SIGHUP, no other TLS option) reaches
                 new connections, calls that failed verification succeed
  gateway        `meshd gateway --tls-cert`: HTTP/JSON over TLS with ALPN http/1.1 (curl
                 --http1.1) and h2 (curl --http2), and gRPC over TLS on --grpc-listen, answered
                 by a real grpcio server
  gateway_identity  `meshd gateway` requiring nothing but asking for client certificates
                 (--tls-client-auth optional, a `meshd ca init` root): the identity a client
                 certificate proves reaches the policy chain as on the gRPC listeners, so an
                 identity rule allows client-1 (its service ID) over HTTP/1.1 and HTTP/2 and
                 refuses client-2 and a client without a certificate (403, audited)
  admin          --admin-tls: the admin API over TLS (curl, `meshd routes --admin-ca`), plain
                 HTTP refused; /metrics over TLS carries the TLS families
  mesh_hop       h2c client -> proxy -(mTLS)-> `meshd sidecar` mesh port -> plaintext app: the
                 sidecar requires a client certificate, the proxy shows one (and a proxy
                 without one is refused); the sidecar's probes over HTTPS (--tls-probe)
  mesh_mtls      automatic mTLS through etcd: a sidecar with an identity (--identity-dir, SPIFFE
                 IDs from an openssl-made CA) serves TLS on its mesh port, requiring client
                 certificates, and registers "tls":"mtls"; a proxy with an identity of its own
                 calls it over mTLS with no --tls-upstream-* option, while an instance that
                 etcdctl registered (no tls) is called over h2c beside it
  handshake_timeout  a client that opens TCP and sends nothing is closed after
                 --tls-handshake-timeout (counted reason="timeout"); an upstream whose accept
                 succeeds but that never answers fails the call UNAVAILABLE, "TLS handshake
                 timed out", as a failed connect
  handshake_timeout_listeners  the same timeout on every other TLS listener: a sidecar's mesh
                 port, its probes (--tls-probe) and admin API (--admin-tls), and a gateway's
                 HTTP/JSON listener: a silent client on each is closed, counted
                 (reason="timeout") and logged naming the listener
  upstream_resumption  the proxy's second connection to a TLS upstream (another meshd) resumes
                 the first one's session: meshd_tls_handshakes_total{resumed="true"} on both
  route_tls      per-service upstream TLS in `routes:` (upstream-tls: {ca, server-name}) to a
                 TLS app, beside a service with upstream-tls: off; shown in /v1/route-policy;
                 a SIGHUP to a server name the app's certificate lacks applies at once
"""
import os
import re
import shutil
import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "peers"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
from cases import Case, run, meshd_env  # noqa: E402
from procs import Fail, check, wait_until, free_port  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402
from mesh_certs import ca_init, issue  # noqa: E402
from echo_client import EchoClient, make_request  # noqa: E402
import grpc  # noqa: E402

MKCERTS = os.path.join(ROOT, "tests", "tls", "mkcerts.sh")


class TlsCase(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-tls-")
        self.certs = os.path.join(self.dir, "certs")
        subprocess.run(["sh", MKCERTS, self.certs], check=True)

    def c(self, name):
        return os.path.join(self.certs, name)

    def read(self, name):
        with open(self.c(name), "rb") as f:
            return f.read()

    def tls_backend(self, sid, cert="server"):
        p = self.start("backend-" + sid,
                       ["/usr/bin/python3", self.args.py_server, "--port", "0", "--id", sid,
                        "--tls-cert", self.c(cert + ".pem"), "--tls-key", self.c(cert + ".key")],
                       env=dict(os.environ))
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def proxy(self, *flags, name="proxy"):
        """meshd proxy with an admin port; returns the process with .h2c, .tls, .admin set."""
        admin = free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:0", "--workers", "2",
                "--admin-listen", "127.0.0.1:%d" % admin, "--log-format", "text",
                "--audit-file", os.path.join(self.dir, name + ".audit")] + list(flags)
        p = self.start(name, argv)
        m = p.wait_line(r"listening on 127\.0\.0\.1:(\d+)( \(TLS\))? with", 20)
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)( \(TLS\))? with", p.output())
        p.main_port = int(m.group(1))
        p.main_tls = bool(m.group(2))
        if "--tls-listen" in flags:
            t = p.wait_line(r"\[node\] listening on 127\.0\.0\.1:(\d+) \(TLS\)\n", 20)
            p.tls_port = int(t.group(1))
        else:
            p.tls_port = p.main_port if p.main_tls else None
        # The admin port listens after the node's "listening on" lines: wait for its own line
        # (no test connection: one to a TLS port would count a failed handshake).
        p.wait_line(r"admin API on http://127\.0\.0\.1:%d/" % admin, 20)
        p.admin = admin
        return p

    def creds(self, client_cert=False, ca="ca.pem"):
        if client_cert:
            return grpc.ssl_channel_credentials(self.read(ca), self.read("client.key"),
                                                self.read("client.pem"))
        return grpc.ssl_channel_credentials(self.read(ca))


def metric(p, name, labels=""):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % p.admin, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


def calls_ok(target, creds, n=3, **kw):
    with EchoClient(target, credentials=creds, **kw) as c:
        res = [c.unary(timeout=10) for _ in range(n)]
    return res


def case_side_by_side(c):
    app = c.backend("py1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"), "--tls-listen", "127.0.0.1:0")
    check(p.tls_port and p.tls_port != p.main_port, "a TLS port beside the h2c one")
    tls = calls_ok("127.0.0.1:%d" % p.tls_port, c.creds())
    check(all(r.ok for r in tls), "grpcio TLS client through the TLS listener: OK")
    check(all(r.replies[0].server_id == "py1" for r in tls), "...answered by the plaintext app")
    byname = calls_ok("localhost:%d" % p.tls_port, c.creds(), n=1)
    check(byname[0].ok, "...also when it dials the name in the certificate (localhost)")
    h2c = calls_ok("127.0.0.1:%d" % p.main_port, None)
    check(all(r.ok for r in h2c), "h2c client on --listen at the same time: OK")
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=c.c("ca.pem"))
        ctx.minimum_version = ctx.maximum_version = ver
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", p.tls_port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                check(t.version() == ver.name.replace("v1_", "v1.") and
                      t.selected_alpn_protocol() == "h2", "%s with ALPN h2" % t.version())


def case_tls_main(c):
    app = c.backend("py1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"))
    check(p.main_tls, "--listen serves TLS when --tls-cert is given without --tls-listen")
    check(calls_ok("127.0.0.1:%d" % p.main_port, c.creds(), n=1)[0].ok, "TLS client: OK")
    for _ in range(3):
        r = calls_ok("127.0.0.1:%d" % p.main_port, None, n=1)[0]
        check(r.code == grpc.StatusCode.UNAVAILABLE, "h2c client refused (UNAVAILABLE)")
    wait_until(lambda: (metric(p, "meshd_tls_handshake_failures_total", '{reason="protocol"}') or 0)
               >= 3, 10, "protocol failures counted")
    check(True, "meshd_tls_handshake_failures_total{reason=\"protocol\"} counts them")
    lines = [ln for ln in p.output().splitlines() if "TLS handshake with 127.0.0.1 failed" in ln]
    check(len(lines) == 1, "logged once for the peer address (%d line)" % len(lines))
    check("wrong version number" in lines[0] or "http request" in lines[0] or
          "packet length" in lines[0], "...with OpenSSL's reason: " + lines[0][-80:])


def case_upstream(c):
    app = c.tls_backend("tls1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-upstream-ca", c.c("ca.pem"))
    res = calls_ok("127.0.0.1:%d" % p.main_port, None)
    check(all(r.ok and r.replies[0].server_id == "tls1" for r in res),
          "h2c client -> proxy -> TLS app (server verified as 127.0.0.1): OK")
    q = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-upstream-ca", c.c("ca.pem"),
                "--tls-upstream-server-name", "not-in-the-cert.example", name="proxy-badname")
    r = calls_ok("127.0.0.1:%d" % q.main_port, None, n=1)[0]
    check(r.code == grpc.StatusCode.UNAVAILABLE and "TLS handshake with upstream" in r.details
          and "hostname mismatch" in r.details,
          "a server name the certificate lacks: UNAVAILABLE, saying why: " + r.details)
    wait_until(lambda: (metric(q, "meshd_tls_handshake_failures_total", '{reason="verify"}') or 0)
               >= 1, 10, "verify failure counted")
    check("hostname mismatch" in q.output(), "...logged with the reason (hostname mismatch)")
    w = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-upstream-ca",
                c.c("other-ca.pem"), name="proxy-wrongca")
    r = calls_ok("127.0.0.1:%d" % w.main_port, None, n=1)[0]
    check(not r.ok, "an upstream CA that does not sign the app's certificate: the call fails")
    wait_until(lambda: "unable to get local issuer certificate" in w.output(), 10,
               "the reason in the log")
    check(True, "...logged: unable to get local issuer certificate")


def case_bad_certs(c):
    bad = [("expired.pem", "expired.key", None, r"expired\.pem has expired: it ended on 2020-01-02"),
           ("future.pem", "future.key", None, r"future\.pem is not valid yet: it starts on 2099"),
           ("server.pem", "client.key", None, r"client\.key does not match certificate .*server\.pem"),
           ("wrongca.pem", "wrongca.key", "ca.pem",
            r"ca\.pem does not verify certificate .*wrongca\.pem: unable to get local issuer"),
           ("garbage.pem", "server.key", None, r"garbage\.pem: no PEM certificate in it"),
           ("server.pem", "garbage.pem", None, r"garbage\.pem: no PEM private key in it"),
           ("missing.pem", "server.key", None, r"missing\.pem: cannot read: No such file")]
    for cert, key, ca, want in bad:
        argv = [c.args.meshd, "proxy", "--listen", "127.0.0.1:0", "--workers", "1",
                "--log-format", "text", "--tls-cert", c.c(cert), "--tls-key", c.c(key)]
        if ca:
            argv += ["--tls-ca", c.c(ca)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=meshd_env())
        out = r.stdout + r.stderr
        check(r.returncode != 0 and re.search(want, out),
              "%s + %s%s refused at start: %s" % (cert, key, " + CA " + ca if ca else "",
                                                   (re.search(want, out) or [out[-200:]])[0]))


def case_client_auth(c):
    app = c.backend("py1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"), "--tls-ca", c.c("ca.pem"),
                "--tls-client-auth", "require")
    r = calls_ok("127.0.0.1:%d" % p.main_port, c.creds(), n=1)[0]
    check(r.code == grpc.StatusCode.UNAVAILABLE, "client without a certificate refused")
    wait_until(lambda: (metric(p, "meshd_tls_handshake_failures_total",
                               '{reason="no_peer_certificate"}') or 0) >= 1, 10, "counted")
    check("peer did not return a certificate" in p.output(),
          "counted (no_peer_certificate) and logged with the reason")
    res = calls_ok("127.0.0.1:%d" % p.main_port, c.creds(client_cert=True))
    check(all(x.ok for x in res), "client with a certificate from the CA: OK")


def served_serial(port):
    """The serial of the certificate a new handshake gets."""
    ctx = ssl.create_default_context(cafile=None)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return out.strip()


def serial_of(path):
    return subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path], text=True,
                          capture_output=True, check=True).stdout.strip()


def replace(src, dst):
    """Writes dst atomically (a temp file renamed over it), as a CA client would."""
    shutil.copy(src, dst + ".tmp")
    os.rename(dst + ".tmp", dst)


def case_rotation(c):
    app = c.backend("py1")
    live_cert, live_key = c.c("live.pem"), c.c("live.key")
    shutil.copy(c.c("server.pem"), live_cert)
    shutil.copy(c.c("server.key"), live_key)
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", live_cert,
                "--tls-key", live_key, "--tls-reload-interval", "300ms")
    target = "127.0.0.1:%d" % p.main_port
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0, "channels": 0}
    errors = []

    def load(k):
        # Long-lived channels (calls on connections made before the rotation) and fresh ones
        # (new handshakes after it), side by side.
        long_client = EchoClient(target, credentials=c.creds())
        while not stop.is_set():
            for client, fresh in ((long_client, False), (EchoClient(target, credentials=c.creds()),
                                                         True)):
                r = client.unary(timeout=10)
                if r.ok:
                    counts["ok"] += 1
                else:
                    counts["failed"] += 1
                    errors.append("%s %s" % (r.code, r.details))
                if fresh:
                    counts["channels"] += 1
                    client.close()
        long_client.close()

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: counts["ok"] >= 50, 30, "load running")
        first = served_serial(p.main_port)
        check(first == serial_of(c.c("server.pem")), "serving server.pem (%s)" % first)
        # 1: new files, then SIGHUP (the file check would also see them: give it no time)
        replace(c.c("server2.pem"), live_cert)
        replace(c.c("server2.key"), live_key)
        p.p.send_signal(signal.SIGHUP)
        wait_until(lambda: served_serial(p.main_port) == serial_of(c.c("server2.pem")), 10,
                   "server2.pem served")
        check(True, "after new files and SIGHUP new handshakes get server2.pem")
        n0 = counts["ok"]
        wait_until(lambda: counts["ok"] >= n0 + 50, 30, "more calls")
        # 2: back to server.pem by the file check alone; the key first: until the certificate
        # follows, the pair does not match and the reload is refused (the old pair stays).
        refused = p.output().count("reload refused")
        replace(c.c("server.key"), live_key)
        # the file check's refusal itself (a fixed second was too short for a loaded machine's
        # 300 ms check: the key alone went unseen, and the refusal checked below never came)
        wait_until(lambda: p.output().count("reload refused") > refused, 10,
                   "the file check to refuse the key without its certificate")
        check(served_serial(p.main_port) == serial_of(c.c("server2.pem")),
              "a key without its certificate: refused, server2.pem still served")
        replace(c.c("server.pem"), live_cert)
        wait_until(lambda: served_serial(p.main_port) == serial_of(c.c("server.pem")), 10,
                   "server.pem served again")
        check(True, "the file check alone put server.pem back")
        n1 = counts["ok"]
        wait_until(lambda: counts["ok"] >= n1 + 50, 30, "more calls")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    check(counts["failed"] == 0, "%d calls on %d fresh channels and 4 long-lived ones during "
          "two rotations, %d failed %s" % (counts["ok"], counts["channels"], counts["failed"],
                                          errors[:3]))
    check("reload refused, the certificates in use stay" in p.output() and
          "does not match" in p.output(), "the refused reload is logged with the reason")
    check(metric(p, "meshd_tls_reloads_total") >= 2, "meshd_tls_reloads_total counts the reloads")


def case_resumption(c):
    app = c.backend("py1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"))
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=c.c("ca.pem"))
        ctx.minimum_version = ctx.maximum_version = ver
        ctx.set_alpn_protocols(["h2"])
        session = None
        for i in range(2):
            with socket.create_connection(("127.0.0.1", p.main_port), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
                    t.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                    t.recv(100)  # the server's SETTINGS (TLS 1.3 tickets come before them)
                    if i == 1:
                        check(t.session_reused, "%s: the second connection resumed" % ver.name)
                    session = t.session


def case_mesh_hop(c):
    app = c.backend("py1")
    sc_port, probe = free_port(), free_port()
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--app", app.addr,
                             "--listen", "127.0.0.1:%d" % sc_port,
                             "--probe-listen", "127.0.0.1:%d" % probe, "--workers", "1",
                             "--health-interval", "300ms", "--log-format", "text",
                             "--audit-file", os.path.join(c.dir, "sidecar.audit"),
                             "--tls-cert", c.c("server.pem"), "--tls-key", c.c("server.key"),
                             "--tls-ca", c.c("ca.pem"), "--tls-client-auth", "require",
                             "--tls-probe"])
    sc.wait_line(r"listening on 127\.0\.0\.1:%d \(TLS\)" % sc_port, 20)
    sc.wait_line(r"probes /livez /readyz on", 20)

    def probe(path):
        out = subprocess.run(["curl", "-sS", "--cacert", c.c("ca.pem"), "-o", "/dev/null", "-w",
                              "%{http_code}", "https://127.0.0.1:%d%s" % (probe_port, path)],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    probe_port = int(re.search(r"probes /livez /readyz on 127\.0\.0\.1:(\d+)",
                               sc.output()).group(1))
    check(probe("/livez") == "200", "--tls-probe: GET /livez over HTTPS (no client certificate "
          "asked: the kubelet has none): 200")
    wait_until(lambda: probe("/readyz") == "200", 20, "ready over HTTPS")
    check(True, "GET /readyz over HTTPS: 200 once the app is healthy")
    route = "meshd.test.Echo=127.0.0.1:%d" % sc_port
    p = c.proxy("--static", route, "--tls-upstream-ca", c.c("ca.pem"), "--tls-upstream-cert",
                c.c("client.pem"), "--tls-upstream-key", c.c("client.key"))
    res = calls_ok("127.0.0.1:%d" % p.main_port, None)
    check(all(r.ok and r.replies[0].server_id == "py1" for r in res),
          "client -> proxy -> mTLS -> sidecar's mesh port -> app: OK")
    q = c.proxy("--static", route, "--tls-upstream-ca", c.c("ca.pem"), name="proxy-nocert")
    r = calls_ok("127.0.0.1:%d" % q.main_port, None, n=1)[0]
    check(not r.ok, "a proxy without a client certificate is refused by the sidecar (%s)" % r.code)
    wait_until(lambda: "peer did not return a certificate" in sc.output(), 10,
               "the sidecar's log line")
    check(True, "...and the sidecar logs why: peer did not return a certificate")


def case_mesh_mtls(c):
    etcd = Etcd(c.dir)
    etcd.start()
    ca_dir = os.path.join(c.dir, "meshca")
    r = subprocess.run([c.args.meshd, "ca", "init", "--dir", ca_dir, "--trust-domain",
                        "example.org"], capture_output=True, text=True)
    check(r.returncode == 0, "meshd ca init: %s" % r.stderr)
    id_side = issue(c, ca_dir, "side-1", ["meshd.test.Echo", "meshd.test.Other"])
    id_proxy = issue(c, ca_dir, "proxy-1", [])
    app = c.backend("py1")
    sc_port = free_port()
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--node", "side-1", "--app", app.addr,
                             "--listen", "127.0.0.1:%d" % sc_port,
                             "--probe-listen", "127.0.0.1:%d" % free_port(), "--workers", "1",
                             "--health-interval", "300ms", "--log-format", "text",
                             "--etcd", etcd.url, "--identity-dir", id_side,
                             "--tls-client-auth", "require",
                             "--audit-file", os.path.join(c.dir, "sidecar.audit")])
    sc.wait_line(r"listening on 127\.0\.0\.1:%d \(TLS\)" % sc_port, 20)
    check(True, "a sidecar with an identity serves TLS on its mesh port, no --tls-cert given")
    key = "meshd/services/meshd.test.Echo/127.0.0.1:%d" % sc_port
    wait_until(lambda: '"tls":"mtls"' in etcd.ctl("get", key), 20,
               "the sidecar's record to say \"tls\":\"mtls\"")
    check(True, "...and its etcd record says \"tls\":\"mtls\"")
    p = c.proxy("--etcd", etcd.url, "--identity-dir", id_proxy, "--tls-listen", "127.0.0.1:0",
                "--lb", "round-robin")
    check(not p.main_tls and p.tls_port, "the proxy's --listen stays h2c (TLS beside it)")

    def through():
        res = calls_ok("127.0.0.1:%d" % p.main_port, None, n=3)
        return res if all(r.ok for r in res) else None
    res = wait_until(through, 20, "calls through the proxy to the sidecar")
    check(all(r.replies[0].server_id == "py1" for r in res),
          "h2c client -> proxy -(mTLS, the proxy's identity)-> sidecar requiring client "
          "certificates -> app: OK, with no --tls-upstream-* option")
    check((metric(p, "meshd_tls_handshakes_total", '{side="client",resumed="false"}') or 0) >= 1,
          "the proxy counts its client handshake")
    # Rotation: new certificates for both (the key stays, as the identity client does) reach the
    # listener and the client context by the file check alone; a channel kept open keeps working.
    with EchoClient("127.0.0.1:%d" % p.main_port) as kept:
        check(kept.unary(timeout=10).ok, "a long-lived channel before the rotation: OK")
        issue(c, ca_dir, "side-1", ["meshd.test.Echo", "meshd.test.Other"])
        issue(c, ca_dir, "proxy-1", [])
        wait_until(lambda: "mesh TLS (client): certificates reloaded" in p.output() and
                   "TLS listener: certificates reloaded" in sc.output(), 20,
                   "both nodes to reload their identity")
        check(kept.unary(timeout=10).ok, "...and after it, on the same channel: OK")
    res = calls_ok("127.0.0.1:%d" % p.main_port, None, n=3)
    check(all(r.ok for r in res), "the rotated identities reach the proxy's client context and "
          "the sidecar's listener: new channels OK")
    # A record without tls (etcdctl, another tool's app) is called over h2c beside it.
    app2 = c.backend("py2")
    etcd.register("meshd.test.Echo", app2.addr, "other-tool")

    def both():
        ids = {r.replies[0].server_id for r in calls_ok("127.0.0.1:%d" % p.main_port, None, n=6)
               if r.ok}
        return ids if ids == {"py1", "py2"} else None
    wait_until(both, 20, "calls to reach both instances")
    check(True, "an instance etcdctl registered (no \"tls\") is called over h2c beside the mTLS "
          "one: both answer")
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/routes" % p.admin, timeout=5) as r:
        inst = {i["address"]: i for s in json.load(r)["services"]
                if s["service"] == "meshd.test.Echo" for i in s["instances"]}
    side, tool = inst["127.0.0.1:%d" % sc_port], inst[app2.addr]
    check(side["tls"] == "mtls" and side["transport"] == "mtls" and tool["tls"] is None and
          tool["transport"] == "h2c", "the proxy's /v1/routes: the sidecar's record says mtls and "
          "is reached over mTLS, the etcdctl one over h2c (%s/%s, %s/%s)"
          % (side["tls"], side["transport"], tool["tls"], tool["transport"]))
    # A sidecar whose record names side-2 while its certificate proves side-1 (it was given
    # side-1's identity files): refused right after the handshake, before a call is sent on it;
    # the calls it was picked for go to the other instances.
    app3 = c.backend("py3")
    sc2_port = free_port()
    sc2 = c.start("sidecar-2", [c.args.meshd, "sidecar", "--node", "side-2", "--app", app3.addr,
                                "--listen", "127.0.0.1:%d" % sc2_port,
                                "--probe-listen", "127.0.0.1:%d" % free_port(), "--workers", "1",
                                "--health-interval", "300ms", "--log-format", "text",
                                "--etcd", etcd.url, "--identity-dir", id_side,
                                "--audit-file", os.path.join(c.dir, "sidecar2.audit")])
    sc2.wait_line(r"listening on 127\.0\.0\.1:%d \(TLS\)" % sc2_port, 20)
    key2 = "meshd/services/meshd.test.Echo/127.0.0.1:%d" % sc2_port
    wait_until(lambda: '"tls":"mtls"' in etcd.ctl("get", key2), 20, "side-2's record")
    served = []

    def refused():
        served.extend(r.replies[0].server_id if r.ok else r.code.name
                      for r in calls_ok("127.0.0.1:%d" % p.main_port, None, n=6))
        return "its record names 'side-2'" in p.output()
    wait_until(refused, 20, "the proxy to refuse side-2's address")
    check(True, "the proxy refuses an instance whose certificate proves another node than its "
          "record names (logged: the server proves node 'side-1', its record names 'side-2')")
    check("py3" not in served and all(x in ("py1", "py2") for x in served),
          "...no call reached it, and none failed: %s" % sorted(set(served)))
    check((metric(p, "meshd_tls_handshake_failures_total", '{reason="verify"}') or 0) >= 1,
          "...counted as reason=\"verify\"")
    # A proxy without an identity cannot call the sidecar (h2c on a TLS port): not in the mesh.
    q = c.proxy("--static", "meshd.test.Echo=127.0.0.1:%d" % sc_port, name="proxy-noid")
    r = calls_ok("127.0.0.1:%d" % q.main_port, None, n=1)[0]
    check(not r.ok, "a proxy without an identity is not let in (%s)" % r.code)


def case_handshake_timeout(c):
    app = c.backend("py1")
    p = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"), "--tls-handshake-timeout", "1s")
    with socket.create_connection(("127.0.0.1", p.main_port), timeout=60) as s:
        try:
            got = s.recv(100)  # nothing sent: the proxy closes it
        except socket.timeout:
            got = None
    check(got == b"", "a client that opens TCP and sends nothing is closed by the proxy")
    wait_until(lambda: (metric(p, "meshd_tls_handshake_failures_total", '{reason="timeout"}')
                        or 0) >= 1, 10, "the timeout counted")
    check(True, "...counted in meshd_tls_handshake_failures_total{reason=\"timeout\"}")
    # An upstream whose accept succeeds but that never says a word.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []

    def accept_all():
        while True:
            try:
                held.append(silent.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept_all, daemon=True).start()
    addr = "127.0.0.1:%d" % silent.getsockname()[1]
    q = c.proxy("--static", "meshd.test.Echo=" + addr, "--tls-upstream-ca", c.c("ca.pem"),
                "--tls-handshake-timeout", "1s", name="proxy-silent")
    r = calls_ok("127.0.0.1:%d" % q.main_port, None, n=1)[0]
    check(r.code == grpc.StatusCode.UNAVAILABLE and "TLS handshake timed out" in r.details,
          "an upstream that accepts and never answers: UNAVAILABLE, saying why: " + r.details)
    check(len(held) >= 1, "...its accept succeeded")
    wait_until(lambda: "TLS handshake timed out" in q.output(), 10, "the log line")
    check("down for" in q.output(), "...the endpoint is down as after a failed connect")
    silent.close()
    for h in held:
        h.close()


def _silent_client(port, source_ip):
    """Opens TCP to port from source_ip (its own line in the once-per-peer log), sends nothing;
    True when the server closed it (EOF) before the generous deadline."""
    with socket.create_connection(("127.0.0.1", port), timeout=60,
                                  source_address=(source_ip, 0)) as s:
        try:
            return s.recv(100) == b""
        except (socket.timeout, ConnectionResetError):
            return False


def case_handshake_timeout_listeners(c):
    app = c.backend("py1")
    sc_port, probe, admin = free_port(), free_port(), free_port()
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--app", app.addr,
                             "--listen", "127.0.0.1:%d" % sc_port,
                             "--probe-listen", "127.0.0.1:%d" % probe, "--workers", "1",
                             "--admin-listen", "127.0.0.1:%d" % admin, "--admin-tls",
                             "--log-format", "text",
                             "--audit-file", os.path.join(c.dir, "sidecar.audit"),
                             "--tls-cert", c.c("server.pem"), "--tls-key", c.c("server.key"),
                             "--tls-probe", "--tls-handshake-timeout", "1s"])
    sc.wait_line(r"listening on 127\.0\.0\.1:%d \(TLS\)" % sc_port, 20)
    sc.wait_line(r"probes /livez /readyz on", 20)
    sc.wait_line(r"admin API on", 20)

    def timeouts(port):
        out = subprocess.run(["curl", "-sS", "--cacert", c.c("ca.pem"),
                              "https://127.0.0.1:%d/metrics" % port],
                             capture_output=True, text=True, timeout=30)
        m = re.search(r'^meshd_tls_handshake_failures_total\{reason="timeout"\} (\S+)$',
                      out.stdout, re.M)
        return float(m.group(1)) if m else None

    # each listener from its own source address, so each has its own log line
    for what, port, src in (("the mesh port", sc_port, "127.0.0.2"),
                            ("the probes", probe, "127.0.0.3"),
                            ("the admin API", admin, "127.0.0.4")):
        before = timeouts(admin)
        check(before is not None, "the timeout counter is exported")
        check(_silent_client(port, src), "a client that sends nothing to %s is closed" % what)
        wait_until(lambda: timeouts(admin) == before + 1, 10, "the timeout counted")
        wait_until(lambda: re.search(r"TLS handshake with %s failed \(timeout\)" %
                                     re.escape(src), sc.output()), 10, "the log line")
        line = re.search(r"\] (\S+): TLS handshake with %s failed \(timeout\)" % re.escape(src),
                         sc.output())
        check(True, "...counted (reason=\"timeout\") and logged by '%s'" % line.group(1))
    # a real client still gets through each of them
    out = subprocess.run(["curl", "-sS", "--cacert", c.c("ca.pem"), "-o", "/dev/null", "-w",
                          "%{http_code}", "https://127.0.0.1:%d/livez" % probe],
                         capture_output=True, text=True, timeout=30)
    check(out.stdout.strip() == "200", "a probe that speaks TLS is answered: %s" % out.stdout)
    res = calls_ok("127.0.0.1:%d" % sc_port, c.creds(), n=1)
    check(res[0].ok, "a gRPC call over TLS to the mesh port is answered")

    # the gateway's HTTP/JSON listener
    desc, bport = _library(c)
    port, gadmin = free_port(), free_port()
    gw = c.start("gateway", [c.args.meshd, "gateway", "--listen", "127.0.0.1:%d" % port,
                             "--workers", "1", "--descriptor-set", desc, "--log-format", "text",
                             "--admin-listen", "127.0.0.1:%d" % gadmin,
                             "--audit-file", os.path.join(c.dir, "gw.audit"),
                             "--static", "gwtest.v1.Library=127.0.0.1:%d" % bport,
                             "--tls-cert", c.c("server.pem"), "--tls-key", c.c("server.key"),
                             "--tls-handshake-timeout", "1s"])
    wait_until(lambda: _accepting(port), 20, "the gateway")
    wait_until(lambda: _accepting(gadmin), 20, "the gateway's admin API")  # (started after)
    gw.admin = gadmin
    before = metric(gw, "meshd_tls_handshake_failures_total", '{reason="timeout"}') or 0
    check(_silent_client(port, "127.0.0.5"), "a client that sends nothing to the gateway's HTTP "
          "listener is closed")
    wait_until(lambda: (metric(gw, "meshd_tls_handshake_failures_total", '{reason="timeout"}')
                        or 0) == before + 1, 10, "the timeout counted")
    wait_until(lambda: "gateway: TLS handshake with 127.0.0.5 failed (timeout)" in gw.output(),
               10, "the log line")
    check(True, "...counted (reason=\"timeout\") and logged by 'gateway'")
    out = subprocess.run(["curl", "-sS", "--http2", "--cacert", c.c("ca.pem"), "-o", "/dev/null",
                          "-w", "%{http_code}", "https://localhost:%d/v1/shelves/1/books/2" % port],
                         capture_output=True, text=True, timeout=30)
    check(out.stdout.strip() == "200", "a TLS client of the gateway is answered: %s %s"
          % (out.stdout, out.stderr.strip()))


def case_upstream_resumption(c):
    app = c.backend("py1")
    b = c.proxy("--static", "meshd.test.Echo=" + app.addr, "--tls-cert", c.c("server.pem"),
                "--tls-key", c.c("server.key"), name="proxy-b")
    # One call per upstream connection: a second call while the first is open needs a second.
    a = c.proxy("--static", "meshd.test.Echo=127.0.0.1:%d" % b.main_port, "--tls-upstream-ca",
                c.c("ca.pem"), "--upstream-streams-per-conn", "1", name="proxy-a")
    target = "127.0.0.1:%d" % a.main_port
    with EchoClient(target) as cl, EchoClient(app.addr) as direct:
        first = cl.unary(timeout=10)
        check(first.ok, "client -> proxy A -(TLS)-> proxy B -> app: OK")
        done = threading.Event()
        held = threading.Thread(target=lambda: cl.client_stream(
            [make_request()], hold=True, timeout=60, cancel_when=done.wait), daemon=True)
        started = direct.stats().calls_started
        held.start()
        wait_until(lambda: direct.stats().calls_started >= started + 1, 10,
                   "the held call to reach the app")
        second = cl.unary(timeout=10)
        done.set()
        held.join(10)
    check(second.ok, "a call beside the held one: OK (on a second upstream connection)")
    check((metric(a, "meshd_tls_handshakes_total", '{side="client",resumed="true"}') or 0) >= 1,
          "proxy A's second connection resumed the first one's session")
    check((metric(b, "meshd_tls_handshakes_total", '{side="server",resumed="true"}') or 0) >= 1,
          "...and proxy B saw a resumed handshake")


def case_route_tls(c):
    tls_app = c.tls_backend("tls1")
    plain = c.backend("py1")
    routes = os.path.join(c.dir, "routes.yaml")
    with open(routes, "w") as f:
        f.write("routes:\n  rules:\n"
                "    - match: meshd.test.Echo/*\n"
                "      upstream-tls: {ca: %s, server-name: localhost}\n"
                "    - match: meshd.test.Other/*\n"
                "      upstream-tls: off\n" % c.c("ca.pem"))
    # The node-wide upstream CA is the wrong one: the rules decide for these services.
    p = c.proxy("--static", "meshd.test.Echo=" + tls_app.addr, "--static",
                "meshd.test.Other=" + plain.addr, "--tls-upstream-ca", c.c("other-ca.pem"),
                "--config", routes)
    res = calls_ok("127.0.0.1:%d" % p.main_port, None)
    check(all(r.ok and r.replies[0].server_id == "tls1" for r in res),
          "meshd.test.Echo over TLS with its rule's CA and server name: OK")
    with EchoClient("127.0.0.1:%d" % p.main_port) as cl:
        pong = cl.ping(timeout=10)
    check(pong is not None, "meshd.test.Other over h2c (upstream-tls: off): OK")
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/route-policy" % p.admin, timeout=5) as r:
        body = r.read().decode()
    check('"upstream_tls"' in body and '"server_name": "localhost"' in body.replace('":"', '": "')
          and '"off"' in body, "/v1/route-policy shows both settings")
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/routes" % p.admin, timeout=5) as r:
        svcs = {s["service"]: s for s in json.load(r)["services"]}
    echo, other = svcs["meshd.test.Echo"], svcs["meshd.test.Other"]
    check(echo["upstream_tls"]["server_name"] == "localhost" and
          echo["upstream_tls"]["ca"] == c.c("ca.pem") and other["upstream_tls"] == "off",
          "/v1/routes shows each service's upstream-tls: %s, %s" % (echo["upstream_tls"],
                                                                   other["upstream_tls"]))
    check([i["transport"] for i in echo["instances"]] == ["tls"] and
          [i["transport"] for i in other["instances"]] == ["h2c"],
          "...and how each instance is reached: Echo over TLS, Other over h2c (its rule beats "
          "--tls-upstream-ca)")
    r = subprocess.run([c.args.meshd, "routes", "--admin", "127.0.0.1:%d" % p.admin],
                       capture_output=True, text=True, timeout=30, env=meshd_env())
    check(re.search(r"meshd\.test\.Echo\s+\S+\s+static\s+routable\s+tls\s", r.stdout),
          "meshd routes: a TRANSPORT column (tls for Echo)")
    # SIGHUP with a server name the app's certificate lacks: new connections use the new
    # settings (the old connection, made for the replaced ones, takes no call), and fail.
    with open(routes, "w") as f:
        f.write("routes:\n  rules:\n"
                "    - match: meshd.test.Echo/*\n"
                "      upstream-tls: {ca: %s, server-name: not-in-the-cert.example}\n"
                % c.c("ca.pem"))
    reloads = p.output().count("[policy] reloaded from")
    p.p.send_signal(signal.SIGHUP)
    wait_until(lambda: p.output().count("[policy] reloaded from") > reloads, 10, "the reload")
    r = calls_ok("127.0.0.1:%d" % p.main_port, None, n=1)[0]
    check(r.code == grpc.StatusCode.UNAVAILABLE and "hostname mismatch" in r.details,
          "after a SIGHUP to another server name: the new rule applies (%s)" % r.details)


def case_route_tls_reload(c):
    tls_app = c.tls_backend("tls1")
    rule_ca = os.path.join(c.dir, "rule-ca.pem")
    shutil.copy(c.c("other-ca.pem"), rule_ca)  # the wrong CA first
    routes = os.path.join(c.dir, "routes.yaml")
    with open(routes, "w") as f:
        f.write("routes:\n  rules:\n"
                "    - match: meshd.test.Echo/*\n"
                "      upstream-tls: {ca: %s, server-name: localhost}\n" % rule_ca)
    # No TLS option of the node's own: only the rule's files are checked.
    p = c.proxy("--static", "meshd.test.Echo=" + tls_app.addr, "--config", routes,
                "--tls-reload-interval", "500ms")
    r = calls_ok("127.0.0.1:%d" % p.main_port, None, n=1)[0]
    check(r.code == grpc.StatusCode.UNAVAILABLE and "certificate verify failed" in r.details,
          "the rule's CA does not verify the app: UNAVAILABLE (%s)" % r.details)
    replace(c.c("ca.pem"), rule_ca)  # the right CA, renamed into place

    def through():
        res = calls_ok("127.0.0.1:%d" % p.main_port, None, n=1)
        return res if res[0].ok else None
    res = wait_until(through, 30, "a call through with the new CA")
    check(res[0].replies[0].server_id == "tls1",
          "the CA replaced on disk reaches new connections: the call is answered by the TLS app")
    check("routes: upstream-tls (line 3): certificates reloaded from %s" % rule_ca in p.output(),
          "...logged as a reload of the rule's files")
    check("[policy] reloaded from" not in p.output(), "...with no SIGHUP (no policy reload)")


def _library(c):
    """The gateway tests' library server and its descriptor set: (descriptor path, port)."""
    gwdir = os.path.join(ROOT, "tests", "integration", "gateway")
    desc = os.path.join(c.dir, "library.pb")
    subprocess.run(["protoc", "-I" + os.path.join(gwdir, "protos"),
                    "-I" + os.path.join(ROOT, "tests", "unit", "gateway_route", "protos"),
                    "-I/usr/include", "--include_imports", "--descriptor_set_out=" + desc,
                    "gwtest/v1/library.proto"], check=True)
    bport = free_port()
    c.start("library", [sys.executable, os.path.join(gwdir, "library_server.py"),
                        "--descriptor-set", desc, "--port", str(bport)], env=dict(os.environ))
    wait_until(lambda: _accepting(bport), 20, "the library server")
    return desc, bport


def case_gateway(c):
    desc, bport = _library(c)
    port, gport = free_port(), free_port()
    gw = c.start("gateway", [c.args.meshd, "gateway", "--listen", "127.0.0.1:%d" % port,
                             "--grpc-listen", "127.0.0.1:%d" % gport,
                             "--workers", "2", "--descriptor-set", desc, "--log-format", "text",
                             "--audit-file", os.path.join(c.dir, "gw.audit"),
                             "--static", "gwtest.v1.Library=127.0.0.1:%d" % bport,
                             "--tls-cert", c.c("server.pem"), "--tls-key", c.c("server.key")])
    wait_until(lambda: _accepting(port), 20, "the gateway")
    url = "https://localhost:%d/v1/shelves/1/books/2" % port
    for flag, proto in (("--http1.1", "1.1"), ("--http2", "2")):
        out = subprocess.run(["curl", "-sS", flag, "--cacert", c.c("ca.pem"), "-o", "/dev/null",
                              "-w", "%{http_code} %{http_version}", url],
                             capture_output=True, text=True, timeout=30)
        check(out.stdout.strip() == "200 " + proto,
              "curl %s over TLS: %s %s" % (flag, out.stdout.strip(), out.stderr.strip()))
    out = subprocess.run(["curl", "-sS", "--http1.1", "--cacert", c.c("ca.pem"), url],
                         capture_output=True, text=True, timeout=30)
    check('"name":"shelves/1/books/2"' in out.stdout.replace(" ", ""),
          "the JSON answer came through: " + out.stdout[:80])
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "http://127.0.0.1:%d/v1/shelves/1/books/2" % port],
                         capture_output=True, text=True, timeout=30)
    check(out.stdout.strip() != "200", "plain HTTP on the TLS port is refused (%s)" %
          (out.stdout.strip() or out.stderr.strip()))
    # its gRPC listener (--grpc-listen) serves TLS too (ALPN h2 only): a raw call to GetBook
    # with a name field (GetBookRequest field 1) is answered by the library server
    ch = grpc.secure_channel("127.0.0.1:%d" % gport, c.creds())
    get = ch.unary_unary("/gwtest.v1.Library/GetBook")
    reply = get(b"\x0a\x11shelves/1/books/2", timeout=10)
    ch.close()
    check(b"shelves/1/books/2" in reply, "gRPC over TLS on --grpc-listen: GetBook answered")
    check(gw.alive(), "the gateway is still up")


GW_IDENTITY_POLICY = """policy:
  rules:
    - match: gwtest.v1.Library/GetBook
      allow: {identities: ['spiffe://mesh.test/svc/pkg.Orders']}
"""


def case_gateway_identity(c):
    ca = os.path.join(c.dir, "ca")
    ca_init(c.args.meshd, ca, "mesh.test")
    gw_id = issue(c, ca, "gw", [], "mesh.test", extra_sans=["DNS:localhost", "IP:127.0.0.1"])
    c1 = issue(c, ca, "client-1", ["pkg.Orders"], "mesh.test")
    c2 = issue(c, ca, "client-2", [], "mesh.test")
    desc, bport = _library(c)
    cfg = os.path.join(c.dir, "gw.yaml")
    with open(cfg, "w") as f:
        f.write(GW_IDENTITY_POLICY)
    audit = os.path.join(c.dir, "gw.audit")
    port = free_port()
    f = os.path.join
    gw = c.start("gateway", [c.args.meshd, "gateway", "--listen", "127.0.0.1:%d" % port,
                             "--workers", "2", "--descriptor-set", desc, "--log-format", "text",
                             "--audit-file", audit, "--config", cfg,
                             "--static", "gwtest.v1.Library=127.0.0.1:%d" % bport,
                             "--tls-cert", f(gw_id, "cert.pem"), "--tls-key", f(gw_id, "key.pem"),
                             "--tls-ca", f(gw_id, "ca.pem"), "--tls-client-auth", "optional"])
    wait_until(lambda: _accepting(port), 20, "the gateway")
    url = "https://localhost:%d/v1/shelves/1/books/2" % port

    def get(flag, who):
        cert = ["--cert", f(who, "cert.pem"), "--key", f(who, "key.pem")] if who else []
        out = subprocess.run(["curl", "-sS", flag, "--cacert", f(gw_id, "ca.pem"), "-w",
                              "\n%{http_code} %{http_version}", url] + cert,
                             capture_output=True, text=True, timeout=30)
        body, _, status = out.stdout.rpartition("\n")
        return status.strip(), body, out.stderr.strip()

    for flag, proto in (("--http1.1", "1.1"), ("--http2", "2")):
        status, body, err = get(flag, c1)
        check(status == "200 " + proto and "shelves/1/books/2" in body,
              "client-1's certificate (spiffe://mesh.test/svc/pkg.Orders) is allowed over "
              "HTTP/%s: %s %s" % (proto, status, err or body[:80]))
        status, body, err = get(flag, c2)
        check(status == "403 " + proto and
              "identity spiffe://mesh.test/node/client-2 not allowed" in body,
              "client-2's certificate is refused over HTTP/%s, naming its identity: %s %s"
              % (proto, status, body[:160]))
        status, body, err = get(flag, None)
        check(status == "403 " + proto and "no identity" in body,
              "no client certificate: no identity, refused over HTTP/%s: %s %s"
              % (proto, status, body[:120]))

    def denials():
        try:
            with open(audit) as fh:
                recs = [json.loads(x) for x in fh if x.strip()]
        except OSError:
            return []
        return [x for x in recs if x.get("type") == "acl_denied"]
    wait_until(lambda: any((x.get("peer") or {}).get("identity") ==
                           "spiffe://mesh.test/node/client-2" for x in denials()), 10,
               "client-2's refusal audited with its identity")
    check(True, "...client-2's refusal is an acl_denied record naming its SPIFFE ID")
    check(gw.alive(), "the gateway is still up")


def case_admin(c):
    app = c.backend("py1")
    admin = free_port()
    p = c.start("proxy", [c.args.meshd, "proxy", "--listen", "127.0.0.1:0", "--workers", "1",
                          "--static", "meshd.test.Echo=" + app.addr, "--log-format", "text",
                          "--audit-file", os.path.join(c.dir, "p.audit"),
                          "--tls-cert", c.c("server.pem"), "--tls-key", c.c("server.key"),
                          "--admin-listen", "127.0.0.1:%d" % admin, "--admin-tls"])
    p.wait_line(r"admin API on", 20)
    base = "https://127.0.0.1:%d" % admin
    out = subprocess.run(["curl", "-sS", "--cacert", c.c("ca.pem"), "-o", "/dev/null", "-w",
                          "%{http_code} %{http_version}", base + "/v1/node"],
                         capture_output=True, text=True, timeout=30)
    check(out.stdout.strip() == "200 1.1", "GET /v1/node over TLS: %s %s" %
          (out.stdout.strip(), out.stderr.strip()))
    out = subprocess.run(["curl", "-sS", "--cacert", c.c("ca.pem"), base + "/metrics"],
                         capture_output=True, text=True, timeout=30)
    check('meshd_tls_handshake_failures_total{reason="verify"}' in out.stdout,
          "/metrics over TLS carries meshd_tls_handshake_failures_total")
    r = subprocess.run([c.args.meshd, "routes", "--admin", "127.0.0.1:%d" % admin, "--admin-ca",
                        c.c("ca.pem")], capture_output=True, text=True, timeout=30,
                       env=meshd_env())
    check(r.returncode == 0 and "meshd.test.Echo" in r.stdout,
          "meshd routes --admin-ca over TLS: exit %d, lists the service" % r.returncode)
    r = subprocess.run([c.args.meshd, "routes", "--admin", "127.0.0.1:%d" % admin],
                       capture_output=True, text=True, timeout=30, env=meshd_env())
    check(r.returncode != 0, "without --admin-ca (plain HTTP) it fails: " +
          r.stderr.strip().splitlines()[-1][:100])
    wait_until(lambda: "admin: TLS handshake with 127.0.0.1 failed" in p.output(), 10,
               "the refused plain request logged")
    check(True, "...and the node logs the plain-HTTP handshake failure")


def _accepting(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run(CASES, TlsCase))
