#!/usr/bin/python3
"""tests/integration/audit/test_kafka_broker.py: the test Kafka cluster (tests/peers/
kafka_broker) works with independent clients and fails over the way the audit tests need.

  - it prints its bootstrap list on stdout (one line) and in --bootstrap-file, the same list;
  - `kcat -L` sees every broker and the created topic with its partitions;
  - audit records produced with kcat are read back by python3-kafka, byte for byte, in order
    per key, and are valid against docs/audit-event.schema.json;
  - a long-lived python3-kafka producer (acks=all) sends across an outage: SIGUSR1 takes every
    broker down (kcat can neither read metadata nor deliver), records sent meanwhile wait,
    SIGUSR2 brings the brokers back and those records are acknowledged; kcat produces again;
  - afterwards every record is in the topic exactly once, and nothing that failed is;
  - SIGTERM stops it with exit code 0.
"""
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from kafka_rig import (Broker, Fail, check, kcat_produce, kcat_metadata, consume,  # noqa: E402
                       audit_records, validate)

TOPIC = "meshd.audit"


def run(a, workdir):
    b = Broker(a.broker, workdir, brokers=2, topics=[(TOPIC, 3)])
    try:
        check(b.stdout().strip() == b.bootstrap, "stdout and --bootstrap-file agree: " + b.bootstrap)
        check(len(b.bootstrap.split(",")) == 2 and all(
            s.startswith("127.0.0.1:") for s in b.bootstrap.split(",")),
            "two loopback brokers")
        rc, md = kcat_metadata(b.bootstrap)
        check(rc == 0 and " 2 brokers:" in md, "kcat -L sees 2 brokers")
        check('topic "%s" with 3 partitions' % TOPIC in md, "kcat -L sees the topic, 3 partitions")

        values = audit_records(a.emit, 30)[::5]  # six records of assorted types
        keyed = [(b"svc%d" % (i % 2), v) for i, v in enumerate(values)]
        rc, err = kcat_produce(b.bootstrap, TOPIC, keyed)
        check(rc == 0, "kcat produced %d audit records (%s)" % (len(keyed), err.strip()[-200:]))
        got = consume(b.bootstrap, TOPIC, len(keyed))
        check(sorted(r.value for r in got) == sorted(values),
              "python3-kafka read back the same %d records" % len(values))
        for key in (b"svc0", b"svc1"):
            check([r.value for r in got if r.key == key] == [v for k, v in keyed if k == key],
                  "order kept for key %s" % key.decode())
        validate(a.schema, [r.value for r in got])
        check(True, "every record read back is valid against the schema")

        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=b.bootstrap.split(","), acks="all", retries=10,
                          request_timeout_ms=30000, max_block_ms=30000, linger_ms=0)
        p.send(TOPIC, key=b"svc0", value=b'{"before":1}').get(timeout=20)
        check(True, "python3-kafka producer acknowledged before the outage")

        b.down()
        rc, _ = kcat_metadata(b.bootstrap, timeout_s=3)
        check(rc != 0, "brokers down: kcat -L fails")
        rc, err = kcat_produce(b.bootstrap, TOPIC, [(b"svc0", b'{"lost":1}')], timeout_ms=2000)
        check(rc != 0, "brokers down: kcat cannot deliver (%s)" % err.strip().splitlines()[-1:])
        futures = [p.send(TOPIC, key=b"svc1", value=b'{"during":%d}' % i) for i in range(3)]
        check(not any(f.is_done and f.succeeded() for f in futures),
              "records sent during the outage are not acknowledged")

        b.up()
        for f in futures:
            f.get(timeout=60)
        check(True, "the 3 records sent during the outage were acknowledged after it")
        rc, err = kcat_produce(b.bootstrap, TOPIC, [(b"svc0", b'{"after":1}')])
        check(rc == 0, "brokers up: kcat produces again")
        p.close(timeout=10)

        want = values + [b'{"before":1}', b'{"during":0}', b'{"during":1}', b'{"during":2}',
                         b'{"after":1}']
        got = consume(b.bootstrap, TOPIC, len(want))
        check(sorted(r.value for r in got) == sorted(want),
              "the topic holds every acknowledged record exactly once, and not the failed one")
        check([r.value for r in got if r.key == b"svc1"][-3:] ==
              [b'{"during":0}', b'{"during":1}', b'{"during":2}'],
              "records sent during the outage kept their order")
    finally:
        rc = b.stop()
    check(rc == 0, "SIGTERM: kafka_broker exits 0")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker", required=True, help="tests/peers/kafka_broker")
    ap.add_argument("--emit", required=True, help="test_audit_event (its --emit)")
    ap.add_argument("--schema", required=True)
    a = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="meshd-it-kafka-")
    ok = False
    try:
        run(a, workdir)
        ok = True
        print("PASS")
    except Fail as e:
        print("FAIL:", e)
        for name in sorted(os.listdir(workdir)):
            with open(os.path.join(workdir, name), errors="replace") as f:
                print("---- %s ----\n%s" % (name, f.read()[-3000:]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
