#!/usr/bin/python3
"""tests/peers/echo_client.py: the Python client for meshd.test.Echo, as a library and a CLI.

Library (what the integration tests import):
    import echo_client
    c = echo_client.EchoClient("127.0.0.1:8080")
    r = c.unary(payload=b"hi", report=True, metadata=[("x-a", "1")], timeout=2.0)
    r.code, r.details, r.replies, r.initial_metadata, r.trailing_metadata, r.elapsed_ms
Every call returns a Result (never raises on a gRPC error). Request fields are the
EchoRequest fields of proto/echo.proto (payload, reply_count, reply_size, status_code,
status_message, sleep_ms, reply_interval_ms, report, call_id, reply_headers, reply_trailers).

CLI (prints one JSON object):
    echo_client.py --target HOST:PORT unary|server-stream|client-stream|bidi|stats|ping|
                   health|set-health [--payload-size N] [--count N] [--reply-count N]
                   [--reply-size N] [--status CODE] [--status-message S] [--sleep-ms N]
                   [--timeout SEC] [--cancel-after-ms N] [--hold] [--report] [--call-id ID]
                   [-H key=value ...] (keys ending in -bin take hex:... or text)
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stubs  # noqa: E402

stubs.load()

import grpc  # noqa: E402
from meshd_pb import echo_pb2, echo_pb2_grpc  # noqa: E402
from meshd_pb.grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402

MAX_MSG = 64 * 1024 * 1024
_REQ_FIELDS = set(echo_pb2.EchoRequest.DESCRIPTOR.fields_by_name)


def md_entries(pairs):
    """[(key, value)] -> [MetadataEntry] (for reply_headers / reply_trailers)."""
    return [echo_pb2.MetadataEntry(key=k, value=v if isinstance(v, bytes) else v.encode())
            for k, v in pairs]


def make_request(**fields):
    """EchoRequest from keyword fields; reply_headers/reply_trailers may be (key, value) pairs."""
    for k in ("reply_headers", "reply_trailers"):
        if k in fields and fields[k] and isinstance(fields[k][0], tuple):
            fields[k] = md_entries(fields[k])
    unknown = set(fields) - _REQ_FIELDS
    if unknown:
        raise TypeError("unknown EchoRequest fields: %s" % sorted(unknown))
    return echo_pb2.EchoRequest(**fields)


class Result:
    """The outcome of one call: status, replies (EchoReply messages) and metadata."""

    def __init__(self):
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.replies = []
        self.initial_metadata = []
        self.trailing_metadata = []
        self.elapsed_ms = 0.0

    @property
    def ok(self):
        return self.code == grpc.StatusCode.OK

    def header(self, key, trailing=False):
        md = self.trailing_metadata if trailing else self.initial_metadata
        for k, v in md:
            if k == key:
                return v
        return None

    def to_dict(self):
        def reply(r):
            d = {"server_id": r.server_id, "index": r.index, "payload_len": len(r.payload),
                 "payload_sha256": hashlib.sha256(r.payload).hexdigest()}
            if r.HasField("observed"):
                o = r.observed
                d["observed"] = {
                    "server_id": o.server_id, "method": o.method, "peer": o.peer,
                    "deadline_remaining_ms": o.deadline_remaining_ms,
                    "messages_received": o.messages_received,
                    "bytes_received": o.bytes_received,
                    "metadata": [[m.key, _show(m.key, m.value)] for m in o.metadata]}
            return d
        return {"code": self.code.name, "code_value": self.code.value[0],
                "details": self.details, "elapsed_ms": round(self.elapsed_ms, 3),
                "replies": [reply(r) for r in self.replies],
                "initial_metadata": [[k, _show(k, v)] for k, v in self.initial_metadata],
                "trailing_metadata": [[k, _show(k, v)] for k, v in self.trailing_metadata]}


def _show(key, value):
    if isinstance(value, bytes):
        if key.endswith("-bin"):
            return "hex:" + value.hex()
        return value.decode("latin-1")
    return value


def _md(call, name):
    try:
        return [(m.key, m.value) for m in (getattr(call, name)() or [])]
    except Exception:  # not available on every error path
        return []


class EchoClient:
    """A channel to one target with helpers for every Echo call kind."""

    def __init__(self, target, options=(), credentials=None):
        """credentials: grpc.ssl_channel_credentials(...) for TLS, None for h2c."""
        opts = [("grpc.max_receive_message_length", MAX_MSG),
                ("grpc.max_send_message_length", MAX_MSG),
                ("grpc.enable_retries", 0)] + list(options)
        self.target = target
        if credentials is not None:
            self.channel = grpc.secure_channel(target, credentials, options=opts)
        else:
            self.channel = grpc.insecure_channel(target, options=opts)
        self.echo = echo_pb2_grpc.EchoStub(self.channel)
        self.other = echo_pb2_grpc.OtherStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout):
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    # -- the four call kinds -------------------------------------------------------------
    def _run(self, start, collect, cancel_after_ms, cancel_when=None):
        """Start a call, collect replies and status. The call is cancelled after
        cancel_after_ms, or as soon as cancel_when() (run on its own thread) returns."""
        res = Result()
        t0 = time.monotonic()
        call = start()
        timer = None
        if cancel_after_ms is not None:
            timer = threading.Timer(cancel_after_ms / 1000.0, call.cancel)
            timer.start()
        if cancel_when is not None:
            def canceller():
                try:
                    cancel_when()
                finally:
                    call.cancel()
            threading.Thread(target=canceller, daemon=True).start()
        try:
            collect(call, res)
        except grpc.RpcError as e:
            res.code = e.code()
            res.details = e.details() or ""
        except grpc.FutureCancelledError:
            res.code = grpc.StatusCode.CANCELLED
            res.details = "cancelled by the client"
        finally:
            if timer:
                timer.cancel()
        if res.ok:
            res.code = call.code() or grpc.StatusCode.OK
            res.details = call.details() or ""
        res.elapsed_ms = (time.monotonic() - t0) * 1000.0
        res.initial_metadata = _md(call, "initial_metadata")
        res.trailing_metadata = _md(call, "trailing_metadata")
        return res

    @staticmethod
    def _collect_one(call, res):
        res.replies.append(call.result())

    @staticmethod
    def _collect_stream(call, res):
        for r in call:
            res.replies.append(r)

    def unary(self, metadata=None, timeout=None, cancel_after_ms=None, cancel_when=None,
              **fields):
        req = make_request(**fields)
        return self._run(lambda: self.echo.Unary.future(req, timeout=timeout,
                                                        metadata=metadata),
                         self._collect_one, cancel_after_ms, cancel_when)

    def server_stream(self, metadata=None, timeout=None, cancel_after_ms=None,
                      cancel_when=None, **fields):
        req = make_request(**fields)
        return self._run(lambda: self.echo.ServerStream(req, timeout=timeout,
                                                        metadata=metadata),
                         self._collect_stream, cancel_after_ms, cancel_when)

    def client_stream(self, requests, metadata=None, timeout=None, cancel_after_ms=None,
                      hold=False, cancel_when=None):
        """requests: an iterable of EchoRequest. hold=True keeps the request stream open
        after the last message until the call ends (for cancellation tests)."""
        it, done = _request_iter(requests, hold)
        try:
            return self._run(lambda: _on_done(self.echo.ClientStream.future(
                it, timeout=timeout, metadata=metadata), done),
                self._collect_one, cancel_after_ms, cancel_when)
        finally:
            done.set()

    def bidi(self, requests, metadata=None, timeout=None, cancel_after_ms=None, hold=False,
             cancel_when=None):
        it, done = _request_iter(requests, hold)
        try:
            return self._run(lambda: _on_done(self.echo.Bidi(it, timeout=timeout,
                                                             metadata=metadata), done),
                             self._collect_stream, cancel_after_ms, cancel_when)
        finally:
            done.set()

    # -- helpers ---------------------------------------------------------------------------
    def stats(self, reset=False, timeout=5.0):
        return self.echo.Stats(echo_pb2.StatsRequest(reset=reset), timeout=timeout)

    def set_health(self, serving, service="", timeout=5.0):
        return self.echo.SetHealth(echo_pb2.SetHealthRequest(service=service, serving=serving),
                                   timeout=timeout)

    def ping(self, text="ping", timeout=5.0, metadata=None):
        return self.other.Ping(echo_pb2.PingRequest(text=text), timeout=timeout,
                               metadata=metadata)

    def health_check(self, service="", timeout=5.0):
        return self.health.Check(health_pb2.HealthCheckRequest(service=service),
                                 timeout=timeout)


def _on_done(call, event):
    call.add_done_callback(lambda *_: event.set())
    return call


def _request_iter(requests, hold):
    done = threading.Event()

    def gen():
        for r in requests:
            yield r
        if hold:
            done.wait()
    return gen(), done


def requests_of(count, payload_size=0, first=None, **fields):
    """count EchoRequests with payload_size-byte payloads; `first` fields go on the first."""
    payload = b"\x5a" * payload_size
    for i in range(count):
        f = dict(fields)
        if i == 0 and first:
            f.update(first)
        yield make_request(payload=payload, **f)


# -- CLI ---------------------------------------------------------------------------------
def _parse_md(items):
    out = []
    for it in items or []:
        k, _, v = it.partition("=")
        k = k.lower()
        if k.endswith("-bin"):
            out.append((k, bytes.fromhex(v[4:]) if v.startswith("hex:") else v.encode()))
        else:
            out.append((k, v))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="meshd.test.Echo client; prints JSON")
    ap.add_argument("kind", choices=["unary", "server-stream", "client-stream", "bidi",
                                     "stats", "ping", "health", "set-health"])
    ap.add_argument("--target", required=True)
    ap.add_argument("-H", "--metadata", action="append", help="key=value (repeatable)")
    ap.add_argument("--timeout", type=float, help="deadline in seconds")
    ap.add_argument("--payload-size", type=int, default=0)
    ap.add_argument("--count", type=int, default=1, help="messages sent (client/bidi)")
    ap.add_argument("--reply-count", type=int, default=0)
    ap.add_argument("--reply-size", type=int, default=0)
    ap.add_argument("--status", type=int, default=0)
    ap.add_argument("--status-message", default="")
    ap.add_argument("--sleep-ms", type=int, default=0)
    ap.add_argument("--reply-interval-ms", type=int, default=0)
    ap.add_argument("--cancel-after-ms", type=int)
    ap.add_argument("--hold", action="store_true", help="keep the request stream open")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--call-id", default="")
    ap.add_argument("--service", default="", help="health / set-health service name")
    ap.add_argument("--serving", choices=["true", "false"], default="true")
    a = ap.parse_args(argv)
    md = _parse_md(a.metadata)
    fields = dict(reply_count=a.reply_count, reply_size=a.reply_size, status_code=a.status,
                  status_message=a.status_message, sleep_ms=a.sleep_ms,
                  reply_interval_ms=a.reply_interval_ms, report=a.report, call_id=a.call_id)
    with EchoClient(a.target) as c:
        try:
            if a.kind == "unary":
                r = c.unary(metadata=md, timeout=a.timeout, cancel_after_ms=a.cancel_after_ms,
                            payload=b"\x5a" * a.payload_size, **fields)
            elif a.kind == "server-stream":
                r = c.server_stream(metadata=md, timeout=a.timeout,
                                    cancel_after_ms=a.cancel_after_ms,
                                    payload=b"\x5a" * a.payload_size, **fields)
            elif a.kind == "client-stream":
                r = c.client_stream(requests_of(a.count, a.payload_size, first=fields),
                                    metadata=md, timeout=a.timeout,
                                    cancel_after_ms=a.cancel_after_ms, hold=a.hold)
            elif a.kind == "bidi":
                r = c.bidi(requests_of(a.count, a.payload_size, **fields), metadata=md,
                           timeout=a.timeout, cancel_after_ms=a.cancel_after_ms, hold=a.hold)
            else:
                t = a.timeout or 5.0
                if a.kind == "stats":
                    s = c.stats(timeout=t)
                    out = {"server_id": s.server_id,
                           "cancelled_call_ids": list(s.cancelled_call_ids),
                           "calls_started": s.calls_started,
                           "calls_finished": s.calls_finished}
                elif a.kind == "ping":
                    p = c.ping(timeout=t, metadata=md)
                    out = {"text": p.text, "server_id": p.server_id}
                elif a.kind == "health":
                    h = c.health_check(a.service, timeout=t)
                    out = {"status": health_pb2.HealthCheckResponse.ServingStatus.Name(h.status)}
                else:
                    c.set_health(a.serving == "true", a.service, timeout=t)
                    out = {}
                out.update(code="OK", code_value=0)
                print(json.dumps(out))
                return 0
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "code_value": e.code().value[0],
                              "details": e.details()}))
            return 1
    print(json.dumps(r.to_dict()))
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
