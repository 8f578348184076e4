#!/usr/bin/python3
"""tests/integration/audit/test_audit_node.py: meshd nodes sending their audit events to Kafka
(tests/peers/kafka_broker, librdkafka's mock cluster) through the disk spool, read back with
python3-kafka; every record consumed is validated against docs/audit-event.schema.json
(tests/unit/audit/check_schema.py), and carries the Kafka key (its service, empty without one),
the header schema=1 and the event's time as its timestamp.

Cases (--case NAME):
  events   etcd, a Python gRPC app behind `meshd sidecar` (etcd, gossip, a quick breaker) and
           three `meshd proxy` nodes in one gossip mesh: the app's readiness, its registration
           (instance_registered per service), a lease revoked in etcd (instance_removed
           lease_expiry, then registered again), a breaker that opens and closes (breaker_open,
           breaker_half_open, breaker_closed from the sidecar, the app as instance), a proxy
           killed with SIGKILL (exactly one member_dead about it, from the member whose suspicion
           timeout declared it), the sidecar stopped with SIGTERM (instance_removed etcd,
           member_left by itself). Proxies emit no registry events they merely observed.
  outage   a proxy emitting 1,000 synthetic events per second (--audit-test-rate) while Kafka
           is down for 60 s (--outage; the default run uses 20 s, label integration_long 60 s): the records wait in the spool (at most the in-flight bound outside
           it), and once Kafka is back every event arrives, exactly once after dedup by
           event_id, in order per key.
  sigkill  the same, but the node is SIGKILLed in the middle of the outage and started again
           (same spool): every record the spool had made durable before the kill arrives, the
           first run's events without a gap, the second run's all.
  damage   a torn tail appended to the spool's newest segment of a killed node is cut at the
           next start with a warning (and counted in /v1/audit); a 1 MiB spool that fills
           during an outage drops records, counts them, and reports them in audit_dropped
           events whose counts add up to exactly what /v1/audit counted.
  wrong    a broker address that refuses connections, one that does not resolve, and a topic
           the cluster does not have: a clear log line, state spooling in /v1/audit, no crash,
           a clean exit on SIGTERM; a librdkafka property it does not know: exit 2 naming it.
           librdkafka is opened only by a node that audits to Kafka (a proxy without
           --audit-kafka maps neither it nor libcrypto), and a node whose librdkafka.so.1 is
           missing (hidden by a bind mount in a private mount namespace; skipped when unshare
           is not allowed) says so, naming the package, and keeps serving.

Every process is started here, recorded by PID and stopped by that PID; each case works in its
own temp folder.
"""
import base64
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
import kafka_rig  # noqa: E402
from kafka_rig import Broker, Fail, check, wait_until  # noqa: E402
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, free_port, meshd_env, remove_dir  # noqa: E402
from web import get_json as http_json  # noqa: E402
from cases import Case, run  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402

TOPIC = "meshd.audit"
ECHO = "meshd.test.Echo"
OTHER = "meshd.test.Other"


class Run(Case):
    def __init__(self, args):
        super().__init__(args, "meshd-it-audit-")
        self.brokers = []

    # -- processes --------------------------------------------------------------------------
    def broker(self, **kw):
        b = Broker(self.args.broker, self.dir, **kw)
        self.brokers.append(b)
        return b

    def start(self, name, argv, env=None):
        print("starting:", " ".join(argv), flush=True)
        p = Proc(name, argv, self.dir, env=env or meshd_env())
        self.procs.append(p)
        return p

    def meshd(self, role, name, bootstrap, extra=(), spool=None, wait=True, log_name=None):
        """A meshd node with an admin port and audit to Kafka; .admin, .spool set."""
        admin = free_port()
        spool = spool or os.path.join(self.dir, "spool-" + name)
        argv = [self.args.meshd, role, "--node", name, "--workers", "1",
                "--admin-listen", str(admin), "--log-format", "text",
                "--audit-spool", spool]
        if bootstrap:
            argv += ["--audit-kafka", bootstrap]
        argv += list(extra)
        p = self.start(log_name or name, argv)
        p.admin, p.spool, p.node = admin, spool, name
        if wait:
            p.wait_line(r"admin API on", 20)
        return p

    def app(self, sid):
        p = self.start("app-" + sid, ["/usr/bin/python3", self.args.py_server, "--port", "0",
                                      "--id", sid], env=dict(os.environ))
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def stop(self, failed):
        for p in reversed(self.procs):
            p.kill()
        for b in self.brokers:
            b.stop()
        remove_dir(self.dir, failed, 4000)


def status(p):
    return http_json(p.admin, "/v1/audit")


def term(p, timeout=30):
    """SIGTERM, then the exit code."""
    p.p.send_signal(signal.SIGTERM)
    try:
        return p.p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail("%s did not exit within %d s of SIGTERM" % (p.name, timeout))


# -- reading Kafka back ----------------------------------------------------------------------

def read_all(args, bootstrap, timeout=120):
    """Every record of the topic (up to its end offsets now), each checked: valid against the
    schema, key = service (empty when null), header schema=1, Kafka timestamp = ts. Returns a
    list of (record dict, kafka record)."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        tps = [TopicPartition(TOPIC, p) for p in c.partitions_for_topic(TOPIC)]
        first = c.beginning_offsets(tps)
    finally:
        c.close()
    if any(first.values()):
        raise Fail("the test cluster dropped old records (librdkafka's mock keeps about 5 MB "
                   "per partition): %s" % {tp.partition: o for tp, o in first.items() if o})
    want = sum(kafka_rig.end_offsets(bootstrap, TOPIC).values())
    recs = kafka_rig.consume(bootstrap, TOPIC, want, timeout=timeout)
    check(len(recs) >= want, "read the whole topic (%d of %d records)" % (len(recs), want))
    parsed = kafka_rig.validate(args.schema, [r.value for r in recs])
    for rec, kr in zip(parsed, recs):
        want_key = (rec["service"] or "").encode()
        if kr.key != want_key:
            raise Fail("key %r is not the service of %s" % (kr.key, rec["event_id"]))
        if (("schema", b"1") not in list(kr.headers or [])):
            raise Fail("no header schema=1 on %s: %r" % (rec["event_id"], kr.headers))
        ts = rec["ts"]
        t = time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")
        ms = (int(_timegm(t)) * 1000 + int(ts[20:26]) // 1000)
        if kr.timestamp != ms:
            raise Fail("Kafka timestamp %d is not ts %s (%d)" % (kr.timestamp, ts, ms))
    print("  ok: %d records read back, each valid against the schema with key, header and "
          "timestamp" % len(parsed), flush=True)
    return list(zip(parsed, recs))


def _timegm(t):
    import calendar
    return calendar.timegm(t)


def dedup(pairs):
    """First copies by event_id (in partition, offset order per partition), and the number of
    copies dropped."""
    seen, out = set(), []
    for rec, kr in pairs:
        if rec["event_id"] in seen:
            continue
        seen.add(rec["event_id"])
        out.append((rec, kr))
    return out, len(pairs) - len(out)


def seq_of(rec):
    return int(rec["event_id"].split("-")[1], 16)


def boot_of(rec):
    return rec["event_id"].split("-")[0]


def check_order_per_key(pairs):
    """Within each Kafka key, first copies come in event sequence order per boot (a key lives
    in one partition, read in offset order)."""
    last = {}
    for rec, kr in pairs:
        k = (kr.key, boot_of(rec))
        s = seq_of(rec)
        if s <= last.get(k, 0):
            raise Fail("key %r: event %d after %d" % (kr.key, s, last[k]))
        last[k] = s
    check(True, "order per key kept (%d keys)" % len({k for k, _ in last.items()}))


def synthetic(pairs, node):
    return [(r, k) for r, k in pairs if r["type"] == "config_rejected" and r["node"] == node]


# -- cases -------------------------------------------------------------------------------------

def case_events(run):
    b = run.broker()
    etcd = Etcd(run.dir)
    etcd.start()
    run.procs.append(etcd.proc)
    app = run.app("a1")
    g = [free_port() for _ in range(4)]
    seeds = "127.0.0.1:%d" % g[0]
    proxies = []
    for i in range(3):
        proxies.append(run.meshd("proxy", "p%d" % i, b.bootstrap,
                                 ["--listen", "127.0.0.1:%d" % free_port(), "--etcd", etcd.url,
                                  "--gossip-bind", "127.0.0.1:%d" % g[i]]
                                 + (["--gossip-join", seeds] if i else [])))
    sc_port = free_port()
    sc = run.meshd("sidecar", "sc1", b.bootstrap,
                   ["--app", app.addr, "--listen", "127.0.0.1:%d" % sc_port,
                    "--probe-listen", "127.0.0.1:%d" % free_port(), "--etcd", etcd.url,
                    "--health-interval", "300ms", "--lease-ttl", "3s", "--drain-timeout", "1s",
                    "--gossip-bind", "127.0.0.1:%d" % g[3], "--gossip-join", seeds,
                    "--breaker-failures", "3", "--breaker-open", "1s",
                    "--breaker-half-open-calls", "1"])
    advertise = "127.0.0.1:%d" % sc_port
    members_of = lambda p: {m["node"]: m["state"]  # noqa: E731
                            for m in (http_json(p.admin, "/v1/members") or {}).get("members", [])}
    wait_until(lambda: all(len([s for s in members_of(p).values() if s == "alive"]) == 4
                           for p in proxies + [sc]), 30, "4 alive members everywhere")
    check(True, "gossip mesh of 4 members")
    wait_until(lambda: (status(sc) or {}).get("acknowledged", 0) >= 3, 30,
               "the sidecar's readiness and registrations acknowledged")

    # a lease revoked in etcd: the owner sees its registration gone, registers again
    leases = re.findall(r"^([0-9a-f]+)$", etcd.ctl("lease", "list"), re.M)
    check(len(leases) == 1, "one lease in etcd (the sidecar's): %s" % leases)
    etcd.ctl("lease", "revoke", leases[0])
    wait_until(lambda: "registering again" in sc.output(), 30, "the sidecar to see its lease lost")
    wait_until(lambda: sc.output().count("registered 127.0.0.1") >= 2
               or sc.output().count("under lease") >= 2, 30, "the sidecar to register again")

    # the breaker: three failures open it, a call after the open interval closes it
    with EchoClient(advertise) as c:
        wait_until(lambda: c.unary(timeout=5).ok, 10, "calls through the sidecar")
        for _ in range(3):
            c.unary(timeout=5, status_code=14, status_message="app failing")
        r = c.unary(timeout=5)
        check(not r.ok and "circuit open" in r.details, "the circuit is open: %r" % r.details)
        wait_until(lambda: c.unary(timeout=5).ok, 20, "the circuit closes")

    # a proxy killed: exactly one member declares it dead
    proxies[2].kill()
    wait_until(lambda: all(members_of(p).get("p2") == "dead" for p in proxies[:2] + [sc]), 60,
               "everyone to see p2 dead")
    time.sleep(3)  # late gossip: a second declaration would come now
    # the sidecar leaves: deregisters (instance_removed etcd) and leaves gossip (member_left)
    check(term(sc) == 0, "the sidecar exits 0 on SIGTERM")
    for p in proxies[:2]:
        wait_until(lambda: (status(p) or {}).get("in_flight", 1) == 0, 20, "proxies settled")

    pairs = read_all(run.args, b.bootstrap)
    recs, dups = dedup(pairs)
    by_node = {}
    for r, _ in recs:
        by_node.setdefault(r["node"], []).append(r)
    scr = by_node.get("sc1", [])
    types = [r["type"] for r in scr]
    print("  sidecar's records:", types, flush=True)

    def of(t, **kw):
        return [r for r in scr if r["type"] == t and all(r.get(k) == v for k, v in kw.items())]

    check(all(r["role"] == "sidecar" for r in scr), "the sidecar's records say role sidecar")
    check(len(of("readiness_changed", ready=True)) == 1, "readiness_changed ready=true once")
    for svc in (ECHO, OTHER):
        check(len(of("instance_registered", service=svc, instance=advertise)) == 2,
              "instance_registered for %s twice (at start, after the lease was lost)" % svc)
        check(len(of("instance_removed", service=svc, source="lease_expiry")) == 1,
              "instance_removed lease_expiry for %s once" % svc)
        check(len(of("instance_removed", service=svc, source="etcd", instance=advertise)) == 1,
              "instance_removed etcd for %s once (deregistered at SIGTERM)" % svc)
    order = [r["type"] for r in scr if r["type"] in ("instance_registered", "instance_removed")
             and r["service"] == ECHO]
    check(order == ["instance_registered", "instance_removed", "instance_registered",
                    "instance_removed"], "registration events in order: %s" % order)
    for t, outcome in (("breaker_open", "failure"), ("breaker_half_open", "unknown"),
                       ("breaker_closed", "success")):
        got = of(t, instance=app.addr)
        check(len(got) == 1 and got[0]["outcome"] == outcome,
              "%s once, instance %s, outcome %s" % (t, app.addr, outcome))
    bt = [r["type"] for r in scr if r["type"].startswith("breaker_")]
    check(bt == ["breaker_open", "breaker_half_open", "breaker_closed"], "breaker order %s" % bt)
    check(len(of("member_left", member="sc1")) == 1, "member_left about itself once")
    deaths = [r for r, _ in recs if r["type"] == "member_dead" and r["member"] == "p2"]
    check(len(deaths) == 1, "exactly one member_dead about p2 (from %s)" %
          [r["node"] for r in deaths])
    check(deaths[0]["node"] != "p2" and "suspicion timeout" in (deaths[0]["reason"] or ""),
          "declared by %s: %s" % (deaths[0]["node"], deaths[0]["reason"]))
    for r, _ in recs:
        if r["role"] == "proxy":
            check(r["type"] not in ("instance_registered",) and
                  not (r["type"] == "instance_removed" and r["source"] != "gossip"),
                  "proxy %s emits no registry event it observed (%s)" % (r["node"], r["type"]))
    check(True, "%d records, %d duplicates dropped by event_id" % (len(recs), dups))


def outage_run(run, kill):
    # librdkafka's mock cluster keeps about 5 MB per partition: 96 partitions put each of the
    # 16 keys of --audit-test-rate in a partition of its own (murmur2), 2 to 3 MB each here
    b = run.broker(topics=[(TOPIC, 96)])
    rate = 1000
    extra = ["--listen", "127.0.0.1:%d" % free_port(), "--audit-test-rate", str(rate)]
    p = run.meshd("proxy", "load", b.bootstrap, extra)
    wait_until(lambda: (status(p) or {}).get("acknowledged", 0) >= rate, 30,
               "a second of events acknowledged")
    check(status(p)["state"] == "connected", "connected")
    b.down()
    t0 = time.monotonic()
    durable_before_kill = None
    boots = [status(p)["boot_id"]]
    outage = run.args.outage
    if kill:
        time.sleep(outage / 2)
        s = status(p)
        durable_before_kill = s["spool"]["durable"]
        check(s["state"] == "spooling", "spooling during the outage")
        p.p.send_signal(signal.SIGKILL)
        p.p.wait(10)
        check(True, "SIGKILLed with %d records durable, %d in the spool" %
              (durable_before_kill, s["spool"]["records"]))
        p = run.meshd("proxy", "load", b.bootstrap, extra, spool=p.spool, log_name="load-2")
        boots.append(status(p)["boot_id"])
        s = status(p)
        check(s["replayed_at_start"] >= durable_before_kill,
              "the restart replays %d records (>= %d durable before the kill)" %
              (s["replayed_at_start"], durable_before_kill))
    while time.monotonic() - t0 < outage:
        time.sleep(1)
    s = status(p)
    check(s["state"] == "spooling", "spooling: %s" % s.get("last_error"))
    check(s["in_flight"] <= 10000, "at most 10000 records outside the spool (%d)" % s["in_flight"])
    check(s["spool"]["records"] >= (outage / 2 if kill else outage) * rate * 0.5,
          "the outage's records wait in the spool (%d)" % s["spool"]["records"])
    b.up()
    wait_until(lambda: (status(p) or {}).get("spool", {}).get("records", 1) < rate and
               status(p)["state"] == "connected", 120, "the spool to drain")
    check(term(p) == 0, "clean exit")
    check("not acknowledged yet" not in p.output(), "nothing left unacknowledged at the end")
    pairs = read_all(run.args, b.bootstrap)
    recs, dups = dedup(pairs)
    syn = synthetic(recs, "load")
    check_order_per_key(syn)
    for i, boot in enumerate(boots):
        seqs = sorted(seq_of(r) for r, _ in syn if boot_of(r) == boot)
        check(seqs == list(range(1, len(seqs) + 1)),
              "boot %d: events 1..%d without a gap or a repeat" % (i + 1, len(seqs)))
        if kill and i == 0:
            check(len(seqs) >= durable_before_kill,
                  "every record durable before the kill arrived (%d >= %d)" %
                  (len(seqs), durable_before_kill))
        else:
            ok = [r for r, _ in syn if boot_of(r) == boot]
            check(len(ok) >= (outage / 2 if kill else outage + 1) * rate * 0.8,
                  "boot %d: %d events" % (i + 1, len(ok)))
    check(True, "%d events, %d duplicates dropped by event_id" % (len(syn), dups))
    return p


def case_outage(run):
    outage_run(run, kill=False)


def case_sigkill(run):
    outage_run(run, kill=True)


def newest_segment(folder):
    segs = sorted(n for n in os.listdir(folder) if n.endswith(".spool"))
    return os.path.join(folder, segs[-1])


def case_damage(run):
    b = run.broker()
    # a torn tail
    extra = ["--listen", "127.0.0.1:%d" % free_port(), "--audit-test-rate", "200"]
    b.down()
    p = run.meshd("proxy", "torn", b.bootstrap, extra)
    wait_until(lambda: (status(p) or {}).get("spool", {}).get("durable", 0) >= 400, 30,
               "400 records durable")
    durable = status(p)["spool"]["durable"]
    p.p.send_signal(signal.SIGKILL)
    p.p.wait(10)
    seg = newest_segment(p.spool)
    with open(seg, "ab") as f:  # a frame that claims 1000 bytes and stops after 20
        f.write((1000).to_bytes(4, "little") + b"\0\0\0\0" + os.urandom(20))
    b.up()
    p2 = run.meshd("proxy", "torn", b.bootstrap, ["--listen", "127.0.0.1:%d" % free_port()],
                   spool=p.spool, log_name="torn-2")
    s = status(p2)
    check(s["corrupt_bytes_truncated"] == 28, "28 bytes of torn tail cut (%s)" %
          s["corrupt_bytes_truncated"])
    wait_until(lambda: re.search(r"warn .*spool.*(torn|cut|truncat)", p2.output()), 10,
               "a warning about the cut tail")
    check(True, "warned: %s" % re.search(r"warn .*spool.*(torn|cut|truncat).*", p2.output())
          .group(0)[:200])
    wait_until(lambda: (status(p2) or {}).get("spool", {}).get("records", 1) == 0, 60,
               "the replayed records sent")
    check(term(p2) == 0, "clean exit")

    # a full spool during an outage
    b.down()
    full = run.meshd("proxy", "full", b.bootstrap,
                     ["--listen", "127.0.0.1:%d" % free_port(), "--audit-test-rate", "1000",
                      "--audit-spool-max", "1MiB"])
    wait_until(lambda: (status(full) or {}).get("dropped", {}).get("spool_full", 0) >= 2000, 60,
               "2000 records dropped by the full spool")
    s = status(full)
    check(s["spool"]["bytes"] <= 1024 * 1024, "the spool stays under 1 MiB (%d)" %
          s["spool"]["bytes"])
    wait_until(lambda: re.search(r"record dropped", full.output()), 10, "the drop is logged")
    b.up()
    wait_until(lambda: (status(full) or {}).get("dropped", {}).get("reported", 0) > 0 and
               status(full)["dropped"]["reported"] == status(full)["dropped"]["spool_full"] and
               status(full)["spool"]["records"] < 1000, 60, "the drops reported")
    s = status(full)
    check(term(full) == 0, "clean exit")
    pairs = read_all(run.args, b.bootstrap)
    recs, _ = dedup(pairs)
    reports = [r for r, _ in recs if r["type"] == "audit_dropped" and r["node"] == "full"]
    check(len(reports) >= 1, "%d audit_dropped events" % len(reports))
    total = sum(r["dropped"] for r in reports)
    check(total == s["dropped"]["spool_full"] == s["dropped"]["reported"],
          "audit_dropped counts add up to the drops counted: %d == %d" %
          (total, s["dropped"]["spool_full"]))
    torn = [r for r, _ in recs if r["node"] == "torn" and r["type"] == "config_rejected"]
    seqs = sorted(seq_of(r) for r in torn)
    check(seqs[:durable] == list(range(1, durable + 1)),
          "the torn node's %d durable records arrived, in one run without a gap" % durable)


def mapped_paths(p, name):
    """The files of p's mappings whose path has name in it."""
    with open("/proc/%d/maps" % p.p.pid) as f:
        return {line.split()[-1] for line in f if name in line}


def missing_librdkafka(run, dead, lib_path):
    """A proxy auditing to Kafka whose librdkafka.so.1 is an empty file (/dev/null bound over it
    in a mount namespace of its own; nothing outside it changes)."""
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        print("  skipped: a missing librdkafka (unshare -m is not allowed here)", flush=True)
        return
    argv = [run.args.meshd, "proxy", "--node", "nolib", "--workers", "1",
            "--listen", "127.0.0.1:%d" % free_port(), "--admin-listen", str(free_port()),
            "--log-format", "text", "--audit-spool", os.path.join(run.dir, "spool-nolib"),
            "--audit-kafka", dead]
    p = run.start("nolib", ["unshare", "-m", "sh", "-c",
                            'mount --bind /dev/null "$0" && exec "$@"', lib_path] + argv)
    wait_until(lambda: re.search(r"librdkafka\.so\.1 cannot be loaded: .*; install librdkafka1",
                                 p.output()) or not p.alive(), 20,
               "a log line naming the missing library")
    check(re.search(r"librdkafka\.so\.1 cannot be loaded: .*; install librdkafka1", p.output()),
          "the log says librdkafka.so.1 cannot be loaded and names the package:\n" +
          p.output()[-1500:])
    check(p.alive() and not mapped_paths(p, "librdkafka"), "alive, without librdkafka")
    check(term(p) == 0, "clean exit")


def case_wrong(run):
    dead = "127.0.0.1:%d" % free_port()
    # no --audit-kafka: librdkafka is not opened, and neither is what it brings (libcrypto)
    p = run.meshd("proxy", "nokafka", None, ["--listen", "127.0.0.1:%d" % free_port()])
    check(not mapped_paths(p, "librdkafka") and not mapped_paths(p, "libcrypto"),
          "a proxy without --audit-kafka maps neither librdkafka nor libcrypto: %s"
          % (mapped_paths(p, "librdkafka") | mapped_paths(p, "libcrypto")))
    check(term(p) == 0, "clean exit")
    # a port nobody listens on
    p = run.meshd("proxy", "refused", dead, ["--listen", "127.0.0.1:%d" % free_port(),
                                              "--audit-test-rate", "10"])
    wait_until(lambda: (status(p) or {}).get("state") == "spooling", 20, "state spooling")
    lib = mapped_paths(p, "librdkafka.so.1")
    check(len(lib) == 1, "a proxy auditing to Kafka has opened librdkafka: %s" % lib)
    wait_until(lambda: re.search(r"Kafka does not take records: all brokers down", p.output()),
               10, "a clear log line")
    check("Connection refused" in (status(p)["last_error"] or ""),
          "last_error: %s" % status(p)["last_error"])
    time.sleep(2)
    check(p.alive() and status(p)["spool"]["records"] > 0, "alive, spooling")
    r = subprocess.run([run.args.meshd, "audit", "status", "--admin", "127.0.0.1:%d" % p.admin],
                       capture_output=True, text=True, env=meshd_env(), timeout=30)
    check(r.returncode == 0 and "state: spooling" in r.stdout and "Connection refused" in r.stdout,
          "meshd audit status says so:\n" + r.stdout.strip())
    check(term(p) == 0, "clean exit")
    # a name that does not resolve
    p = run.meshd("proxy", "unresolved", "kafka.invalid:9092",
                  ["--listen", "127.0.0.1:%d" % free_port(), "--audit-test-rate", "10"])
    wait_until(lambda: re.search(r"Failed to resolve 'kafka.invalid:9092'", p.output()), 20,
               "a clear log line about the name")
    wait_until(lambda: (status(p) or {}).get("state") == "spooling", 20, "state spooling")
    check(term(p) == 0, "clean exit")
    # a topic the cluster does not have (and does not create)
    argv_b = [run.args.broker, "--refuse-topic", "meshd.wrong", "--bootstrap-file",
              os.path.join(run.dir, "bootstrap-refusing")]
    bp = run.start("kafka-refusing", argv_b)
    bs = wait_until(lambda: _read_line(os.path.join(run.dir, "bootstrap-refusing")), 20,
                    "the refusing broker's bootstrap")
    p = run.meshd("proxy", "wrongtopic", bs,
                  ["--listen", "127.0.0.1:%d" % free_port(), "--audit-test-rate", "10",
                   "--audit-topic", "meshd.wrong",
                   "--audit-kafka-opt", "topic.metadata.propagation.max.ms=2000"])
    wait_until(lambda: re.search(r"delivery to Kafka topic meshd.wrong failed: .*Unknown topic",
                                 p.output()), 60, "a clear log line about the topic")
    wait_until(lambda: (status(p) or {}).get("state") == "spooling", 20, "state spooling")
    check(p.alive(), "alive")
    check(term(p) == 0, "clean exit")
    bp.kill()
    # a property librdkafka does not know: a configuration error
    r = subprocess.run([run.args.meshd, "proxy", "--listen", "127.0.0.1:0", "--audit-kafka",
                        dead, "--audit-kafka-opt", "no.such.property=1"], capture_output=True,
                       env=meshd_env(), timeout=30)
    err = r.stderr.decode()
    check(r.returncode == 2 and "audit-kafka-opt" in err and "no.such.property" in err,
          "exit 2 naming the option: %s" % err.strip())
    missing_librdkafka(run, dead, lib.pop())


def _read_line(path):
    try:
        with open(path) as f:
            line = f.read()
    except FileNotFoundError:
        return None
    return line.strip() if line.endswith("\n") else None


CASES = {"events": case_events, "outage": case_outage, "sigkill": case_sigkill,
         "damage": case_damage, "wrong": case_wrong}


def main():
    def add_args(ap):
        ap.add_argument("--broker", required=True)
        ap.add_argument("--schema", required=True)
        ap.add_argument("--outage", type=int, default=60,
                        help="seconds Kafka is down in the outage and sigkill cases (CI: 20)")
    return run(CASES, Run, add_args)


if __name__ == "__main__":
    sys.exit(main())
