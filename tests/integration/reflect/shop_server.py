#!/usr/bin/python3
"""tests/integration/reflect/shop_server.py: a grpcio server of one shop.v1 service, described
by FileDescriptorProtos built here (no generated code), with reflection v1 and v1alpha
(tests/peers/reflection_service.py). The methods are not implemented: the tests only reflect.

  shop_server.py --port 0 --service Cart [--types 1|2] [--proto-py DIR]

Files: shop/<service lower>.proto (the service, importing shop/types.proto and
google/protobuf/timestamp.proto) and shop/types.proto (message Item; --types 2 adds a field:
the same file name with other content, what a conflicting deploy serves).
Prints "listening on PORT" once it serves; SIGTERM stops it.
"""
import argparse
import os
import sys
from concurrent import futures

sys.dont_write_bytecode = True
PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "peers")
sys.path.insert(0, os.path.abspath(PEERS))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lib"))
from serve import serve  # noqa: E402


def add_files(service, types):
    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf import timestamp_pb2  # noqa: F401  (registers timestamp.proto)
    F = descriptor_pb2.FieldDescriptorProto
    pool = descriptor_pool.Default()
    t = descriptor_pb2.FileDescriptorProto(name="shop/types.proto", package="shop.v1",
                                           syntax="proto3",
                                           dependency=["google/protobuf/timestamp.proto"])
    item = t.message_type.add(name="Item")
    item.field.add(name="sku", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL,
                   json_name="sku")
    item.field.add(name="at", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                   type_name=".google.protobuf.Timestamp", json_name="at")
    if types >= 2:
        item.field.add(name="note", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL,
                       json_name="note")
    s = descriptor_pb2.FileDescriptorProto(name="shop/%s.proto" % service.lower(),
                                           package="shop.v1", syntax="proto3",
                                           dependency=["shop/types.proto"])
    req = s.message_type.add(name="%sRequest" % service)
    req.field.add(name="item", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                  type_name=".shop.v1.Item", json_name="item")
    svc = s.service.add(name=service)
    svc.method.add(name="Add", input_type=".shop.v1.%sRequest" % service,
                   output_type=".shop.v1.Item")
    pool.Add(t)
    pool.Add(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--service", default="Cart")
    ap.add_argument("--types", type=int, default=1)
    ap.add_argument("--proto-py")
    args = ap.parse_args()
    import stubs
    stubs.load(args.proto_py)
    import grpc
    import reflection_service
    add_files(args.service, args.types)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    reflection_service.add_to_server(server, ["shop.v1." + args.service])
    serve(server, args.port)


if __name__ == "__main__":
    main()
