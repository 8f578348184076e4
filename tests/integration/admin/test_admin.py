#!/usr/bin/python3
"""tests/integration/admin/test_admin.py: the admin API (--admin-listen) and the `meshd routes`
/ `meshd members` commands against real meshd processes and real Python gRPC backends
(tests/peers/echo_server.py).

Cases (--case NAME):
  static  `meshd proxy --admin-listen PORT` (a bare port: loopback) with static routes:
          /v1/node says who the node is (roles, pid, addresses, etcd off, counts, gossip null);
          /v1/routes lists every static instance, sorted, source static, state routable,
          methods null; calls through the proxy work; /v1/members answers 404 "gossip is not
          enabled on this node"; unknown paths 404 listing the paths; a query string is
          ignored. `meshd routes` prints an aligned table, `--json` the server's JSON as is;
          `meshd members` says gossip is not enabled (exit 1); an unreachable admin exits 1
          naming the address and the reason; bad flags print the usage and exit 2.
  etcd    a real etcd, an app with `meshd sidecar --admin-listen` (its own port, beside the
          probe port) and `meshd proxy` with MESHD_ADMIN_LISTEN and a static route: the proxy's
          /v1/routes shows the sidecar's instance with source etcd, its node, zone, weight,
          version and methods, next to the static one, and "etcd": "connected"; the sidecar's
          /v1/node says roles ["sidecar"] and etcd connected; with etcd killed, the proxy says
          "degraded" and keeps listing (and routing to) the instance; `meshd routes` shows it.

Every case starts its own processes on free loopback ports in a temp folder and kills exactly
the PIDs it started, also on failure.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Proc, check, free_port, wait_until, Fail  # noqa: E402
import web  # noqa: E402
from calls import served_by  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402
from cases import Case, meshd_env, run  # noqa: E402

ECHO = "meshd.test.Echo"
OTHER = "meshd.test.Other"


def http_get(port, path):
    """(status, parsed JSON body, raw text) of GET http://127.0.0.1:port/path."""
    status, headers, text = web.get(port, path)
    if status < 400:
        check(headers.get("Content-Type") == "application/json",
              "%s answers application/json" % path)
    return status, json.loads(text), text


def meshd_cli(args, *argv):
    r = subprocess.run([args.meshd] + list(argv), capture_output=True, env=meshd_env(),
                       timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def make_case(args):
    c = Case(args, "meshd-it-admin-")
    c.start_backend = c.backend
    return c


def instances(routes):
    return [(s["service"], i) for s in routes["services"] for i in s["instances"]]


def table_rows(out):
    """The rows of a `meshd routes` table, split on runs of spaces, header first."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("SERVICE"))
    return [ln.split() for ln in lines[start:] if not ln[0].isdigit()]


def case_static(c):
    a, b = c.start_backend("py1"), c.start_backend("py2")
    port, admin = free_port(), free_port()
    proxy = c.start("proxy", [c.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                              "--workers", "2", "--admin-listen", str(admin),
                              "--static", "%s=%s,%s" % (ECHO, b.addr, a.addr),
                              "--static", "%s=%s" % (OTHER, a.addr), "--log-format", "text"])
    proxy.wait_line(r"admin API on http://127\.0\.0\.1:%d/" % admin, 15)
    target = "127.0.0.1:%d" % port
    check(set(served_by(target, 4)) == {"py1", "py2"}, "calls through the proxy reach both")

    st, node, _ = http_get(admin, "/v1/node")
    print("/v1/node:", json.dumps(node), flush=True)
    check(st == 200 and node["roles"] == ["proxy"] and node["pid"] == proxy.p.pid,
          "/v1/node: roles [proxy] and the proxy's pid")
    check(node["listen"]["grpc"] == target and node["listen"]["admin"] == "127.0.0.1:%d" % admin,
          "/v1/node: the gRPC and admin addresses (a bare admin port listens on loopback)")
    check(node["etcd"] == "off" and node["gossip"] is None and node["workers"] == 2,
          "/v1/node: etcd off, gossip null, 2 workers")
    check(node["counts"] == {"services": 2, "instances": 3}, "/v1/node: 2 services, 3 instances")
    check(node["version"] and node["uptime_s"] >= 0 and node["node"], "/v1/node: version, uptime")

    st, routes, raw = http_get(admin, "/v1/routes")
    print("/v1/routes:", raw, flush=True)
    check(st == 200 and routes["etcd"] == "off", "/v1/routes: etcd off")
    got = [(s, i["address"], i["source"], i["state"], i["methods"]) for s, i in instances(routes)]
    want = sorted([(ECHO, a.addr, "static", "routable", None),
                   (ECHO, b.addr, "static", "routable", None),
                   (OTHER, a.addr, "static", "routable", None)])
    check(got == want, "/v1/routes: every static instance, sorted, routable: %s" % got)
    check(all(i["weight"] == 1 and i["node"] is None for _, i in instances(routes)),
          "/v1/routes: static instances have weight 1 and no node")
    check(all(i["tls"] is None and i["transport"] == "h2c" for _, i in instances(routes)) and
          all(s["upstream_tls"] is None for s in routes["services"]),
          "/v1/routes: no TLS anywhere: tls null, transport h2c, upstream_tls null")
    st2, routes2, _ = http_get(admin, "/v1/routes?verbose=1&x")
    check(st2 == 200 and routes2 == routes, "a query string is ignored")

    st, body, _ = http_get(admin, "/v1/members")
    check(st == 404 and "gossip is not enabled" in body["error"],
          "/v1/members: 404, gossip is not enabled: %s" % body)
    st, body, _ = http_get(admin, "/v1/audit")
    check(st == 200 and body["sink"] in ("off", "file") and len(body["boot_id"]) == 32,
          "/v1/audit: no Kafka without --audit-kafka (off, or the default file where "
          "/var/log/meshd exists): %s" % body)
    st, body, _ = http_get(admin, "/v1/policy")
    check(st == 200 and body["present"] is False and body["rules"] == [] and
          "grpc.health.v1.Health/*" in body["exempt"] and body["trace"] is True,
          "/v1/policy: no policy block: trace only, health and reflection exempt: %s" % body)
    st, body, _ = http_get(admin, "/v1/nope")
    check(st == 404 and body["path"] == "/v1/nope" and
          body["paths"] == ["/", "/metrics", "/v1/audit", "/v1/members", "/v1/node", "/v1/policy",
                          "/v1/reflection", "/v1/route-policy", "/v1/routes"],
          "unknown path: 404 listing the paths: %s" % body)

    rc, out, err = meshd_cli(c.args, "routes", "--admin", "127.0.0.1:%d" % admin)
    print(out, flush=True)
    check(rc == 0 and out.startswith("etcd: off"), "meshd routes: exit 0, etcd off first")
    rows = table_rows(out)
    check(rows[0] == ["SERVICE", "ADDRESS", "SOURCE", "STATE", "TRANSPORT", "METHODS"],
          "table header")
    check(rows[1:] == [[s, ad, src, stt, "h2c", "*"] for s, ad, src, stt, _ in want],
          "meshd routes: one row per instance, sorted, h2c (no TLS), '*' for every method")
    header = next(ln for ln in out.splitlines() if ln.startswith("SERVICE"))
    row = next(ln for ln in out.splitlines() if ln.startswith(OTHER))
    check(header.index("ADDRESS") == row.index(a.addr) and
          header.index("STATE") == row.index("routable"), "meshd routes: columns aligned")
    check("2 services, 3 instances" in out, "meshd routes: totals")

    rc, out, err = meshd_cli(c.args, "routes", "--admin", str(admin), "--json")
    check(rc == 0 and json.loads(out) == routes, "meshd routes --json: the server's JSON")

    rc, out, err = meshd_cli(c.args, "members", "--admin", "127.0.0.1:%d" % admin)
    print(err, flush=True)
    check(rc == 1 and "gossip is not enabled on this node" in err,
          "meshd members: gossip is not enabled (exit 1)")

    dead = free_port()
    rc, out, err = meshd_cli(c.args, "routes", "--admin", "127.0.0.1:%d" % dead)
    print(err, flush=True)
    check(rc == 1 and err.startswith("meshd routes: cannot reach admin at 127.0.0.1:%d: " % dead),
          "unreachable admin: exit 1, the address and the reason")
    rc, out, err = meshd_cli(c.args, "routes", "--bogus")
    check(rc == 2 and "usage: meshd routes --admin HOST:PORT [--admin-token-file PATH] "
          "[--admin-ca PATH] [--json]" in err,
          "unknown flag: usage, exit 2")
    rc, out, err = meshd_cli(c.args, "members")
    check(rc == 2 and "--admin HOST:PORT is required" in err, "missing --admin: exit 2")


def case_etcd(c):
    etcd = Etcd(c.dir)
    etcd.start()
    c.procs.append(etcd.proc)
    app, other = c.start_backend("py1"), c.start_backend("py2")

    sc_port, probe, sc_admin = free_port(), free_port(), free_port()
    sc = c.start("sidecar", [c.args.meshd, "sidecar", "--app", app.addr,
                             "--listen", "127.0.0.1:%d" % sc_port,
                             "--probe-listen", "127.0.0.1:%d" % probe,
                             "--admin-listen", "127.0.0.1:%d" % sc_admin,
                             "--health-interval", "300ms", "--lease-ttl", "3s", "--workers", "1",
                             "--node", "node-a", "--zone", "eu-1a", "--weight", "7",
                             "--version", "2.1.0", "--etcd", etcd.url, "--log-format", "text"])
    sc.wait_line(r"admin API on", 15)
    sc_addr = "127.0.0.1:%d" % sc_port

    port, admin = free_port(), free_port()
    proxy = c.start("proxy", [c.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                              "--workers", "2", "--etcd", etcd.url,
                              "--static", "%s=%s" % (OTHER, other.addr), "--log-format", "text"],
                    env=meshd_env(MESHD_ADMIN_LISTEN=":%d" % admin))
    proxy.wait_line(r"admin API on http://127\.0\.0\.1:%d/" % admin, 15)

    def echo_listed():
        st, routes, _ = http_get(admin, "/v1/routes")
        got = [i for s, i in instances(routes) if s == ECHO]
        return routes if got and routes["etcd"] == "connected" else None
    routes = wait_until(echo_listed, 20, "the sidecar's instance in the proxy's /v1/routes")
    print("/v1/routes:", json.dumps(routes), flush=True)
    inst = [i for s, i in instances(routes) if s == ECHO]
    check(len(inst) == 1, "one instance of %s" % ECHO)
    i = inst[0]
    check(i["address"] == sc_addr and i["source"] == "etcd" and i["state"] == "routable",
          "the sidecar's instance: its address, source etcd, routable")
    check(i["node"] == "node-a" and i["zone"] == "eu-1a" and i["weight"] == 7,
          "node, zone and weight from the registration")
    check(isinstance(i["methods"], list) and "Unary" in i["methods"] and
          i["methods"] == sorted(i["methods"]), "the methods the app serves, sorted")
    svc = next(s for s in routes["services"] if s["service"] == ECHO)
    check(svc["methods"] == i["methods"], "the service's methods")
    st_inst = [(s, i["source"]) for s, i in instances(routes) if s == OTHER]
    check((OTHER, "static") in st_inst, "the static route next to etcd's")
    check(served_by("127.0.0.1:%d" % port, 2) == ["py1", "py1"], "the proxy routes to it")

    st, node, _ = http_get(admin, "/v1/node")
    check(node["roles"] == ["proxy"] and node["etcd"] == "connected" and
          node["etcd_endpoints"] == [etcd.url], "proxy /v1/node: etcd connected, its endpoint")
    st, snode, _ = http_get(sc_admin, "/v1/node")
    print("sidecar /v1/node:", json.dumps(snode), flush=True)
    check(snode["roles"] == ["sidecar"] and snode["node"] == "node-a" and
          snode["pid"] == sc.p.pid, "sidecar /v1/node: roles [sidecar], its node name and pid")
    wait_until(lambda: http_get(sc_admin, "/v1/node")[1]["etcd"] == "connected", 10,
               "the sidecar's /v1/node to say etcd connected")
    st, body, _ = http_get(sc_admin, "/v1/members")
    check(st == 404, "sidecar: /v1/members 404 without gossip")

    rc, out, err = meshd_cli(c.args, "routes", "--admin", str(admin))
    print(out, flush=True)
    rows = table_rows(out)
    check(rc == 0 and out.startswith("etcd: connected"), "meshd routes: etcd connected")
    row = next(r for r in rows if r[0] == ECHO)
    check(row[1:5] == [sc_addr, "etcd", "routable", "h2c"] and "Unary" in row[5].split(","),
          "meshd routes: the sidecar's row with source, state, transport and methods")

    etcd.kill()
    wait_until(lambda: http_get(admin, "/v1/routes")[1]["etcd"] == "degraded", 20,
               "the proxy's /v1/routes to say etcd degraded")
    st, routes, _ = http_get(admin, "/v1/routes")
    check([i["state"] for s, i in instances(routes) if s == ECHO] == ["routable"],
          "with etcd down the last view is kept: the instance stays routable")
    check(served_by("127.0.0.1:%d" % port, 1) == ["py1"], "and calls still reach it")
    rc, out, err = meshd_cli(c.args, "routes", "--admin", str(admin))
    check(rc == 0 and out.startswith("etcd: degraded"), "meshd routes: etcd degraded")


CASES = {"static": case_static, "etcd": case_etcd}


if __name__ == "__main__":
    sys.exit(run(CASES, make_case))
