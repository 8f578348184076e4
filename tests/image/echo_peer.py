#!/usr/bin/python3
"""tests/image/echo_peer.py: a tiny gRPC echo for the image test, with no generated stubs:
raw bytes in, b"echo:" + bytes out, for /meshd.test.Echo/Unary.
  echo_peer.py serve            prints "listening on PORT", serves until SIGTERM
  echo_peer.py call HOST:PORT   calls through HOST:PORT; exit 0 when the echo comes back
"""
import signal
import sys
from concurrent import futures

import grpc

if sys.argv[1] == "serve":
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"echo:" + req)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("meshd.test.Echo", {"Unary": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on {port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
else:
    with grpc.insecure_channel(sys.argv[2]) as ch:
        try:
            got = ch.unary_unary("/meshd.test.Echo/Unary")(b"through the image", timeout=10,
                                                            wait_for_ready=True)
        except grpc.RpcError as e:
            sys.exit(f"call failed: {e.code()} {e.details()}")
    print(got.decode())
    sys.exit(0 if got == b"echo:through the image" else 1)
