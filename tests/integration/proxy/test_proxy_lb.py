#!/usr/bin/python3
"""tests/integration/proxy/test_proxy_lb.py: `meshd proxy` balancing end to end with real Python
gRPC backends (tests/peers/echo_server.py) and, where instance metadata is needed, a real etcd
holding the instances' records (zone, weight, version in their `meshd` object).

Cases (--case NAME):
  slow_instance   three instances, one a gray one (its app sleeps 500 ms on 30 % of its calls):
                  under P2C (the default) it gets under a tenth of round robin's third of the
                  calls, counted by the servers; every call succeeds.
  weighted_split  two instances of weight 3 and 1 (etcd records), each answering in 10 ms: over
                  2,000 calls the servers count a split within 5 % of 75/25, under P2C (one
                  call at a time) and under round robin (4 concurrent callers).
  header_routing  v1 instances and a v2 canary of weight 0, --route-subset
                  'x-canary=1:version=v2': calls with `x-canary: 1` all reach the canary, calls
                  without it never do; a rule whose version no instance has falls back to any
                  instance (and the call succeeds).
  zone_fallback   --zone a with one instance in zone a and two in zone b: every call stays in
                  zone a; the zone-a instance killed, calls go on (no failure) in zone b; its
                  record deleted too, the same; a new zone-a instance registered takes the calls
                  back.
  yaml_subset     the header subset of header_routing given only in the `routes:` block
                  (balancer: subsets, for meshd.test.Echo/*), shown by GET /v1/route-policy;
                  a SIGHUP reload to `balancer: {policy: round-robin}` without subsets sends
                  `x-canary: 1` calls to the v1 instances (the canary has weight 0), and one
                  back restores the subset.

Every case starts its own processes (random loopback ports, own temp dir) and kills exactly
the PIDs it started, also on failure. Counts are printed; only behaviour is asserted.
"""
import argparse
import json
import os
import shutil
import signal
import sys
import urllib.request
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, check, free_port, wait_until, Fail, meshd_env  # noqa: E402
from test_proxy_etcd import Etcd, PREFIX  # noqa: E402
from echo_client import make_request  # noqa: E402
import grpc  # noqa: E402

ECHO = "meshd.test.Echo"
METHODS = ["Unary", "ServerStream", "ClientStream", "Bidi", "Stats", "SetHealth"]


class Case:
    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="meshd-it-lb-")
        self.procs = []
        self.etcd = None
        self.backends = {}

    def start_etcd(self):
        self.etcd = Etcd(self.dir)
        self.etcd.start()
        self.procs.append(self.etcd.proc)

    def start_backend(self, sid, *extra):
        p = Proc("backend-" + sid, ["/usr/bin/python3", self.args.py_server, "--port", "0",
                                    "--id", sid] + list(extra), self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        p.sid = sid
        self.backends[sid] = p
        return p

    def register(self, b, zone=None, weight=None, version=None):
        md = {"node": "node-" + b.sid, "methods": METHODS}
        if zone is not None:
            md["zone"] = zone
        if weight is not None:
            md["weight"] = weight
        if version is not None:
            md["version"] = version
        value = {"Op": 0, "Addr": b.addr, "Metadata": None, "meshd": md}
        self.etcd.ctl("put", "%s/%s/%s" % (PREFIX, ECHO, b.addr), json.dumps(value))

    def write_config(self, text):
        path = os.path.join(self.dir, "meshd.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_proxy(self, *flags, static=None, workers=1, config=None):
        port = free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers",
                str(workers), "--log-format", "text"] + list(flags)
        admin = None
        if config is not None:
            admin = free_port()
            argv += ["--config", self.write_config(config),
                     "--admin-listen", "127.0.0.1:%d" % admin]
        if self.etcd:
            argv += ["--etcd", self.etcd.url]
        if static:
            argv += ["--static", "%s=%s" % (ECHO, ",".join(b.addr for b in static))]
        p = Proc("proxy-%d" % len(self.procs), argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.wait_line(r"listening on", 15)
        p.wait_listening(15)  # a worker says "listening on" before the admin listener is up
        p.addr = "127.0.0.1:%d" % port
        p.admin = "127.0.0.1:%d" % admin if admin else None
        return p

    def started(self):
        """calls_started of every backend (the servers' own count)."""
        out = {}
        for sid, b in self.backends.items():
            if b.alive():
                with EchoClient(b.addr) as c:
                    out[sid] = c.stats().calls_started
        return out

    def close(self):
        for p in reversed(self.procs):
            p.kill()


def run_calls(target, n, threads=1, metadata=None, timeout=10):
    """n Unary calls over `threads` channels; returns (server ids, failures)."""
    ids, fails = [], []
    lock = threading.Lock()
    per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]

    def worker(k):
        req = make_request(payload=b"lb")
        local, bad = [], []
        with EchoClient(target) as c:
            for _ in range(k):
                try:
                    r = c.echo.Unary(req, timeout=timeout, metadata=metadata)
                    local.append(r.server_id)
                except grpc.RpcError as e:
                    bad.append("%s: %s" % (e.code().name, e.details()))
        with lock:
            ids.extend(local)
            fails.extend(bad)

    ts = [threading.Thread(target=worker, args=(k,)) for k in per]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return ids, fails


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def served_only(target, allowed, what, n=20, metadata=None):
    def ok():
        ids, fails = run_calls(target, n, metadata=metadata)
        return not fails and set(ids) <= set(allowed)
    wait_until(ok, 20, what)


def case_slow_instance(c):
    fast = [c.start_backend("py1"), c.start_backend("py2")]
    slow = c.start_backend("slow", "--slow-ms", "500", "--slow-share", "0.3")
    px = c.start_proxy(static=fast + [slow])  # the default policy: p2c
    run_calls(px.addr, 30, threads=3)  # connections up, first samples
    before = c.started()
    ids, fails = run_calls(px.addr, 1500, threads=8)
    d = delta(before, c.started())
    total = sum(d.values())
    print("  p2c, servers' counts:", d, flush=True)
    check(not fails, "every call succeeded (%d failures: %s)" % (len(fails), fails[:3]))
    check(total == 1500, "the servers counted every call (%d)" % total)
    # latency decides (outstanding counts alone left it 5-6 %), plus one probe a second
    check(d["slow"] < total / 30,
          "the gray instance got %.1f %% of the calls (round robin: 33 %%)" %
          (100.0 * d["slow"] / total))


def split_under(c, policy, n, threads):
    px = c.start_proxy("--lb", policy, workers=2)
    served_only(px.addr, {"py1", "py2"}, "both instances routable")
    wait_until(lambda: set(run_calls(px.addr, 8)[0]) == {"py1", "py2"}, 20,
               "the proxy to route to both instances")
    before = c.started()
    ids, fails = run_calls(px.addr, n, threads=threads)
    d = delta(before, c.started())
    share = d["py2"] / float(sum(d.values()))
    print("  %s: servers' counts %s, weight-1 share %.4f" % (policy, d, share), flush=True)
    check(not fails, "%s: every call succeeded (%s)" % (policy, fails[:3]))
    check(abs(share - 0.25) <= 0.25 * 0.05,
          "%s: the weight-1 instance's share %.2f %% is within 5 %% of 25 %%" %
          (policy, 100 * share))
    px.kill()


def case_weighted_split(c):
    c.start_etcd()
    # Both instances take 10 ms a call: P2C leaves equal-cost instances to the weights, and on
    # a machine loaded by other tests two Python servers answering in about 1 ms do not cost
    # the same (one got 27.9 % and 18.5 % of the calls in two loaded CI runs, 25.0 % in quiet
    # ones). With 10 ms each, one would have to be slower by 2x + 5 ms on its decayed mean for
    # P2C to prefer the other: a real difference, not scheduling noise.
    slow = ("--slow-ms", "10", "--slow-share", "1")
    b1, b2 = c.start_backend("py1", *slow), c.start_backend("py2", *slow)
    c.register(b1, weight=3)
    c.register(b2, weight=1)
    # P2C: one call at a time, so the two instances cost the same and the weights alone decide.
    # (With calls queueing on the busier instance P2C moves load away from it on purpose:
    # docs/transport.md has the measured shift.) Both policies take the weighted round robin's
    # turn first, exact over each cycle of 4 calls, so 2,000 calls measure the split exactly.
    split_under(c, "p2c", 2000, threads=1)
    split_under(c, "round-robin", 2000, threads=4)


def case_header_routing(c):
    c.start_etcd()
    v1 = [c.start_backend("py1"), c.start_backend("py2")]
    canary = c.start_backend("canary")
    for b in v1:
        c.register(b, version="v1")
    c.register(canary, version="v2", weight=0)  # no traffic unless asked for
    px = c.start_proxy("--route-subset", "x-canary=1:version=v2",
                       "--route-subset", "x-canary=9:version=v9")
    served_only(px.addr, {"py1", "py2"}, "the v1 instances routable")
    wait_until(lambda: run_calls(px.addr, 1, metadata=(("x-canary", "1"),))[0] == ["canary"],
               20, "the canary routable")
    ids, fails = run_calls(px.addr, 200, threads=2, metadata=(("x-canary", "1"),))
    print("  x-canary: 1 ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and ids.count("canary") == 200, "every x-canary: 1 call reached v2")
    ids, fails = run_calls(px.addr, 200, threads=2)
    print("  no header ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and "canary" not in ids and set(ids) == {"py1", "py2"},
          "calls without the header went to the v1 instances only")
    ids, fails = run_calls(px.addr, 200, threads=2, metadata=(("x-canary", "2"),))
    check(not fails and "canary" not in ids, "another value of the header: no subset")
    ids, fails = run_calls(px.addr, 50, metadata=(("x-canary", "9"),))
    print("  x-canary: 9 (no v9 instance) ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and set(ids) == {"py1", "py2"},
          "a subset with no instance falls back to any instance (by weight)")


def case_zone_fallback(c):
    c.start_etcd()
    a1 = c.start_backend("a1")
    b1, b2 = c.start_backend("b1"), c.start_backend("b2")
    c.register(a1, zone="a")
    c.register(b1, zone="b")
    c.register(b2, zone="b")
    px = c.start_proxy("--zone", "a", workers=2)
    wait_until(lambda: set(c.started()) == {"a1", "b1", "b2"}, 10, "backends up")
    served_only(px.addr, {"a1"}, "calls to stay in zone a")
    ids, fails = run_calls(px.addr, 300, threads=3)
    print("  zone a up ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and set(ids) == {"a1"}, "every call stayed in the proxy's zone")
    a1.kill()  # the zone's only instance goes away (its record stays: etcd still lists it)
    ids, fails = run_calls(px.addr, 300, threads=3)
    print("  zone a killed ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails, "no call failed when the zone's instance died (%s)" % fails[:3])
    check(set(ids) == {"b1", "b2"}, "the calls went to zone b, both instances")
    c.etcd.ctl("del", "%s/%s/%s" % (PREFIX, ECHO, a1.addr))
    served_only(px.addr, {"b1", "b2"}, "zone b to serve once the record is gone")
    a2 = c.start_backend("a2")
    c.register(a2, zone="a")
    served_only(px.addr, {"a2"}, "a new zone-a instance to take the calls back")
    ids, fails = run_calls(px.addr, 100, threads=2)
    check(not fails and set(ids) == {"a2"}, "calls back in zone a")


YAML_SUBSET = """routes:
  rules:
    - match: meshd.test.Echo/*
      balancer:
        subsets:
          - {header: x-canary, value: "1", version: v2}
"""
YAML_RR = """routes:
  rules:
    - match: meshd.test.Echo/*
      balancer: {policy: round-robin}
"""


def route_policy(px):
    with urllib.request.urlopen("http://%s/v1/route-policy" % px.admin, timeout=5) as r:
        return json.loads(r.read().decode())


def reload(c, px, text, pred, what):
    c.write_config(text)
    px.p.send_signal(signal.SIGHUP)
    wait_until(lambda: pred(route_policy(px)), 10, what)


def case_yaml_subset(c):
    c.start_etcd()
    v1 = [c.start_backend("py1"), c.start_backend("py2")]
    canary = c.start_backend("canary")
    for b in v1:
        c.register(b, version="v1")
    c.register(canary, version="v2", weight=0)  # no traffic unless a subset asks for it
    px = c.start_proxy("--lb", "p2c", workers=2, config=YAML_SUBSET)  # no --route-subset
    rp = route_policy(px)
    print("  /v1/route-policy rules:", json.dumps(rp["rules"]), flush=True)
    check(rp["rules"][0]["balancer"]["subsets"] ==
          [{"header": "x-canary", "value": "1", "version": "v2"}],
          "GET /v1/route-policy shows the rule's balancer")
    wait_until(lambda: ECHO in route_policy(px)["services"], 20, "the service in the table")
    eff = route_policy(px)["services"][ECHO]
    print("  in force for %s: %s" % (ECHO, json.dumps(eff)), flush=True)
    check(eff["rule_line"] == 3 and eff["balancer"]["policy"] == "p2c" and
          eff["balancer"]["subsets"] == [{"header": "x-canary", "value": "1", "version": "v2"}] and
          eff["outlier"]["consecutive"] == 5,
          "and the settings in force for the service: the rule's subsets over --lb p2c")
    served_only(px.addr, {"py1", "py2"}, "the v1 instances routable")
    canary_md = (("x-canary", "1"),)
    wait_until(lambda: run_calls(px.addr, 1, metadata=canary_md)[0] == ["canary"], 20,
               "the canary routable by the YAML subset")
    ids, fails = run_calls(px.addr, 200, threads=2, metadata=canary_md)
    print("  yaml subset, x-canary: 1 ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and ids.count("canary") == 200, "every x-canary: 1 call reached v2")
    ids, fails = run_calls(px.addr, 200, threads=2)
    check(not fails and "canary" not in ids, "calls without the header never reached v2")

    reload(c, px, YAML_RR, lambda r: r["rules"][0].get("balancer") == {"policy": "round-robin"},
           "the reloaded block (round robin, no subsets)")
    eff = route_policy(px)["services"][ECHO]
    check(eff["balancer"]["policy"] == "round-robin" and eff["balancer"]["subsets"] == [],
          "the settings in force follow the reload")
    served_only(px.addr, {"py1", "py2"}, "x-canary: 1 calls on the v1 instances after the reload",
                metadata=canary_md)
    ids, fails = run_calls(px.addr, 200, threads=2, metadata=canary_md)
    print("  reloaded, x-canary: 1 ->", {s: ids.count(s) for s in set(ids)}, flush=True)
    check(not fails and set(ids) == {"py1", "py2"},
          "after the reload the subset is gone: the header selects nothing (weights decide)")

    reload(c, px, YAML_SUBSET, lambda r: "subsets" in r["rules"][0].get("balancer", {}),
           "the subset back")
    wait_until(lambda: run_calls(px.addr, 1, metadata=canary_md)[0] == ["canary"], 20,
               "the canary selected again")
    ids, fails = run_calls(px.addr, 100, threads=2, metadata=canary_md)
    check(not fails and ids.count("canary") == 100, "the subset applies again after a reload")


CASES = {
    "yaml_subset": case_yaml_subset,
    "slow_instance": case_slow_instance,
    "weighted_split": case_weighted_split,
    "header_routing": case_header_routing,
    "zone_fallback": case_zone_fallback,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    args = ap.parse_args()
    c = Case(args)
    ok = False
    try:
        print("== %s" % args.case, flush=True)
        CASES[args.case](c)
        ok = True
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
        for p in c.procs:
            if p.name.startswith("proxy"):
                print("--- %s log (tail) ---\n%s" % (p.name, p.output()[-3000:]), flush=True)
    finally:
        c.close()
        if ok:
            shutil.rmtree(c.dir, ignore_errors=True)
        else:
            print("(logs kept in %s)" % c.dir, flush=True)
    print("PASS" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
