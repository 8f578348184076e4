#!/usr/bin/python3
"""tests/integration/proxy/retry_backend.py: a real grpcio server for the retry, budget, fault and
per-try-timeout tests (test_proxy_retry.py). Raw-bytes methods of meshd.test.Retry (no stubs):

  Get, Put, Fault   answer OK with the server id, or UNAVAILABLE with --fail (or on
                    --fail-share of their calls: 9 of every 10 for 0.9, spread)
  Slow              sleeps --slow-ms on --slow-share of its calls, then answers OK (a slow
                    call cancelled meanwhile is counted as SlowCancelled)
  Count             (never fails) the attempts each method saw and how many of them carried
                    grpc-previous-rpc-attempts, as JSON

Run with /usr/bin/python3: retry_backend.py --id A [--fail] [--slow-ms 500 --slow-share 0.1].
Prints "listening on PORT" once it serves; SIGTERM stops it.
"""
import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lib"))
from serve import serve  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--id", default="b")
ap.add_argument("--fail", action="store_true")
ap.add_argument("--fail-share", type=float, default=0.0)
ap.add_argument("--slow-ms", type=int, default=0)
ap.add_argument("--slow-share", type=float, default=0.0)
ap.add_argument("--seed", type=int, default=1)
ARGS = ap.parse_args()

lock = threading.Lock()
counts = {}
retried = {}
rng = random.Random(ARGS.seed)


def seen(method, context):
    md = dict(context.invocation_metadata())
    with lock:
        counts[method] = counts.get(method, 0) + 1
        if "grpc-previous-rpc-attempts" in md:
            retried[method] = retried.get(method, 0) + 1


def answer(method):
    def handler(request, context):
        seen(method, context)
        with lock:
            n = counts[method]
        if ARGS.fail or int(n * ARGS.fail_share) != int((n - 1) * ARGS.fail_share):
            context.abort(grpc.StatusCode.UNAVAILABLE, "%s is failing" % ARGS.id)
        return ARGS.id.encode()
    return handler


def slow(request, context):
    seen("Slow", context)
    with lock:
        hit = rng.random() < ARGS.slow_share
    if hit:
        time.sleep(ARGS.slow_ms / 1000.0)
        if not context.is_active():  # the proxy cancelled it meanwhile (a hedge's loser)
            with lock:
                counts["SlowCancelled"] = counts.get("SlowCancelled", 0) + 1
    return ARGS.id.encode()


def count(request, context):
    with lock:
        return json.dumps({"id": ARGS.id, "counts": counts, "retried": retried}).encode()


def unary(fn):
    return grpc.unary_unary_rpc_method_handler(fn)


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.so_reuseport", 0)])
    handlers = {"Get": unary(answer("Get")), "Put": unary(answer("Put")),
                "Fault": unary(answer("Fault")), "Slow": unary(slow), "Count": unary(count)}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("meshd.test.Retry", handlers),))
    serve(server, ARGS.port)


if __name__ == "__main__":
    main()
