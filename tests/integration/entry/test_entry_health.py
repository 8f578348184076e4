#!/usr/bin/python3
"""tests/integration/entry/test_entry_health.py: grpc.health.v1 answered by the mesh entry
(docs/entry.md), with Python grpcio clients (stubs generated from Debian's grpc-proto), a real
etcd and Python gRPC servers behind the proxy.

Cases (--case):
  proxy        Check "" SERVING, each registered service SERVING, an unknown name NOT_FOUND,
               health answered before the policy chain (a rate limit on every call stops echo
               calls, never a Check); a Watch open while a service's last instance is deregistered
               (NOT_SERVING arrives) and a Watch of a service not yet registered
               (SERVICE_UNKNOWN, then SERVING when it appears), each sending only changes.
  drain        SIGTERM with --health-grace: Check "" turns NOT_SERVING while the proxy still
               accepts connections and serves calls (before the GOAWAY); an open Watch sees
               NOT_SERVING, then ends UNAVAILABLE at the GOAWAY; the proxy exits 0.
  passthrough  --health-passthrough: health calls are routed to the instances as before (the
               backend's own health server answers).
  gateway      the gateway's h2c HTTP/JSON port answers Check and Watch (application/grpc).
  exec_probe   `meshd probe` (exec probes in the image) against the proxy and a Python server:
               0 for SERVING, 1 for unknown, draining or nothing listening, 2 for bad options.
  probe        a grpc-go health client (tests/integration/entry/probe, kubelet's `grpc:` probe
               is a grpc-go Check with a 1 s timeout) exits 0 against the proxy, 1 for an
               unknown service and for a draining proxy. Skipped (77) when Go is missing.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "integration", "proxy"))
sys.path.insert(0, os.path.join(ROOT, "integration", "registry_proxy"))
sys.path.insert(0, os.path.join(ROOT, "peers"))
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, Fail, check, free_port, wait_until, meshd_env, remove_dir  # noqa: E402
from cases import Case as CaseBase, run  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402
import stubs  # noqa: E402

stubs.load()
import grpc  # noqa: E402
from meshd_pb.grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
NAME = health_pb2.HealthCheckResponse.ServingStatus.Name
SKIP = 77


def check_health(target, service, timeout=5):
    """(status name or None, grpc code name, details) of one Check on a fresh channel."""
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        try:
            r = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
            return NAME(r.status), "OK", ""
        except grpc.RpcError as e:
            return None, e.code().name, e.details()


class Watch:
    """A Watch stream read on a thread: .statuses (names, in order), .end (code, details)."""

    def __init__(self, target, service):
        self.ch = grpc.insecure_channel(target)
        stub = health_pb2_grpc.HealthStub(self.ch)
        self.call = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=120)
        self.statuses = []
        self.end = None
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            for r in self.call:
                self.statuses.append(NAME(r.status))
            self.end = ("OK", "")
        except grpc.RpcError as e:
            self.end = (e.code().name, e.details())

    def close(self):
        self.call.cancel()
        self.ch.close()


class Case(CaseBase):
    def __init__(self, args):
        super().__init__(args, "meshd-it-entry-")
        self.etcd = None

    def backend(self, sid):
        p = Proc("backend-" + sid, ["/usr/bin/python3", self.args.py_server, "--port", "0",
                                    "--id", sid], self.dir, env=dict(os.environ))
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def start_etcd(self):
        self.etcd = Etcd(self.dir)
        self.etcd.start()

    def meshd(self, name, argv, ready=r"listening on"):
        p = Proc(name, [self.args.meshd] + argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.wait_line(ready, 20)
        p.wait_listening(20)  # an --admin-listen port listens after "listening on"
        return p

    def proxy(self, extra=(), name="proxy"):
        port = free_port()
        argv = ["proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2",
                "--log-format", "json"]
        if self.etcd:
            argv += ["--etcd", self.etcd.url]
        p = self.meshd(name, argv + list(extra))
        p.target = "127.0.0.1:%d" % port
        return p

    def stop(self, failed):
        for p in reversed(self.procs):
            p.kill()
        if self.etcd and self.etcd.proc:
            self.etcd.kill()
        remove_dir(self.dir, failed)


def case_proxy(c):
    c.start_etcd()
    b1, b2 = c.backend("py1"), c.backend("py2")
    c.etcd.register("meshd.test.Echo", b1.addr, "node-py1")
    c.etcd.register("meshd.test.Other", b2.addr, "node-py2")
    policy = os.path.join(c.dir, "policy.yaml")
    with open(policy, "w") as f:  # a strict rate limit on every call: the chain says no
        f.write("policy:\n  rules:\n    - match: '*'\n"
                "      rate-limit: {key: peer, rate: 1, burst: 1}\n")
    admin = free_port()
    p = c.proxy(["--config", policy, "--admin-listen", str(admin)])
    t = p.target
    wait_until(lambda: check_health(t, "meshd.test.Other")[0] == "SERVING", 15,
               "meshd.test.Other to be SERVING")
    check(check_health(t, "") == ("SERVING", "OK", ""), 'Check "" (the node) is SERVING')
    check(check_health(t, "meshd.test.Echo")[0] == "SERVING", "Check meshd.test.Echo SERVING")
    st, code, details = check_health(t, "no.such.Service")
    check(st is None and code == "NOT_FOUND" and details.startswith("meshd: health: unknown"),
          "an unknown service is NOT_FOUND (%s: %s)" % (code, details))
    with EchoClient(t) as e:  # the policy chain still guards the routed calls
        codes = [e.unary(payload=b"x", timeout=5).code.name for _ in range(6)]
    check("RESOURCE_EXHAUSTED" in codes, "routed calls meet the rate limit (%s)" % codes)
    checks = [check_health(t, "") for _ in range(10)]
    check(all(x == ("SERVING", "OK", "") for x in checks),
          "health is answered before the policy chain: 10 Checks, none limited")

    w_other = Watch(t, "meshd.test.Other")
    w_new = Watch(t, "meshd.test.New")
    wait_until(lambda: w_other.statuses == ["SERVING"], 10, "Watch(Other) to say SERVING")
    wait_until(lambda: w_new.statuses == ["SERVICE_UNKNOWN"], 10,
               "Watch(New) to say SERVICE_UNKNOWN")
    c.etcd.register("meshd.test.Echo", b2.addr, "node-py2")  # a change elsewhere: no message
    c.etcd.deregister("meshd.test.Other", b2.addr)
    wait_until(lambda: w_other.statuses == ["SERVING", "NOT_SERVING"], 10,
               "Watch(Other) to see its last instance go (NOT_SERVING)")
    check(check_health(t, "meshd.test.Other")[0] == "NOT_SERVING",
          "Check of a service whose instances are gone: NOT_SERVING")
    c.etcd.register("meshd.test.New", b1.addr, "node-py1")
    wait_until(lambda: w_new.statuses == ["SERVICE_UNKNOWN", "SERVING"], 10,
               "Watch(New) to see the new service (SERVING)")
    time.sleep(0.5)  # a quiet moment: nothing more may arrive (only changes are sent)
    check(w_other.statuses == ["SERVING", "NOT_SERVING"] and
          w_new.statuses == ["SERVICE_UNKNOWN", "SERVING"] and
          w_other.end is None and w_new.end is None,
          "Watches sent only changes and stay open (%s, %s)" % (w_other.statuses,
                                                                w_new.statuses))
    w_other.close()
    w_new.close()

    def health_calls():  # the call metrics count the local calls under their own service
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as r:
            text = r.read().decode()
        n = {}
        for line in text.splitlines():
            if line.startswith('meshd_calls_total{service="grpc.health.v1.Health"'):
                m = re.search(r'method="([^"]*)",code="([^"]*)"\} (\d+)', line)
                if m:
                    n[(m.group(1), m.group(2))] = int(m.group(3))
        return n
    wait_until(lambda: health_calls().get(("Check", "OK"), 0) >= 13 and
               health_calls().get(("Check", "NOT_FOUND"), 0) >= 1 and
               health_calls().get(("Watch", "CANCELLED"), 0) >= 2, 10,
               "/metrics to count the health calls by method and code")
    print("  health calls in /metrics:", health_calls(), flush=True)


def case_drain(c):
    b1 = c.backend("py1")
    # a generous grace, so the checks below fall inside it even on a loaded machine
    p = c.proxy(["--static", "meshd.test.Echo=%s" % b1.addr, "--health-grace", "8s",
                 "--drain-timeout", "5s"])
    t = p.target
    check(check_health(t, "") == ("SERVING", "OK", ""), 'Check "" SERVING before the signal')
    w = Watch(t, "")
    wait_until(lambda: w.statuses == ["SERVING"], 10, "Watch(\"\") to say SERVING")
    p.p.send_signal(signal.SIGTERM)
    wait_until(lambda: w.statuses == ["SERVING", "NOT_SERVING"], 5,
               "the open Watch to see NOT_SERVING when the shutdown begins")
    st = check_health(t, "")
    check(st == ("NOT_SERVING", "OK", ""), "Check \"\" on a new connection answers NOT_SERVING "
          "during the grace period, before any GOAWAY (%s)" % (st,))
    check(check_health(t, "meshd.test.Echo")[0] == "NOT_SERVING",
          "every service answers NOT_SERVING while the node drains")
    with EchoClient(t) as e:
        r = e.unary(payload=b"x", timeout=5)
        check(r.ok, "calls are still served during the grace period")
    wait_until(lambda: w.end is not None, 20, "the Watch to end at the GOAWAY")
    check(w.end[0] == "UNAVAILABLE" and "draining" in w.end[1], "it ends UNAVAILABLE (%s)"
          % (w.end,))
    rc = p.p.wait(timeout=20)
    check(rc == 0, "the proxy exits 0 after the drain")


def case_passthrough(c):
    b1 = c.backend("py1")
    p = c.proxy(["--static", "meshd.test.Echo=%s" % b1.addr,
                 "--static", "grpc.health.v1.Health=%s" % b1.addr, "--health-passthrough"])
    st, code, details = check_health(p.target, "no.such.Service")
    check(code == "NOT_FOUND" and not details.startswith("meshd:"),
          "the backend's own health server answered (%s: %s)" % (code, details))
    check(check_health(p.target, "meshd.test.Echo")[0] == "SERVING",
          "Check meshd.test.Echo answered by the instance")


def case_gateway(c):
    b1 = c.backend("py1")
    port = free_port()
    g = c.meshd("gateway", ["gateway", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                            "--static", "meshd.test.Echo=%s" % b1.addr], ready=r"HTTP/JSON on")
    t = "127.0.0.1:%d" % port
    wait_until(lambda: check_health(t, "meshd.test.Echo")[0] == "SERVING", 10,
               "the gateway's h2c port to answer Check meshd.test.Echo SERVING")
    check(check_health(t, "") == ("SERVING", "OK", ""), 'gateway: Check "" SERVING')
    check(check_health(t, "no.such.Service")[1] == "NOT_FOUND", "gateway: unknown NOT_FOUND")
    w = Watch(t, "meshd.test.Echo")
    wait_until(lambda: w.statuses == ["SERVING"], 10, "gateway: Watch says SERVING")
    g.p.send_signal(signal.SIGTERM)
    wait_until(lambda: w.end is not None, 15, "gateway: the Watch ends with the drain")
    check("NOT_SERVING" in w.statuses, "gateway: the Watch saw NOT_SERVING first (%s, %s)"
          % (w.statuses, w.end))
    check(g.p.wait(timeout=15) == 0, "the gateway exits 0")


def build_probe(c):
    """Builds tests/integration/entry/probe (grpc-go, GOPATH mode, offline) into --build-dir
    (Go's build cache kept there); its path, or None without Go and grpc-go."""
    if not shutil.which("go") or not os.path.isdir(
            "/usr/share/gocode/src/google.golang.org/grpc/health/grpc_health_v1"):
        return None
    bd = os.path.abspath(c.args.build_dir or c.dir)
    src = os.path.join(bd, "gopath", "src", "meshd-health-probe")
    os.makedirs(src, exist_ok=True)
    shutil.copy2(os.path.join(HERE, "probe", "main.go"), os.path.join(src, "main.go"))
    out = os.path.join(bd, "meshd-health-probe")
    env = dict(os.environ)
    env.update({"GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
                "GOPATH": os.path.join(bd, "gopath") + ":/usr/share/gocode",
                "GOCACHE": os.path.join(bd, "gocache"), "HOME": bd})
    r = subprocess.run(["go", "build", "-o", out, "meshd-health-probe"], cwd=bd, env=env,
                       capture_output=True, timeout=600)
    if r.returncode != 0:
        raise Fail("go build of the probe failed:\n%s" % r.stderr.decode()[-3000:])
    return out


def case_probe(c):
    probe = build_probe(c)
    if not probe:
        print("SKIP: no Go toolchain")
        raise SystemExit(SKIP)
    b1 = c.backend("py1")
    p = c.proxy(["--static", "meshd.test.Echo=%s" % b1.addr, "--health-grace", "3s"])

    def run(*a):
        r = subprocess.run([probe, "-addr", p.target, "-timeout", "1s"] + list(a),
                           capture_output=True, timeout=30)
        print("  probe", a, "->", r.returncode, r.stdout.decode().strip(),
              r.stderr.decode().strip(), flush=True)
        return r.returncode

    check(run() == 0, "grpc-go probe of the node: exit 0 (SERVING)")
    check(run("-service", "meshd.test.Echo") == 0, "grpc-go probe of meshd.test.Echo: exit 0")
    check(run("-service", "no.such.Service") != 0, "grpc-go probe of an unknown service fails")
    p.p.send_signal(signal.SIGTERM)
    wait_until(lambda: "serving" in p.output() and run() != 0, 5,
               "the probe to fail once the proxy drains (NOT_SERVING)")


def case_exec_probe(c):
    """`meshd probe` (the image's exec probe) against the proxy and against a Python server's
    own health service."""
    b1 = c.backend("py1")
    p = c.proxy(["--static", "meshd.test.Echo=%s" % b1.addr, "--health-grace", "3s"])

    def run(addr, *a):
        r = subprocess.run([c.args.meshd, "probe", "--addr", addr, "--timeout", "1s"] + list(a),
                           capture_output=True, timeout=30)
        print("  meshd probe", addr, a, "->", r.returncode, r.stdout.decode().strip(),
              r.stderr.decode().strip(), flush=True)
        return r.returncode

    check(run(p.target) == 0, "meshd probe of the proxy: exit 0")
    check(run(p.target, "--service", "meshd.test.Echo") == 0, "meshd probe of a service: 0")
    check(run(p.target, "--service", "no.such.Service") == 1, "an unknown service: exit 1")
    check(run(b1.addr, "--service", "meshd.test.Echo") == 0,
          "meshd probe of the Python server's own health service: exit 0")
    check(run("127.0.0.1:%d" % free_port()) == 1, "nothing listening: exit 1")
    check(subprocess.run([c.args.meshd, "probe", "--timeout", "soon"],
                         capture_output=True).returncode == 2, "a bad option: exit 2")
    p.p.send_signal(signal.SIGTERM)
    wait_until(lambda: run(p.target) == 1, 5, "meshd probe to fail once the proxy drains")


CASES = {"proxy": case_proxy, "exec_probe": case_exec_probe, "drain": case_drain, "passthrough": case_passthrough,
         "gateway": case_gateway, "probe": case_probe}


def main():
    def add_args(ap):
        ap.add_argument("--build-dir", help="where the Go probe is built (and its cache kept)")
    return run(CASES, Case, add_args)


if __name__ == "__main__":
    sys.exit(main())
