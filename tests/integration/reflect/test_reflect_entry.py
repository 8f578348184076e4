#!/usr/bin/python3
"""tests/integration/reflect/test_reflect_entry.py: aggregated gRPC server reflection at
`meshd proxy`, asked by a grpcio reflection client (stubs generated from Debian's grpc-proto
reflection protos at build time, package meshd_pb), v1 and v1alpha.

Behind the proxy: the C++ echo server (grpc++ 1.51: meshd.test.Echo and meshd.test.Other,
reflection v1alpha only) and a Python server of shop.v1.Cart (shop_server.py: reflection v1 and
v1alpha); a real etcd for the services added later.

Cases (--case NAME, or all):
  entry    list_services (both versions) names every routed service plus health and both
           reflection services; file_containing_symbol for each service, a method and a
           message type; file_by_filename with its imports, each once; an unknown symbol is
           NOT_FOUND in an error_response; a service registered in etcd while the test runs
           becomes listable and describable; a second service whose shop/types.proto differs
           (no version decides) makes answers that include that file a FAILED_PRECONDITION
           error naming it, never a mixed answer
  pending  a routed service whose instance never answers: a lookup under it is held for
           --reflection-hold, then NOT_FOUND saying the descriptors are not fetched yet; other
           names are answered at once
  gateway  the same answers from `meshd gateway` on its HTTP port (h2c, application/grpc)
  sidecar  a sidecar still forwards reflection to its app: the answer is the app's own
Each case starts its own processes in a temp dir and kills exactly those, also on failure.
"""
import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "peers"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Proc, check, free_port, wait_until, Fail, meshd_env  # noqa: E402
from test_proxy_etcd import Etcd, PREFIX  # noqa: E402
import stubs  # noqa: E402

stubs.load()
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from meshd_pb.grpc.reflection.v1 import reflection_pb2 as v1_pb2  # noqa: E402
from meshd_pb.grpc.reflection.v1 import reflection_pb2_grpc as v1_grpc  # noqa: E402
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2 as v1a_pb2  # noqa: E402
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2_grpc as v1a_grpc  # noqa: E402

VERSIONS = {"v1": (v1_pb2, v1_grpc), "v1alpha": (v1a_pb2, v1a_grpc)}
NOT_FOUND, FAILED_PRECONDITION = 5, 9
INFRA = {"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
         "grpc.reflection.v1alpha.ServerReflection"}


def ask(target, version, **kw):
    """One request on one reflection stream; the response message."""
    pb2, pgrpc = VERSIONS[version]
    with grpc.insecure_channel(target) as ch:
        stub = pgrpc.ServerReflectionStub(ch)
        req = pb2.ServerReflectionRequest(host="test", **kw)
        out = list(stub.ServerReflectionInfo(iter([req]), timeout=15))
    if len(out) != 1:
        raise Fail("expected one answer, got %d" % len(out))
    return out[0]


def listed(target, version):
    r = ask(target, version, list_services="*")
    if r.WhichOneof("message_response") != "list_services_response":
        raise Fail("list_services answered %s" % r)
    return [s.name for s in r.list_services_response.service]


def files_of(r):
    if r.WhichOneof("message_response") != "file_descriptor_response":
        raise Fail("expected files, got %s" % r)
    return [descriptor_pb2.FileDescriptorProto.FromString(b).name
            for b in r.file_descriptor_response.file_descriptor_proto]


def start_server(workdir, name, argv):
    p = Proc(name, argv, workdir)
    line = p.wait_line(r"listening on (\d+)", 30)
    p.port = int(line.group(1))
    p.addr = "127.0.0.1:%d" % p.port
    return p


def shop(workdir, service, types=1):
    return start_server(workdir, "shop-" + service.lower(),
                        ["/usr/bin/python3", os.path.join(HERE, "shop_server.py"), "--port", "0",
                         "--service", service, "--types", str(types)])


def case_entry(args, workdir, procs):
    etcd = Etcd(workdir)
    etcd.start()
    procs.append(etcd.proc)
    cc = start_server(workdir, "cc1", [args.cc_server, "--port", "0", "--id", "cc1"])
    procs.append(cc)
    cart = shop(workdir, "Cart")
    procs.append(cart)
    port, admin = free_port(), free_port()
    proxy = Proc("proxy", [args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                           "--workers", "2", "--etcd", etcd.url, "--log-format", "text",
                           "--admin-listen", "127.0.0.1:%d" % admin,
                           "--static", "meshd.test.Echo=%s" % cc.addr,
                           "--static", "shop.v1.Cart=%s" % cart.addr],
                 workdir, env=meshd_env())
    procs.append(proxy)
    proxy.wait_line(r"listening on", 15)
    proxy.wait_listening(15)  # the admin port (/v1/reflection, /metrics) listens after
    target = "127.0.0.1:%d" % port

    for v in VERSIONS:
        names = listed(target, v)
        check(set(names) == {"meshd.test.Echo", "shop.v1.Cart"} | INFRA,
              "list_services (%s) names the routed services, health and reflection: %s"
              % (v, names))

    # Symbols of each service (held until fetched on a fresh proxy), a method, a message type.
    for v in VERSIONS:
        f = files_of(ask(target, v, file_containing_symbol="meshd.test.Echo"))
        check(f[0] == "echo.proto", "%s: meshd.test.Echo is in echo.proto (%s)" % (v, f))
        f = files_of(ask(target, v, file_containing_symbol="shop.v1.Cart"))
        check(f == ["shop/cart.proto", "shop/types.proto", "google/protobuf/timestamp.proto"],
              "%s: shop.v1.Cart with its imports, transitively, each once: %s" % (v, f))
    for sym, fname in [("grpc.health.v1.Health", "grpc/health/v1/health.proto"),
                       ("grpc.reflection.v1alpha.ServerReflection",
                        "grpc/reflection/v1alpha/reflection.proto")]:
        f = files_of(ask(target, "v1", file_containing_symbol=sym))
        check(f == [fname], "the entry's own %s is described too: %s" % (sym, f))
    f = files_of(ask(target, "v1", file_containing_symbol="shop.v1.Cart.Add"))
    check(f[0] == "shop/cart.proto", "a method resolves to its file")
    f = files_of(ask(target, "v1alpha", file_containing_symbol="shop.v1.Item"))
    check(f == ["shop/types.proto", "google/protobuf/timestamp.proto"],
          "a message type resolves to its file and imports: %s" % f)
    f = files_of(ask(target, "v1", file_by_filename="shop/cart.proto"))
    check(len(f) == len(set(f)) == 3 and f[0] == "shop/cart.proto",
          "file_by_filename gives the file and its imports once each: %s" % f)

    for v in VERSIONS:
        r = ask(target, v, file_containing_symbol="nope.v1.Nothing")
        check(r.WhichOneof("message_response") == "error_response"
              and r.error_response.error_code == NOT_FOUND
              and "nope.v1.Nothing" in r.error_response.error_message,
              "%s: an unknown symbol is NOT_FOUND: %r" % (v, r.error_response.error_message))

    # A service registered while the proxy runs becomes listable and describable.
    orders = shop(workdir, "Orders")
    procs.append(orders)
    etcd.ctl("put", "%s/shop.v1.Orders/%s" % (PREFIX, orders.addr),
             json.dumps({"Op": 0, "Addr": orders.addr, "Metadata": None}))
    wait_until(lambda: "shop.v1.Orders" in listed(target, "v1"), 20,
               "shop.v1.Orders to be listed")
    check(True, "a service added in etcd is listed")
    f = files_of(ask(target, "v1", file_containing_symbol="shop.v1.Orders"))
    check(f[0] == "shop/orders.proto" and "shop/types.proto" in f,
          "the added service is described (held until fetched, then answered): %s" % f)

    # A second service whose shop/types.proto differs, and no version decides: a clear error
    # for every answer that would include that file, never a mixed answer.
    billing = shop(workdir, "Billing", types=2)
    procs.append(billing)
    etcd.ctl("put", "%s/shop.v1.Billing/%s" % (PREFIX, billing.addr),
             json.dumps({"Op": 0, "Addr": billing.addr, "Metadata": None}))

    def conflict_reported():
        r = ask(target, "v1", file_containing_symbol="shop.v1.Cart")
        return r.WhichOneof("message_response") == "error_response" and r
    r = wait_until(conflict_reported, 20, "the conflicting shop/types.proto to be reported")
    check(r.error_response.error_code == FAILED_PRECONDITION
          and "shop/types.proto" in r.error_response.error_message
          and "no release label decides" in r.error_response.error_message,
          "conflicting file: FAILED_PRECONDITION naming it: %r" % r.error_response.error_message)
    f = files_of(ask(target, "v1alpha", file_containing_symbol="meshd.test.Echo"))
    check(f[0] == "echo.proto", "files without the conflict are still answered")
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/reflection" % admin, timeout=10) as r:
        st = json.load(r)
    check(st["running"] and st["held"] == 4 and st["index"]["conflicting_files"] == 1
          and st["index"]["generation"] == st["generation"],
          "GET /v1/reflection: the cache and the workers' index (%s)" % st["index"])
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=10) as r:
        metrics = r.read().decode()
    for svc in ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"):
        check(any(line.startswith("meshd_calls_total{") and 'service="%s"' % svc in line
                  and 'method="ServerReflectionInfo"' in line for line in metrics.splitlines()),
              "reflection calls are counted in /metrics under %s/ServerReflectionInfo" % svc)


def case_pending(args, workdir, procs):
    # A routed service whose only instance accepts and never answers: its descriptors never
    # arrive. A lookup under it is held for --reflection-hold, then NOT_FOUND saying why.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    cart = shop(workdir, "Cart")
    procs.append(cart)
    port = free_port()
    proxy = Proc("proxy", [args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                           "--workers", "1", "--log-format", "text", "--reflection-hold", "1s",
                           "--static", "shop.v1.Cart=%s" % cart.addr,
                           "--static", "quiet.v1.Silent=127.0.0.1:%d" % silent.getsockname()[1]],
                 workdir, env=meshd_env())
    procs.append(proxy)
    proxy.wait_line(r"listening on", 15)
    target = "127.0.0.1:%d" % port
    try:
        f = files_of(ask(target, "v1", file_containing_symbol="shop.v1.Cart"))
        check(f[0] == "shop/cart.proto", "a described service is answered")
        t0 = time.monotonic()
        r = ask(target, "v1", file_containing_symbol="quiet.v1.Silent")
        held = time.monotonic() - t0
        print("  (held %.2f s)" % held, flush=True)
        check(r.WhichOneof("message_response") == "error_response"
              and r.error_response.error_code == NOT_FOUND
              and "descriptors of quiet.v1.Silent are not fetched yet"
              in r.error_response.error_message,
              "a service not fetched: held, then NOT_FOUND saying so: %r"
              % r.error_response.error_message)
        r = ask(target, "v1alpha", file_containing_symbol="other.v1.Unrelated")
        check(r.error_response.error_code == NOT_FOUND
              and "not fetched" not in r.error_response.error_message,
              "an unrelated unknown symbol is NOT_FOUND without waiting")
    finally:
        silent.close()


def case_gateway(args, workdir, procs):
    cc = start_server(workdir, "cc1", [args.cc_server, "--port", "0", "--id", "cc1"])
    procs.append(cc)
    cart = shop(workdir, "Cart")
    procs.append(cart)
    port = free_port()
    gw = Proc("gateway", [args.meshd, "gateway", "--listen", "127.0.0.1:%d" % port,
                          "--workers", "1", "--log-format", "text",
                          "--static", "meshd.test.Echo=%s" % cc.addr,
                          "--static", "shop.v1.Cart=%s" % cart.addr], workdir, env=meshd_env())
    procs.append(gw)
    gw.wait_line(r"HTTP/JSON on", 15)
    target = "127.0.0.1:%d" % port  # gRPC's own services over h2c on the HTTP port
    for v in VERSIONS:
        names = listed(target, v)
        check(set(names) == {"meshd.test.Echo", "shop.v1.Cart"} | INFRA,
              "gateway %s: list_services names the routed services: %s" % (v, names))
        f = files_of(ask(target, v, file_containing_symbol="shop.v1.Cart"))
        check(f == ["shop/cart.proto", "shop/types.proto", "google/protobuf/timestamp.proto"],
              "gateway %s: shop.v1.Cart with its imports: %s" % (v, f))
        f = files_of(ask(target, v, file_containing_symbol="meshd.test.Echo"))
        check(f[0] == "echo.proto", "gateway %s: meshd.test.Echo (a grpc++ server)" % v)


def case_sidecar(args, workdir, procs):
    app = start_server(workdir, "app", ["/usr/bin/python3", args.py_server, "--port", "0",
                                        "--id", "py1"])
    procs.append(app)
    port, probe = free_port(), free_port()
    sc = Proc("sidecar", [args.meshd, "sidecar", "--app", app.addr,
                          "--listen", "127.0.0.1:%d" % port,
                          "--probe-listen", "127.0.0.1:%d" % probe, "--workers", "1",
                          "--log-format", "text"], workdir, env=meshd_env())
    procs.append(sc)
    sc.wait_line(r"listening on", 15)
    target = "127.0.0.1:%d" % port
    for v in VERSIONS:
        names = wait_until(lambda: listed(target, v), 15, "the sidecar to answer reflection")
        check(names == listed(app.addr, v) and "meshd.test.Other" in names,
              "%s: the sidecar forwards reflection to its app (the app's own list): %s"
              % (v, names))
        f = files_of(ask(target, v, file_containing_symbol="meshd.test.Echo"))
        check(f == files_of(ask(app.addr, v, file_containing_symbol="meshd.test.Echo")),
              "%s: symbol lookups through the sidecar are the app's answers: %s" % (v, f))


CASES = {"entry": case_entry, "pending": case_pending, "gateway": case_gateway,
         "sidecar": case_sidecar}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--cc-server", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", default="all")
    args = ap.parse_args()
    names = list(CASES) if args.case == "all" else [args.case]
    failed = False
    for name in names:
        workdir = tempfile.mkdtemp(prefix="meshd-reflect-")
        procs = []
        print("case", name, flush=True)
        try:
            CASES[name](args, workdir, procs)
        except Fail as e:
            failed = True
            print("FAIL (%s): %s" % (name, e), flush=True)
            for p in procs:
                print("---- %s ----\n%s" % (p.name, p.output()[-3000:]), flush=True)
        finally:
            for p in reversed(procs):
                p.kill()
        if not failed:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
