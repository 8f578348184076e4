#!/usr/bin/python3
"""tests/integration/registry_proxy/test_records.py: etcd records as meshd and other tools write
them, end to end with a real etcd, real `meshd proxy` / `meshd sidecar` processes and real
Python gRPC backends (tests/peers/echo_server.py).

Cases (--case NAME):
  plain_forms     records without meshd data, written with Debian's etcdctl as a stranger
                  would ({"Op":0,"Addr":..} with Metadata absent, {}, null or a string): each
                  form alone serves every method of its service through the proxy; then mixed
                  with instances that list their methods (meshd's record and meshd's former
                  record with the data inside Metadata): a listing instance gets only its
                  methods, the plain one all of them, also methods nobody lists. `meshd
                  registry list` shows plain instances as not listing their methods.
  sidecar_fields  `meshd sidecar --zone --weight --version --label K=V --label ...`: etcd's
                  record (read with etcdctl) carries them in its `meshd` object with Metadata
                  null; `meshd registry list` (JSON and table) shows them; the proxy routes to
                  the sidecar.

Every case starts its own etcd (random loopback ports, own data dir) and processes, and kills
exactly the PIDs it started, also on failure. Helpers come from tests/integration/lib/ and
the Etcd class from test_proxy_etcd.py (which itself writes meshd's former
record form, so the proxy's reading of that form stays covered there).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, HERE)
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, check, free_port, wait_until, Fail, meshd_env  # noqa: E402
from cases import Case as CaseBase, run  # noqa: E402
from test_proxy_etcd import Etcd, PREFIX  # noqa: E402
import grpc  # noqa: E402

ECHO = "meshd.test.Echo"
ALL_METHODS = ("Unary", "ServerStream", "ClientStream", "Bidi", "Stats", "SetHealth")


class Case(CaseBase):
    def __init__(self, args):
        super().__init__(args, "meshd-it-records-")
        self.etcd = None

    def start_etcd(self):
        self.etcd = Etcd(self.dir)
        self.etcd.start()
        self.procs.append(self.etcd.proc)

    def start_backend(self, sid):
        p = Proc("backend-" + sid, ["/usr/bin/python3", self.args.py_server, "--port", "0",
                                    "--id", sid], self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def start_proxy(self):
        port = free_port()
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2",
                "--etcd", self.etcd.url, "--log-format", "text",
                "--lb", "round-robin"]  # plain_forms counts round robin's shares
        p = Proc("proxy", argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.wait_line(r"listening on", 15)
        p.addr = "127.0.0.1:%d" % port
        return p

    def start_sidecar(self, app, name, extra=()):
        port, probe = free_port(), free_port()
        argv = [self.args.meshd, "sidecar", "--app", app.addr, "--listen", "127.0.0.1:%d" % port,
                "--probe-listen", "127.0.0.1:%d" % probe, "--health-interval", "300ms",
                "--lease-ttl", "3s", "--workers", "1", "--log-format", "text",
                "--etcd", self.etcd.url] + list(extra)
        print("starting:", " ".join(argv), flush=True)
        p = Proc("sidecar-" + name, argv, self.dir, env=meshd_env())
        self.procs.append(p)
        p.addr = "127.0.0.1:%d" % port
        return p

    def put(self, service, key_addr, value):
        """etcdctl put, as a user of the etcd registry who knows nothing of meshd would."""
        text = value if isinstance(value, str) else json.dumps(value)
        print("etcdctl put %s/%s/%s '%s'" % (PREFIX, service, key_addr, text), flush=True)
        self.etcd.ctl("put", "%s/%s/%s" % (PREFIX, service, key_addr), text)

    def get(self, service, key_addr):
        out = self.etcd.ctl("get", "--print-value-only", "%s/%s/%s" % (PREFIX, service, key_addr))
        return json.loads(out) if out.strip() else None

    def registry_list(self, *extra):
        r = subprocess.run([self.args.meshd, "registry", "list", "--etcd", self.etcd.url] +
                           list(extra), capture_output=True, env=meshd_env(), timeout=20)
        if r.returncode != 0:
            raise Fail("registry list failed (%d): %s" % (r.returncode, r.stderr.decode()))
        return r.stdout.decode()


def outcome(r):
    return r.replies[0].server_id if r.ok else "%s: %s" % (r.code.name, r.details)


def calls(target, kind, n):
    """The server ids answering n calls of one kind (errors as 'CODE: details')."""
    out = []
    with EchoClient(target) as c:
        for _ in range(n):
            if kind == "Unary":
                r = c.unary(payload=b"x", timeout=5)
            elif kind == "ServerStream":
                r = c.server_stream(reply_count=1, timeout=5)
            else:
                raise ValueError(kind)
            out.append(outcome(r))
    return out


def raw_call(target, path):
    """A unary call to any path with an empty message: (code name, details)."""
    with grpc.insecure_channel(target) as ch:
        try:
            ch.unary_unary(path)(b"", timeout=5)
            return "OK", ""
        except grpc.RpcError as e:
            return e.code().name, e.details() or ""


def wait_served(target, kind, want, n=None, timeout=10):
    n = n or 2 * len(want)
    last = []

    def ok():
        last[:] = calls(target, kind, n)
        return set(last) == set(want)
    try:
        wait_until(ok, timeout, "%s calls served by %s" % (kind, sorted(want)))
    except Fail:
        raise Fail("%s calls served by %s, wanted %s" % (kind, last, sorted(want)))
    print("  ok: %s calls served by %s" % (kind, sorted(set(last))), flush=True)


# ---- cases ------------------------------------------------------------------------------------

PLAIN_FORMS = [
    ("no Metadata", lambda a: {"Op": 0, "Addr": a}),
    ("Metadata {}", lambda a: {"Op": 0, "Addr": a, "Metadata": {}}),
    ("Metadata null (etcd's endpoints manager)", lambda a: {"Op": 0, "Addr": a, "Metadata": None}),
    ("Metadata a string", lambda a: {"Op": 0, "Addr": a, "Metadata": "from a grpc-go user"}),
]


def case_plain_forms(c):
    c.start_etcd()
    py1, py2, py3 = (c.start_backend(s) for s in ("py1", "py2", "py3"))
    proxy = c.start_proxy()

    # 1. Each form alone: the instance serves every method of its service.
    for name, form in PLAIN_FORMS:
        print("== %s" % name, flush=True)
        c.put(ECHO, py1.addr, form(py1.addr))
        wait_served(proxy.addr, "Unary", {"py1"})
        wait_served(proxy.addr, "ServerStream", {"py1"})
        code, details = raw_call(proxy.addr, "/%s/NotAMethod" % ECHO)
        check(code == "UNIMPLEMENTED" and not details.startswith("meshd:"),
              "a method the app lacks reaches the app, which answers for itself: %s %r"
              % (code, details))
        c.etcd.deregister(ECHO, py1.addr)
        wait_until(lambda: calls(proxy.addr, "Unary", 1)[0].startswith(
            "UNIMPLEMENTED: meshd: no route"), 10, "the instance to leave")

    # 2. Mixed: py1 plain (no Metadata), py2 meshd's record listing three methods, py3 meshd's
    #    former record (data inside Metadata) listing all six.
    print("== mixed with instances that list their methods", flush=True)
    c.put(ECHO, py1.addr, {"Op": 0, "Addr": py1.addr})
    c.put(ECHO, py2.addr, {"Op": 0, "Addr": py2.addr, "Metadata": None,
                           "meshd": {"node": "node-py2", "methods": ["Unary", "Stats",
                                                                     "SetHealth"]}})
    c.put(ECHO, py3.addr, {"Op": 0, "Addr": py3.addr,
                           "Metadata": {"node": "node-py3", "methods": list(ALL_METHODS)}})
    wait_served(proxy.addr, "Unary", {"py1", "py2", "py3"}, n=9)
    ids = calls(proxy.addr, "Unary", 9)
    check(all(ids.count(s) == 3 for s in ("py1", "py2", "py3")),
          "Unary calls go round robin over all three: %s" % ids)
    wait_served(proxy.addr, "ServerStream", {"py1", "py3"}, n=6)
    # A method no instance lists: only the plain instance may serve it.
    c.etcd.deregister(ECHO, py3.addr)
    wait_served(proxy.addr, "ServerStream", {"py1"}, n=4)
    wait_served(proxy.addr, "Unary", {"py1", "py2"}, n=4)
    # The plain record turns into one that lists methods: the unlisted ones leave it.
    c.put(ECHO, py1.addr, {"Op": 0, "Addr": py1.addr, "Metadata": None,
                           "meshd": {"methods": ["Unary"]}})
    wait_until(lambda: calls(proxy.addr, "ServerStream", 1)[0].startswith(
        "UNIMPLEMENTED: meshd: no route"), 10, "ServerStream to have no route once nobody "
        "may serve it")
    c.put(ECHO, py1.addr, {"Op": 0, "Addr": py1.addr, "Metadata": "x"})
    wait_served(proxy.addr, "ServerStream", {"py1"}, n=4)

    # 3. Another service registered by a stranger, next to Echo.
    c.put("meshd.test.Other", py2.addr, {"Op": 0, "Addr": py2.addr, "Metadata": None})
    wait_until(lambda: ok_ping(proxy.addr) == "py2", 10, "meshd.test.Other through the proxy")
    check(True, "meshd.test.Other (plain record) answers Ping through the proxy")

    # 4. `meshd registry list` tells plain instances apart.
    listing = json.loads(c.registry_list("--json"))
    echo = next(s for s in listing["services"] if s["name"] == ECHO)
    inst = {i["addr"]: i for i in echo["instances"]}
    check(inst[py1.addr]["methods"] is None and inst[py2.addr]["methods"] ==
          ["Unary", "Stats", "SetHealth"] and echo["methods"] is None,
          "registry list --json: methods null for the plain instance and for the service")
    check(inst[py1.addr]["weight"] == 1 and inst[py1.addr]["labels"] == {},
          "registry list --json: a plain instance has weight 1, no labels")
    check(inst[py1.addr]["record"] == "plain" and inst[py2.addr]["record"] == "meshd",
          "registry list --json: each record's form")
    table = c.registry_list()
    print(table, flush=True)
    check("methods: not listed (serves any)" in table and "methods: any" in table,
          "registry list: the table says which instances do not list their methods")
    c.put(ECHO, py3.addr, {"Op": 0, "Addr": py3.addr, "Metadata": {"methods": ["Unary"]}})
    legacy = json.loads(c.registry_list("--json"))
    echo = next(s for s in legacy["services"] if s["name"] == ECHO)
    check(next(i for i in echo["instances"] if i["addr"] == py3.addr)["record"] == "metadata",
          "registry list --json: meshd's former record form is pointed out")
    check("former record form" in c.registry_list(),
          "registry list: the table points out meshd's former record form")


def ok_ping(target):
    with EchoClient(target) as cl:
        try:
            return cl.ping(timeout=5).server_id
        except grpc.RpcError as e:
            return "%s: %s" % (e.code().name, e.details())


def case_sidecar_fields(c):
    c.start_etcd()
    app = c.start_backend("py1")
    labels = ["team=core", "app.kubernetes.io/tier=gold", "empty="]
    sc = c.start_sidecar(app, "fields", ["--zone", "eu-1a", "--weight", "7",
                                         "--version", "2.1.0-canary"] +
                         [x for label in labels for x in ("--label", label)])
    wait_until(lambda: c.get(ECHO, sc.addr), 20, "the sidecar's registration")
    v = c.get(ECHO, sc.addr)
    print("etcd holds:", json.dumps(v), flush=True)
    check(v["Op"] == 0 and v["Addr"] == sc.addr and v["Metadata"] is None,
          "record: Op 0, Addr, Metadata null (readable by grpc-go's etcd resolver)")
    m = v["meshd"]
    check(m["zone"] == "eu-1a" and m["weight"] == 7 and m["version"] == "2.1.0-canary",
          "record: zone, weight and version in the meshd object")
    check(m["labels"] == {"team": "core", "app.kubernetes.io/tier": "gold", "empty": ""},
          "record: labels in the meshd object: %s" % m["labels"])
    check(sorted(m["methods"]) == sorted(ALL_METHODS) and "schema" not in m,
          "record: methods listed, no schema field")
    other = c.get("meshd.test.Other", sc.addr)
    check(other["meshd"]["zone"] == "eu-1a" and other["meshd"]["labels"] == m["labels"],
          "every service of the instance carries the same fields")

    listing = json.loads(c.registry_list("--json"))
    echo = next(s for s in listing["services"] if s["name"] == ECHO)
    inst = echo["instances"][0]
    check(inst["addr"] == sc.addr and inst["zone"] == "eu-1a" and inst["weight"] == 7 and
          inst["version"] == "2.1.0-canary" and inst["labels"] == m["labels"],
          "registry list --json shows zone, weight, version and labels: %s" % inst)
    table = c.registry_list()
    print(table, flush=True)
    row = next(line for line in table.splitlines() if line.strip().startswith(sc.addr))
    check(all(x in row for x in ("eu-1a", " 7 ", "2.1.0-canary",
                                 "team=core,app.kubernetes.io/tier=gold,empty=")),
          "registry list's table shows them on the instance's row")

    proxy = c.start_proxy()
    wait_served(proxy.addr, "Unary", {"py1"})


CASES = {"plain_forms": case_plain_forms, "sidecar_fields": case_sidecar_fields}


def main():
    return run(CASES, Case)


if __name__ == "__main__":
    sys.exit(main())
