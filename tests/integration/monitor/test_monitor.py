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
"no etcd: no fencing", and evicts nothing; of two such replicas only the one whose name sorts
first reports), indirect (the monitor alone cut off from an instance, by the relay dropping
only the monitor's connections, while gossip members reach it: a member's veto holds the
eviction; then the instance gone for everyone: evicted), degraded (an evicted instance stays
out of a proxy's gossip-sourced routes while etcd is down, through the monitor's evicted list
in gossip; re-admitted once etcd is back). Timings are printed, not asserted.
"""
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
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Fail, Proc, check, free_port, wait_until  # noqa: E402
from cases import run  # noqa: E402

SERVICE = "meshd.test.Echo"


def socket_owned_by(pid, local_port, remote_port):
    """Whether process pid holds the loopback TCP socket local_port -> remote_port (its
    /proc/net/tcp line's inode among the process's descriptors)."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fl = line.split()
                    if (int(fl[1].split(":")[1], 16) == local_port and
                            int(fl[2].split(":")[1], 16) == remote_port):
                        inode = fl[9]
        except OSError:
            pass
    if not inode:
        return False
    fd_dir = "/proc/%d/fd" % pid
    try:
        return any(os.readlink(os.path.join(fd_dir, fd)) == "socket:[%s]" % inode
                   for fd in os.listdir(fd_dir))
    except OSError:
        return False


class Relay:
    """A TCP relay to target. black: it swallows every byte without closing anything (packets
    dropped, no RST). cut_pids: the same only for connections made by these processes (the
    monitor cut off from the instance while gossip members still reach it). kill(): it stops
    listening and drops every connection (the instance is gone for everyone); revive() listens
    again on the same port."""

    def __init__(self, target_port):
        self.target = target_port
        self.black = False
        self.cut_pids = set()
        self.cut_cache = {}
        self.port = 0
        self.socks = []
        self.revive()
        self.addr = "127.0.0.1:%d" % self.port

    def revive(self):
        self.dead = False
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, args=(self.ls,), daemon=True).start()

    def kill(self):
        self.dead = True
        try:
            self.ls.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it (Linux)
        except OSError:
            pass
        self.ls.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.socks = []

    def _accept(self, ls):
        while True:
            try:
                c, peer = ls.accept()
            except OSError:
                return
            if self.dead:
                c.close()
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, peer[1]), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, peer[1]), daemon=True).start()

    def _cut(self, peer_port):
        """Whether the connection from peer_port belongs to a cut process (decided per byte
        batch, cached: connections made before the cut are cut too)."""
        pids = frozenset(self.cut_pids)
        if not pids:
            return False
        k = (peer_port, pids)
        if k not in self.cut_cache:
            self.cut_cache[k] = any(socket_owned_by(p, peer_port, self.port) for p in pids)
        return self.cut_cache[k]

    def _pump(self, a, b, peer_port):
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
            if self.black or self._cut(peer_port):
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


def admin(port, path="/v1/monitor"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
        body = r.read()
    return json.loads(body) if path.startswith("/v1/") else body.decode()


def metric(port, name):
    """The value of an unlabelled sample in the node's /metrics (None when absent)."""
    for line in admin(port, "/metrics").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def start_pods(env, n, gossip_seed=None):
    """n apps, each with a sidecar advertising a relay in front of its listener; with
    gossip_seed (a port), the sidecars gossip, the first one on that port."""
    pods = []
    for k in range(n):
        app = env.start_app("py", "a%d" % k)
        lp = free_port()
        relay = Relay(lp)
        extra = ["--advertise", relay.addr]
        if gossip_seed:
            extra += ["--gossip-bind", "127.0.0.1:%d" % (gossip_seed if k == 0 else free_port()),
                      "--node", "pod%d" % k, "--gossip-profile", "local"]
            if k:
                extra += ["--gossip-join", "127.0.0.1:%d" % gossip_seed]
        sc = env.start_sidecar(app.addr, "s%d" % k, listen_port=lp, extra=extra)
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
    wait_until(lambda: p.accepts(ap), 15, "monitor %s admin" % name)
    return p


def audit_events(p, typ):
    out = []
    try:
        with open(p.audit) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # a record being written: the next read has it whole
                e = json.loads(line)
                if e["type"] == typ:
                    out.append(e)
    except FileNotFoundError:
        pass
    return out


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
    # the audit record follows the eviction's txn through the audit actor and the file sink
    wait_until(lambda: [e for e in audit_events(mon, "monitor_eviction")
                        if e["service"] == SERVICE], 10, "the monitor_eviction audit record")
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
    wait_until(lambda: audit_events(m2, "monitor_eviction") + audit_events(m1, "monitor_eviction"),
               10, "the monitor_eviction audit record")
    time.sleep(2)  # a second eviction (the bug this guards against) would show by now
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
    # a second replica: its name sorts after m1's, so m1 alone reports (one report, not two)
    mon2 = start_monitor(env, "m2", etcd=False,
                         extra=["--gossip-bind", "127.0.0.1:%d" % free_port(),
                                "--gossip-join", "127.0.0.1:%d" % seed,
                                "--gossip-profile", "local"])
    check(admin(mon.admin)["role"] == "gossip-report", "the monitor reports only: %s" %
          admin(mon.admin))
    for m in (mon, mon2):
        wait_until(lambda: admin(m.admin)["instances"]["checked"] == 6, 20,
                   "6 instances (3 pods x 2 services) from gossip checked")
    wait_until(lambda: {x.get("role") for x in admin(mon2.admin, "/v1/members")["members"]
                        if x["node"] in ("m1", "m2")} == {"monitor"}, 10,
               "m2 to see both monitors' role in gossip")
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
    time.sleep(4)  # more than 3 failed checks more: m2 would have reported by now
    check(not audit_events(mon2, "monitor_eviction_held"),
          "the second replica leaves the report to m1: %s" % audit_events(mon2,
                                                                          "monitor_eviction_held"))
    check("reported by m1" in mon2.output(), "m2 logs that m1 reports it")
    print("MEASURE gossip-only: blackhole-to-reported %.1f s (interval 1 s, 3 failures)" %
          t_held)


def gossip_monitor_args(seed):
    return ["--gossip-bind", "127.0.0.1:%d" % free_port(), "--gossip-join",
            "127.0.0.1:%d" % seed, "--gossip-profile", "local"]


def case_indirect(env):
    """The monitor cut off from one instance while gossip members still reach it: a member's
    veto holds the eviction (audited); the instance then gone for everyone: evicted."""
    env.start_etcd()
    seed = free_port()
    pods = start_pods(env, 3, gossip_seed=seed)
    mon = start_monitor(env, "m1", extra=gossip_monitor_args(seed))
    wait_until(lambda: admin(mon.admin)["role"] == "leader", 15, "m1 to lead")
    wait_until(lambda: admin(mon.admin)["instances"]["checked"] == 6, 15,
               "6 instances (3 pods x 2 services) checked")
    wait_until(lambda: len(admin(mon.admin, "/v1/members")["members"]) == 4, 15,
               "4 gossip members (3 pods and the monitor)")
    _, sc, relay = pods[0]
    key = "meshd/services/%s/%s" % (SERVICE, relay.addr)
    t0 = time.time()
    relay.cut_pids = {mon.p.pid}  # only the monitor's path is blackholed

    def vetoed():
        return [e for e in audit_events(mon, "monitor_eviction_held")
                if e.get("instance") == relay.addr and e["service"] == SERVICE]
    wait_until(vetoed, 30, "a veto audited")
    t_veto = time.time() - t0
    ev = vetoed()[0]
    check("gossip member" in ev["reason"] and "reached it" in ev["reason"],
          "the held event names the veto: %s" % ev["reason"])
    check(key in etcd_range(env, "meshd/services/"), "no eviction: the key is there")
    check(not audit_events(mon, "monitor_eviction"), "no monitor_eviction event")
    st = admin(mon.admin)
    check(st["counters"]["vetoed"] >= 1 and st["counters"]["indirect_asked"] >= 1,
          "/v1/monitor counts the asks and vetoes: %s" % st["counters"])
    check((metric(mon.admin, "meshd_monitor_indirect_vetoes_total") or 0) >= 1 and
          (metric(mon.admin, "meshd_monitor_indirect_checks_total") or 0) >= 1,
          "/metrics has the indirect-check counters")
    t1 = time.time()
    relay.kill()  # now the instance is gone for everyone
    wait_until(lambda: key not in etcd_range(env, "meshd/services/"), 30, "eviction")
    t_evict = time.time() - t1
    # the audit record follows the eviction's txn through the audit actor and the file sink
    wait_until(lambda: [e for e in audit_events(mon, "monitor_eviction")
                        if e["service"] == SERVICE], 10, "the monitor_eviction audit record")
    ev = [e for e in audit_events(mon, "monitor_eviction") if e["service"] == SERVICE]
    check(len(ev) == 1 and ev[0]["instance"] == relay.addr, "one monitor_eviction: %s" % ev)
    check(sc.alive(), "the sidecar runs")
    print("MEASURE indirect: monitor-path blackhole to veto audited %.1f s; gone for everyone "
          "to evicted %.1f s (interval 1 s, timeout 0.5 s, 3 failures)" % (t_veto, t_evict))


def restart_etcd(env):
    old = [p for p in env.procs if p.name.startswith("etcd")][-1]
    argv = list(old.p.args)
    old.kill()
    p = Proc("etcd-restarted", argv, env.dir)
    env.procs.append(p)

    def healthy():
        try:
            with urllib.request.urlopen(env.etcd_url + "/health", timeout=1) as r:
                return b"true" in r.read()
        except OSError:
            return False
    wait_until(healthy, 20, "etcd back")


def proxy_routes(port, service):
    j = admin(port, "/v1/routes")
    for s in j.get("services", []):
        if s["service"] == service:
            return {i["address"]: i for i in s["instances"]}, j.get("etcd")
    return {}, j.get("etcd")


def case_degraded(env):
    """Marked failed in gossip: an instance the monitor evicted stays out of a proxy's
    gossip-sourced routes while etcd is down; re-admitted (etcd back): routable again."""
    env.start_etcd()
    seed = free_port()
    pods = start_pods(env, 3, gossip_seed=seed)
    mon = start_monitor(env, "m1", extra=gossip_monitor_args(seed))
    pa = free_port()
    proxy = Proc("proxy", [env.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % free_port(),
                           "--workers", "1", "--etcd", env.etcd_url, "--node", "proxy",
                           "--admin-listen", "127.0.0.1:%d" % pa, "--log-format", "text"] +
                 gossip_monitor_args(seed), env.dir, env=test_sidecar.meshd_env())
    env.procs.append(proxy)
    wait_until(lambda: proxy.accepts(pa), 15, "proxy admin")
    wait_until(lambda: admin(mon.admin)["role"] == "leader", 15, "m1 to lead")
    wait_until(lambda: len(proxy_routes(pa, SERVICE)[0]) == 3, 15, "3 instances at the proxy")
    _, sc, relay = pods[0]
    key = "meshd/services/%s/%s" % (SERVICE, relay.addr)
    relay.kill()
    wait_until(lambda: key not in etcd_range(env, "meshd/services/"), 30, "eviction")

    def announced():
        m = {x["node"]: x for x in admin(pa, "/v1/members")["members"]}.get("m1", {})
        return {(e["service"], e["address"]) for e in m.get("evicted", [])}
    wait_until(lambda: (SERVICE, relay.addr) in announced(), 15,
               "the monitor's evicted list in gossip, seen by the proxy")
    pod0 = {x["node"]: x for x in admin(pa, "/v1/members")["members"]}["pod0"]
    check(pod0["instances"] >= 1, "pod0's sidecar still gossips its instances while evicted "
          "(else this case would prove nothing): %s" % pod0)
    [p for p in env.procs if p.name == "etcd"][-1].kill()
    wait_until(lambda: proxy_routes(pa, SERVICE)[1] == "degraded", 30, "the proxy degraded")
    wait_until(lambda: any(i["source"] == "gossip" for i in proxy_routes(pa, SERVICE)[0].values()),
               30, "gossip-sourced routes at the proxy")
    time.sleep(2)  # a few gossip rounds: nothing brings the evicted instance back
    r, _ = proxy_routes(pa, SERVICE)
    check(relay.addr not in r, "the evicted instance is not routed in degraded mode: %s" % r)
    check(len(r) == 2, "the other two are: %s" % r)
    # etcd back, the instance answers again: re-admitted, announced no more, routable again
    relay.revive()
    restart_etcd(env)
    wait_until(lambda: key in etcd_range(env, "meshd/services/"), 45, "re-admission")
    wait_until(lambda: (SERVICE, relay.addr) not in announced(), 15,
               "the evicted list without it")
    wait_until(lambda: relay.addr in proxy_routes(pa, SERVICE)[0], 20, "routable again")


CASES = {"blackhole": case_blackhole, "failover": case_failover, "valve": case_valve,
         "gossip": case_gossip, "indirect": case_indirect, "degraded": case_degraded}


def main():
    return run(CASES, test_sidecar.Env)


if __name__ == "__main__":
    sys.exit(main())
