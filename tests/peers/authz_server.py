#!/usr/bin/python3
"""tests/peers/authz_server.py: an authorization service and HTTP test server for integration tests.

Run with /usr/bin/python3:
  authz_server.py --ports-file PATH [--proto-dir DIR]

Serves on 127.0.0.1, each on a free port, and writes {"http": P, "grpc": P, "hang": P} to
PATH (atomically) once everything listens:
  - http: an HTTP/1.0 server (http.server) with
      /check...        the HTTP authorization check (any method; see decide() below)
      /echo            200 with a JSON echo of method, path, headers and body; X-Test: yes
      /status/N        status N with body "status N"
      /big/N[?nolen=1] N bytes of "a" (nolen: no Content-Length, the close ends the body)
      /slow/MS         answers 200 "slow" after MS milliseconds
      /jwks            the document set by POST /_jwks {"status", "body", "cache_control"}
      /_stats          {"checks": N, "grpc_checks": N, "last": {...}, "jwks_gets": N}
      /_reset          counters to zero
  - grpc: envoy.service.auth.v3.Authorization/Check (stubs generated at start with the
    system protoc from --proto-dir, default proto/ext_authz beside this tree)
  - hang: accepts TCP connections and never answers
SIGTERM/SIGINT stop it.

The verdict for a call (both protocols) comes from its authorization header or cookie:
  "Bearer allow:NAME"     allow, identity NAME (HTTP: in X-User-Id; gRPC: ok_response header
                          x-user-id)
  "Bearer deny"           403 "token revoked" / PERMISSION_DENIED
  no credentials, or "Bearer unauth"      401 / UNAUTHENTICATED
  "Bearer slow"           sleeps 3 s, then allows as "slow"
  "Bearer error"          500 / the Check call fails with INTERNAL
  "Bearer evil-identity"  allow with identity "eve\x01admin" (a control character)
  cookie "session=NAME"   allow, identity NAME
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
LOCK = threading.Lock()
STATS = {"checks": 0, "grpc_checks": 0, "last": {}, "jwks_gets": 0}
JWKS = {"status": 200, "body": '{"keys":[]}', "cache_control": ""}


def decide(headers):
    """(verdict, identity or reason) for lower-cased request headers."""
    auth = headers.get("authorization", "")
    cookie = headers.get("cookie", "")
    if auth.startswith("Bearer allow:"):
        return "allow", auth[len("Bearer allow:"):]
    if auth == "Bearer evil-identity":
        return "allow", "eve\x01admin"
    if auth == "Bearer deny":
        return "deny", "token revoked"
    if auth == "Bearer slow":
        time.sleep(3)
        return "allow", "slow"
    if auth == "Bearer error":
        return "error", "backend exploded"
    for crumb in cookie.split(";"):
        k, _, v = crumb.strip().partition("=")
        if k == "session" and v:
            return "allow", v
    return "unauth", "no credentials"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, body=b"", headers=(), length=True, reason=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code, reason)
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self):
        path, _, query = self.path.partition("?")
        body = self._body()
        hdrs = {k.lower(): v for k, v in self.headers.items()}
        if path.startswith("/check"):
            with LOCK:
                STATS["checks"] += 1
                STATS["last"] = {"path": self.path, "method": self.command, "headers": hdrs}
            verdict, what = decide(hdrs)
            if verdict == "allow":
                return self._send(200, "ok", [("X-User-Id", what)])
            if verdict == "deny":
                return self._send(403, what)
            if verdict == "unauth":
                return self._send(401, what)
            return self._send(500, what)
        if path == "/echo":
            doc = {"method": self.command, "path": self.path, "headers": hdrs,
                   "body": body.decode("latin-1")}
            return self._send(200, json.dumps(doc), [("X-Test", "yes"),
                                                    ("Content-Type", "application/json")])
        if path.startswith("/status/"):
            code = int(path[len("/status/"):])
            return self._send(code, "status %d" % code)
        if path.startswith("/big/"):
            n = int(path[len("/big/"):])
            return self._send(200, b"a" * n, length="nolen=1" not in query)
        if path.startswith("/slow/"):
            time.sleep(int(path[len("/slow/"):]) / 1000.0)
            return self._send(200, "slow")
        if path == "/jwks":
            with LOCK:
                STATS["jwks_gets"] += 1
                doc = dict(JWKS)
            extra = [("Cache-Control", doc["cache_control"])] if doc["cache_control"] else []
            return self._send(doc["status"], doc["body"], extra)
        if path == "/_jwks":
            with LOCK:
                JWKS.update(json.loads(body or b"{}"))
            return self._send(200, "set")
        if path == "/_stats":
            with LOCK:
                return self._send(200, json.dumps(STATS))
        if path == "/_reset":
            with LOCK:
                STATS.update({"checks": 0, "grpc_checks": 0, "last": {}, "jwks_gets": 0})
            return self._send(200, "reset")
        return self._send(404, "no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: the tests open 40 connections at once, the kernel
    # drops the SYNs past the backlog and the client's retransmission (1 s, then 3 s) can
    # outlast its 2 s connect timeout on a loaded machine. A real server listens wider.
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # a client that gave up (timeout, cancel, size bound) is part of the tests
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def start_grpc(proto_dir):
    """Starts the gRPC Authorization service; returns (server, port)."""
    import grpc

    out = tempfile.mkdtemp(prefix="authz_pb_")
    protos = []
    for root, _, files in os.walk(proto_dir):
        for f in files:
            if f.endswith(".proto"):
                protos.append(os.path.relpath(os.path.join(root, f), proto_dir))
    subprocess.run(["protoc", "-I", proto_dir, "--python_out=" + out] + protos, check=True)
    sys.path.insert(0, out)
    from envoy.service.auth.v3 import external_auth_pb2 as pb  # noqa: E402
    from envoy.config.core.v3 import base_pb2  # noqa: E402

    def check(request, context):
        http = request.attributes.request.http
        hdrs = {k.lower(): v for k, v in http.headers.items()}
        with LOCK:
            STATS["grpc_checks"] += 1
            src = request.attributes.source.address.socket_address
            STATS["last"] = {"path": http.path, "method": http.method, "headers": hdrs,
                             "id": http.id, "host": http.host,
                             "peer": "%s:%d" % (src.address, src.port_value)}
        verdict, what = decide(hdrs)
        resp = pb.CheckResponse()
        if verdict == "allow":
            resp.status.code = 0
            opt = resp.ok_response.headers.add()
            opt.header.CopyFrom(base_pb2.HeaderValue(key="x-user-id", value=what))
        elif verdict in ("deny", "unauth"):
            resp.status.code = 7 if verdict == "deny" else 16
            resp.status.message = what
            resp.denied_response.status.code = 403 if verdict == "deny" else 401
            resp.denied_response.body = what
        else:
            context.abort(grpc.StatusCode.INTERNAL, what)
        return resp

    handler = grpc.method_handlers_generic_handler(
        "envoy.service.auth.v3.Authorization",
        {"Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=pb.CheckRequest.FromString,
            response_serializer=pb.CheckResponse.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def start_hang():
    """A listener that accepts and never answers; returns its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    held = []

    def loop():
        while True:
            c, _ = ls.accept()
            held.append(c)

    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports-file", required=True)
    ap.add_argument("--proto-dir",
                    default=os.path.join(HERE, "..", "..", "proto", "ext_authz"))
    args = ap.parse_args()
    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _grpc_server, grpc_port = start_grpc(os.path.abspath(args.proto_dir))
    ports = {"http": httpd.server_address[1], "grpc": grpc_port, "hang": start_hang()}
    tmp = args.ports_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ports, f)
    os.rename(tmp, args.ports_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.wait(0.5):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
