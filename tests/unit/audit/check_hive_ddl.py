#!/usr/bin/python3
"""tests/unit/audit/check_hive_ddl.py: the Hive DDL (docs/hive/audit_events.sql) agrees with
the record's JSON Schema (docs/audit-event.schema.json), and docs/audit.md shows that DDL.

    check_hive_ddl.py --schema SCHEMA --ddl SQL [--doc MD]

Checks:
  - the table is EXTERNAL, uses org.apache.hive.hcatalog.data.JsonSerDe and is partitioned by
    one day column (dt STRING) that is not a field of the record;
  - every schema property has a column and every column a property (peer as a STRUCT with the
    same fields, recursively);
  - each column's type can hold every value the schema allows: strings in STRING (or VARCHAR
    at least maxLength long), integers in an integer type whose range covers the schema's
    minimum..maximum (BIGINT without bounds), booleans in BOOLEAN, numbers in DOUBLE/DECIMAL;
  - a date-time string declared TIMESTAMP needs the SerDe's 'timestamp.formats'; kept a STRING
    it needs a view that CASTs it AS TIMESTAMP;
  - with --doc, the "## Hive" section's sql block is the DDL file (comments and spacing aside).
Then it breaks the DDL on purpose in several ways and expects each break to be reported, so the
check cannot pass vacuously.
"""
import argparse
import json
import re
import sys

INT_RANGES = {
    "TINYINT": (-2**7, 2**7 - 1),
    "SMALLINT": (-2**15, 2**15 - 1),
    "INT": (-2**31, 2**31 - 1),
    "INTEGER": (-2**31, 2**31 - 1),
    "BIGINT": (-2**63, 2**63 - 1),
}


def strip_comments(sql):
    return "\n".join(re.sub(r"--.*$", "", line) for line in sql.split("\n"))


def split_top(s, sep=","):
    """Splits s at sep outside <>, () and quotes."""
    parts, depth, cur, quote = [], 0, "", None
    for ch in s:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts]


def parse_type(t):
    """A Hive type string -> ("STRING",) / ("VARCHAR", n) / ("STRUCT", {name: type}) / ..."""
    t = t.strip()
    m = re.fullmatch(r"(?is)struct\s*<(.*)>", t)
    if m:
        fields = {}
        for f in split_top(m.group(1)):
            name, _, ft = f.partition(":")
            fields[name.strip().strip("`").lower()] = parse_type(ft)
        return ("STRUCT", fields)
    m = re.fullmatch(r"(?is)array\s*<(.*)>", t)
    if m:
        return ("ARRAY", parse_type(m.group(1)))
    m = re.fullmatch(r"(?is)(varchar|char)\s*\(\s*(\d+)\s*\)", t)
    if m:
        return (m.group(1).upper(), int(m.group(2)))
    m = re.fullmatch(r"(?is)decimal\s*(\(.*\))?", t)
    if m:
        return ("DECIMAL",)
    return (t.upper(),)


def parse_ddl(sql):
    """{'external', 'name', 'columns': {name: type}, 'partitions': {...}, 'serde', 'serdeprops',
    'views': [text]} of the first CREATE TABLE in sql."""
    s = strip_comments(sql)
    m = re.search(r"(?is)create\s+(external\s+)?table\s+(if\s+not\s+exists\s+)?([\w.`]+)\s*\(",
                  s)
    if not m:
        raise ValueError("no CREATE TABLE")
    depth, i = 1, m.end()
    while depth and i < len(s):
        depth += {"(": 1, ")": -1}.get(s[i], 0)
        i += 1
    body, rest = s[m.end():i - 1], s[i:]
    rest = rest.split(";")[0]
    cols = {}
    for c in split_top(body):
        mm = re.match(r"(?s)\s*`?(\w+)`?\s+(.*)$", c)
        if not mm:
            raise ValueError("cannot read column %r" % c)
        if mm.group(1).lower() in cols:
            raise ValueError("column %s twice" % mm.group(1))
        cols[mm.group(1).lower()] = parse_type(re.sub(r"(?is)\s+comment\s+'.*'$", "",
                                                      mm.group(2)))
    parts = {}
    pm = re.search(r"(?is)partitioned\s+by\s*\((.*?)\)", rest)
    if pm:
        for c in split_top(pm.group(1)):
            mm = re.match(r"(?s)\s*`?(\w+)`?\s+(.*)$", c)
            parts[mm.group(1).lower()] = parse_type(mm.group(2))
    sm = re.search(r"(?is)row\s+format\s+serde\s+'([^']+)'", rest)
    props = {}
    wm = re.search(r"(?is)with\s+serdeproperties\s*\((.*?)\)", rest)
    if wm:
        for kv in split_top(wm.group(1)):
            k, _, v = kv.partition("=")
            props[k.strip().strip("'\"")] = v.strip().strip("'\"")
    views = re.findall(r"(?is)create\s+view\b.*?(?:;|$)", s)
    return {"external": bool(m.group(1)), "name": m.group(3), "columns": cols,
            "partitions": parts, "serde": sm.group(1) if sm else None, "serdeprops": props,
            "views": views}


def json_types(prop):
    t = prop.get("type")
    if t is None and "const" in prop:
        t = {bool: "boolean", int: "integer", str: "string"}[type(prop["const"])]
    ts = t if isinstance(t, list) else [t]
    return [x for x in ts if x != "null"]


def compatible(path, prop, htype, ddl, problems):
    """Appends to problems what keeps column type htype from holding prop's values."""
    kinds = json_types(prop)
    if len(kinds) != 1:
        problems.append("%s: schema type %r has no single Hive type" % (path, prop.get("type")))
        return
    k, h = kinds[0], htype[0]
    if k == "string":
        if prop.get("format") == "date-time" and h == "TIMESTAMP":
            if "timestamp.formats" not in ddl["serdeprops"]:
                problems.append("%s: TIMESTAMP column for an RFC 3339 string needs the SerDe's "
                                "'timestamp.formats'" % path)
            return
        if h == "STRING" or (h == "VARCHAR" and htype[1] >= prop.get("maxLength", 65536)):
            if prop.get("format") == "date-time" and not any(
                    re.search(r"(?is)cast\s*\(.*\b%s\b.*\s+as\s+timestamp\s*\)" % re.escape(
                        path.split(".")[-1]), v) for v in ddl["views"]):
                problems.append("%s: a date-time kept as %s needs a view that CASTs it AS "
                                "TIMESTAMP" % (path, h))
            return
        problems.append("%s: string (maxLength %s) does not fit %s" %
                        (path, prop.get("maxLength"), "/".join(map(str, htype))))
    elif k == "integer":
        if h not in INT_RANGES:
            problems.append("%s: integer in a %s column" % (path, h))
            return
        lo = prop.get("minimum", prop.get("const", -2**63))
        hi = prop.get("maximum", prop.get("const", 2**63 - 1))
        rlo, rhi = INT_RANGES[h]
        if lo < rlo or hi > rhi:
            problems.append("%s: integers %d..%d do not fit %s" % (path, lo, hi, h))
    elif k == "boolean":
        if h != "BOOLEAN":
            problems.append("%s: boolean in a %s column" % (path, h))
    elif k == "number":
        if h not in ("DOUBLE", "DECIMAL"):
            problems.append("%s: number in a %s column" % (path, h))
    elif k == "object":
        if h != "STRUCT":
            problems.append("%s: object in a %s column (needs a STRUCT)" % (path, h))
            return
        compare(path + ".", prop.get("properties", {}), htype[1], ddl, problems)
    elif k == "array":
        if h != "ARRAY":
            problems.append("%s: array in a %s column" % (path, h))
            return
        compatible(path + "[]", prop.get("items", {}), htype[1], ddl, problems)
    else:
        problems.append("%s: schema type %s has no Hive mapping" % (path, k))


def compare(prefix, props, cols, ddl, problems):
    for name in sorted(set(props) - set(cols)):
        problems.append("%s%s: in the schema but has no column" % (prefix, name))
    for name in sorted(set(cols) - set(props)):
        problems.append("%s%s: column not in the schema" % (prefix, name))
    for name in sorted(set(props) & set(cols)):
        compatible(prefix + name, props[name], cols[name], ddl, problems)


def check(schema, sql):
    """Problems with the DDL text against the schema (a list of strings)."""
    try:
        ddl = parse_ddl(sql)
    except (ValueError, AttributeError) as e:
        return ["the DDL cannot be read: %s" % e]
    problems = []
    if not ddl["external"]:
        problems.append("the table is not EXTERNAL")
    if ddl["serde"] != "org.apache.hive.hcatalog.data.JsonSerDe":
        problems.append("SerDe %r is not org.apache.hive.hcatalog.data.JsonSerDe" % ddl["serde"])
    if list(ddl["partitions"]) != ["dt"] or ddl["partitions"]["dt"] != ("STRING",):
        problems.append("partitions %r: expected one day column dt STRING" % ddl["partitions"])
    if set(ddl["partitions"]) & set(schema["properties"]):
        problems.append("a partition column is also a record field")
    compare("", schema["properties"], ddl["columns"], ddl, problems)
    return problems


def doc_problems(sql, doc):
    """The doc's '## Hive' section must hold the DDL file's statements as an sql block."""
    m = re.search(r"(?ms)^## Hive\s*$(.*?)(?=^## |\Z)", doc)
    if not m:
        return ["the doc has no '## Hive' section"]
    blocks = re.findall(r"(?ms)^```sql\n(.*?)^```", m.group(1))
    norm = lambda s: re.sub(r"\s+", " ", strip_comments(s)).strip()  # noqa: E731
    if not any(norm(b) == norm(sql) for b in blocks):
        return ["the doc's '## Hive' section has no sql block equal to the DDL file"]
    return []


# Ways to break the DDL that the check must notice: (what, text transformation).
BREAKS = [
    ("a column missing", lambda s: s.replace("  `member`    STRING,\n", "")),
    ("a column too many", lambda s: s.replace("  `ready`     BOOLEAN,",
                                              "  `ready`     BOOLEAN,\n  `extra` STRING,")),
    ("dropped as INT", lambda s: s.replace("`dropped`   BIGINT", "`dropped`   INT")),
    ("status as STRING", lambda s: s.replace("`status`    INT", "`status`    STRING")),
    ("ready as STRING", lambda s: s.replace("`ready`     BOOLEAN", "`ready`     STRING")),
    ("peer without identity", lambda s: s.replace(", identity:STRING>", ">")),
    ("peer as a STRING", lambda s: s.replace("STRUCT<address:STRING, identity:STRING>",
                                             "STRING")),
    ("reason in a short VARCHAR", lambda s: s.replace("`reason`    STRING",
                                                      "`reason`    VARCHAR(100)")),
    ("ts TIMESTAMP without timestamp.formats", lambda s: s.replace("`ts`        STRING",
                                                                   "`ts`        TIMESTAMP")),
    ("no view converting ts", lambda s: s.split("CREATE VIEW")[0]),
    ("another SerDe", lambda s: s.replace("org.apache.hive.hcatalog.data.JsonSerDe",
                                          "org.openx.data.jsonserde.JsonSerDe")),
    ("not EXTERNAL", lambda s: s.replace("CREATE EXTERNAL TABLE", "CREATE TABLE")),
    ("no day partition", lambda s: s.replace("PARTITIONED BY (`dt` STRING)\n", "")),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("--ddl", required=True)
    ap.add_argument("--doc")
    a = ap.parse_args()
    with open(a.schema, encoding="utf-8") as f:
        schema = json.load(f)
    with open(a.ddl, encoding="utf-8") as f:
        sql = f.read()
    problems = check(schema, sql)
    if a.doc:
        with open(a.doc, encoding="utf-8") as f:
            problems += doc_problems(sql, f.read())
    ddl = parse_ddl(sql)
    print("%d columns, partitions %s" % (len(ddl["columns"]), sorted(ddl["partitions"])))
    for what, brk in BREAKS:
        broken = brk(sql)
        if broken == sql:
            problems.append("self-test %r: the transformation changed nothing" % what)
        elif not check(schema, broken):
            problems.append("self-test: a DDL with %s passes the check" % what)
    # and the schema side: a new record field without a column is noticed
    schema2 = json.loads(json.dumps(schema))
    schema2["properties"]["new_field"] = {"type": "string"}
    if not check(schema2, sql):
        problems.append("self-test: a schema field without a column passes the check")
    for p in problems:
        print("FAIL " + p, file=sys.stderr)
    print("%d problems (%d breaks tried)" % (len(problems), len(BREAKS) + 1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
