#!/usr/bin/python3
"""tests/integration/proxy/test_proxy_retry.py: the `routes:` block end to end: `meshd proxy` in
front of real grpcio servers (retry_backend.py), with static routes and a config file.

Cases (--case NAME):
  retry_unavailable  instance A answers UNAVAILABLE, B answers: every call of an idempotent
                     method with a retry policy succeeds; every call A saw was retried onto B
                     (B saw it with grpc-previous-rpc-attempts); meshd_call_retries_total > 0
  no_retry_unsafe    same instances, a method not configured idempotent: the calls A answered
                     fail with UNAVAILABLE and are never sent again (attempts == calls)
  budget             a full outage (both instances UNAVAILABLE), max-attempts 5: the retries
                     counted at the servers stay under ratio x calls + floor x window; the
                     budget's refusals are counted in /metrics
  fault              abort UNAVAILABLE for 20 % of 2,000 calls (within 3.5 points), counted in
                     /metrics; a delay only for calls with the trigger header
  per_try            a method with a slow tail (5 % of calls sleep 1 s): with per-try-timeout
                     and up to 4 attempts every call succeeds; the p99 with and without are printed
                     (never asserted)
  hedging            the same slow tail with hedging after 50 ms: every call succeeds,
                     a hedge is at most one more attempt at the servers, losing attempts are
                     cancelled upstream (a server sees the cancellation); p99s printed
  connect_timeout    a per-service connect-timeout (100 ms) beside a hung instance: every
                     call succeeds; with only the node's 10 s a call runs out its deadline
  config             check-config accepts the block and names file:line for a bad one;
                     GET /v1/route-policy shows the block; SIGHUP with a bad block keeps the
                     one in force, with a good one switches
Every process is started here and killed by PID at the end, also on failure.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Proc, check, free_port, wait_until, Fail  # noqa: E402
from cases import Case  # noqa: E402

import grpc  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "unit", "audit"))
from check_schema import load_validator, check_record  # noqa: E402

VALIDATOR, _ = load_validator(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))),
                                        "docs", "audit-event.schema.json"))

BACKEND = os.path.join(HERE, "retry_backend.py")
SVC = "meshd.test.Retry"


class Env(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-it-retry-")
        self.proxy = None

    def backend(self, sid, *flags):
        p = Proc("backend-" + sid, ["/usr/bin/python3", BACKEND, "--id", sid] + list(flags),
                 self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        return "127.0.0.1:%s" % m.group(1)

    def write_config(self, text):
        path = os.path.join(self.dir, "meshd.yaml")
        self.config_path = path
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_proxy(self, config, upstreams, workers=1, name="meshd", extra=()):
        port, admin = free_port(), free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                "--admin-listen", "127.0.0.1:%d" % admin, "--workers", str(workers),
                "--static", "%s=%s" % (SVC, ",".join(upstreams)),
                "--config", self.write_config(config)] + list(extra)
        menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
        p = Proc(name, argv, self.dir, env=menv)
        self.procs.append(p)
        self.proxy = p
        p.target = "127.0.0.1:%d" % port
        p.admin = "127.0.0.1:%d" % admin

        def up():
            if not p.alive():
                raise Fail("meshd exited:\n" + p.output()[-3000:])
            try:
                http(p.admin, "/v1/route-policy")
                return True
            except OSError:
                return False
        wait_until(up, 20, "meshd's admin API")
        return p


def http(addr, path):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=5) as r:
        return r.read().decode()


def metric(admin, name):
    """The sum of a family's samples on the admin port's /metrics."""
    total = 0.0
    for line in http(admin, "/metrics").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_metric(admin, name, pred, what):
    """Waits for the workers' next report (they report every tick): pred(value) true."""
    wait_until(lambda: pred(metric(admin, name)), 10, what)
    check(True, what)


def counts(addr):
    with grpc.insecure_channel(addr) as ch:
        return json.loads(ch.unary_unary("/%s/Count" % SVC)(b"", timeout=5))


def run_calls(target, method, n, threads=8, metadata=None, timeout=10):
    """n unary calls over `threads` channels: [(code, details, seconds)]."""
    out, lock = [], threading.Lock()
    left = [n]

    def worker():
        with grpc.insecure_channel(target) as ch:
            stub = ch.unary_unary("/%s/%s" % (SVC, method))
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                t0 = time.monotonic()
                try:
                    stub(b"x", timeout=timeout, metadata=metadata)
                    r = (grpc.StatusCode.OK, "", time.monotonic() - t0)
                except grpc.RpcError as e:
                    r = (e.code(), e.details() or "", time.monotonic() - t0)
                with lock:
                    out.append(r)
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def p99(res):
    lat = sorted(r[2] for r in res)
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000


RETRY_CONF = """routes:
  retry-budget: {ratio: 0.2, min-per-second: 50}
  rules:
    - match: meshd.test.Retry/Get
      idempotent: true
      retry: {max-attempts: 3, initial-backoff: 5ms, max-backoff: 50ms,
              backoff-multiplier: 2, retryable-status: [UNAVAILABLE]}
    - match: meshd.test.Retry/*
      retry: {max-attempts: 3, initial-backoff: 5ms, max-backoff: 50ms}
"""


def case_retry_unavailable(env):
    a = env.backend("A", "--fail")
    b = env.backend("B")
    p = env.start_proxy(RETRY_CONF, [a, b])
    res = run_calls(p.target, "Get", 200)
    bad = [r for r in res if r[0] != grpc.StatusCode.OK]
    check(not bad, "all 200 calls of an idempotent method succeed (failed: %s)" % bad[:3])
    ca, cb = counts(a), counts(b)
    seen_a = ca["counts"].get("Get", 0)
    print("  A saw %d attempts, B saw %d (%d with grpc-previous-rpc-attempts)" %
          (seen_a, cb["counts"].get("Get", 0), cb["retried"].get("Get", 0)))
    check(seen_a >= 1, "the failing instance was tried")
    check(cb["retried"].get("Get", 0) == seen_a,
          "every call A answered UNAVAILABLE was retried onto B with grpc-previous-rpc-attempts")
    check(cb["counts"].get("Get", 0) == 200, "B answered each call once")
    wait_metric(p.admin, "meshd_call_retries_total", lambda v: v == seen_a,
                "meshd_call_retries_total counts the retries")


def case_no_retry_unsafe(env):
    a = env.backend("A", "--fail")
    b = env.backend("B")
    p = env.start_proxy(RETRY_CONF, [a, b])
    res = run_calls(p.target, "Put", 100)
    failed = [r for r in res if r[0] != grpc.StatusCode.OK]
    ca, cb = counts(a), counts(b)
    na, nb = ca["counts"].get("Put", 0), cb["counts"].get("Put", 0)
    print("  A saw %d, B saw %d, %d calls failed" % (na, nb, len(failed)))
    check(na >= 1 and len(failed) == na, "every call A answered failed at the client")
    check(all(r[0] == grpc.StatusCode.UNAVAILABLE for r in failed), "with A's UNAVAILABLE")
    check(na + nb == 100, "no call of the non-idempotent method ran twice")
    check(cb["retried"].get("Put", 0) == 0, "none was sent with grpc-previous-rpc-attempts")


BUDGET_RATIO, BUDGET_FLOOR = 0.2, 2


def case_budget(env):
    a = env.backend("A", "--fail")
    b = env.backend("B", "--fail")
    conf = """routes:
  retry-budget: {ratio: %s, min-per-second: %s}
  rules:
    - match: meshd.test.Retry/Get
      idempotent: true
      retry: {max-attempts: 5, initial-backoff: 1ms, max-backoff: 2ms}
""" % (BUDGET_RATIO, BUDGET_FLOOR)
    p = env.start_proxy(conf, [a, b])
    t0 = time.monotonic()
    res = run_calls(p.target, "Get", 600)
    secs = time.monotonic() - t0
    attempts = sum(counts(x)["counts"].get("Get", 0) for x in (a, b))
    calls = len(res)
    retries = attempts - calls
    windows = int(secs // 10) + 1
    bound = BUDGET_RATIO * calls + BUDGET_FLOOR * 10 * windows
    wait_metric(p.admin, "meshd_retry_budget_exhausted_total", lambda v: v > 0,
                "the budget's refusals are counted in /metrics")
    exhausted = metric(p.admin, "meshd_retry_budget_exhausted_total")
    print("  %d calls in %.1f s: %d attempts at the servers, %d retries (bound %.0f; without a "
          "budget %d); %d refused by the budget" % (calls, secs, attempts, retries, bound,
                                                    calls * 4, exhausted))
    check(all(r[0] == grpc.StatusCode.UNAVAILABLE for r in res), "every call fails UNAVAILABLE")
    check(retries <= bound, "retries stay under ratio x calls + floor x window")


FAULT_CONF = """routes:
  rules:
    - match: meshd.test.Retry/Fault
      fault: {abort: {status: UNAVAILABLE, percent: 20}}
    - match: meshd.test.Retry/Put
      fault: {delay: {duration: 30ms, percent: 100}, header: x-chaos}
"""


def audit_records(path, kind):
    """The records of type `kind` in the audit file (JSON lines; a line being written skipped),
    each checked against docs/audit-event.schema.json."""
    out = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("type") == kind:
            problems = check_record(VALIDATOR, r)
            if problems:
                raise Fail("a %s record the schema refuses: %s (%s)" % (kind, problems, line))
            out.append(r)
    return out


def case_fault(env):
    a = env.backend("A")
    b = env.backend("B")
    audit = os.path.join(env.dir, "audit.jsonl")
    p = env.start_proxy(FAULT_CONF, [a, b], workers=2,
                        extra=("--audit-file", audit, "--node", "px-fault"))
    p.wait_line(r"fault injection on for meshd.test.Retry/Fault", 10)
    check(True, "loading a fault config is logged")
    wait_until(lambda: len(audit_records(audit, "fault_injection")) == 2, 10,
               "two fault_injection audit records (one per fault rule)")
    recs = audit_records(audit, "fault_injection")
    print("  audit:", [r["reason"] for r in recs], flush=True)
    check(recs[0]["service"] == SVC and recs[0]["method"] == "Fault" and
          recs[0]["outcome"] == "success" and
          "meshd.test.Retry/Fault (%s:3): abort UNAVAILABLE 20%%" % env.config_path
          in recs[0]["reason"] and "loaded at start" in recs[0]["reason"],
          "the start's record names the rule, its file:line and what it injects")
    check(recs[1]["method"] == "Put" and "only with header x-chaos" in recs[1]["reason"],
          "and the second rule with its header")
    n = 2000
    res = run_calls(p.target, "Fault", n)
    aborted = [r for r in res if r[0] == grpc.StatusCode.UNAVAILABLE]
    others = [r for r in res if r[0] not in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE)]
    share = len(aborted) / n
    print("  %d of %d calls aborted (%.1f %%, configured 20 %%)" % (len(aborted), n, share * 100))
    check(not others, "nothing but OK and the injected status")
    check(abs(share - 0.20) <= 0.035, "the abort rate is within 3.5 points of 20 %")
    check(all("meshd: fault injected" in r[1] for r in aborted), "aborts say meshd injected them")
    served = sum(counts(x)["counts"].get("Fault", 0) for x in (a, b))
    check(served == n - len(aborted), "aborted calls never reach an instance")
    wait_metric(p.admin, "meshd_faults_aborted_total", lambda v: v == len(aborted),
                "meshd_faults_aborted_total counts them")
    res = run_calls(p.target, "Put", 20)
    check(all(r[0] == grpc.StatusCode.OK for r in res), "calls without the header pass")
    check(metric(p.admin, "meshd_faults_delayed_total") == 0, "and are not delayed")
    res = run_calls(p.target, "Put", 20, metadata=(("x-chaos", "1"),))
    check(all(r[0] == grpc.StatusCode.OK for r in res), "calls with the header pass")
    wait_until(lambda: metric(p.admin, "meshd_faults_delayed_total") == 20, 10,
               "the 20 delayed calls in /metrics")
    # Reloads are audited too: faults off, then on again.
    env.write_config("routes:\n  rules:\n    - match: meshd.test.Retry/*\n      idempotent: true\n")
    p.p.send_signal(signal.SIGHUP)
    wait_until(lambda: len(audit_records(audit, "fault_injection")) == 3, 10,
               "a fault_injection record for the reload that turned faults off")
    off = audit_records(audit, "fault_injection")[2]
    check(off["reason"].startswith("fault injection off") and off["service"] is None,
          "the reload's record says fault injection is off")
    env.write_config(FAULT_CONF)
    p.p.send_signal(signal.SIGHUP)
    wait_until(lambda: len(audit_records(audit, "fault_injection")) == 5, 10,
               "two more records for the reload that turned them on again")
    check(all("reload" in r["reason"] for r in audit_records(audit, "fault_injection")[3:]),
          "naming the reload")


def case_per_try(env):
    a = env.backend("A", "--slow-ms", "1000", "--slow-share", "0.05", "--seed", "1")
    b = env.backend("B", "--slow-ms", "1000", "--slow-share", "0.05", "--seed", "2")
    p = env.start_proxy("routes:\n", [a, b], name="meshd-plain")
    plain = run_calls(p.target, "Slow", 300)
    p.kill()
    conf = """routes:
  rules:
    - match: meshd.test.Retry/Slow
      idempotent: true
      per-try-timeout: 150ms
      retry: {max-attempts: 4, initial-backoff: 1ms, max-backoff: 5ms}
"""
    q = env.start_proxy(conf, [a, b], name="meshd-pertry")
    tried = run_calls(q.target, "Slow", 300)
    check(all(r[0] == grpc.StatusCode.OK for r in plain), "all calls succeed without a policy")
    bad = [r for r in tried if r[0] != grpc.StatusCode.OK]
    check(not bad, "all calls succeed with per-try-timeout and retries (%s)" % bad[:3])
    wait_metric(q.admin, "meshd_call_retries_total", lambda v: v > 0,
                "slow attempts were cut and retried")
    retries = metric(q.admin, "meshd_call_retries_total")
    print("  slow tail (5 %% of calls sleep 1 s), 300 calls: p99 %.0f ms without a policy, "
          "%.0f ms with per-try-timeout 150ms (%d retries)" % (p99(plain), p99(tried), retries))


def case_hedging(env):
    a = env.backend("A", "--slow-ms", "1000", "--slow-share", "0.05", "--seed", "3")
    b = env.backend("B", "--slow-ms", "1000", "--slow-share", "0.05", "--seed", "4")
    p = env.start_proxy("routes:\n", [a, b], name="meshd-plain")
    plain = run_calls(p.target, "Slow", 300)
    p.kill()
    conf = """routes:
  rules:
    - match: meshd.test.Retry/Slow
      idempotent: true
      hedging: {max-attempts: 2, delay: 50ms}
"""
    q = env.start_proxy(conf, [a, b], name="meshd-hedged")
    before = sum(counts(x)["counts"].get("Slow", 0) for x in (a, b))
    hedged = run_calls(q.target, "Slow", 300)
    check(all(r[0] == grpc.StatusCode.OK for r in plain), "all calls succeed without hedging")
    bad = [r for r in hedged if r[0] != grpc.StatusCode.OK]
    check(not bad, "all calls succeed with hedging (%s)" % bad[:3])
    wait_metric(q.admin, "meshd_hedges_total", lambda v: v > 0, "hedged attempts were started")
    wait_until(lambda: sum(counts(x)["counts"].get("SlowCancelled", 0) for x in (a, b)) > 0, 10,
               "a server to see a losing attempt cancelled")
    check(True, "the losing attempts are cancelled upstream (RST_STREAM CANCEL)")
    # The servers' counts and the workers' metric reports both settle after the last call
    # returned (a losing attempt may still be arriving; workers report every second or so).
    time.sleep(0.5)
    attempts = sum(counts(x)["counts"].get("Slow", 0) for x in (a, b)) - before
    wait_until(lambda: metric(q.admin, "meshd_hedges_total") >= attempts - 300, 10,
               "the hedge count to cover the attempts beyond the calls")
    hedges = metric(q.admin, "meshd_hedges_total")
    print("  %d attempts at the servers for 300 calls and %d hedges" % (attempts, hedges))
    check(300 < attempts <= 300 + hedges,
          "a hedge is at most one more attempt (a hedge cancelled before it left is none)")
    print("  slow tail (5 %% of calls sleep 1 s), 300 calls: p99 %.0f ms without hedging, "
          "%.0f ms with hedging after 50 ms (%d hedges)" % (p99(plain), p99(hedged), hedges))


def case_config(env):
    good = env.write_config(RETRY_CONF)
    out = subprocess.run([env.args.meshd, "check-config", good], capture_output=True, text=True)
    check(out.returncode == 0 and "routes: 2 rules" in out.stdout, "check-config accepts it")
    bad_text = RETRY_CONF.replace("max-attempts: 3, initial", "max-attempts: x, initial", 1)
    bad = os.path.join(env.dir, "bad.yaml")
    with open(bad, "w") as f:
        f.write(bad_text)
    out = subprocess.run([env.args.meshd, "check-config", bad], capture_output=True, text=True)
    print("  check-config said:", out.stderr.strip())
    check(out.returncode == 2 and "bad.yaml:6: routes.rules[0].retry.max-attempts" in out.stderr,
          "check-config names file:line and the key")
    a = env.backend("A")
    p = env.start_proxy(RETRY_CONF, [a])
    rp = json.loads(http(p.admin, "/v1/route-policy"))
    check(rp["present"] and len(rp["rules"]) == 2 and rp["retry_budget"]["min_per_second"] == 50,
          "GET /v1/route-policy shows the block in force")
    check(rp["rules"][0]["retry"]["retryable_status"] == ["UNAVAILABLE"], "with its statuses")
    env.write_config(bad_text)
    p.p.send_signal(signal.SIGHUP)
    p.wait_line(r"reload refused", 10)
    rp2 = json.loads(http(p.admin, "/v1/route-policy"))
    check(rp2 == rp, "a refused reload keeps the block in force")
    env.write_config(RETRY_CONF.replace("min-per-second: 50", "min-per-second: 7"))
    p.p.send_signal(signal.SIGHUP)
    wait_until(lambda: json.loads(http(p.admin, "/v1/route-policy"))["retry_budget"]
               ["min_per_second"] == 7, 10, "the reloaded block")
    check(True, "a good reload switches to the new block")


OUTLIER_OFF = """routes:
  rules:
    - match: meshd.test.Retry/*
      balancer: {policy: round-robin}
      outlier: {enabled: false}
"""
OUTLIER_TWO = OUTLIER_OFF.replace("{enabled: false}",
                                  "{consecutive: 2, base-ejection: 60s, max-ejection-percent: 50}")


def case_outlier(env):
    """Per-service outlier settings from routes: (balancer and outlier keys) and their reload:
    a backend answering UNAVAILABLE to everything is never ejected under `enabled: false`, and
    after a SIGHUP to `consecutive: 2` it takes exactly two more calls (the command line's
    default would be five), then none."""
    a = env.backend("A")
    b = env.backend("B", "--fail")
    p = env.start_proxy(OUTLIER_OFF, [a, b], workers=1)
    rp = json.loads(http(p.admin, "/v1/route-policy"))
    check(rp["rules"][0]["outlier"]["enabled"] is False and
          rp["rules"][0]["balancer"] == {"policy": "round-robin"},
          "GET /v1/route-policy shows the rule's balancer and outlier settings")
    run_calls(p.target, "Get", 40, threads=1)
    got = counts(b)["counts"].get("Get", 0)
    print("  enabled: false: the failing instance took %d of 40 calls" % got, flush=True)
    check(got >= 15, "with outlier ejection off for the service it keeps its share")
    check(metric(p.admin, "meshd_outlier_ejections_total") == 0, "and nothing is ejected")
    env.write_config(OUTLIER_TWO)
    p.p.send_signal(signal.SIGHUP)
    wait_until(lambda: json.loads(http(p.admin, "/v1/route-policy"))["rules"][0]["outlier"]
               ["consecutive"] == 2, 10, "the reloaded block")
    run_calls(p.target, "Get", 40, threads=1)
    more = counts(b)["counts"].get("Get", 0) - got
    print("  consecutive: 2: the failing instance took %d more of 40 calls" % more, flush=True)
    check(more == 2, "after the reload two failures in a row eject it (the default: five)")
    wait_metric(p.admin, "meshd_outlier_ejections_total", lambda v: v == 1,
                "one ejection in /metrics")
    p.wait_line(r"ejected: 2 gateway failures in a row", 10)
    check(True, "the log line names the service's threshold")


def case_success_rate(env):
    """The success-rate detector (--outlier-success-rate-stdev, off by default): six instances,
    one answering UNAVAILABLE to everything, consecutive-failure ejection out of reach (1000 in a
    row): within a few one-second intervals the failing one is ejected, said in the log with the
    service's figures, counted in /metrics, and takes no more calls."""
    ups = [env.backend(c) for c in "ABCDE"]
    bad = env.backend("F", "--fail")
    p = env.start_proxy("routes:\n", ups + [bad], workers=1,
                        extra=("--lb", "round-robin", "--outlier-consecutive", "1000",
                               "--outlier-success-rate-stdev", "1900",
                               "--outlier-success-rate-volume", "10", "--outlier-interval", "1s"))

    def ejected():
        run_calls(p.target, "Get", 60, threads=2)
        return metric(p.admin, "meshd_outlier_ejections_total") >= 1
    wait_until(ejected, 30, "the failing instance ejected by its success rate")
    p.wait_line(r"ejected: success rate below the service's", 10)
    check(True, "ejected, the log line giving the service's mean, stdev and threshold")
    before = counts(bad)["counts"].get("Get", 0)
    res = run_calls(p.target, "Get", 120, threads=2)
    after = counts(bad)["counts"].get("Get", 0)
    print("  after the ejection the failing instance took %d of 120 calls" % (after - before),
          flush=True)
    check(after == before and all(r[0] == grpc.StatusCode.OK for r in res),
          "it takes no more calls (ejected for 30 s), every call succeeds")


def blackhole():
    """A listener on loopback whose accept queue is full: a connect to it gets no SYN-ACK and
    hangs (what a host whose packets are dropped looks like), with no RST to end it early."""
    import socket
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.2)
    return "127.0.0.1:%d" % port, [lst] + fill


CONNECT_FAST = """routes:
  rules:
    - match: meshd.test.Retry/*
      balancer: {policy: round-robin}
      connect-timeout: 100ms
"""


def case_connect_timeout(env):
    """A per-service connect timeout (routes: connect-timeout) against an instance whose connects
    hang (no SYN-ACK, no RST), beside a live one, with the node's --connect-timeout at 10 s.
    With `connect-timeout: 100ms` every call (3 s deadline) succeeds: the hung connect gives up
    after 100 ms and the never-sent call goes to the live instance. Without the key, a call that
    picked the hung instance waits for the node's 10 s and ends DEADLINE_EXCEEDED."""
    a = env.backend("A")
    hole, socks = blackhole()
    try:
        p = env.start_proxy(CONNECT_FAST, [hole, a], workers=1,
                            extra=("--connect-timeout", "10s"))
        rp = json.loads(http(p.admin, "/v1/route-policy"))
        check(rp["rules"][0].get("connect_timeout_ms") == 100,
              "GET /v1/route-policy shows the service's connect timeout")
        res = run_calls(p.target, "Get", 20, threads=2, timeout=3)
        codes = [r[0] for r in res]
        print("  connect-timeout 100ms: %d of 20 calls OK" % codes.count(grpc.StatusCode.OK),
              flush=True)
        check(all(c == grpc.StatusCode.OK for c in codes),
              "with the service's 100 ms connect timeout every call succeeds")
        q = env.start_proxy("routes:\n", [hole, a], workers=1, name="meshd-default",
                            extra=("--connect-timeout", "10s", "--lb", "round-robin"))
        res = run_calls(q.target, "Get", 4, threads=2, timeout=3)
        codes = [r[0] for r in res]
        print("  node default 10 s: %s" % [c.name for c in codes], flush=True)
        check(grpc.StatusCode.DEADLINE_EXCEEDED in codes,
              "without it a call that picked the hung instance runs out its deadline")
    finally:
        for s_ in socks:
            s_.close()


FAILURE_PCT = """routes:
  rules:
    - match: meshd.test.Retry/*
      outlier:
        consecutive: 1000
        failure-percent: {threshold: 85, min-volume: 15}
"""


def case_failure_percent(env):
    """The failure-percentage detector (off by default; here the service's, from its
    `outlier: failure-percent:` rule, the command line leaving it off) with two workers: four instances under round robin, one failing 9 of every 10 calls (never 5 in a row
    matters: consecutive ejection is out of reach at 1000), paced at about 80 calls a second
    over 8 channels, 1 s windows, a volume of 15 calls: the failing instance gets about 20 calls a
    window, about 10 on each worker, so only the workers' windows summed reach the volume
    (transport/outlier_window.h). It is ejected, said in the log with the summed window, and
    takes no more calls."""
    ups = [env.backend(c) for c in "ABC"]
    bad = env.backend("D", "--fail-share", "0.9")
    p = env.start_proxy(FAILURE_PCT, ups + [bad], workers=2,
                        extra=("--lb", "round-robin", "--outlier-interval", "1s"))
    eff = json.loads(http(p.admin, "/v1/route-policy"))["rules"][0]["outlier"]
    check(eff["failure_percent"] == {"enabled": True, "threshold": 85, "min_volume": 15},
          "GET /v1/route-policy shows the service's failure-percentage settings")
    stop = [False]

    def paced():
        with grpc.insecure_channel(p.target) as ch:
            stub = ch.unary_unary("/%s/Get" % SVC)
            while not stop[0]:
                try:
                    stub(b"", timeout=5)
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
    ts = [threading.Thread(target=paced) for _ in range(8)]
    for t in ts:
        t.start()
    try:
        wait_until(lambda: metric(p.admin, "meshd_outlier_ejections_total") >= 1, 30,
                   "the flaky instance ejected by its failure percentage")
    finally:
        stop[0] = True
        for t in ts:
            t.join()
    m = p.wait_line(r"ejected: (\d+)% of (\d+) calls failed in 1000 ms", 10)
    print("  ejected: %s%% of %s calls failed in one window" % (m.group(1), m.group(2)), flush=True)
    check(int(m.group(1)) >= 85 and int(m.group(2)) >= 15,
          "the log line gives the summed window (its share and volume)")
    before = counts(bad)["counts"].get("Get", 0)
    res = run_calls(p.target, "Get", 120, threads=2)
    after = counts(bad)["counts"].get("Get", 0)
    print("  after the ejection the flaky instance took %d of 120 calls" % (after - before),
          flush=True)
    check(after == before and all(r[0] == grpc.StatusCode.OK for r in res),
          "it takes no more calls (ejected for 30 s), every call succeeds")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--case", default="all", help="|".join(["all"] + sorted(CASES)))
    args = ap.parse_args()
    names = sorted(CASES) if args.case == "all" else [args.case]
    for name in names:
        print("== %s" % name, flush=True)
        env = Env(args)
        failed = True
        try:
            CASES[name](env)
            failed = False
        except Fail as e:
            print("FAIL: %s" % e, flush=True)
        finally:
            env.stop(failed)
        if failed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
