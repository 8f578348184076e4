"""tests/integration/audit/kafka_rig.py: what the audit integration tests share: the test
Kafka cluster (tests/peers/kafka_broker, librdkafka's mock cluster) as a process of the test,
kcat as an independent producer, python3-kafka as an independent consumer, and the record
validator (tests/unit/audit/check_schema.py, against docs/audit-event.schema.json).

    with Broker(exe, workdir, brokers=2, topics=[("meshd.audit", 3)]) as b:
        kcat_produce(b.bootstrap, "meshd.audit", [(b"key", b"value"), ...])
        b.down(); b.up()
        recs = consume(b.bootstrap, "meshd.audit", want=5)

Every process is started by this module, recorded by PID and stopped by that PID only.
"""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "..", "unit", "audit"))
import check_schema  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from procs import Fail, check, wait_until  # noqa: E402,F401  (also for the audit tests)


class Broker:
    """A kafka_broker process: .bootstrap, .down(), .up(), .stop() (exit code)."""

    def __init__(self, exe, workdir, brokers=1, topics=(("meshd.audit", 4),)):
        self.log = os.path.join(workdir, "kafka_broker.log")
        self.out = os.path.join(workdir, "kafka_broker.out")
        self.file = os.path.join(workdir, "bootstrap")
        argv = [exe, "--brokers", str(brokers), "--bootstrap-file", self.file]
        for name, parts in topics:
            argv += ["--topic", name, "--partitions", str(parts)]
        print("starting:", " ".join(argv), flush=True)
        with open(self.log, "wb") as err, open(self.out, "wb") as out:
            self.p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        self.bootstrap = wait_until(self._bootstrap, 20, "kafka_broker's bootstrap file")
        self.brokers = brokers

    def _bootstrap(self):
        if self.p.poll() is not None:
            raise Fail("kafka_broker exited (%s): %s" % (self.p.returncode, self.output()))
        try:
            with open(self.file) as f:
                line = f.read()
        except FileNotFoundError:
            return None
        return line.strip() if line.endswith("\n") else None

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def _signal(self, sig, word):
        n = self.output().count("brokers " + word)
        self.p.send_signal(sig)
        wait_until(lambda: self.output().count("brokers " + word) > n, 10,
                   "kafka_broker to report brokers " + word)

    def down(self):
        """Every broker refuses connections (SIGUSR1)."""
        self._signal(signal.SIGUSR1, "down")

    def up(self):
        """Every broker accepts connections again (SIGUSR2)."""
        self._signal(signal.SIGUSR2, "up")

    def stop(self, timeout=20):
        """SIGTERM, then the exit code (None when it had to be killed)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=10)
                return None
        return self.p.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def kcat_produce(bootstrap, topic, records, timeout_ms=10000, extra=()):
    """Produces (key, value) pairs (bytes; values without newlines) with kcat, keys split off
    at the first '|'. Returns (exit code, stderr text)."""
    data = b"".join(k + b"|" + v + b"\n" for k, v in records)
    r = subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", "|", "-X",
                        "message.timeout.ms=%d" % timeout_ms] + list(extra),
                       input=data, capture_output=True, timeout=timeout_ms / 1000 + 30)
    return r.returncode, r.stderr.decode(errors="replace")


def kcat_metadata(bootstrap, timeout_s=5):
    """(exit code, stdout text) of `kcat -L`."""
    r = subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", str(timeout_s)],
                       capture_output=True, timeout=timeout_s + 30)
    return r.returncode, r.stdout.decode(errors="replace")


def end_offsets(bootstrap, topic):
    """{partition: end offset} through python3-kafka."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        parts = wait_until(lambda: c.partitions_for_topic(topic), 20, "partitions of " + topic)
        return c.end_offsets([TopicPartition(topic, p) for p in parts])
    finally:
        c.close()


def consume(bootstrap, topic, want, timeout=30):
    """Every record of topic from the beginning, read with python3-kafka (no group), until
    `want` arrived (then a short extra read catches any surplus) or the deadline. A list of
    kafka ConsumerRecords in partition, offset order."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                      auto_offset_reset="earliest")
    try:
        parts = wait_until(lambda: c.partitions_for_topic(topic), 20, "partitions of " + topic)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                got += recs
        for recs in c.poll(timeout_ms=500).values():
            got += recs
        return sorted(got, key=lambda r: (r.partition, r.offset))
    finally:
        c.close()


def audit_records(emit_exe, n=None):
    """Encoded audit records (bytes, one per element) from `test_audit_event --emit`."""
    out = subprocess.run([emit_exe, "--emit"], check=True, capture_output=True).stdout
    lines = [line for line in out.split(b"\n") if line]
    return lines[:n] if n else lines


def validate(schema, values):
    """Every value (bytes) is a record the JSON Schema accepts; returns the parsed records."""
    validator, _ = check_schema.load_validator(schema)
    recs = []
    for v in values:
        rec = check_schema.parse_line(v.decode("utf-8"))
        problems = check_schema.check_record(validator, rec)
        if problems:
            raise Fail("record not valid against the schema: %s: %s" % (problems, v[:300]))
        recs.append(rec)
    return recs


def has_control_chars(text):
    """Whether text holds a C0 control other than newline, DEL, or a C1 control."""
    return re.search("[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]", text) is not None
