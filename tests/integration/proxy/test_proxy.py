#!/usr/bin/python3
"""tests/integration/proxy/test_proxy.py: `meshd proxy` end to end in front of real gRPC peers.

Each run starts its own backends (the Python Echo server "py1" and the C++ one "cc1", or a
second Python one "py2" without --cc-server), then
    meshd proxy --listen 127.0.0.1:P --static meshd.test.Echo=127.0.0.1:A,127.0.0.1:B --workers 2
and runs one case (--case NAME, or all). Everything lives in a fresh temp dir; exactly the
processes started here are killed at the end, also on failure.

Environment:
  MESHD_PROTO_PY       generated stubs (set by ctest)
  MESHD_TEST_DIRECT=1  no proxy: talk straight to the Python backend (=cc: the C++ one);
                       validates the peers and the tests; proxy-only checks are skipped
  MESHD_REQUIRE_PROXY=1  fail instead of skipping (exit 77) when meshd has no proxy subcommand
"""
import argparse
import hashlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "peers")
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, PEERS)
import echo_client  # noqa: E402
from echo_client import EchoClient, make_request, requests_of  # noqa: E402
import grpc  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import Fail, Proc, check, free_port, wait_until  # noqa: E402,F401  (also for others)

SKIP = 77
MiB = 1024 * 1024
_PATTERN = bytes(range(256))


def pattern(n):
    return (_PATTERN * (n // 256 + 1))[:n]


# What `meshd proxy` says while its CLI exists but the engine is not wired in yet.
NOT_WIRED = "not wired in yet"


class NotWired(Exception):
    pass


class Backend:
    def __init__(self, proc, sid, port):
        self.proc, self.id, self.port = proc, sid, port
        self.addr = "127.0.0.1:%d" % port

    def client(self):
        return EchoClient(self.addr)


class Env:
    """The running system under test: backends, the proxy (or not) and the client target."""

    def __init__(self, args):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix="meshd-it-proxy-")
        self.procs = []
        self.backends = []
        self.direct = os.environ.get("MESHD_TEST_DIRECT", "") not in ("", "0")
        self.proxy = None
        self.target = None

    def start_backend(self, kind, sid):
        if kind == "py":
            argv = ["/usr/bin/python3", self.args.py_server, "--port", "0", "--id", sid]
        else:
            argv = [self.args.cc_server, "--port", "0", "--id", sid]
        p = Proc("backend-" + sid, argv, self.dir)
        self.procs.append(p)
        m = p.wait_line(r"listening on (\d+)", 20)
        b = Backend(p, sid, int(m.group(1)))
        self.backends.append(b)
        return b

    def start(self):
        self.start_backend("py", "py1")
        if self.args.cc_server:
            self.start_backend("cc", "cc1")
        else:
            self.start_backend("py", "py2")
        if self.direct:
            which = 1 if os.environ.get("MESHD_TEST_DIRECT") == "cc" and self.args.cc_server else 0
            self.target = self.backends[which].addr
            print("direct mode: target %s (%s)" % (self.target, self.backends[which].id))
            return
        port = free_port()
        upstreams = ",".join(b.addr for b in self.backends)
        argv = [self.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port,
                "--static", "meshd.test.Echo=" + upstreams, "--workers", str(self.args.workers)]
        argv += getattr(self, "proxy_flags", [])
        print("starting:", " ".join(argv), flush=True)
        # meshd reads MESHD_* variables as configuration: give it none of the test's own.
        menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
        self.proxy = Proc("meshd", argv, self.dir, env=menv)
        self.procs.append(self.proxy)
        self.target = "127.0.0.1:%d" % port

        def accepting():
            if not self.proxy.alive():
                if NOT_WIRED in self.proxy.output():
                    raise NotWired()
                raise Fail("meshd exited (%s):\n%s" % (self.proxy.p.returncode,
                                                       self.proxy.output()[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(accepting, 15, "meshd to accept on %s" % self.target)

    def client(self):
        return EchoClient(self.target)

    def ids(self):
        return {b.id for b in self.backends}

    def backend(self, sid):
        return next(b for b in self.backends if b.id == sid)

    def stop(self, failed):
        for p in reversed(self.procs):
            p.kill()
        if failed:
            for p in self.procs:
                print("---- %s log (%s) ----\n%s" % (p.name, p.log, p.output()[-3000:]))
        if failed and os.environ.get("MESHD_TEST_KEEP"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _on_some_backend(env, call_id, field):
    for b in env.backends:
        if not b.proc.alive():
            continue
        with b.client() as c:
            if call_id in getattr(c.stats(timeout=5), field):
                return b.id
    return None


def cancelled_on_some_backend(env, call_id):
    """The backend id that recorded call_id as cancelled, or None."""
    return _on_some_backend(env, call_id, "cancelled_call_ids")


def running_on_some_backend(env, call_id):
    return _on_some_backend(env, call_id, "active_call_ids")


def when_running(env, call_id):
    """A cancel_when for EchoClient: returns once call_id runs on a backend."""
    return lambda: wait_until(lambda: running_on_some_backend(env, call_id), 10,
                              "call %s to reach a backend" % call_id)


# ---- cases -------------------------------------------------------------------------------
def case_unary(env):
    with env.client() as c:
        seen = set()
        for i in range(6):
            r = c.unary(payload=b"hello %d" % i, timeout=10)
            check(r.ok, "unary call %d is OK (%s %s)" % (i, r.code, r.details))
            check(r.replies[0].payload == b"hello %d" % i, "payload echoed")
            seen.add(r.replies[0].server_id)
        check(seen <= env.ids(), "answered by our backends %s" % sorted(seen))
        r = c.unary(payload=b"", reply_size=1000, timeout=10)
        check(r.ok and r.replies[0].payload == pattern(1000), "reply_size 1000 reply")


def case_server_stream(env):
    with env.client() as c:
        r = c.server_stream(payload=b"x", reply_count=100, reply_size=1000, timeout=10)
        check(r.ok, "server stream OK (%s %s)" % (r.code, r.details))
        check([x.index for x in r.replies] == list(range(100)), "100 replies in order")
        check(all(x.payload == pattern(1000) for x in r.replies), "every reply intact")
        r = c.server_stream(payload=b"x", reply_count=0, timeout=10)
        check(r.ok and len(r.replies) == 1, "reply_count 0 gives one reply")


def case_client_stream(env):
    with env.client() as c:
        r = c.client_stream(requests_of(100, 1000), timeout=10)
        check(r.ok, "client stream OK (%s %s)" % (r.code, r.details))
        o = r.replies[0].observed
        check(o.messages_received == 100 and o.bytes_received == 100000,
              "server got 100 messages, 100000 bytes (%d, %d)" % (o.messages_received,
                                                                 o.bytes_received))
        r = c.client_stream(iter(()), timeout=10)
        check(r.ok and r.replies[0].observed.messages_received == 0, "empty client stream")


def case_bidi(env):
    with env.client() as c:
        r = c.bidi(requests_of(50, 100, reply_count=2), timeout=10)
        check(r.ok and len(r.replies) == 100, "bidi: 50 requests, 100 replies (%s, %d)" % (
            r.code, len(r.replies)))
        # Ping-pong: the next request goes out only after the previous reply came back, so
        # a proxy that buffers a direction until the end would hang here.
        q = queue.Queue()

        def reqs():
            for i in range(20):
                yield make_request(payload=b"ping %d" % i)
                got = q.get(timeout=10)
                if got != b"ping %d" % i:
                    return
        call = c.echo.Bidi(reqs(), timeout=15)
        n = 0
        try:
            for rep in call:
                q.put(rep.payload)
                n += 1
        except grpc.RpcError as e:
            raise Fail("ping-pong bidi failed: %s %s" % (e.code(), e.details()))
        check(n == 20, "ping-pong bidi: 20 interleaved round trips")


def case_large_messages(env):
    big = os.urandom(4 * MiB)
    digest = hashlib.sha256(big).digest()
    with env.client() as c:
        r = c.unary(payload=big, timeout=30)
        check(r.ok and hashlib.sha256(r.replies[0].payload).digest() == digest,
              "4 MiB unary echoed intact (%s %s)" % (r.code, r.details))
        r = c.server_stream(payload=b"", reply_count=2, reply_size=4 * MiB, timeout=30)
        check(r.ok and len(r.replies) == 2 and all(
            x.payload == pattern(4 * MiB) for x in r.replies), "2 x 4 MiB server stream replies")
        r = c.client_stream(iter([make_request(payload=big), make_request(payload=big)]),
                            timeout=30)
        check(r.ok and r.replies[0].observed.bytes_received == 8 * MiB and
              hashlib.sha256(r.replies[0].payload).digest() == digest,
              "2 x 4 MiB client stream received and echoed (%s)" % r.code)


def case_long_stream(env):
    with env.client() as c:
        r = c.server_stream(payload=b"", reply_count=10000, reply_size=16, timeout=40)
        check(r.ok and len(r.replies) == 10000 and r.replies[-1].index == 9999,
              "10,000-message server stream (%s, %d)" % (r.code, len(r.replies)))
        r = c.client_stream(requests_of(10000, 16), timeout=40)
        check(r.ok and r.replies[0].observed.messages_received == 10000,
              "10,000-message client stream (%s)" % r.code)


# grpc-timeout is encoded with a few digits and rounded up, so a backend may see a few ms
# more than the client asked for even directly; allow that much, never more.
ROUNDING_MS = 25


def case_deadline_propagation(env):
    with env.client() as c:
        r = c.unary(payload=b"d", report=True, timeout=5.0)
        check(r.ok, "unary with a 5 s deadline OK")
        left = r.replies[0].observed.deadline_remaining_ms
        check(0 < left <= 5000 + ROUNDING_MS,
              "server saw a deadline, not above the client's 5000 ms (%d ms)" % left)
        r = c.server_stream(payload=b"d", report=True, timeout=3.0)
        left = r.replies[0].observed.deadline_remaining_ms
        check(r.ok and 0 < left <= 3000 + ROUNDING_MS,
              "server stream deadline propagated (%d ms of 3000)" % left)
        r = c.client_stream(requests_of(3, 10), timeout=4.0)
        left = r.replies[0].observed.deadline_remaining_ms
        check(r.ok and 0 < left <= 4000 + ROUNDING_MS,
              "client stream deadline propagated (%d ms of 4000)" % left)
        r = c.unary(payload=b"d", report=True)
        check(r.ok and r.replies[0].observed.deadline_remaining_ms == -1,
              "no deadline stays no deadline")


def case_deadline_expiry(env):
    with env.client() as c:
        cid = "deadline-" + uuid.uuid4().hex[:8]
        r = c.unary(payload=b"s", sleep_ms=5000, call_id=cid, timeout=0.5)
        check(r.code == grpc.StatusCode.DEADLINE_EXCEEDED,
              "slow unary gets DEADLINE_EXCEEDED (%s %s)" % (r.code, r.details))
        check(r.elapsed_ms < 3000, "and promptly (%.0f ms)" % r.elapsed_ms)
        wait_until(lambda: cancelled_on_some_backend(env, cid), 5,
                   "the backend to see the expired call %s end" % cid)
        check(True, "backend saw the expired call end")
        r = c.server_stream(payload=b"s", reply_count=100, reply_interval_ms=100, timeout=0.5)
        check(r.code == grpc.StatusCode.DEADLINE_EXCEEDED and 0 < len(r.replies) < 100,
              "server stream cut by the deadline (%s after %d replies)" % (r.code,
                                                                          len(r.replies)))


def case_cancel(env):
    with env.client() as c:
        ids = {k: "%s-%s" % (k, uuid.uuid4().hex[:8]) for k in ("unary", "ss", "cs", "bidi")}
        r = c.unary(payload=b"c", sleep_ms=20000, call_id=ids["unary"], timeout=30,
                    cancel_when=when_running(env, ids["unary"]))
        check(r.code == grpc.StatusCode.CANCELLED, "unary cancelled by the client")
        r = c.server_stream(payload=b"c", reply_count=2000, reply_interval_ms=10, timeout=30,
                            call_id=ids["ss"], cancel_when=when_running(env, ids["ss"]))
        check(r.code == grpc.StatusCode.CANCELLED and len(r.replies) < 2000,
              "server stream cancelled mid-stream (after %d replies)" % len(r.replies))
        r = c.client_stream(requests_of(3, 10, first={"call_id": ids["cs"]}), hold=True,
                            timeout=30, cancel_when=when_running(env, ids["cs"]))
        check(r.code == grpc.StatusCode.CANCELLED, "client stream cancelled while open")
        # Bidi: two round trips, then cancel with the request stream still open.
        q = queue.Queue()
        done = threading.Event()

        def reqs():
            for i in range(2):
                yield make_request(payload=b"b%d" % i, call_id=ids["bidi"])
                q.get(timeout=10)
            done.wait(30)
        call = c.echo.Bidi(reqs(), timeout=30)
        got, code = 0, None
        try:
            for _ in call:
                got += 1
                q.put(1)
                if got == 2:
                    call.cancel()
        except grpc.RpcError as e:
            code = e.code()
        finally:
            done.set()
        check(code == grpc.StatusCode.CANCELLED and got == 2,
              "bidi cancelled after 2 round trips (%s, %d replies)" % (code, got))
    for k, cid in ids.items():
        b = wait_until(lambda: cancelled_on_some_backend(env, cid), 10,
                       "the %s cancellation to reach a backend" % k)
        check(True, "%s cancel reached backend %s" % (k, b))


def case_metadata(env):
    binval = bytes(range(256))
    md = [("x-meshd-ascii", "hello world"), ("x-meshd-multi", "a"), ("x-meshd-multi", "b"),
          ("x-meshd-trace-bin", binval), ("x-meshd-empty-bin", b"")]
    headers = [("x-reply-h", b"h1"), ("x-reply-h-bin", b"\x00\xffbin")]
    trailers = [("x-reply-t", b"t1"), ("x-reply-t-bin", b"\x01\x02\x00")]
    with env.client() as c:
        for kind in ("unary", "server_stream"):
            r = getattr(c, kind)(payload=b"m", report=True, metadata=md, reply_headers=headers,
                                 reply_trailers=trailers, timeout=10)
            check(r.ok, "%s with metadata OK (%s %s)" % (kind, r.code, r.details))
            got = [(m.key, m.value) for m in r.replies[0].observed.metadata]
            check(("x-meshd-ascii", b"hello world") in got, "ascii metadata arrived")
            check([v for k, v in got if k == "x-meshd-multi"] == [b"a", b"b"],
                  "repeated key arrived in order")
            check(("x-meshd-trace-bin", binval) in got, "-bin metadata arrived byte-exact")
            check(r.header("x-reply-h") == "h1" and r.header("x-reply-h-bin") == b"\x00\xffbin",
                  "reply headers (text and -bin) came back")
            check(r.header("x-reply-t", True) == "t1" and
                  r.header("x-reply-t-bin", True) == b"\x01\x02\x00",
                  "reply trailers (text and -bin) came back")


def case_status_codes(env):
    with env.client() as c:
        for code in grpc.StatusCode:
            v = code.value[0]
            if v == 0:
                continue
            msg = "status %d: 100%% wrong, caf\u00e9 \u2713 /x?y=z" % v
            r = c.unary(payload=b"", status_code=v, status_message=msg, timeout=10)
            if r.code != code or r.details != msg:
                raise Fail("status %s: got %s %r" % (code.name, r.code, r.details))
        check(True, "all 16 non-OK codes and a non-ASCII message round trip")
        r = c.server_stream(payload=b"", reply_count=3, status_code=9, status_message="late",
                            timeout=10)
        check(r.code == grpc.StatusCode.FAILED_PRECONDITION and r.details == "late" and
              len(r.replies) == 3, "server stream: 3 replies then FAILED_PRECONDITION")


def case_round_robin(env):
    if env.direct:
        print("  skipped in direct mode")
        return
    counts = {}
    with env.client() as c:
        for i in range(20):
            r = c.unary(payload=b"rr", timeout=10)
            if not r.ok:
                raise Fail("call %d: %s %s" % (i, r.code, r.details))
            sid = r.replies[0].server_id
            counts[sid] = counts.get(sid, 0) + 1
    print("  one channel:", counts)
    check(set(counts) == env.ids(), "both backends served calls on one connection")
    check(min(counts.values()) >= 5, "calls shared between them (%s)" % counts)
    counts = {}
    for i in range(10):
        with env.client() as c:
            r = c.unary(payload=b"rr", timeout=10)
            if not r.ok:
                raise Fail("fresh-connection call %d: %s %s" % (i, r.code, r.details))
            counts[r.replies[0].server_id] = counts.get(r.replies[0].server_id, 0) + 1
    print("  fresh channels:", counts)
    check(set(counts) == env.ids(), "both backends served fresh connections")


def case_backend_killed(env):
    with env.client() as c:
        call = c.echo.ServerStream(make_request(payload=b"k", reply_count=100000,
                                                reply_interval_ms=10), timeout=30)
        first = next(call)
        victim = env.backend(first.server_id)
        print("  stream served by", victim.id, "- killing it", flush=True)
        victim.proc.kill()
        t0 = time.monotonic()
        code = None
        try:
            for _ in call:
                pass
        except grpc.RpcError as e:
            code = e.code()
        took = time.monotonic() - t0
        check(code == grpc.StatusCode.UNAVAILABLE, "client got UNAVAILABLE (%s)" % code)
        check(took < 5, "promptly (%.2f s)" % took)
        if env.direct:
            return
        survivor = (env.ids() - {victim.id}).pop()

        def served():
            r = c.unary(payload=b"after", timeout=5)
            return r.ok and r.replies[0].server_id == survivor
        wait_until(served, 10, "calls to be served by %s again" % survivor)
        oks = sum(c.unary(payload=b"after", timeout=5).ok for _ in range(10))
        check(oks == 10, "the surviving backend keeps serving (%d/10)" % oks)


def raw_unary(channel, method, timeout=10):
    f = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        f(b"", timeout=timeout)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details() or ""


def case_no_route(env):
    if env.direct:
        print("  skipped in direct mode")
        return
    with env.client() as c:
        for method in ("/meshd.test.Other/Ping", "/meshd.test.Missing/Call", "/nopackage/X"):
            code, details = raw_unary(c.channel, method)
            check(code == grpc.StatusCode.UNIMPLEMENTED and details.startswith("meshd: no route"),
                  "%s -> UNIMPLEMENTED %r" % (method, details))
        r = c.unary(payload=b"still", timeout=10)
        check(r.ok, "routed service still served on the same connection")


def _read_until_close(sock, timeout):
    """Read until EOF/reset or timeout; returns (closed, data)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return True, data
    except socket.timeout:
        pass
    return False, data


def case_bad_input(env):
    host, port = env.target.split(":")
    stop = threading.Event()
    errors, served = [], [0]

    def background():
        with env.client() as c:
            while not stop.is_set():
                r = c.unary(payload=b"bg", timeout=10)
                if not r.ok:
                    errors.append("%s %s" % (r.code, r.details))
                served[0] += 1
    t = threading.Thread(target=background)
    t.start()
    try:
        # Raw bytes that are not the HTTP/2 preface.
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"\x16\x03\x01garbage-not-http2" + os.urandom(200))
            closed, _ = _read_until_close(s, 5)
        check(closed, "raw garbage: connection closed by the server")
        # An HTTP/1.1 request.
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /meshd.test.Echo/Unary HTTP/1.1\r\nHost: x\r\n\r\n")
            closed, data = _read_until_close(s, 5)
        ok_reply = re.match(rb"HTTP/1\.[01] 2\d\d", data or b"")
        check((closed or data) and not ok_reply,
              "HTTP/1.1 request: rejected (%r)" % (data[:60],))
        # An h2 request with the wrong content-type.
        nghttp = shutil.which("nghttp")
        if nghttp is None:
            print("  nghttp not installed: wrong content-type check skipped")
        elif env.direct:
            print("  direct mode: grpc-core backends accept any content-type; check skipped")
        else:
            body = os.path.join(env.dir, "body.bin")
            with open(body, "wb") as f:
                f.write(b"\x00\x00\x00\x00\x00")
            out = subprocess.run([nghttp, "-v", "-H", "content-type: text/plain", "-H",
                                  "te: trailers", "-d", body,
                                  "http://%s/meshd.test.Echo/Unary" % env.target],
                                 capture_output=True, timeout=15).stdout.decode("latin-1")
            st = re.search(r"recv \(stream_id=\d+\) :status: (\d+)", out)
            gs = re.search(r"recv \(stream_id=\d+\) grpc-status: (\d+)", out)
            accepted = st and st.group(1) == "200" and gs and gs.group(1) == "0"
            check(not accepted, "wrong content-type rejected (:status %s, grpc-status %s)" % (
                st and st.group(1), gs and gs.group(1)))
        # Truncated preface, then silence: the server must not block others (checked below).
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n")
            with env.client() as c:
                r = c.unary(payload=b"during", timeout=10)
            check(r.ok, "a half-open connection does not block other clients")
    finally:
        stop.set()
        t.join(30)
    check(not errors, "background client never failed (%d calls, errors %s)" % (served[0],
                                                                            errors[:3]))
    check(served[0] > 0, "background client was served throughout (%d calls)" % served[0])


def rss_kib(pid):
    """VmRSS of a process in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def case_graceful_shutdown(env):
    """SIGTERM while a stream is in flight: the stream finishes whole, meshd exits 0."""
    if env.direct:
        return
    with env.client() as c:
        call_id = uuid.uuid4().hex
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", c.server_stream(
            reply_count=15, reply_interval_ms=100, call_id=call_id, timeout=30)))
        t.start()
        wait_until(lambda: running_on_some_backend(env, call_id), 10, "the stream to start")
        env.proxy.p.send_signal(signal.SIGTERM)
        t.join(30)
        r = out.get("r")
        check(r is not None and r.ok, "the in-flight stream finished OK after SIGTERM (%s)"
              % str(r and (r.code, r.details)))
        check(len(r.replies) == 15, "all 15 replies arrived (%d)" % len(r.replies))
    rc = env.proxy.p.wait(timeout=15)
    check(rc == 0, "meshd exited 0 after draining (exit %s)" % rc)
    out = env.proxy.output()
    check("drained" in out, "meshd logged the drain")


def case_dead_endpoint(env):
    """A static route whose first instance refuses connections: every call still succeeds
    (a call that never reached an app is retried on another instance)."""
    if env.direct:
        return
    dead = free_port()  # nothing listens here
    port = free_port()
    live = env.backends[0].addr
    argv = [env.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
            "--static", "meshd.test.Echo=127.0.0.1:%d,%s" % (dead, live)]
    menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    p = Proc("meshd-dead", argv, env.dir, env=menv)
    env.procs.append(p)
    p.wait_line(r"listening on", 15)
    with EchoClient("127.0.0.1:%d" % port) as c:
        for i in range(8):
            r = c.unary(payload=b"x", timeout=10)
            check(r.ok, "call %d succeeded despite the dead instance (%s %s)"
                  % (i, r.code, r.details))
            check(r.replies[0].server_id == env.backends[0].id, "served by the live instance")


def case_slow_reader(env):
    """A client that reads slowly slows the server through both hops: meshd's memory stays
    bounded while 96 MiB stream through it, and every byte arrives."""
    if env.direct:
        return
    n, size = 384, 256 * 1024
    req = make_request(reply_count=n, reply_size=size)
    peak = 0
    got = 0
    with env.client() as c:
        start_rss = rss_kib(env.proxy.p.pid)
        stream = c.echo.ServerStream(req, timeout=60)
        for i, reply in enumerate(stream):
            got += len(reply.payload)
            if i < 64:
                time.sleep(0.02)  # slow at first: the writer must wait for us
            if i % 16 == 0:
                peak = max(peak, rss_kib(env.proxy.p.pid))
    check(got == n * size, "every byte arrived (%d of %d)" % (got, n * size))
    grown = (peak - start_rss) / 1024.0
    print("meshd RSS grew by %.1f MiB while streaming %d MiB" % (grown, n * size // MiB))
    check(grown < 48, "meshd buffered a bounded amount (RSS grew %.1f MiB)" % grown)


def start_extra_proxy(env, name, *flags):
    """Another meshd proxy in front of the first backend, with extra flags; returns its target."""
    port = free_port()
    argv = [env.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
            "--static", "meshd.test.Echo=" + env.backends[0].addr] + list(flags)
    menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    p = Proc(name, argv, env.dir, env=menv)
    env.procs.append(p)
    p.wait_line(r"listening on", 15)
    return "127.0.0.1:%d" % port, p


def case_stream_limit(env):
    """--max-concurrent-streams 4: 12 concurrent slow calls on one connection all succeed, and
    the backend never sees more than 4 of them at once."""
    if env.direct:
        return
    target, _ = start_extra_proxy(env, "meshd-limit", "--max-concurrent-streams", "4")
    results, peak, stop = [], [0], threading.Event()

    def sample():
        with env.backends[0].client() as b:
            while not stop.is_set():
                peak[0] = max(peak[0], len(b.stats(timeout=5).active_call_ids))
                time.sleep(0.02)
    sampler = threading.Thread(target=sample)
    sampler.start()
    with EchoClient(target) as c:
        threads = [threading.Thread(target=lambda i=i: results.append(
            c.unary(sleep_ms=300, call_id="lim-%d" % i, timeout=20))) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    stop.set()
    sampler.join(10)
    check(len(results) == 12 and all(r.ok for r in results), "all 12 calls succeeded: %s"
          % [(r.code.name, r.details) for r in results if not r.ok])
    check(1 <= peak[0] <= 4, "at most 4 calls ran at once through the proxy (peak %d)" % peak[0])


def case_header_limit(env):
    """A request whose headers exceed --max-header-list-size is refused with an error, and the
    proxy keeps serving normal calls."""
    if env.direct:
        return
    target, p = start_extra_proxy(env, "meshd-hdr", "--max-header-list-size", "4KiB")
    with EchoClient(target) as c:
        r = c.unary(payload=b"x", metadata=[("x-big", "a" * 8192)], timeout=10)
        check(not r.ok, "an 8 KiB header is refused (got %s)" % r.code)
        r = c.unary(payload=b"ok", timeout=10)
        check(r.ok, "a normal call still works after the refused one (%s %s)"
              % (r.code, r.details))
    check(p.alive(), "meshd still runs")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


# ---- main --------------------------------------------------------------------------------
def proxy_available(meshd):
    """True when `meshd proxy --help` knows the subcommand."""
    try:
        out = subprocess.run([meshd, "proxy", "--help"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("cannot run %s: %s" % (meshd, e))
        return False
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    if out.returncode == 0 or "--listen" in text:
        return True
    print("`meshd proxy --help` exited %d:\n%s" % (out.returncode, text.strip()))
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", default=os.path.join(PEERS, "echo_server.py"))
    ap.add_argument("--cc-server")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--case", default="all", help="|".join(["all"] + sorted(CASES)))
    args = ap.parse_args()
    if args.cc_server and not os.path.exists(args.cc_server):
        print("C++ peer %s not built: using two Python backends" % args.cc_server)
        args.cc_server = None
    names = sorted(CASES) if args.case == "all" else args.case.split(",")
    direct = os.environ.get("MESHD_TEST_DIRECT", "") not in ("", "0")
    if not direct and not proxy_available(args.meshd):
        if os.environ.get("MESHD_REQUIRE_PROXY", "0") != "0":
            print("FAIL: meshd has no proxy subcommand")
            return 1
        print("SKIP: meshd has no proxy subcommand yet")
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM"))
    failed = False
    for name in names:
        env = Env(args)
        # round_robin counts round robin's order; the other cases run the default balancer
        env.proxy_flags = ["--lb", "round-robin"] if name == "round_robin" else []
        t0 = time.monotonic()
        print("== case %s" % name, flush=True)
        ok = not_wired = False
        try:
            env.start()
            CASES[name](env)
            ok = True
            print("== PASS %s (%.1f s)" % (name, time.monotonic() - t0), flush=True)
        except NotWired:
            not_wired = ok = True
        except Fail as e:
            print("== FAIL %s: %s" % (name, e), flush=True)
        except Exception as e:
            print("== FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
        finally:
            env.stop(not ok)
        if not_wired:
            if os.environ.get("MESHD_REQUIRE_PROXY", "0") != "0":
                print("FAIL: meshd proxy says the engine is %s" % NOT_WIRED)
                return 1
            print("SKIP: meshd proxy says the engine is %s" % NOT_WIRED)
            return SKIP
        failed = failed or not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
