#!/usr/bin/python3
"""tests/integration/registry_proxy/test_proxy_etcd.py: `meshd proxy --etcd` against a real
etcd: registrations become routable (propagation time printed), deregistrations stop traffic,
static routes merge with etcd's, the proxy keeps routing while etcd is down, a proxy restarted
during the outage routes from its snapshot file, and etcd's return resyncs the view.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
import test_proxy as tp  # noqa: E402  (Proc, wait_until, free_port, check, EchoClient)
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, check, free_port, wait_until, Fail, remove_dir  # noqa: E402
from calls import served_by  # noqa: E402

PREFIX = "meshd/services"


class Etcd:
    """One etcd member on random loopback ports with its own data dir."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "etcd-data")
        self.workdir = workdir
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        peer = "http://127.0.0.1:%d" % self.peer_port
        argv = ["etcd", "--name", "e1", "--data-dir", self.dir, "--logger=zap",
                "--log-level=error", "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url, "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=" + peer]
        self.proc = Proc("etcd-%d" % self.starts, argv, self.workdir)
        wait_until(self.healthy, 20, "etcd to be healthy")

    def healthy(self):
        r = subprocess.run(["curl", "-sf", self.url + "/health"], capture_output=True)
        return r.returncode == 0 and b"true" in r.stdout

    def kill(self):
        self.proc.kill()  # SIGKILL: a SIGTERMed member may take seconds to leave

    def ctl(self, *args):
        env = dict(os.environ, ETCDCTL_API="3")
        r = subprocess.run(["etcdctl", "--endpoints", self.url] + list(args),
                           capture_output=True, env=env, timeout=20)
        if r.returncode != 0:
            raise Fail("etcdctl %s: %s" % (" ".join(args), r.stderr.decode()))
        return r.stdout.decode()

    def register(self, service, addr, node, methods=("Unary", "ServerStream", "ClientStream",
                                                     "Bidi", "Stats", "SetHealth")):
        value = {"Op": 0, "Addr": addr, "Metadata": {"node": node, "methods": list(methods)}}
        self.ctl("put", "%s/%s/%s" % (PREFIX, service, addr), json.dumps(value))

    def deregister(self, service, addr):
        self.ctl("del", "%s/%s/%s" % (PREFIX, service, addr))


def start_proxy(args, workdir, etcd, port, snapshot, name):
    argv = [args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2",
            "--etcd", etcd.url, "--snapshot-file", snapshot, "--log-format", "json",
            "--static", "meshd.test.Other=%s" % args.other_addr,
            "--lb", "round-robin"]  # the checks below count round robin's alternation
    menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    p = Proc(name, argv, workdir, env=menv)
    p.wait_line(r"listening on", 15)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="meshd-it-etcd-")
    procs = []
    ok = False
    try:
        etcd = Etcd(workdir)
        etcd.start()
        procs.append(etcd)
        backends = {}
        for sid in ("py1", "py2"):
            p = Proc("backend-" + sid, ["/usr/bin/python3", args.py_server, "--port", "0",
                                        "--id", sid], workdir)
            procs.append(p)
            m = p.wait_line(r"listening on (\d+)", 20)
            backends[sid] = "127.0.0.1:%s" % m.group(1)
        args.other_addr = backends["py2"]
        port = free_port()
        target = "127.0.0.1:%d" % port
        snapshot = os.path.join(workdir, "view.snapshot")
        proxy = start_proxy(args, workdir, etcd, port, snapshot, "meshd-1")
        procs.append(proxy)

        # Nothing registered yet: the mesh says there is no route; static routes already work.
        ids = served_by(target, 1)
        check(ids[0].startswith("UNIMPLEMENTED: meshd: no route"), "no route before any "
              "registration (%s)" % ids)
        with EchoClient(target) as c:
            r = c.ping(timeout=5)
            check(r.server_id == "py2", "the static route to meshd.test.Other serves")

        t0 = time.monotonic()
        etcd.register("meshd.test.Echo", backends["py1"], "node-py1")
        wait_until(lambda: served_by(target, 1) == ["py1"], 10, "py1 to become routable")
        print("registration -> routable through the proxy in %.1f ms (incl. client call)"
              % ((time.monotonic() - t0) * 1000), flush=True)

        etcd.register("meshd.test.Echo", backends["py2"], "node-py2")
        wait_until(lambda: set(served_by(target, 4)) == {"py1", "py2"}, 10,
                   "round robin over both registrations")
        ids = served_by(target, 6)
        check(ids.count("py1") == 3 and ids.count("py2") == 3, "calls alternate: %s" % ids)

        t0 = time.monotonic()
        etcd.deregister("meshd.test.Echo", backends["py1"])
        wait_until(lambda: set(served_by(target, 4)) == {"py2"}, 10, "py1 to leave")
        print("deregistration -> no more traffic in %.1f ms" % ((time.monotonic() - t0) * 1000))

        # A rolling update in which the instances serve different methods: py2 (old version)
        # lacks ServerStream, so every ServerStream call goes to py1; Unary still alternates.
        etcd.register("meshd.test.Echo", backends["py1"], "node-py1")
        etcd.register("meshd.test.Echo", backends["py2"], "node-py2",
                      methods=("Unary", "Stats", "SetHealth"))

        def streams_go_to_py1():
            with EchoClient(target) as c:
                rs = [c.server_stream(reply_count=1, timeout=5) for _ in range(4)]
            seen = [r.replies[0].server_id if r.ok else "%s: %s" % (r.code.name, r.details)
                    for r in rs]
            print("ServerStream served by", seen, flush=True)
            return seen == ["py1"] * 4
        wait_until(streams_go_to_py1, 10, "ServerStream calls to go only to py1")
        check(set(served_by(target, 4)) == {"py1", "py2"}, "Unary still uses both instances")
        etcd.deregister("meshd.test.Echo", backends["py1"])
        wait_until(lambda: set(served_by(target, 4)) == {"py2"}, 10, "py1 to leave again")

        # etcd dies: the proxy keeps routing with its last view.
        etcd.kill()
        wait_until(lambda: "degraded" in proxy.output(), 20, "the proxy to notice etcd is gone")
        check(set(served_by(target, 6)) == {"py2"}, "still routing with etcd down")

        # A proxy restarted during the outage routes from its snapshot file.
        proxy.p.send_signal(signal.SIGTERM)
        check(proxy.p.wait(timeout=15) == 0, "the proxy exited 0 on SIGTERM")
        proxy = start_proxy(args, workdir, etcd, port, snapshot, "meshd-2")
        procs.append(proxy)
        wait_until(lambda: set(served_by(target, 4)) == {"py2"}, 10,
                   "the restarted proxy to route from its snapshot while etcd is down")

        # etcd returns on the same data dir: resync, and new registrations flow again.
        etcd.start()
        wait_until(lambda: "etcd connected" in proxy.output(), 20, "the proxy to reconnect")
        etcd.register("meshd.test.Echo", backends["py1"], "node-py1")
        wait_until(lambda: set(served_by(target, 4)) == {"py1", "py2"}, 10,
                   "the registration made after etcd's return to be routable")
        ok = True
        print("1 passed, 0 failed")
    except Fail as e:
        print("FAIL:", e)
    finally:
        for p in reversed(procs):
            if isinstance(p, Etcd):
                if p.proc:
                    p.kill()
            else:
                p.kill()
        remove_dir(workdir, not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
