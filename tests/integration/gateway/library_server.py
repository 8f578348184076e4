#!/usr/bin/python3
"""tests/integration/gateway/library_server.py: the gRPC server behind the gateway tests, a
real grpcio server for gwtest.v1.Library (protos/gwtest/v1/library.proto). It needs no
generated code: the message classes come from the FileDescriptorSet the tests give the gateway.

  library_server.py --descriptor-set FILE --port P [--mesh] [--progress FILE]

With --mesh it also serves grpc.health.v1.Health and server reflection (tests/peers: the
files of the descriptor set are added to protobuf's default pool, which reflection answers
from), as an app behind `meshd sidecar` must; the generated health/reflection stubs are found
as tests/peers/stubs.py says (MESHD_PROTO_PY). A descriptor set whose Library has GetShelf (the
"v2" API the deploy tests build) gets that method served too. It prints "listening on P".

Behaviour the tests check (GetShelf answers a book named "shelf NAME"): GetBook answers the name it was asked for (with every field set
when full is true, after delay_ms); CreateBook returns the book with the shelf in its name;
UpdateBook and Echo return the request; AddBooks (client stream) answers the count, the
pages summed and the names of the books it read, failing with the status named by a book
titled "fail:NAME"; a first book titled "gate:seq" makes AddBooks wait until the file
PROGRESS.go exists (an upstream that stops reading), then check that every book's pages is its
index (order) and keep no names (long streams; with --progress it writes how many books it has
read into PROGRESS every 5000); Shout (bidi) sends each book back as it arrives, title upper-cased; ListBooks streams count books, then fails with the
status named in fail if any; Fail fails with the status named by its name. Every method sends
the request's x-test metadata back as initial metadata x-echo and trailing metadata x-trail,
and the authorization and x-forwarded-for it saw as x-saw-auth / x-saw-xff. With --progress,
ListBooks writes how many books it has yielded into FILE every 500 books (the flow-control
tests watch the upstream stop).
"""
import argparse
import os
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SVC = "gwtest.v1.Library"


def add_mesh_services(server, fds):
    """Health and reflection; the set's files go into the default pool reflection reads."""
    sys.dont_write_bytecode = True
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "peers"))
    import stubs
    stubs.load()
    import health_service
    import reflection_service
    default = descriptor_pool.Default()
    for fd in fds.file:
        try:
            default.FindFileByName(fd.name)  # (the well-known types are there already)
        except KeyError:
            default.Add(fd)
    health_service.add_to_server(server, [SVC])
    reflection_service.add_to_server(server, [SVC])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--descriptor-set", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mesh", action="store_true", help="serve health and reflection too")
    ap.add_argument("--progress")
    a = ap.parse_args()
    fds = descriptor_pb2.FileDescriptorSet()
    with open(a.descriptor_set, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)

    def cls(name):
        return factory.GetPrototype(pool.FindMessageTypeByName(name))

    Book = cls("gwtest.v1.Book")
    GetReq = cls("gwtest.v1.GetBookRequest")
    CreateReq = cls("gwtest.v1.CreateBookRequest")
    ListReq = cls("gwtest.v1.ListBooksRequest")

    def meta(ctx):
        md = dict(ctx.invocation_metadata())
        out = []
        if "x-test" in md:
            out.append(("x-echo", md["x-test"]))
        if "authorization" in md:
            out.append(("x-saw-auth", md["authorization"]))
        if "x-forwarded-for" in md:
            out.append(("x-saw-xff", md["x-forwarded-for"]))
        for name in ("x-tenant", "x-user-id", "x-other"):
            if name in md:
                out.append(("x-saw-" + name, md[name]))
        left = ctx.time_remaining()
        if left is not None:
            out.append(("x-saw-deadline-ms", str(int(left * 1000))))
        ctx.send_initial_metadata(out)
        if "x-test" in md:
            ctx.set_trailing_metadata([("x-trail", md["x-test"])])

    def get_book(req, ctx):
        meta(ctx)
        if req.delay_ms:
            time.sleep(req.delay_ms / 1000.0)
        b = Book(name=req.name, title="title of " + req.name, tags=list(req.tags))
        if req.full:
            b.pages = 1 << 40
            b.genre = 2
            b.published.FromJsonString("2024-05-06T07:08:09.500Z")
            b.rating.value = 5
            b.author.name = "Ada"
        return b

    def create_book(req, ctx):
        meta(ctx)
        b = Book()
        b.CopyFrom(req.book)
        b.name = "shelves/%s/books/%s" % (req.shelf, req.book.name)
        return b

    def echo(req, ctx):
        meta(ctx)
        return req

    def list_books(req, ctx):
        meta(ctx)
        for i in range(req.count):
            if a.progress and i % 500 == 0:
                tmp = "%s.%d" % (a.progress, threading.get_ident())
                with open(tmp, "w") as f:
                    f.write(str(i))
                os.replace(tmp, a.progress)
            yield Book(name="shelves/%s/books/%d" % (req.shelf, i), pages=i)
        if req.fail:
            ctx.abort(getattr(grpc.StatusCode, req.fail), "stream failed as asked")

    Summary = cls("gwtest.v1.ShelfSummary")

    def add_books(it, ctx):
        meta(ctx)
        out = Summary()
        seq = False
        for b in it:
            if out.count == 0 and b.title == "gate:seq":
                seq = True
                gate = (a.progress or "") + ".go"
                end = time.monotonic() + 300
                while not os.path.exists(gate) and time.monotonic() < end:
                    time.sleep(0.05)
            if seq:
                if b.pages != out.count:
                    ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "book %d has pages %d: out of order" % (out.count, b.pages))
                out.count += 1
                out.pages += b.pages
                if a.progress and out.count % 5000 == 0:
                    tmp = "%s.%d" % (a.progress, threading.get_ident())
                    with open(tmp, "w") as f:
                        f.write(str(out.count))
                    os.replace(tmp, a.progress)
                continue
            if b.title.startswith("fail:"):
                ctx.abort(getattr(grpc.StatusCode, b.title[5:]), "book %d failed as asked" % out.count)
            out.count += 1
            out.pages += b.pages
            out.names.append(b.name)
        return out

    def shout(it, ctx):
        meta(ctx)
        for b in it:
            b.title = b.title.upper()
            yield b

    def fail(req, ctx):
        meta(ctx)
        ctx.abort(getattr(grpc.StatusCode, req.name), "failed as asked: " + req.name)

    def get_shelf(req, ctx):
        meta(ctx)
        return Book(name="shelf " + req.name)

    def unary(fn, req_cls):
        return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=req_cls.FromString,
                                                   response_serializer=lambda m: m.SerializeToString())

    handlers = {
        "GetBook": unary(get_book, GetReq),
        "CreateBook": unary(create_book, CreateReq),
        "UpdateBook": unary(echo, Book),
        "Echo": unary(echo, Book),
        "Fail": unary(fail, GetReq),
        "AddBooks": grpc.stream_unary_rpc_method_handler(
            add_books, request_deserializer=Book.FromString,
            response_serializer=lambda m: m.SerializeToString()),
        "Shout": grpc.stream_stream_rpc_method_handler(
            shout, request_deserializer=Book.FromString,
            response_serializer=lambda m: m.SerializeToString()),
        "ListBooks": grpc.unary_stream_rpc_method_handler(
            list_books, request_deserializer=ListReq.FromString,
            response_serializer=lambda m: m.SerializeToString()),
    }
    methods = [m.name for m in pool.FindServiceByName(SVC).methods]
    if "GetShelf" in methods:
        handlers["GetShelf"] = unary(get_shelf, GetReq)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SVC, handlers)])
    if a.mesh:
        add_mesh_services(server, fds)
    server.add_insecure_port("127.0.0.1:%d" % a.port)
    server.start()
    print("listening on %d" % a.port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
