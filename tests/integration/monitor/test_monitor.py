#!/usr/bin/python3
"""tests/integration/monitor/test_monitor.py: `meshd monitor` end to end with a real etcd, real
gRPC apps (tests/peers) and real sidecars.

A pod whose data port is blackholed while its sidecar keeps its etcd lease is the case that
matters (a SIGSTOPped sidecar loses its lease and proves nothing). Without network namespaces
the blackhole is a TCP relay in this test: each sidecar advertises the relay's port, and a
"blackholed" relay keeps every connection open but forwards nothing (packets dropped, no RST).

Cases (--case NAME): blackhole (evicted after failed checks, the marker names the evicted
lease, the sidecar stays out, re-admitted after the blackhole ends), failover (the leader is
SIGKILLed, the standby leads within the lease TTL, one eviction only), valve (every instance
blackholed: the safety valve holds, nothing is evicted), gossip (a gossip-only mesh, no etcd:
the monitor checks the gossip members' instances and reports and audits what it would evict,
"no etcd: no fencing", and evicts nothing). Timings are printed, not asserted.
"""
import argparse
import base64
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sidecar"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
import test_sidecar  # noqa: E402
from test_proxy import Fail, Proc, check, free_port, wait_until  # noqa: E402

SERVICE = "meshd.test.Echo"


class Relay:
    """A TCP relay to target; blackhole() makes it swallow bytes without closing anything."""

    def __init__(self, target_port):
        self.target = target_port
        self.black = False
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c), daemon=True).start()

    def _pump(self, a, b):
        while True:
            try:
                d = a.recv(65536)
            except OSError:
                return
            if not d:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if self.black:
                continue  # dropped on the floor, like a DROP rule
            try:
                b.sendall(d)
            except OSError:
                return


def etcd_range(env, prefix):
    start = base64.b64encode(prefix.encode()).decode()
    end = base64.b64encode(prefix[:-1].encode() + bytes([prefix.encode()[-1] + 1])).decode()
    body = json.dumps({"key": start, "range_end": end}).encode()
    req = urllib.request.Request(env.etcd_url + "/v3/kv/range", data=body)
    with urllib.request.urlopen(req, timeout=5) as r:
        out = json.loads(r.read())
    return {base64.b64decode(kv["key"]).decode(): (json.loads(base64.b64decode(kv["value"])),
                                                   int(kv.get("lease", "0")))
            for kv in out.get("kvs", [])}


def admin(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/monitor" % port, timeout=3) as r:
        return json.loads(r.read())


def start_pods(env, n):
    """n apps, each with a sidecar advertising a relay in front of its listener."""
    pods = []
    for k in range(n):
        app = env.start_app("py", "a%d" % k)
        lp = free_port()
        relay = Relay(lp)
        sc = env.start_sidecar(app.addr, "s%d" % k, listen_port=lp,
                               extra=["--advertise", relay.addr])
        pods.append((app, sc, relay))
    for _, _, relay in pods:
        key = "meshd/services/%s/%s" % (SERVICE, relay.addr)
        wait_until(lambda: key in etcd_range(env, "meshd/services/"), 20, "%s registered" % key)
    return pods


def start_monitor(env, name, extra=(), etcd=True):
    ap = free_port()
    audit = os.path.join(env.dir, "audit-%s.jsonl" % name)
    argv = [env.args.meshd, "monitor"] + (["--etcd", env.etcd_url] if etcd else []) + [
            "--node", name,
            "--admin-listen", "127.0.0.1:%d" % ap, "--log-format", "text",
            "--audit-file", audit,
            "--monitor-interval", "1s", "--monitor-check-timeout", "500ms",
            "--monitor-lease-ttl", "3s", "--monitor-readmit-delay", "2s"] + list(extra)
    p = Proc("monitor-%s" % name, argv, env.dir, env=test_sidecar.meshd_env())
    env.procs.append(p)
    p.admin, p.audit = ap, audit
    wait_until(lambda: env._accepts(p, ap), 15, "monitor %s admin" % name)
    return p


def audit_events(p, typ):
    try:
        with open(p.audit) as f:
            return [e for e in map(json.loads, f) if e["type"] == typ]
    except FileNotFoundError:
        return []


def leader_of(mons):
    lead = [m for m in mons if m.alive() and admin(m.admin)["role"] == "leader"]
    return lead[0] if len(lead) == 1 else None


def case_blackhole(env):
    env.start_etcd()
    pods = start_pods(env, 3)
    mon = start_monitor(env, "m1")
    wait_until(lambda: admin(mon.admin)["role"] == "leader", 15, "m1 to lead")
    wait_until(lambda: admin(mon.admin)["instances"]["checked"] == 6, 15,
               "6 instances (3 pods x 2 services) checked")
    app, sc, relay = pods[0]
    key = "meshd/services/%s/%s" % (SERVICE, relay.addr)
    marker = "meshd/evicted/%s/%s" % (SERVICE, relay.addr)
    lease = etcd_range(env, key)[key][1]
    t0 = time.time()
    relay.black = True
    wait_until(lambda: key not in etcd_range(env, "meshd/services/"), 20, "eviction")
    t_evict = time.time() - t0
    marks = etcd_range(env, "meshd/evicted/")
    check(marker in marks, "marker %s written: %s" % (marker, marks))
    check(int(marks[marker][0]["lease"]) == lease, "the marker names lease %d: %s" %
          (lease, marks[marker]))
    ev = [e for e in audit_events(mon, "monitor_eviction") if e["service"] == SERVICE]
    check(len(ev) == 1 and ev[0]["instance"] == relay.addr, "one monitor_eviction: %s" % ev)
    # the sidecar keeps its lease and does not put the key back while the marker names it
    time.sleep(3)
    check(sc.alive(), "the sidecar runs")
    check(key not in etcd_range(env, "meshd/services/"), "the sidecar stays out")
    t1 = time.time()
    relay.black = False
    wait_until(lambda: key in etcd_range(env, "meshd/services/"), 30, "re-admission")
    t_back = time.time() - t1
    check(marker not in etcd_range(env, "meshd/evicted/"), "the marker is gone")
    wait_until(lambda: audit_events(mon, "monitor_readmitted"), 10, "monitor_readmitted event")
    print("MEASURE blackhole-to-eviction %.1f s (interval 1 s, timeout 0.5 s, 3 failures); "
          "unblackhole-to-registered %.1f s (readmit delay 2 s, 2 successes)" % (t_evict, t_back))


def case_failover(env):
    env.start_etcd()
    pods = start_pods(env, 3)
    m1 = start_monitor(env, "m1")
    wait_until(lambda: admin(m1.admin)["role"] == "leader", 15, "m1 to lead")
    m2 = start_monitor(env, "m2")
    wait_until(lambda: admin(m2.admin)["role"] == "standby", 15, "m2 to stand by")
    t0 = time.time()
    m1.p.send_signal(signal.SIGKILL)
    wait_until(lambda: admin(m2.admin)["role"] == "leader", 15, "m2 to take over")
    t_fail = time.time() - t0
    check(t_fail < 3 + 2, "took over within the 3 s TTL (+2 s slack): %.1f s" % t_fail)
    _, _, relay = pods[1]
    key = "meshd/services/%s/%s" % (SERVICE, relay.addr)
    relay.black = True
    wait_until(lambda: key not in etcd_range(env, "meshd/services/"), 20, "eviction by m2")
    time.sleep(2)
    ev = [e for e in audit_events(m2, "monitor_eviction") + audit_events(m1, "monitor_eviction")
          if e["service"] == SERVICE]
    check(len(ev) == 1, "exactly one eviction: %s" % ev)
    print("MEASURE failover (SIGKILL of the leader to standby leading) %.1f s, lease TTL 3 s"
          % t_fail)


def case_valve(env):
    env.start_etcd()
    pods = start_pods(env, 3)
    mon = start_monitor(env, "m1")
    wait_until(lambda: admin(mon.admin)["instances"]["checked"] == 6, 15,
               "6 instances (3 pods x 2 services) checked")
    for _, _, relay in pods:
        relay.black = True  # the monitor sees everyone fail, as if it were cut off
    wait_until(lambda: admin(mon.admin)["valve"]["closed"], 20, "the valve to close")
    time.sleep(3)
    keys = etcd_range(env, "meshd/services/")
    check(len(keys) == 6, "nothing evicted: %s" % list(keys))
    held = audit_events(mon, "monitor_eviction_held")
    check(held and "safety valve" in held[0]["reason"], "audited why: %s" % held)
    check(not audit_events(mon, "monitor_eviction"), "no eviction event")


def case_gossip(env):
    seed = free_port()
    pods = []
    for k in range(3):
        app = env.start_app("py", "a%d" % k)
        lp = free_port()
        relay = Relay(lp)
        gport = seed if k == 0 else free_port()
        extra = ["--advertise", relay.addr, "--gossip-bind", "127.0.0.1:%d" % gport,
                 "--node", "pod%d" % k, "--gossip-profile", "local"]
        if k:
            extra += ["--gossip-join", "127.0.0.1:%d" % seed]
        sc = env.start_sidecar(app.addr, "s%d" % k, listen_port=lp, extra=extra)
        pods.append((app, sc, relay))
    mon = start_monitor(env, "m1", etcd=False,
                        extra=["--gossip-bind", "127.0.0.1:%d" % free_port(),
                               "--gossip-join", "127.0.0.1:%d" % seed,
                               "--gossip-profile", "local"])
    check(admin(mon.admin)["role"] == "gossip-report", "the monitor reports only: %s" %
          admin(mon.admin))
    wait_until(lambda: admin(mon.admin)["instances"]["checked"] == 6, 20,
               "6 instances (3 pods x 2 services) from gossip checked")
    _, _, relay = pods[0]
    t0 = time.time()
    relay.black = True

    def held():
        return [e for e in audit_events(mon, "monitor_eviction_held")
                if e.get("instance") == relay.addr and e["service"] == SERVICE]
    wait_until(held, 20, "the would-be eviction audited")
    t_held = time.time() - t0
    ev = held()[0]
    check("no etcd: no fencing" in ev["reason"] and "would evict" in ev["reason"],
          "the held event says why: %s" % ev)
    check(not audit_events(mon, "monitor_eviction"), "no eviction event")
    st = admin(mon.admin)
    check(st["counters"]["evictions"] == 0 and st["instances"]["evicted"] == 0,
          "nothing evicted: %s" % st)
    check(all(sc.alive() for _, sc, _ in pods), "every sidecar runs")
    print("MEASURE gossip-only: blackhole-to-reported %.1f s (interval 1 s, 3 failures)" %
          t_held)


CASES = {"blackhole": case_blackhole, "failover": case_failover, "valve": case_valve,
         "gossip": case_gossip}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    args = ap.parse_args()
    env = test_sidecar.Env(args)
    failed = True
    try:
        print("== case", args.case, flush=True)
        CASES[args.case](env)
        failed = False
        print("PASS", args.case)
    except Fail as e:
        print("FAIL:", e)
    finally:
        env.stop(failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
