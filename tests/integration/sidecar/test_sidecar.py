#!/usr/bin/python3
"""tests/integration/sidecar/test_sidecar.py: `meshd sidecar` end to end with real etcd and
real gRPC apps (tests/peers: the Python and the C++ Echo servers).

Each case (--case NAME) starts its own etcd (random loopback ports, own data dir), its apps
and sidecars (and a `meshd proxy --etcd` where it needs one), and kills exactly the PIDs it
started at the end, also on failure. Helpers (Proc, wait_until, check, free_port, the Case
this Env extends and the runner) come from tests/integration/lib/.
"""
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
import test_proxy  # noqa: E402
from procs import Fail, Proc, check, free_port, wait_until, meshd_env  # noqa: E402
from cases import Case, run  # noqa: E402
from echo_client import EchoClient  # noqa: E402

PREFIX = "meshd/services/"


class Env(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-it-sidecar-")
        self.etcd_url = None

    # -- processes ----------------------------------------------------------------------
    def start_etcd(self):
        cp, pp = free_port(), free_port()
        self.etcd_url = "http://127.0.0.1:%d" % cp
        argv = ["etcd", "--logger=zap", "--name", "e1", "--data-dir",
                os.path.join(self.dir, "etcd"), "--listen-client-urls", self.etcd_url,
                "--advertise-client-urls", self.etcd_url,
                "--listen-peer-urls", "http://127.0.0.1:%d" % pp,
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pp,
                "--initial-cluster", "e1=http://127.0.0.1:%d" % pp]
        p = Proc("etcd", argv, self.dir)
        self.procs.append(p)

        def healthy():
            if not p.alive():
                raise Fail("etcd exited:\n" + p.output()[-2000:])
            try:
                with urllib.request.urlopen(self.etcd_url + "/health", timeout=1) as r:
                    return b"true" in r.read()
            except (OSError, urllib.error.URLError):
                return False
        wait_until(healthy, 20, "etcd to be healthy")

    def start_app(self, kind, sid, port=0, extra=()):
        if kind == "py":
            argv = ["/usr/bin/python3", self.args.py_server, "--port", str(port), "--id", sid]
        elif kind == "cc":
            argv = [self.args.cc_server, "--port", str(port), "--id", sid]
        argv += list(extra)
        p = Proc("app-%s-%d" % (sid, len(self.procs)), argv, self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        p.port = int(m.group(1))
        p.addr = "127.0.0.1:%d" % p.port
        p.sid = sid
        return p

    def start_sidecar(self, app_addr, name, listen_port=None, extra=(), workers=1):
        port = listen_port or free_port()
        probe = free_port()
        argv = [self.args.meshd, "sidecar", "--app", app_addr,
                "--listen", "127.0.0.1:%d" % port, "--probe-listen", "127.0.0.1:%d" % probe,
                "--health-interval", "300ms", "--health-timeout", "1s", "--lease-ttl", "2s",
                "--workers", str(workers), "--log-format", "text"]
        if self.etcd_url:
            argv += ["--etcd", self.etcd_url]
        argv += list(extra)
        print("starting:", " ".join(argv), flush=True)
        p = Proc("sidecar-%s-%d" % (name, len(self.procs)), argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.port, p.probe = port, probe
        p.addr = "127.0.0.1:%d" % port
        wait_until(lambda: p.accepts(probe), 15, "sidecar %s probes" % name)
        return p

    def start_proxy(self):
        port = free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                "--etcd", self.etcd_url, "--log-format", "text",
                "--lb", "round-robin"]  # case_round_robin checks its order
        p = Proc("proxy-%d" % len(self.procs), argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.addr = "127.0.0.1:%d" % port
        wait_until(lambda: p.accepts(port), 15, "proxy to accept")
        return p

    # -- etcd and probes ------------------------------------------------------------------
    def keys(self):
        """{key: value-dict} under meshd/services/ (etcd's JSON gateway)."""
        start = base64.b64encode(PREFIX.encode()).decode()
        end = base64.b64encode(PREFIX[:-1].encode() + b"0").decode()
        body = json.dumps({"key": start, "range_end": end}).encode()
        req = urllib.request.Request(self.etcd_url + "/v3/kv/range", data=body)
        with urllib.request.urlopen(req, timeout=5) as r:
            out = json.loads(r.read())
        res = {}
        for kv in out.get("kvs", []):
            res[base64.b64decode(kv["key"]).decode()] = json.loads(base64.b64decode(kv["value"]))
        return res


def probe(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    except OSError:
        return None, None


def key_of(service, addr):
    return PREFIX + service + "/" + addr


def wait_registered(env, sc, services, timeout=20):
    def ok():
        k = env.keys()
        return all(key_of(s, sc.addr) in k for s in services) and k
    return wait_until(ok, timeout, "%s registered for %s" % (services, sc.addr))


def wait_gone(env, sc, timeout=20):
    wait_until(lambda: not any(k.endswith("/" + sc.addr) for k in env.keys()), timeout,
               "keys of %s to disappear" % sc.addr)


# ---- cases -------------------------------------------------------------------------------

def case_register(env, kind):
    env.start_etcd()
    app = env.start_app(kind, kind + "1")
    sc = env.start_sidecar(app.addr, kind)
    k = wait_registered(env, sc, ["meshd.test.Echo", "meshd.test.Other"])
    v = k[key_of("meshd.test.Echo", sc.addr)]
    check(v["Op"] == 0 and v["Addr"] == sc.addr and v["Metadata"] is None,
          "value is the naming resolver's JSON (Metadata null): %s" % v)
    methods = sorted(v["meshd"]["methods"])
    check(methods == sorted(["Unary", "ServerStream", "ClientStream", "Bidi", "Stats",
                             "SetHealth"]), "Echo methods registered: %s" % methods)
    check(v2 := k[key_of("meshd.test.Other", sc.addr)], "Other registered")
    check(v2["meshd"]["methods"] == ["Ping"], "Other's method: %s" % v2["meshd"]["methods"])
    check(not any("grpc.health" in x or "reflection" in x for x in k), "no health/reflection keys")
    st, body = probe(sc.probe, "/readyz")
    check(st == 200 and body["ready"], "/readyz 200: %s" % body)
    st, body = probe(sc.probe, "/livez")
    check(st == 200, "/livez 200: %s" % body)
    with EchoClient(sc.addr) as c:
        r = c.unary(payload=b"via sidecar", timeout=5)
        check(r.ok and r.replies[0].server_id == app.sid, "a call through the sidecar reaches the app")


def case_register_py(env):
    case_register(env, "py")


def case_register_cc(env):
    if not env.args.cc_server:
        raise SystemExit(77)
    case_register(env, "cc")


def case_descriptor_set(env):
    """An app without reflection, described by a FileDescriptorSet (protoc --descriptor_set_out
    --include_imports): the sidecar registers the services and methods the set names."""
    proto_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), "proto")
    desc = os.path.join(env.dir, "echo.desc")
    subprocess.run(["protoc", "-I", proto_dir, "--include_imports", "--descriptor_set_out", desc,
                    "echo.proto"], check=True)
    env.start_etcd()
    app = env.start_app("py", "py1", extra=["--no-reflection"])
    sc = env.start_sidecar(app.addr, "desc", extra=["--descriptor-set", desc])
    wait_registered(env, sc, ["meshd.test.Echo", "meshd.test.Other"])
    k = env.keys()
    methods = k[key_of("meshd.test.Echo", sc.addr)]["meshd"]["methods"]
    check("Unary" in methods and "Bidi" in methods, "methods from the set: %s" % methods)
    st, body = probe(sc.probe, "/readyz")
    check(st == 200, "/readyz 200 with a descriptor set: %s" % body)


def case_probe_port_busy(env):
    """A probe address already in use: the sidecar says so and exits 1 instead of running
    without probes."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        argv = [env.args.meshd, "sidecar", "--app", "127.0.0.1:1", "--listen", "127.0.0.1:0",
                "--probe-listen", "127.0.0.1:%d" % busy.getsockname()[1], "--workers", "1"]
        r = subprocess.run(argv, capture_output=True, timeout=30, env=meshd_env())
        check(r.returncode == 1, "exit code 1 (got %d)" % r.returncode)
        check(b"cannot serve probes" in r.stderr, "the log says why: %s" % r.stderr[-500:])
    finally:
        busy.close()


def case_round_robin(env):
    env.start_etcd()
    a1, a2 = env.start_app("py", "py1"), env.start_app("py", "py2")
    s1, s2 = env.start_sidecar(a1.addr, "s1"), env.start_sidecar(a2.addr, "s2")
    wait_registered(env, s1, ["meshd.test.Echo"])
    wait_registered(env, s2, ["meshd.test.Echo"])
    px = env.start_proxy()
    with EchoClient(px.addr) as c:
        def both():
            ids = [c.unary(timeout=5) for _ in range(4)]
            return all(r.ok for r in ids) and len({r.replies[0].server_id for r in ids}) == 2
        wait_until(both, 20, "the proxy to route to both sidecars")
        ids = [c.unary(timeout=5).replies[0].server_id for _ in range(6)]
        check(all(ids[i] != ids[i + 1] for i in range(5)), "server ids alternate: %s" % ids)


def case_health_flip(env):
    env.start_etcd()
    app = env.start_app("py", "py1")
    sc = env.start_sidecar(app.addr, "s")
    wait_registered(env, sc, ["meshd.test.Echo"])
    with EchoClient(app.addr) as c:
        c.set_health(False)
    wait_until(lambda: probe(sc.probe, "/readyz")[0] == 503, 20, "/readyz 503")
    st, body = probe(sc.probe, "/readyz")
    check(body["consecutive_failures"] >= 3 and "not_serving" in body.get("last_check", ""),
          "503 after 3 failed checks: %s" % body)
    wait_gone(env, sc)
    check(probe(sc.probe, "/livez")[0] == 200, "/livez stays 200 (no restart)")
    with EchoClient(app.addr) as c:
        c.set_health(True)
    wait_until(lambda: probe(sc.probe, "/readyz")[0] == 200, 20, "/readyz 200 again")
    wait_registered(env, sc, ["meshd.test.Echo"])


def case_app_restart(env):
    env.start_etcd()
    app = env.start_app("py", "py1")
    sc = env.start_sidecar(app.addr, "s")
    wait_registered(env, sc, ["meshd.test.Echo"])
    app.kill()
    wait_gone(env, sc)
    st, body = probe(sc.probe, "/readyz")
    check(st == 503, "/readyz 503 with the app gone: %s" % body.get("reason"))
    wait_until(lambda: probe(sc.probe, "/livez")[0] == 503, 10, "/livez 503: app port closed")
    app2 = env.start_app("py", "py1b", port=app.port)
    wait_registered(env, sc, ["meshd.test.Echo"])
    with EchoClient(sc.addr) as c:
        wait_until(lambda: c.unary(timeout=5).ok, 10, "calls reach the restarted app")
        check(c.unary(timeout=5).replies[0].server_id == app2.sid, "the new app answers")


def case_lease_expiry(env):
    env.start_etcd()
    app = env.start_app("py", "py1")
    sc = env.start_sidecar(app.addr, "s")
    wait_registered(env, sc, ["meshd.test.Echo"])
    sc.kill()  # SIGKILL: no deregistration, the 2 s lease expires
    wait_gone(env, sc, timeout=15)
    check(True, "keys gone after the lease expired")


def case_breaker(env):
    app = env.start_app("py", "py1")
    sc = env.start_sidecar(app.addr, "s", extra=["--breaker-failures", "3",
                                                 "--breaker-open", "1s",
                                                 "--breaker-half-open-calls", "1"])
    with EchoClient(sc.addr) as c:
        wait_until(lambda: c.unary(timeout=5).ok, 10, "calls through the sidecar")
        for _ in range(3):
            r = c.unary(timeout=5, status_code=14, status_message="app failing")
            check(r.code.value[0] == 14 and r.details == "app failing", "app failure passes through")
        r = c.unary(timeout=5)
        check(r.code.value[0] == 14 and "meshd: circuit open for meshd.test.Echo" in r.details,
              "fails fast with the circuit open: %r" % r.details)
        wait_until(lambda: c.unary(timeout=5).ok, 20, "the circuit closes once the app recovers")
    # Log lines are written by meshd's log thread: wait for them.
    wait_until(lambda: "closed -> open" in sc.output() and "consecutive failures" in sc.output(),
               10, "trip logged with its reason")
    wait_until(lambda: "half-open -> closed" in sc.output(), 10, "close logged")


def case_breaker_workers(env):
    """One breaker per app, not per worker: with 4 workers the circuit opens after exactly
    --breaker-failures consecutive failures spread over the workers (not 4x), every worker
    then refuses calls, and exactly --breaker-half-open-calls probes go through when the
    open interval is over."""
    failures, probes, open_s = 5, 2, 5
    app = env.start_app("py", "py1")
    sc = env.start_sidecar(app.addr, "s", workers=4, extra=[
        "--breaker-failures", str(failures), "--breaker-failure-ratio", "0",
        "--breaker-open", "%ds" % open_s, "--breaker-half-open-calls", str(probes)])
    # 16 connections (a channel each, no shared subchannels): the kernel spreads them over the
    # 4 workers' SO_REUSEPORT sockets. Each worker reaches the app over its own connection, so
    # the app's view of the caller's address tells which worker carried a call.
    clients = [EchoClient(sc.addr, options=[("grpc.use_local_subchannel_pool", 1)])
               for _ in range(16)]
    try:
        wait_until(lambda: clients[0].unary(timeout=5).ok, 10, "calls through the sidecar")
        by_worker = {}
        for c in clients:
            r = c.unary(timeout=5, report=True)
            check(r.ok, "a call on every connection: %s %s" % (r.code, r.details))
            by_worker.setdefault(r.replies[0].observed.peer, []).append(c)
        check(len(by_worker) >= 2, "connections spread over %d workers" % len(by_worker))
        # Take the connections worker by worker in turn, so consecutive calls change workers.
        order = []
        groups = list(by_worker.values())
        for i in range(max(len(g) for g in groups)):
            order += [g[i] for g in groups if i < len(g)]

        # Failing calls, one at a time, each on the next connection in that order.
        reached = 0
        for i in range(4 * failures):
            r = order[i % len(order)].unary(timeout=5, status_code=14,
                                            status_message="app failing")
            check(r.code.value[0] == 14, "UNAVAILABLE either way: %s" % r.code)
            if r.details == "app failing":
                reached += 1
                continue
            check("meshd: circuit open for meshd.test.Echo" in r.details,
                  "rejected by the breaker: %r" % r.details)
            break
        check(reached == failures,
              "the circuit opened after exactly %d failures over %d workers (saw %d)"
              % (failures, len(by_worker), reached))
        tripped = time.monotonic()
        for c in clients:  # every worker refuses now, without asking the app
            r = c.unary(timeout=5)
            check(r.code.value[0] == 14 and "circuit open" in r.details,
                  "every connection fails fast: %s %r" % (r.code, r.details))
        wait_until(lambda: "closed -> open" in sc.output(), 10, "the trip logged")
        out = sc.output()
        check(out.count("closed -> open") == 1, "one trip logged:\n" + out[-3000:])
        check("%d consecutive failures" % failures in out, "trip reason names the count")

        # Half-open: wait for the open interval to end (its length is the configuration's; a
        # call before would be refused and tell nothing), then 12 slow calls at once on
        # connections of every worker: exactly `probes` reach the app, the rest are refused
        # while the probes are in flight, and the probes' success closes the circuit.
        time.sleep(max(0.0, tripped + open_s + 0.5 - time.monotonic()))
        slow = order[:12]
        results = [None] * len(slow)

        def one(i):
            results[i] = slow[i].unary(timeout=30, sleep_ms=3000)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(slow))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        ok = sum(1 for r in results if r is not None and r.ok)
        refused = sum(1 for r in results
                      if r is not None and not r.ok and "circuit open" in r.details)
        check(ok == probes and refused == len(slow) - probes,
              "exactly %d probes went through (ok %d, refused %d: %s)"
              % (probes, ok, refused, [(r.code, r.details) for r in results if r and not r.ok]))
        wait_until(lambda: "half-open -> closed" in sc.output(), 10, "the close logged")
        out = sc.output()
        check(out.count("open -> half-open") == 1 and out.count("half-open -> closed") == 1,
              "half-open and close logged once each:\n" + out[-3000:])
        check("%d probe call(s) succeeded" % probes in out, "close reason names the probes")
        for c in clients:
            check(c.unary(timeout=5).ok, "calls flow again on every worker")
    finally:
        for c in clients:
            c.close()


def case_bad_input(env):
    # An app port that is not gRPC: a TCP listener that closes every connection.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def closer():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                pass
    t = threading.Thread(target=closer, daemon=True)
    t.start()
    try:
        sc = env.start_sidecar("127.0.0.1:%d" % srv.getsockname()[1], "bad")
        def not_ready():
            st, body = probe(sc.probe, "/readyz")
            return st == 503 and body.get("consecutive_failures", 0) >= 3 and body
        body = wait_until(not_ready, 20, "/readyz 503 with a reason")
        check("HTTP/2" in body["reason"] or "connection" in body["reason"],
              "the reason names the problem: %s" % body["reason"])
        check(sc.alive(), "no crash")
        # An unparsable descriptor set on a good app.
        app = env.start_app("py", "py1", extra=["--no-reflection"])
        bad = os.path.join(env.dir, "bad.pb")
        with open(bad, "wb") as f:
            f.write(b"\x0a\xff\xff garbage")
        sc2 = env.start_sidecar(app.addr, "baddesc", extra=["--descriptor-set", bad])
        def desc_err():
            st, body = probe(sc2.probe, "/readyz")
            return st == 503 and "descriptor set" in body.get("reason", "") + body.get("error", "")
        wait_until(desc_err, 20, "/readyz 503 naming the descriptor set")
        check(sc2.alive(), "no crash on a bad descriptor set")
    finally:
        stop.set()
        srv.close()


def case_rolling_restart(env):
    env.start_etcd()
    pairs = []
    for sid in ("py1", "py2"):
        app = env.start_app("py", sid)
        sc = env.start_sidecar(app.addr, sid, extra=["--drain-timeout", "2s"])
        pairs.append([app, sc])
    for app, sc in pairs:
        wait_registered(env, sc, ["meshd.test.Echo"])
    px = env.start_proxy()
    results = {"ok": 0, "fail": []}
    stop = threading.Event()
    with EchoClient(px.addr) as c:
        def served_by(n, count_failures):
            """Server ids of n calls; a failed call is None (and, under load, a failure)."""
            ids = []
            for _ in range(n):
                r = c.unary(timeout=5)
                ids.append(r.replies[0].server_id if r.ok else None)
                if not r.ok and count_failures:
                    results["fail"].append((r.code, r.details))
            return ids
        # The proxy accepts before etcd's table reaches it: until then calls get "no route".
        wait_until(lambda: {i for i in served_by(4, False) if i} == {"py1", "py2"}, 20,
                   "both instances in the proxy's table")

        def load():
            while not stop.is_set():
                r = c.unary(timeout=5, payload=b"x")
                if r.ok:
                    results["ok"] += 1
                else:
                    results["fail"].append((r.code, r.details))
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i, (app, sc) in enumerate(pairs):
                sc.p.send_signal(signal.SIGTERM)
                wait_gone(env, sc, timeout=10)
                rc = sc.p.wait(timeout=20)
                check(rc == 0, "sidecar %d exited 0 after its drain" % i)
                app.p.send_signal(signal.SIGTERM)
                app.p.wait(timeout=10)
                app2 = env.start_app("py", app.sid + "b", port=app.port)
                sc2 = env.start_sidecar(app2.addr, app.sid + "b", listen_port=sc.port,
                                        extra=["--drain-timeout", "2s"])
                wait_registered(env, sc2, ["meshd.test.Echo"])
                wait_until(lambda: app2.sid in served_by(4, True), 20,
                           "traffic reaches %s" % app2.sid)
        finally:
            stop.set()
            for t in threads:
                t.join()
    check(results["ok"] > 50, "calls made under load: %d" % results["ok"])
    check(not results["fail"], "zero failed calls (%d failures: %s)" % (
        len(results["fail"]), results["fail"][:3]))


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_") and n != "case_register"}


def main():
    return run(CASES, Env, lambda ap: ap.add_argument("--cc-server"))


if __name__ == "__main__":
    sys.exit(main())
