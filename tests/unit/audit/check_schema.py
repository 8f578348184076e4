#!/usr/bin/python3
"""tests/unit/audit/check_schema.py: audit records against docs/audit-event.schema.json.

As a test (ctest audit.schema):
    check_schema.py --schema SCHEMA --emit PROGRAM
runs `PROGRAM --emit` (tests/unit/audit/test_audit_event.c: every event type with hostile
strings), and checks that
  - the schema is a valid draft 2020-12 schema,
  - every line is one JSON object without duplicate keys that the schema accepts, whose ts
    parses as RFC 3339 UTC with microseconds,
  - every type of the schema's enum and every property of the schema occurs in the output,
  - records that break the rules (a field missing, a wrong type, a field of another type, a
    timestamp without microseconds, ...) are rejected: the schema is not vacuous.

As a tool (integration tests import it, or run it on files):
    check_schema.py --schema SCHEMA FILE...      (JSON lines; '-' is stdin)
    from check_schema import load_validator, check_record
"""
import argparse
import copy
import datetime
import json
import subprocess
import sys

import jsonschema


def load_validator(schema_path):
    """A draft 2020-12 validator for the schema file (checked against the meta-schema)."""
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema), schema


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError("duplicate keys %s" % sorted(dup))
    return dict(pairs)


def parse_line(line):
    """One JSON line -> dict; raises ValueError on bad JSON or duplicate keys."""
    return json.loads(line, object_pairs_hook=_no_duplicates)


def check_record(validator, rec):
    """A list of problems with one parsed record (empty when it is valid)."""
    errs = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(record)", e.message)
            for e in validator.iter_errors(rec)]
    ts = rec.get("ts") if isinstance(rec, dict) else None
    if isinstance(ts, str):
        try:
            datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
        except ValueError as e:
            errs.append("ts: %s" % e)
    return errs


def check_lines(validator, lines, where):
    """Validates JSON lines; returns (records, problems)."""
    recs, problems = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = parse_line(line)
        except ValueError as e:
            problems.append("%s:%d: not JSON: %s" % (where, i, e))
            continue
        for p in check_record(validator, rec):
            problems.append("%s:%d: %s" % (where, i, p))
        recs.append(rec)
    return recs, problems


# Records that must be refused, as (what, mutation of a valid record of a given type).
def _mutations():
    def drop(k):
        return lambda r: r.pop(k)

    def setk(k, v):
        return lambda r: r.__setitem__(k, v)

    return [
        ("breaker_open", "no event_id", drop("event_id")),
        ("breaker_open", "no peer", drop("peer")),
        ("breaker_open", "status missing", drop("status")),
        ("breaker_open", "bad event_id", setk("event_id", "abc-1")),
        ("breaker_open", "ts without microseconds", setk("ts", "2026-12-01T16:40:00Z")),
        ("breaker_open", "ts not UTC", setk("ts", "2026-12-01T16:40:00.123456+01:00")),
        ("breaker_open", "ts month 13", setk("ts", "2026-13-01T16:40:00.123456Z")),
        ("breaker_open", "unknown type", setk("type", "breaker_opened")),
        ("breaker_open", "unknown outcome", setk("outcome", "ok")),
        ("breaker_open", "schema 2", setk("schema", 2)),
        ("breaker_open", "status 17", setk("status", 17)),
        ("breaker_open", "status as string", setk("status", "14")),
        ("breaker_open", "empty node", setk("node", "")),
        ("breaker_open", "extra field", setk("extra", 1)),
        ("breaker_open", "source on a breaker event", setk("source", "etcd")),
        ("breaker_open", "no instance", drop("instance")),
        ("breaker_open", "truncated false", setk("truncated", False)),
        ("breaker_open", "peer without identity", lambda r: r["peer"].pop("identity")),
        ("breaker_open", "peer with extra", lambda r: r["peer"].__setitem__("port", 1)),
        ("instance_removed", "no source", drop("source")),
        ("instance_removed", "unknown source", setk("source", "dns")),
        ("instance_removed", "null instance", setk("instance", None)),
        ("instance_registered", "no instance", drop("instance")),
        ("member_dead", "no member", drop("member")),
        ("member_dead", "ready on member_dead", setk("ready", True)),
        ("readiness_changed", "no ready", drop("ready")),
        ("readiness_changed", "ready as string", setk("ready", "true")),
        ("audit_dropped", "no dropped", drop("dropped")),
        ("audit_dropped", "dropped 0", setk("dropped", 0)),
        ("acl_denied", "member on acl_denied", setk("member", "m")),
        ("acl_denied", "dropped on acl_denied", setk("dropped", 3)),
    ]


def self_test(validator, schema, recs):
    problems = []
    types = set(schema["properties"]["type"]["enum"])
    seen = {r.get("type") for r in recs}
    if types - seen:
        problems.append("types never emitted: %s" % sorted(types - seen))
    if seen - types:
        problems.append("types emitted but not in the schema: %s" % sorted(seen - types))
    props = set(schema["properties"])
    used = set().union(*(r.keys() for r in recs)) if recs else set()
    if props - used:
        problems.append("schema properties never emitted: %s" % sorted(props - used))
    by_type = {}
    for r in recs:
        if "truncated" not in r:
            by_type.setdefault(r["type"], r)
    for typ, what, mutate in _mutations():
        if typ not in by_type:
            problems.append("no record of type %s to mutate" % typ)
            continue
        r = copy.deepcopy(by_type[typ])
        mutate(r)
        if not check_record(validator, r):
            problems.append("the schema accepts a record with %s: %s" % (what, json.dumps(r)))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("--emit", help="a program whose `--emit` prints records (self-test)")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    validator, schema = load_validator(a.schema)
    problems, recs = [], []
    if a.emit:
        out = subprocess.run([a.emit, "--emit"], check=True, stdout=subprocess.PIPE).stdout
        text = out.decode("utf-8")  # strict: the records must be valid UTF-8
        r, p = check_lines(validator, text.split("\n"), a.emit)
        recs += r
        problems += p
        problems += self_test(validator, schema, recs)
    for path in a.files:
        f = sys.stdin if path == "-" else open(path, encoding="utf-8")
        with f:
            r, p = check_lines(validator, f.read().split("\n"), path)
        recs += r
        problems += p
    for p in problems:
        print("FAIL " + p, file=sys.stderr)
    print("%d records, %d problems" % (len(recs), len(problems)))
    return 1 if problems or not recs else 0


if __name__ == "__main__":
    sys.exit(main())
