#!/usr/bin/python3
"""tests/integration/grpcgo/test_grpcgo.py: meshd and grpc-go's etcd naming tools, both ways,
with a real grpc-go program (meshd-grpcgo/main.go), a real etcd, real meshd processes and real
Python gRPC apps (tests/peers/echo_server.py).

Cases (--case NAME):
  build      builds meshd-grpcgo into --build-dir, offline, in GOPATH mode against Debian's
             packages (golang-go, golang-google-grpc-dev, golang-etcd-server-dev); the Go build
             cache lives in the build folder, so a rebuild takes well under a second. The other
             cases need it (ctest fixture).
  sidecars   grpc-go -> meshd: two apps, each behind `meshd sidecar --etcd`; a grpc-go client
             dialing etcd:///meshd/services/meshd.test.Echo with etcd's resolver and round
             robin reaches both. Also shown (printed, not asserted: it is grpc-go's behaviour):
             a record in meshd's former form (an object in Metadata) makes that client panic.
  endpoints  meshd -> grpc-go: two apps registered with etcd's endpoints manager
             (AddEndpoint: {"Op":0,"Addr":..,"Metadata":null}) are routed by `meshd proxy
             --etcd` for every method; DeleteEndpoint takes one out of the proxy's routing.

Every case starts its own etcd (random loopback ports, own data dir) and kills exactly the PIDs
it started, also on failure.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, check, free_port, wait_until, Fail  # noqa: E402
from cases import Case as CaseBase  # noqa: E402
from test_proxy_etcd import Etcd, PREFIX  # noqa: E402

ECHO = "meshd.test.Echo"
GO_PKG = "meshd-grpcgo"


def go_env(build_dir):
    """Offline GOPATH build: our package in build_dir/gopath, Debian's under /usr/share/gocode."""
    env = dict(os.environ)
    env.update({"GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
                "GOPATH": os.path.join(build_dir, "gopath") + ":/usr/share/gocode",
                "GOCACHE": os.path.join(build_dir, "gocache"), "HOME": build_dir})
    return env


def binary(build_dir):
    return os.path.join(build_dir, GO_PKG)


def case_build(args):
    if not shutil.which("go") or not os.path.isdir("/usr/share/gocode/src/go.etcd.io/etcd"):
        raise Fail("grpc-go interoperability needs Debian's golang-go, golang-etcd-server-dev "
                   "and golang-google-grpc-dev: run scripts/install-deps")
    src = os.path.join(args.build_dir, "gopath", "src", GO_PKG)
    os.makedirs(src, exist_ok=True)
    shutil.copy2(os.path.join(HERE, GO_PKG, "main.go"), os.path.join(src, "main.go"))
    r = subprocess.run(["go", "build", "-o", binary(args.build_dir), GO_PKG],
                       cwd=args.build_dir, env=go_env(args.build_dir), capture_output=True,
                       timeout=600)
    if r.returncode != 0:
        raise Fail("go build failed:\n" + r.stderr.decode(errors="replace"))
    check(os.access(binary(args.build_dir), os.X_OK), "built %s" % binary(args.build_dir))


class Case(CaseBase):
    def __init__(self, args):
        super().__init__(args, "meshd-it-grpcgo-")
        self.go = binary(args.build_dir)
        self.etcd = Etcd(self.dir)

    def start_etcd(self):
        if not os.access(self.go, os.X_OK):
            raise Fail("%s is missing: the build case did not run" % self.go)
        try:
            self.etcd.start()
        finally:
            if self.etcd.proc:
                self.procs.append(self.etcd.proc)

    def start(self, name, argv, env=None):
        p = Proc(name, argv, self.dir, env=env)
        self.procs.append(p)
        return p

    def start_app(self, sid):
        p = self.start("app-" + sid, ["/usr/bin/python3", self.args.py_server, "--port", "0",
                                      "--id", sid])
        p.addr = "127.0.0.1:%s" % p.wait_line(r"listening on (\d+)", 20).group(1)
        p.sid = sid
        return p

    def meshd(self, name, *argv):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
        return self.start(name, [self.args.meshd] + list(argv) + ["--etcd", self.etcd.url,
                                                                  "--log-format", "text"], env)

    def value(self, service, addr):
        out = self.etcd.ctl("get", "--print-value-only", "%s/%s/%s" % (PREFIX, service, addr))
        return json.loads(out) if out.strip() else None

    def go_call(self, service, want, timeout_s=30):
        argv = [self.go, "call", "-etcd", self.etcd.url, "-target", "%s/%s" % (PREFIX, service),
                "-want", str(want), "-timeout", "%ds" % timeout_s]
        print("running:", " ".join(argv), flush=True)
        return subprocess.run(argv, capture_output=True, timeout=timeout_s + 30)


def case_sidecars(c):
    apps = [c.start_app(s) for s in ("py1", "py2")]
    sidecars = []
    for app in apps:
        port, probe = free_port(), free_port()
        sc = c.meshd("sidecar-" + app.sid, "sidecar",
                     "--app", app.addr, "--listen", "127.0.0.1:%d" % port,
                     "--probe-listen", "127.0.0.1:%d" % probe, "--workers", "1",
                     "--health-interval", "300ms", "--lease-ttl", "3s", "--zone", "z1",
                     "--label", "team=core")
        sc.addr = "127.0.0.1:%d" % port
        sidecars.append(sc)
    for sc in sidecars:
        wait_until(lambda: c.value(ECHO, sc.addr), 20, "%s registered" % sc.addr)
        v = c.value(ECHO, sc.addr)
        check(v["Metadata"] is None and v["meshd"]["zone"] == "z1",
              "meshd's record for %s: Metadata null, meshd data beside it" % sc.addr)

    r = c.go_call(ECHO, want=2)
    out = r.stdout.decode().strip()
    print("grpc-go client:", out, r.stderr.decode()[-2000:] if r.returncode else "", flush=True)
    check(r.returncode == 0, "the grpc-go client ran (exit %d)" % r.returncode)
    res = json.loads(out.splitlines()[-1])
    check(res["distinct"] == ["py1", "py2"],
          "grpc-go (etcd resolver, round robin) reached both sidecar-registered apps: %s"
          % res["counts"])
    check(all(n >= 3 for n in res["counts"].values()),
          "round robin spread the calls over both: %s" % res["counts"])

    # Why Metadata stays null: meshd's former record form, with its data as an object in
    # Metadata, under a prefix of its own.
    legacy = "meshd.test.Legacy"
    c.etcd.ctl("put", "%s/%s/%s" % (PREFIX, legacy, sidecars[0].addr),
               json.dumps({"Op": 0, "Addr": sidecars[0].addr,
                           "Metadata": {"node": "n1", "methods": ["Unary"], "weight": 1}}))
    r = c.go_call(legacy, want=1, timeout_s=10)
    err = r.stderr.decode(errors="replace")
    panic = next((line for line in err.splitlines() if line.startswith("panic:")), None)
    print("observed: a grpc-go client given meshd's former record form %s (exit %d)%s"
          % ("panicked" if panic else "did not panic", r.returncode,
             ": " + panic if panic else ""), flush=True)


def case_endpoints(c):
    apps = [c.start_app(s) for s in ("py1", "py2")]
    port = free_port()
    proxy = c.meshd("proxy", "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2")
    proxy.wait_line(r"listening on", 15)
    target = "127.0.0.1:%d" % port
    regs = []
    for app in apps:
        reg = c.start("endpoints-" + app.addr.split(":")[1],
                      [c.go, "register", "-etcd", c.etcd.url, "-target", "%s/%s" % (PREFIX, ECHO),
                       "-addr", app.addr, "-ttl", "5"])
        reg.wait_line(r"registered ", 20)
        regs.append(reg)
        v = c.value(ECHO, app.addr)
        check(v == {"Op": 0, "Addr": app.addr, "Metadata": None},
              "etcd's endpoints manager wrote %s" % json.dumps(v))

    def served(kind, n):
        ids = []
        with EchoClient(target) as cl:
            for _ in range(n):
                if kind == "Unary":
                    r = cl.unary(payload=b"x", timeout=5)
                else:
                    r = cl.server_stream(reply_count=1, timeout=5)
                ids.append(r.replies[0].server_id if r.ok else "%s: %s" % (r.code.name,
                                                                           r.details))
        return ids

    for kind in ("Unary", "ServerStream"):
        last = []

        def both():
            last[:] = served(kind, 4)
            return set(last) == {"py1", "py2"}
        wait_until(both, 15, "%s calls through meshd proxy to reach both" % kind)
        check(True, "meshd proxy routes %s to both endpoints-manager instances: %s"
              % (kind, last))

    # DeleteEndpoint (the registrar stops): the proxy stops routing to it.
    regs[0].p.send_signal(signal.SIGTERM)
    check(regs[0].p.wait(timeout=15) == 0 and "deleted" in regs[0].output(),
          "the endpoints manager deleted py1's endpoint")
    wait_until(lambda: set(served("Unary", 4)) == {"py2"}, 10, "py1 to leave the proxy's routes")
    check(True, "after DeleteEndpoint only py2 is routed")


CASES = {"sidecars": case_sidecars, "endpoints": case_endpoints}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd")
    ap.add_argument("--py-server")
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--case", required=True, choices=["build"] + sorted(CASES))
    args = ap.parse_args()
    ok = False
    c = None
    try:
        print("== case", args.case, flush=True)
        if args.case == "build":
            case_build(args)
        else:
            c = Case(args)
            c.start_etcd()
            CASES[args.case](c)
        ok = True
        print("PASS", args.case)
    except Fail as e:
        print("FAIL:", e)
    finally:
        if c:
            c.stop(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
