#!/usr/bin/python3
"""tests/integration/audit/test_audit_tail.py: `meshd audit tail` against the test Kafka
cluster (tests/peers/kafka_broker), with audit records from the encoder (every type, hostile
strings) produced by kcat.

  - --from-beginning --json prints every record byte for byte, in order per key, and exits 0
    at the end of the topic; every record is valid against the schema;
  - for people: a header and one line per event, no control character reaches the terminal,
    an instance_removed event shows its type, outcome, service, reason and source;
  - --last N prints the last N records of each partition;
  - --follow prints records produced after it started, keeps going across a Kafka outage
    (brokers down and up) and exits 0 on SIGTERM;
  - errors exit 1 with a message and do not hang: a port nobody listens on, a host that does
    not resolve, a topic that does not exist (and is not created by asking), brokers that went
    down; bad flags exit 2 with the usage.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from kafka_rig import (Broker, Fail, check, wait_until, kcat_produce, kcat_metadata,  # noqa: E402
                       end_offsets, audit_records, validate, has_control_chars)
from procs import free_port, meshd_env  # noqa: E402  (kafka_rig put lib/ on the path)

TOPIC = "meshd.audit"


def tail(a, *argv, timeout=60):
    """(exit code, stdout, stderr, seconds) of `meshd audit tail ARGV`."""
    t0 = time.monotonic()
    r = subprocess.run([a.meshd, "audit", "tail"] + list(argv), capture_output=True,
                       timeout=timeout, env=meshd_env())
    return (r.returncode, r.stdout.decode("utf-8", "replace"),
            r.stderr.decode("utf-8", "replace"), time.monotonic() - t0)


def run(a, workdir):
    b = Broker(a.broker, workdir, brokers=2, topics=[(TOPIC, 3), ("other", 1)])
    follower = None
    try:
        values = audit_records(a.emit)
        keyed = [(b"svc%d" % (i % 5), v) for i, v in enumerate(values)]
        rc, err = kcat_produce(b.bootstrap, TOPIC, keyed)
        check(rc == 0, "kcat produced %d audit records" % len(keyed))

        # --json, from the beginning: everything, as it is
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--from-beginning", "--json")
        check(rc == 0, "--from-beginning --json exits 0 at the end (%s)" % err.strip()[-300:])
        lines = [line.encode() for line in out.split("\n") if line]
        check(sorted(lines) == sorted(values),
              "--json printed every record as it was produced (%d)" % len(values))
        recs = validate(a.schema, lines)
        check(True, "every printed record is valid against the schema")
        ids = {r["event_id"]: i for i, r in enumerate(recs)}
        for key in (b"svc0", b"svc3"):
            sent = [json.loads(v)["event_id"] for k, v in keyed if k == key]
            check(sorted(sent, key=lambda e: ids[e]) == sent, "order kept for key " + key.decode())

        # for people
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--from-beginning")
        check(rc == 0, "--from-beginning exits 0")
        lines = out.rstrip("\n").split("\n")
        check(lines[0].split()[:3] == ["TIME", "TYPE", "OUTCOME"], "a header line")
        check(len(lines) == 1 + len(values), "one line per event (%d)" % (len(lines) - 1))
        check(not has_control_chars(out), "no control character reaches the terminal")
        removed = [line for line in lines if " instance_removed " in line and "plain ascii" in line]
        check(len(removed) == 1 and " failure " in removed[0] and
              "source=lease_expiry" in removed[0] and removed[0].startswith(
                  "2026-12-01T16:40:00.123456Z"),
              "an instance_removed line shows time, type, outcome, strings and source: %r"
              % removed[:1])
        check(all(line[:4].isdigit() for line in lines[1:]), "every event line starts with its time")

        # --last N: the newest N of each partition
        ends = end_offsets(b.bootstrap, TOPIC)
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--last", "3", "--json")
        got = [line.encode() for line in out.split("\n") if line]
        want = sum(min(3, n) for n in ends.values())
        check(rc == 0 and len(got) == want, "--last 3 printed %d records (want %d)"
              % (len(got), want))
        check(all(v in values for v in got), "... records of the topic")

        # --follow: new records, across an outage, until SIGTERM
        out_path = os.path.join(workdir, "follow.out")
        with open(out_path, "wb") as f, open(os.path.join(workdir, "follow.err"), "wb") as e:
            follower = subprocess.Popen([a.meshd, "audit", "tail", "--kafka", b.bootstrap,
                                         "--follow", "--json", "--last", "1"],
                                        stdout=f, stderr=e, stdin=subprocess.DEVNULL)

        def printed():
            with open(out_path, "rb") as f:
                return [line for line in f.read().split(b"\n") if line]
        nonempty = sum(1 for n in ends.values() if n > 0)
        wait_until(lambda: len(printed()) >= nonempty, 30, "--follow to print the last records")
        new = audit_records(a.emit)[:2]
        # the same records again under other keys: tail prints what is in the topic
        rc, _ = kcat_produce(b.bootstrap, TOPIC, [(b"new", v) for v in new])
        check(rc == 0, "produced 2 more records")
        wait_until(lambda: len(printed()) >= nonempty + 2, 30, "--follow to print new records")
        check(printed()[-2:] == new or sorted(printed()[-2:]) == sorted(new),
              "--follow printed the new records")
        b.down()
        b.up()
        rc, _ = kcat_produce(b.bootstrap, TOPIC, [(b"new", new[0])])
        check(rc == 0, "produced one more record after an outage")
        wait_until(lambda: len(printed()) >= nonempty + 3, 60,
                   "--follow to print a record produced after the outage")
        check(follower.poll() is None, "--follow survived the outage")
        follower.send_signal(signal.SIGTERM)
        check(follower.wait(timeout=20) == 0, "--follow exits 0 on SIGTERM")
        follower = None

        # errors: clear, bounded, exit 1
        rc, out, err, took = tail(a, "--kafka", "127.0.0.1:%d" % free_port(), "--timeout", "3")
        check(rc == 1 and "cannot reach Kafka at 127.0.0.1:" in err and "Connection refused"
              in err, "a port nobody listens on: exit 1, says so: " + err.strip())
        check(took < 30, "... and does not hang (%.1f s)" % took)
        rc, out, err, took = tail(a, "--kafka", "no-such-host.invalid:9092", "--timeout", "3")
        check(rc == 1 and "cannot reach Kafka at no-such-host.invalid:9092" in err and
              "resolve" in err, "a host that does not resolve: exit 1: " + err.strip())
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--topic", "no.such.topic")
        check(rc == 1 and "topic 'no.such.topic' does not exist" in err and "meshd.audit" in err,
              "a missing topic: exit 1, names the topics there: " + err.strip())
        rc, md = kcat_metadata(b.bootstrap)
        check(rc == 0 and "no.such.topic" not in md, "... and asking did not create it")
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--topic", "other", "--from-beginning")
        check(rc == 0 and out.count("\n") == 1, "an empty topic: the header, exit 0")
        b.down()
        rc, out, err, took = tail(a, "--kafka", b.bootstrap, "--timeout", "3")
        check(rc == 1 and "cannot reach Kafka" in err, "brokers down: exit 1: " + err.strip())
        check(took < 30, "... within the timeout (%.1f s)" % took)
        b.up()
        rc, out, err, _ = tail(a)
        check(rc == 2 and "--kafka BROKERS is required" in err and "usage:" in err,
              "no --kafka: exit 2 with the usage")
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--last", "x")
        check(rc == 2 and "--last" in err, "a bad --last: exit 2")
        rc, out, err, _ = tail(a, "--kafka", b.bootstrap, "--kafka-opt", "no.such.prop=1")
        check(rc == 2 and "no.such.prop" in err, "an unknown librdkafka property: exit 2")
        r = subprocess.run([a.meshd, "audit"], capture_output=True, timeout=30)
        check(r.returncode == 2 and b"tail" in r.stderr, "`meshd audit` alone: exit 2")
    finally:
        if follower and follower.poll() is None:
            follower.kill()
            follower.wait(timeout=10)
        rc = b.stop()
    check(rc == 0, "kafka_broker exits 0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--broker", required=True, help="tests/peers/kafka_broker")
    ap.add_argument("--emit", required=True, help="test_audit_event (its --emit)")
    ap.add_argument("--schema", required=True)
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="meshd-it-audit-tail-")
    ok = False
    try:
        run(a, workdir)
        ok = True
        print("PASS")
    except (Fail, subprocess.TimeoutExpired) as e:
        print("FAIL:", e)
        for name in sorted(os.listdir(workdir)):
            with open(os.path.join(workdir, name), errors="replace") as f:
                print("---- %s ----\n%s" % (name, f.read()[-3000:]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
