#!/usr/bin/python3
"""tests/peers/test_peers.py: the peers' own check: health and reflection as the sidecar uses them.

For the Python server (and the C++ one with --cc-server): grpc.health.v1 Check answers
SERVING, flips to NOT_SERVING and back by the SetHealth RPC and by SIGUSR1/SIGUSR2, and server
reflection lists meshd.test.Echo and returns echo.proto for its symbol (v1alpha on both, v1 on
the Python server: grpc++ 1.51 serves v1alpha only).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo_client  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
from meshd_pb.grpc.health.v1 import health_pb2  # noqa: E402
from meshd_pb.grpc.reflection.v1 import reflection_pb2 as v1, reflection_pb2_grpc as v1g  # noqa
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2 as va  # noqa: E402
from meshd_pb.grpc.reflection.v1alpha import reflection_pb2_grpc as vag  # noqa: E402

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def start(argv, log):
    f = open(log, "wb")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    port = []

    def ready():
        assert p.poll() is None, "%s exited: %s" % (argv[0], open(log).read())
        m = re.search(r"listening on (\d+)", open(log).read())
        if m:
            port.append(int(m.group(1)))
        return bool(port)
    wait_until(ready, 20, "%s to listen" % argv)
    return p, port[0]


def reflect(channel, pb, grpc_mod, requests):
    stub = grpc_mod.ServerReflectionStub(channel)
    return list(stub.ServerReflectionInfo(iter(requests), timeout=10))


def check_server(name, p, port, versions):
    target = "127.0.0.1:%d" % port
    with echo_client.EchoClient(target) as c:
        for svc in ("", "meshd.test.Echo"):
            assert c.health_check(svc).status == SERVING, "%s %r serving" % (name, svc)
        c.set_health(False, "meshd.test.Echo")
        assert c.health_check("meshd.test.Echo").status == NOT_SERVING
        c.set_health(True, "meshd.test.Echo")
        assert c.health_check("meshd.test.Echo").status == SERVING
        p.send_signal(signal.SIGUSR1)
        wait_until(lambda: c.health_check("").status == NOT_SERVING, 5, "SIGUSR1 -> NOT_SERVING")
        p.send_signal(signal.SIGUSR2)
        wait_until(lambda: c.health_check("").status == SERVING, 5, "SIGUSR2 -> SERVING")
        print("  ok: %s health (Check, SetHealth, SIGUSR1/SIGUSR2)" % name)
        for pb, mod in versions:
            rs = reflect(c.channel, pb, mod, [
                pb.ServerReflectionRequest(list_services=""),
                pb.ServerReflectionRequest(file_containing_symbol="meshd.test.Echo"),
                pb.ServerReflectionRequest(file_containing_symbol="no.such.Symbol")])
            names = {s.name for s in rs[0].list_services_response.service}
            assert {"meshd.test.Echo", "meshd.test.Other", "grpc.health.v1.Health"} <= names, names
            fd = descriptor_pb2.FileDescriptorProto.FromString(
                rs[1].file_descriptor_response.file_descriptor_proto[0])
            assert fd.name == "echo.proto" and fd.package == "meshd.test", fd.name
            methods = [m.name for m in fd.service[0].method]
            assert "Unary" in methods and "Bidi" in methods, methods
            assert rs[2].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
            print("  ok: %s reflection %s" % (name, pb.__name__.split(".")[-2]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--py-server", default=os.path.join(os.path.dirname(__file__),
                                                        "echo_server.py"))
    ap.add_argument("--cc-server")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="meshd-peers-")
    procs = []
    try:
        p, port = start(["/usr/bin/python3", a.py_server, "--port", "0", "--id", "py"],
                        os.path.join(d, "py.log"))
        procs.append(p)
        check_server("python", p, port, [(va, vag), (v1, v1g)])
        if a.cc_server:
            p, port = start([a.cc_server, "--port", "0", "--id", "cc"], os.path.join(d, "cc.log"))
            procs.append(p)
            check_server("c++", p, port, [(va, vag)])
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
