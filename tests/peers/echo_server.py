#!/usr/bin/python3
"""tests/peers/echo_server.py: the Python (grpcio) meshd.test.Echo / meshd.test.Other server.

Run with /usr/bin/python3:
  echo_server.py --port 0 --id py1 [--host 127.0.0.1] [--no-health] [--no-reflection]
                 [--proto-py DIR] [--tls-cert F --tls-key F [--tls-client-ca F]]
With --tls-cert it serves TLS (grpc.ssl_server_credentials; --tls-client-ca: client
certificates required and verified against it).
Prints "listening on PORT" (the real port, also for --port 0) once it serves.
Also serves grpc.health.v1.Health (SIGUSR1: everything NOT_SERVING, SIGUSR2: everything
SERVING, or the Echo/SetHealth RPC) and server reflection v1alpha + v1.
SIGTERM/SIGINT stop it.
"""
import argparse
import os
import signal
import sys
import threading
from concurrent import futures

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubs  # noqa: E402


def _parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--id", default="py")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--no-health", action="store_true")
    ap.add_argument("--no-reflection", action="store_true")
    ap.add_argument("--proto-py", help="directory of the generated stubs (meshd_pb)")
    ap.add_argument("--tls-cert", help="PEM certificate: serve TLS")
    ap.add_argument("--tls-key", help="PEM key of --tls-cert")
    ap.add_argument("--tls-client-ca", help="require client certificates from this CA")
    ap.add_argument("--slow-ms", type=int, default=0,
                    help="a gray instance: Unary sleeps this long on --slow-share of its calls")
    ap.add_argument("--slow-share", type=float, default=0.0,
                    help="share of Unary calls that sleep --slow-ms (spread evenly)")
    return ap.parse_args()


ARGS = _parse()
stubs.load(ARGS.proto_py)

import grpc  # noqa: E402
from meshd_pb import echo_pb2, echo_pb2_grpc  # noqa: E402

import health_service  # noqa: E402
import reflection_service  # noqa: E402

CODES = {c.value[0]: c for c in grpc.StatusCode}
MAX_MSG = 64 * 1024 * 1024
_PATTERN = bytes(range(256))


def pattern(n):
    """n bytes of a repeating 0..255 pattern (what reply_size asks for)."""
    reps = n // 256 + 1
    return (_PATTERN * reps)[:n]


def to_md(entries):
    """EchoRequest MetadataEntry list -> grpcio metadata tuple."""
    out = []
    for e in entries:
        k = e.key.lower()
        out.append((k, e.value if k.endswith("-bin") else e.value.decode("ascii", "replace")))
    return tuple(out)


class Call:
    """Tracks one Echo call: its cancellation (recorded under call_id) and its observations."""

    def __init__(self, server, context, method):
        self.server = server
        self.context = context
        self.method = method
        self.call_id = ""
        self.done = False
        self.ended = threading.Event()
        tr = context.time_remaining()
        # grpcio reports "no deadline" as None or as a remaining time of centuries.
        self.deadline_ms = -1 if tr is None or tr > 1e8 else int(tr * 1000)
        self.headers_sent = False
        server.count("calls_started")
        context.add_callback(self._on_end)

    def _on_end(self):
        self.ended.set()
        self.server.active(self.call_id, False)
        # A cancelled client stream can look half-closed to the handler (grpcio delivers the
        # end of the request stream before the cancellation), so ask grpcio's own record of
        # how the call ended; fall back to "the handler did not finish" without it.
        client = getattr(getattr(self.context, "_state", None), "client", None)
        if client == "cancelled" or (client is None and not self.done):
            self.server.cancelled(self.call_id)

    def finish(self):
        self.done = True
        self.server.count("calls_finished")

    def observed(self, received=0, nbytes=0):
        md = []
        for m in self.context.invocation_metadata():
            v = m.value if isinstance(m.value, bytes) else m.value.encode("latin-1")
            md.append(echo_pb2.MetadataEntry(key=m.key, value=v))
        return echo_pb2.Observed(metadata=md, deadline_remaining_ms=self.deadline_ms,
                                 server_id=self.server.id, method=self.method,
                                 peer=self.context.peer(), messages_received=received,
                                 bytes_received=nbytes)

    def sleep(self, ms):
        """Sleep ms, returning early (False) if the call ended meanwhile."""
        if ms:
            self.ended.wait(ms / 1000.0)
        return not self.ended.is_set()

    def start(self, req):
        """Apply a request's call-level settings: call id, reply headers and trailers."""
        if req.call_id and not self.call_id:
            self.call_id = req.call_id
            self.server.active(req.call_id, True)
            if self.ended.is_set():  # _on_end may have run meanwhile
                self.server.active(req.call_id, False)
        if not self.headers_sent:
            self.headers_sent = True
            if req.reply_headers:
                self.context.send_initial_metadata(to_md(req.reply_headers))
        if req.reply_trailers:
            self.context.set_trailing_metadata(to_md(req.reply_trailers))

    def fail_if_asked(self, req):
        if req.status_code:
            self.finish()
            self.context.abort(CODES.get(req.status_code, grpc.StatusCode.UNKNOWN),
                               req.status_message)

    def reply(self, req, index, received=0, nbytes=0):
        payload = pattern(req.reply_size) if req.reply_size else req.payload
        r = echo_pb2.EchoReply(payload=payload, server_id=self.server.id, index=index)
        if req.report:
            r.observed.CopyFrom(self.observed(received, nbytes))
        return r


class EchoServicer(echo_pb2_grpc.EchoServicer):
    def __init__(self, server_id):
        self.id = server_id
        self.health = None
        self._lock = threading.Lock()
        self._cancelled = []
        self._active = set()
        self._counters = {"calls_started": 0, "calls_finished": 0}

    def count(self, name):
        with self._lock:
            self._counters[name] += 1

    def active(self, call_id, on):
        if call_id:
            with self._lock:
                if on:
                    self._active.add(call_id)
                else:
                    self._active.discard(call_id)

    def cancelled(self, call_id):
        with self._lock:
            self._cancelled.append(call_id)

    def slow_turn(self):
        """Whether this Unary call is one of the --slow-share that sleep --slow-ms."""
        if not ARGS.slow_ms or ARGS.slow_share <= 0:
            return False
        with self._lock:
            self._unary = getattr(self, "_unary", 0) + 1
            n = self._unary
        return int(n * ARGS.slow_share) != int((n - 1) * ARGS.slow_share)

    def Unary(self, request, context):
        c = Call(self, context, "/meshd.test.Echo/Unary")
        c.start(request)
        if self.slow_turn() and not c.sleep(ARGS.slow_ms):
            return echo_pb2.EchoReply()
        if not c.sleep(request.sleep_ms):
            return echo_pb2.EchoReply()
        c.fail_if_asked(request)
        r = c.reply(request, 0)
        c.finish()
        return r

    def ServerStream(self, request, context):
        c = Call(self, context, "/meshd.test.Echo/ServerStream")
        c.start(request)
        if not c.sleep(request.sleep_ms):
            return
        for i in range(request.reply_count or 1):
            if i and not c.sleep(request.reply_interval_ms):
                return
            yield c.reply(request, i)
        c.fail_if_asked(request)
        c.finish()

    def ClientStream(self, request_iterator, context):
        c = Call(self, context, "/meshd.test.Echo/ClientStream")
        first, last, count, nbytes = None, None, 0, 0
        for req in request_iterator:
            if first is None:
                first = req
                c.start(req)
            last = req
            count += 1
            nbytes += len(req.payload)
        first = first or echo_pb2.EchoRequest()
        last = last or first
        if not c.sleep(first.sleep_ms):
            return echo_pb2.EchoReply()
        c.fail_if_asked(first)
        payload = pattern(first.reply_size) if first.reply_size else last.payload
        r = echo_pb2.EchoReply(payload=payload, server_id=self.id, index=0,
                               observed=c.observed(count, nbytes))
        c.finish()
        return r

    def Bidi(self, request_iterator, context):
        c = Call(self, context, "/meshd.test.Echo/Bidi")
        index, count, nbytes = 0, 0, 0
        for req in request_iterator:
            count += 1
            nbytes += len(req.payload)
            c.start(req)
            if not c.sleep(req.sleep_ms):
                return
            n = req.reply_count or 1
            for i in range(n):
                if i and not c.sleep(req.reply_interval_ms):
                    return
                yield c.reply(req, index, count, nbytes)
                index += 1
            c.fail_if_asked(req)
        c.finish()

    def Stats(self, request, context):
        with self._lock:
            r = echo_pb2.StatsReply(server_id=self.id, cancelled_call_ids=self._cancelled,
                                    active_call_ids=sorted(self._active), **self._counters)
            if request.reset:
                self._cancelled = []
        return r

    def SetHealth(self, request, context):
        if self.health is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "health service disabled")
        self.health.set(request.service, request.serving)
        return echo_pb2.SetHealthReply()


class OtherServicer(echo_pb2_grpc.OtherServicer):
    def __init__(self, server_id):
        self.id = server_id

    def Ping(self, request, context):
        return echo_pb2.PingReply(text=request.text, server_id=self.id)


def main():
    opts = [("grpc.max_receive_message_length", MAX_MSG),
            ("grpc.max_send_message_length", MAX_MSG),
            ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=ARGS.threads), options=opts,
                         maximum_concurrent_rpcs=None)
    echo = EchoServicer(ARGS.id)
    echo_pb2_grpc.add_EchoServicer_to_server(echo, server)
    echo_pb2_grpc.add_OtherServicer_to_server(OtherServicer(ARGS.id), server)
    services = ["meshd.test.Echo", "meshd.test.Other"]
    if not ARGS.no_health:
        echo.health = health_service.add_to_server(server, services)
        services.append("grpc.health.v1.Health")
        signal.signal(signal.SIGUSR1, lambda *_: echo.health.set_all(False))
        signal.signal(signal.SIGUSR2, lambda *_: echo.health.set_all(True))
    if not ARGS.no_reflection:
        reflection_service.add_to_server(server, services)
    if ARGS.tls_cert:
        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_server_credentials(
            [(read(ARGS.tls_key), read(ARGS.tls_cert))],
            root_certificates=read(ARGS.tls_client_ca) if ARGS.tls_client_ca else None,
            require_client_auth=bool(ARGS.tls_client_ca))
        port = server.add_secure_port("%s:%d" % (ARGS.host, ARGS.port), creds)
    else:
        port = server.add_insecure_port("%s:%d" % (ARGS.host, ARGS.port))
    if port == 0:
        sys.exit("echo_server.py: cannot listen on %s:%d" % (ARGS.host, ARGS.port))
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("listening on %d" % port, flush=True)
    while not stop.is_set():
        stop.wait(3600)
    server.stop(0)


if __name__ == "__main__":
    main()
