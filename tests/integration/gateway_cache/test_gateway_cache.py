#!/usr/bin/python3
"""tests/integration/gateway_cache/test_gateway_cache.py: the descriptor cache against real
grpcio servers (probe_server.py), hosted by gw_cache_probe (a real libuv loop, the real gRPC
seam).

Cases:
  learn            a server with reflection: its service and the imported file are learned
  version_change   the server restarts on the same port with a new API and version label v2:
                   refetched (Put appears); both versions at once while both have instances
  silent           an instance that accepts and never answers is timed out, another is used
  no_reflection    a server without reflection is reported (counter) and skipped
  bench            prints the fetch time p50/p90 of 20 fetches from a local server (not a test)
"""
import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "probe_server.py")
SVC = "gwcache.test.Probe"


class Proc:
    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=kw.get("stderr"), text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


class Rig:
    def __init__(self, probe, timeout_ms=1500):
        self.procs = []
        self.probe = Proc([probe, "--fetch-timeout-ms", str(timeout_ms), "--grace-ms", "60000",
                           "--backoff-min-ms", "200"],
                          stderr=open(os.environ.get("GWC_LOG", os.devnull), "a"))
        self.procs.append(self.probe)
        self.expect(lambda e: e["event"] == "ready", 10, "the probe to start")

    def server(self, *args, port=0):
        s = Proc([sys.executable if sys.executable.startswith("/usr/bin") else "/usr/bin/python3",
                  SERVER, "--port", str(port)] + list(args))
        self.procs.append(s)
        line = s.line(30)
        if not line or not line.startswith("listening on "):
            raise SystemExit("probe_server did not start: %r" % line)
        s.port = int(line.split()[-1])
        return s

    def send(self, cmd):
        self.probe.p.stdin.write(cmd + "\n")
        self.probe.p.stdin.flush()

    def expect(self, pred, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            line = self.probe.line(max(0.05, end - time.time()))
            if line is None:
                if self.probe.p.poll() is not None:
                    raise SystemExit("probe exited while waiting for %s" % what)
                continue
            ev = json.loads(line)
            if pred(ev):
                return ev
        raise SystemExit("timed out waiting for %s" % what)

    def stats(self):
        self.send("stats")
        return self.expect(lambda e: e["event"] == "stats", 10, "stats")

    def wait_stats(self, pred, what, timeout=20):
        """Stats until pred holds (a table sent just before may not be applied yet)."""
        end = time.time() + timeout
        while True:
            st = self.stats()
            if pred(st):
                return st
            if time.time() > end:
                raise SystemExit("timed out waiting for %s: %s" % (what, st))
            time.sleep(0.1)

    def close(self):
        try:
            self.send("quit")
            self.probe.p.wait(10)
        except Exception:
            pass
        for p in reversed(self.procs):
            p.stop()
        if self.probe.p.returncode not in (0, None):
            raise SystemExit("probe exited with %s" % self.probe.p.returncode)


def pool_with(*methods):
    return lambda e: e["event"] == "pool" and all(("/%s/%s" % (SVC, m)) in e["methods"]
                                                   for m in methods)


def case_learn(r):
    s = r.server("--api", "1")
    r.send("table %s 127.0.0.1:%d v1" % (SVC, s.port))
    ev = r.expect(pool_with("Get"), 20, "the service's schema")
    assert ev["files"] == 2, ev  # gwcache/probe.proto and its import
    assert "/%s/Put" % SVC not in ev["methods"], ev
    st = r.stats()
    assert st["held"] == 1 and st["fetched"] == 1, st
    assert st["schemas"][0]["versions"][0]["state"] == "ok", st


def case_version_change(r):
    s = r.server("--api", "1")
    port = s.port
    r.send("table %s 127.0.0.1:%d v1" % (SVC, port))
    r.expect(pool_with("Get"), 20, "v1's schema")
    # Redeploy: the server restarts on the same port with the new API, registered as v2.
    s.stop()
    s2 = r.server("--api", "2", port=port)
    r.send("table %s 127.0.0.1:%d v2" % (SVC, s2.port))
    r.expect(pool_with("Get", "Put"), 20, "v2's schema (Put)")
    st = r.stats()
    vers = {v["version"]: v for v in st["schemas"][0]["versions"]}
    assert vers["v2"]["state"] == "ok" and vers["v2"]["instances"] == 1, st
    assert vers["v1"]["instances"] == 0 and "dropped_in_ms" in vers["v1"], st  # in grace
    # Both versions at once (a canary): a v1 server beside the v2 one; both are held.
    s1 = r.server("--api", "1")
    r.send("table %s 127.0.0.1:%d v2 127.0.0.1:%d v1" % (SVC, s2.port, s1.port))
    st = r.wait_stats(lambda st: {v["version"]: v["instances"] for v in
                                  st["schemas"][0]["versions"]} == {"v1": 1, "v2": 1},
                      "both versions with an instance")
    vers = {v["version"]: v for v in st["schemas"][0]["versions"]}
    assert vers["v1"]["state"] == "ok" and vers["v2"]["state"] == "ok", st
    assert st["fetched"] == 2, st  # v1 was still held: nothing fetched again


def case_silent(r):
    hung = r.server("--silent")
    good = r.server("--api", "1")
    t0 = time.time()
    r.send("table %s 127.0.0.1:%d v1 127.0.0.1:%d v1" % (SVC, hung.port, good.port))
    r.expect(pool_with("Get"), 20, "the schema from the answering instance")
    assert time.time() - t0 >= 1.0, "the silent instance was not waited for"
    st = r.stats()
    # The silent instance was tried and given up: by the fetch deadline (counted in timeouts)
    # or, when the gRPC client's own wait for the server's SETTINGS ends first (a race on a
    # loaded machine), as a failed connection. Either way the answer came from the good one.
    assert st["fetches"] == 2 and st["timeouts"] <= 1, st
    assert st["schemas"][0]["versions"][0]["from"] == "127.0.0.1:%d" % good.port, st


def case_no_reflection(r):
    s = r.server("--api", "1", "--no-reflection")
    r.send("table %s 127.0.0.1:%d v1" % (SVC, s.port))
    st = r.wait_stats(lambda st: st["no_reflection"] == 1, "the no_reflection count")
    fetches = st["fetches"]
    time.sleep(1.5)
    st = r.stats()
    assert st["fetches"] == fetches and st["held"] == 0, st  # skipped, not retried


def case_bench(r):
    s = r.server("--api", "2")
    us = []
    for i in range(20):
        r.send("table %s 127.0.0.1:%d bench-%d" % (SVC, s.port, i))
        r.expect(lambda e: e["event"] == "pool", 20, "fetch %d" % i)
    st = r.stats()
    us = sorted(v["fetch_us"] for v in st["schemas"][0]["versions"])
    print(json.dumps({"fetches": len(us), "p50_us": us[len(us) // 2 - 1 + len(us) % 2],
                      "p90_us": us[int(len(us) * 0.9) - 1], "min_us": us[0], "max_us": us[-1],
                      "bytes_per_version": st["schemas"][0]["versions"][0]["bytes"],
                      "files_per_version": st["schemas"][0]["versions"][0]["files"]}))


CASES = {"learn": case_learn, "version_change": case_version_change, "silent": case_silent,
         "no_reflection": case_no_reflection, "bench": case_bench}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    a = ap.parse_args()
    r = Rig(a.probe)
    try:
        CASES[a.case](r)
    finally:
        r.close()
    print("integration.gateway_cache.%s: ok" % a.case)


if __name__ == "__main__":
    main()
