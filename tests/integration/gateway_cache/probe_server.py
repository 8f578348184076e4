#!/usr/bin/python3
"""tests/integration/gateway_cache/probe_server.py: a grpcio server whose API depends on --api.

Serves gwcache.test.Probe, described by a FileDescriptorProto built here (no generated code):
file gwcache/probe.proto, importing gwcache/types.proto; --api 1 has the method Get, --api 2
Get and Put (same file names, different content: what a redeploy with a changed proto
serves). Reflection v1 and v1alpha come from tests/peers/reflection_service.py; the methods
themselves are not implemented (the descriptor cache only reads reflection).
  probe_server.py --port 0 --api 1 [--no-reflection] [--proto-py DIR]
Prints "listening on PORT" once it serves; SIGTERM stops it.
Also: probe_server.py --silent --port 0 accepts TCP connections and never answers.
"""
import argparse
import os
import signal
import socket
import sys
import time
from concurrent import futures

sys.dont_write_bytecode = True
PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "peers")
sys.path.insert(0, os.path.abspath(PEERS))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lib"))
from serve import serve  # noqa: E402


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api", type=int, default=1)
    ap.add_argument("--no-reflection", action="store_true")
    ap.add_argument("--silent", action="store_true")
    ap.add_argument("--proto-py")
    return ap.parse_args()


def silent(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    print("listening on %d" % s.getsockname()[1], flush=True)
    held = []
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    while True:
        c, _ = s.accept()
        held.append(c)  # accepted, never read, never answered


def add_files(api):
    from google.protobuf import descriptor_pb2, descriptor_pool
    pool = descriptor_pool.Default()
    types = descriptor_pb2.FileDescriptorProto(name="gwcache/types.proto", package="gwcache.test",
                                               syntax="proto3")
    m = types.message_type.add(name="Item")
    m.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="id")
    if api >= 2:
        m.field.add(name="note", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="note")
    probe = descriptor_pb2.FileDescriptorProto(name="gwcache/probe.proto", package="gwcache.test",
                                               syntax="proto3", dependency=["gwcache/types.proto"])
    svc = probe.service.add(name="Probe")
    for name in ["Get", "Put"][:api]:
        svc.method.add(name=name, input_type=".gwcache.test.Item", output_type=".gwcache.test.Item")
    pool.Add(types)
    pool.Add(probe)


def main():
    args = parse()
    if args.silent:
        silent(args.port)
        return
    import stubs
    stubs.load(args.proto_py)
    import grpc
    import reflection_service
    add_files(args.api)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    if not args.no_reflection:
        reflection_service.add_to_server(server, ["gwcache.test.Probe"])
    serve(server, args.port)


if __name__ == "__main__":
    main()
