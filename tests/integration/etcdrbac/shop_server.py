#!/usr/bin/python3
"""tests/integration/etcdrbac/shop_server.py: a grpcio app serving one service of a made-up
shop (shop.Cart, shop.Pay, ...) for the etcd RBAC tests: its service name decides which
team's etcd role may register it.

  shop_server.py --service shop.Cart --id cart1 [--port 0]

The service has one method, Ping(shop.Msg) returns (shop.Msg): the answer's text is
"<id>:<request text>". The .proto is built at run time into protobuf's default descriptor pool,
so the reflection of tests/peers (reflection_service.py) serves it; grpc.health.v1 comes from
tests/peers too. Prints "listening on PORT" once it serves; SIGTERM stops it.
"""
import argparse
import os
import sys
from concurrent import futures

sys.dont_write_bytecode = True
PEERS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "peers")
sys.path.insert(0, PEERS)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lib"))
from serve import serve  # noqa: E402
import stubs  # noqa: E402

stubs.load()
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402
import health_service  # noqa: E402
import reflection_service  # noqa: E402


def build(service):
    """Adds shop_<Name>.proto (message Msg, service <service> { Ping }) to the default pool."""
    pkg, name = service.rsplit(".", 1)
    fdp = descriptor_pb2.FileDescriptorProto(name="shop_%s.proto" % name, package=pkg,
                                             syntax="proto3")
    msg = fdp.message_type.add(name="Msg")
    msg.field.add(name="text", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, json_name="text")
    svc = fdp.service.add(name=name)
    svc.method.add(name="Ping", input_type=".%s.Msg" % pkg, output_type=".%s.Msg" % pkg)
    pool = descriptor_pool.Default()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("%s.Msg" % pkg)
    try:
        return message_factory.GetMessageClass(desc)
    except AttributeError:  # protobuf < 4.21
        return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True)
    ap.add_argument("--id", default="app")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    Msg = build(a.service)

    def ping(req, context):
        return Msg(text="%s:%s" % (a.id, req.text))

    handler = grpc.method_handlers_generic_handler(a.service, {
        "Ping": grpc.unary_unary_rpc_method_handler(
            ping, request_deserializer=Msg.FromString,
            response_serializer=lambda m: m.SerializeToString())})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    health_service.add_to_server(server, [a.service])
    reflection_service.add_to_server(server, [a.service, "grpc.health.v1.Health"])
    serve(server, a.port)


if __name__ == "__main__":
    main()
