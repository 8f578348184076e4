#!/usr/bin/python3
"""tests/integration/policy/test_policy_kafka.py: the policy chain's refusals read back from
Kafka: a meshd proxy auditing through its spool to the test Kafka cluster
(tests/peers/kafka_broker) refuses calls in every filter (a bad JWT, a bad signature, an ACL, a
rate limit) and each refusal arrives as a record of its type, read with python3-kafka (an
independent consumer), keyed by service, with the reason, peer, trace id and status, valid
against docs/audit-event.schema.json."""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "audit"))
import kafka_rig  # noqa: E402
from test_policy import ECHO, PolicyCase, call, check_schema  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Fail, check  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--broker", required=True)
    args = ap.parse_args()
    c = PolicyCase(args)
    ok = False
    try:
        with kafka_rig.Broker(args.broker, c.dir, topics=[("meshd.audit", 3)]) as b:
            p = c.proxy("kafka", """
  jwt: {jwks-file: %s, audiences: meshd}
  signature: {secrets-file: %s}
  rules:
    - match: %s/Unary
      authn: jwt
      deny: {identities: [mallory]}
    - match: %s/ServerStream
      signature: true
    - match: %s/ClientStream
      rate-limit: {key: peer, rate: 1, burst: 1}
""" % (c.jwks, c.clients, ECHO, ECHO, ECHO), audit=False,
                extra=["--audit-kafka", b.bootstrap, "--audit-spool", os.path.join(c.dir, "spool")])
            check(not call(p.target, [("authorization", "Bearer " + c.token(exp=1))]).ok,
                  "an expired token refused")
            check(not call(p.target, [("authorization", "Bearer " + c.token(sub="mallory"))]).ok,
                  "a denied identity refused")
            from echo_client import EchoClient
            with EchoClient(p.target) as cl:
                r = cl.server_stream(payload=b"s", timeout=10,
                                     metadata=[("x-meshd-signature", "keyId=alice")])
                check(not r.ok, "a malformed signature refused")
                codes = [cl.client_stream([], timeout=10).code for _ in range(3)]
            check(any(str(x).endswith("RESOURCE_EXHAUSTED") for x in codes),
                  "a rate-limited call refused: %s" % codes)
            want = {"authn_failure", "acl_denied", "signature_invalid", "rate_limited"}
            deadline = time.monotonic() + 30
            seen = {}
            while time.monotonic() < deadline and not want <= set(seen):
                for r in kafka_rig.consume(b.bootstrap, "meshd.audit", want=4, timeout=5):
                    rec = json.loads(r.value)
                    seen.setdefault(rec["type"], (r, rec))
            check(want <= set(seen), "every kind of refusal arrived in Kafka: %s" % sorted(seen))
            for t in sorted(want):
                r, rec = seen[t]
                check(rec["outcome"] == "denied" and rec["service"] == ECHO and
                      r.key == ECHO.encode() and len(rec["trace_id"]) == 32 and
                      rec["peer"]["address"].startswith("127.0.0.1") and rec["reason"],
                      "%s: keyed by service, with reason (%s), peer, trace id, status %s"
                      % (t, rec["reason"], rec["status"]))
            check(seen["acl_denied"][1]["peer"]["identity"] == "mallory",
                  "the ACL record names the identity")
            check_schema([rec for _, rec in seen.values()])
        ok = True
        print("PASS kafka")
    except Fail as e:
        print("FAIL:", e)
    finally:
        c.stop(not ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
