#!/usr/bin/python3
"""tests/integration/gateway/test_gateway.py: `meshd gateway` end to end: a real grpcio server
(library_server.py) behind the gateway, called over HTTP/1.1 with http.client and raw sockets,
and over HTTP/2 cleartext on the same port with curl (--http2-prior-knowledge, --http2 for
Upgrade: h2c), nghttp and a raw HTTP/2 client (flow control), as a user would. One case per run
(--case NAME); each asserts what the HTTP client sees.

  test_gateway.py --meshd MESHD --case NAME
"""
import argparse
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = [os.path.join(HERE, "protos"),
          os.path.join(HERE, "..", "..", "unit", "gateway_route", "protos"), "/usr/include"]
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from procs import free_port  # noqa: E402,F401  (also for test_gateway_mesh)


def wait_port(port, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never accepted" % port)


class Env:
    def __init__(self, meshd, work, backend_up=True):
        self.procs = []
        self.work = work
        self.meshd = meshd
        self.desc = os.path.join(work, "library.pb")
        args = ["protoc"] + ["-I" + p for p in PROTOS] + [
            "--include_imports", "--descriptor_set_out=" + self.desc, "gwtest/v1/library.proto"]
        subprocess.run(args, check=True)
        self.backend = free_port()
        if backend_up:
            self.start([sys.executable, os.path.join(HERE, "library_server.py"),
                        "--descriptor-set", self.desc, "--port", str(self.backend),
                        "--progress", os.path.join(work, "progress")], "server")
            wait_port(self.backend)
        self.port = free_port()
        self.admin = free_port()
        self.start([meshd, "gateway", "--listen", "127.0.0.1:%d" % self.port, "--workers", "2",
                    "--admin-listen", "127.0.0.1:%d" % self.admin,
                    "--descriptor-set", self.desc, "--log-level", "warn",
                    "--gateway-headers", "x-tenant,X-User-Id",
                    "--static", "gwtest.v1.Library=127.0.0.1:%d" % self.backend], "gateway")
        wait_port(self.port)
        wait_port(self.admin)  # it listens after the HTTP port (gateway_gauge reads /metrics)

    def start(self, argv, name):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        log = open(os.path.join(self.work, "gateway.log")).read()
        check("Sanitizer" not in log and "runtime error" not in log, "sanitizer report:\n" + log)
        check(self.procs[-1].returncode == 0, "gateway exit %s" % self.procs[-1].returncode)

    def call(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def error_body(data, code):
    j = json.loads(data)
    check(j["code"] == code and isinstance(j["message"], str) and j["details"] == [],
          "error body %r (want code %d)" % (j, code))
    return j


# ---- cases ----------------------------------------------------------------------------------

def case_unary_get(e):
    st, h, d = e.call("GET", "/v1/shelves/1/books/2?full=true&tags=a&tags=b")
    check(st == 200 and h["content-type"] == "application/json", "status %d %r" % (st, h))
    j = json.loads(d)
    check(j == {"name": "shelves/1/books/2", "title": "title of shelves/1/books/2",
                "pages": "1099511627776", "genre": "SCIENCE", "tags": ["a", "b"],
                "published": "2024-05-06T07:08:09.500Z", "rating": 5,
                "author": {"name": "Ada"}}, "body %r" % j)


def case_post_body_field(e):
    st, _, d = e.call("POST", "/v1/shelves/s1/books",
                      {"name": "b9", "genre": "FICTION", "pages": 12, "author": {"name": "Bo"}})
    check(st == 200, "status %d %r" % (st, d))
    check(json.loads(d) == {"name": "shelves/s1/books/b9", "pages": "12", "genre": "FICTION",
                            "author": {"name": "Bo"}}, "body %r" % d)


def case_put_body_star(e):
    book = {"name": "n", "title": "t", "tags": ["x", "y"], "rating": 0,
            "published": "2020-01-01T00:00:00Z", "genre": 1}
    st, _, d = e.call("PUT", "/v1/books", book)
    check(st == 200, "status %d %r" % (st, d))
    want = dict(book, genre="FICTION")
    check(json.loads(d) == want, "body %r" % d)


def case_generic_route(e):
    st, _, d = e.call("POST", "/gwtest.v1.Library/Echo", {"title": "plain", "pages": "7"})
    check(st == 200 and json.loads(d) == {"title": "plain", "pages": "7"}, "%d %r" % (st, d))


def case_stream_ndjson(e):
    st, h, d = e.call("GET", "/v1/shelves/s/books?count=3")
    check(st == 200 and h["content-type"] == "application/x-ndjson", "%d %r" % (st, h))
    lines = [json.loads(l) for l in d.decode().splitlines()]
    check([l["name"] for l in lines] == ["shelves/s/books/%d" % i for i in range(3)], repr(lines))
    st, _, d = e.call("GET", "/v1/shelves/s/books?count=2&fail=ABORTED")
    lines = [json.loads(l) for l in d.decode().splitlines()]
    check(st == 200 and len(lines) == 3 and lines[2]["error"]["code"] == 10, repr(lines))


def case_stream_sse(e):
    st, h, d = e.call("GET", "/v1/shelves/s/books?count=2&fail=NOT_FOUND",
                      headers={"Accept": "text/event-stream"})
    check(st == 200 and h["content-type"] == "text/event-stream", "%d %r" % (st, h))
    events = [ev for ev in d.decode().split("\n\n") if ev]
    check(len(events) == 3, repr(events))
    check(json.loads(events[0][len("data: "):])["name"] == "shelves/s/books/0", events[0])
    check(events[2].startswith("event: error\ndata: ") and
          json.loads(events[2].split("data: ", 1)[1])["code"] == 5, events[2])


def case_metadata(e):
    st, h, d = e.call("GET", "/v1/shelves/1/books/2",
                      headers={"Grpc-Metadata-X-Test": "hello", "Authorization": "Bearer abc",
                               "X-Forwarded-For": "10.1.2.3"})
    check(st == 200, "status %d" % st)
    check(h.get("grpc-metadata-x-echo") == "hello", "x-echo %r" % h)
    check(h.get("grpc-trailer-x-trail") == "hello", "x-trail %r" % h)
    check(h.get("grpc-metadata-x-saw-auth") == "Bearer abc", "auth %r" % h)
    check(h.get("grpc-metadata-x-saw-xff") == "10.1.2.3, 127.0.0.1", "xff %r" % h)
    # --gateway-headers x-tenant,X-User-Id: those pass under their own lower-cased names, any
    # other header does not
    st, h, d = e.call("GET", "/v1/shelves/1/books/2",
                      headers={"X-Tenant": "acme", "x-user-id": "u-7", "X-Other": "no"})
    check(st == 200, "status %d" % st)
    check(h.get("grpc-metadata-x-saw-x-tenant") == "acme", "x-tenant %r" % h)
    check(h.get("grpc-metadata-x-saw-x-user-id") == "u-7", "x-user-id %r" % h)
    check("grpc-metadata-x-saw-x-other" not in h, "x-other passed: %r" % h)
    # the same over h2c (lower-case names on the wire)
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge",
                          "-H", "X-Tenant: h2", "http://127.0.0.1:%d/v1/shelves/1/books/2" % e.port],
                         capture_output=True, text=True, timeout=30).stdout.lower()
    check("grpc-metadata-x-saw-x-tenant: h2" in out, "h2c x-tenant: %r" % out)


def case_client_gone(e):
    """Clients that close (with a reset) while their answers are being written cost their own
    connection only: the gateway keeps serving (a write to a closed socket raised SIGPIPE,
    which killed the process, before node/main.c ignored it)."""
    req = (b"GET /v1/shelves/1/books?count=200 HTTP/1.1\r\nHost: x\r\n\r\n" +
           b"GET /v1/shelves/1/books/2 HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
    for _ in range(3):
        socks = []
        for _ in range(30):
            c = socket.create_connection(("127.0.0.1", e.port), timeout=10)
            c.sendall(req)
            socks.append(c)
        for c in socks:
            c.recv(1)  # answers are being written
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
    st, _, d = e.call("GET", "/v1/shelves/1/books/2")
    check(st == 200, "after clients left: %d %r" % (st, d))
    check(e.procs[-1].poll() is None, "the gateway exited: %s" % e.procs[-1].returncode)


def case_headers_config(e):
    """Forbidden names in the allow-list are refused at start, from a flag, the environment
    or the YAML file, with a message naming the header and the reason."""
    meshd = e.meshd
    yml = os.path.join(e.work, "bad.yaml")
    with open(yml, "w") as f:
        f.write('gateway-headers: [x-tenant, ":path"]\n')
    tries = [
        (["--gateway-headers", "x-ok,te"], {}, "'te' cannot be allow-listed: a hop-by-hop"),
        (["--gateway-headers", "Connection"], {}, "hop-by-hop"),
        (["--gateway-headers", "grpc-status"], {}, "grpc-* headers belong to gRPC"),
        (["--gateway-headers", "content-type"], {}, "written by the gateway"),
        (["--gateway-headers", "bad name"], {}, "is not a header name"),
        ([], {"MESHD_GATEWAY_HEADERS": "x-a,Grpc-Metadata-X"}, "grpc-* headers"),
        (["--config", yml], {}, "pseudo-header"),
    ]
    for args, env, want in tries:
        p = subprocess.run([meshd, "gateway", "--listen", "127.0.0.1:%d" % free_port(),
                            "--static", "gwtest.v1.Library=127.0.0.1:1"] + args,
                           env=dict(os.environ, **env), capture_output=True, text=True,
                           timeout=30)
        check(p.returncode != 0, "%r %r started" % (args, env))
        text = p.stderr + p.stdout
        check(want in text and ("gateway-headers" in text or "GATEWAY_HEADERS" in text),
              "%r %r: %r" % (args, env, p.stderr + p.stdout))


def case_errors(e):
    st, h, d = e.call("GET", "/nowhere")
    check(st == 404 and h["content-type"] == "application/json", "404: %d" % st)
    error_body(d, 5)
    st, _, d = e.call("DELETE", "/v1/shelves/1/books/2")
    check(st == 405, "405: %d" % st)
    error_body(d, 12)
    st, _, d = e.call("PUT", "/v1/books", '{"name": "x", "author": {"name": 5}}',
                      headers={"Content-Type": "application/json"})
    check(st == 400 and "author.name" in error_body(d, 3)["message"], "field path: %r" % d)
    st, _, d = e.call("PUT", "/v1/books", '{"name": ', headers={"Content-Type": "application/json"})
    check(st == 400 and "line 1 column" in error_body(d, 3)["message"], "syntax: %r" % d)
    st, _, d = e.call("PUT", "/v1/books", "x", headers={"Content-Type": "text/plain"})
    check(st == 415, "415: %d" % st)
    for name, code, http_st in [("NOT_FOUND", 5, 404), ("PERMISSION_DENIED", 7, 403),
                                ("UNAUTHENTICATED", 16, 401), ("INVALID_ARGUMENT", 3, 400),
                                ("ALREADY_EXISTS", 6, 409), ("RESOURCE_EXHAUSTED", 8, 429),
                                ("UNIMPLEMENTED", 12, 501), ("INTERNAL", 13, 500),
                                ("UNAVAILABLE", 14, 503)]:
        st, _, d = e.call("GET", "/v1/fail/" + name)
        check(st == http_st, "%s: HTTP %d, want %d" % (name, st, http_st))
        check(error_body(d, code)["message"] == "failed as asked: " + name, repr(d))


def case_deadline(e):
    st, _, d = e.call("GET", "/v1/shelves/1/books/2?delayMs=3000", headers={"Grpc-Timeout": "200m"})
    check(st == 504, "status %d %r" % (st, d))
    error_body(d, 4)
    st, _, d = e.call("GET", "/v1/shelves/1/books/2", headers={"Grpc-Timeout": "soon"})
    check(st == 400, "bad Grpc-Timeout: %d" % st)
    # X-Request-Timeout: seconds (with a fraction) or a Go duration
    for v in ["0.2", "200ms", "0.1s100ms"]:
        st, _, d = e.call("GET", "/v1/shelves/1/books/2?delayMs=3000",
                          headers={"X-Request-Timeout": v})
        check(st == 504, "X-Request-Timeout %s: status %d %r" % (v, st, d))
        error_body(d, 4)
    for v, lo, hi in [("2", 1000, 2000), ("1.5s", 500, 1500), ("1m30s", 80000, 90000),
                      ("250ms", 1, 250)]:
        st, h, d = e.call("GET", "/v1/shelves/1/books/2", headers={"X-Request-Timeout": v})
        left = int(h.get("grpc-metadata-x-saw-deadline-ms", "-1"))
        check(st == 200 and lo <= left <= hi, "X-Request-Timeout %s: %d, %d ms left" % (v, st, left))
    # Grpc-Timeout wins over X-Request-Timeout
    st, h, d = e.call("GET", "/v1/shelves/1/books/2",
                      headers={"X-Request-Timeout": "100", "Grpc-Timeout": "2S"})
    left = int(h.get("grpc-metadata-x-saw-deadline-ms", "-1"))
    check(st == 200 and 0 < left <= 2000, "both: %d ms left" % left)
    for v in ["soon", "0", "-1s", "1x", "", "1.5.2"]:
        st, _, d = e.call("GET", "/v1/shelves/1/books/2", headers={"X-Request-Timeout": v})
        check(st == 400 and "X-Request-Timeout" in error_body(d, 3)["message"],
              "bad X-Request-Timeout %r: %d %r" % (v, st, d))


def case_large_body(e):
    blob = "z" * (600 * 1024)
    st, _, d = e.call("PUT", "/v1/books", {"name": "big", "blob": blob})
    check(st == 200 and json.loads(d)["blob"] == blob, "status %d" % st)
    st, _, d = e.call("PUT", "/v1/books", {"blob": "z" * (2 << 20)})
    check(st == 413, "over the limit: %d" % st)


def case_pipelining(e):
    s = socket.create_connection(("127.0.0.1", e.port), timeout=30)
    reqs = b"".join(b"GET /v1/shelves/1/books/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(20))
    s.sendall(reqs)
    buf = b""
    names = []
    while len(names) < 20:
        chunk = s.recv(65536)
        check(chunk, "connection closed after %d answers" % len(names))
        buf += chunk
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buf[:head_end].decode()
            cl = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")][0])
            if len(buf) < head_end + 4 + cl:
                break
            body = buf[head_end + 4:head_end + 4 + cl]
            buf = buf[head_end + 4 + cl:]
            check(head.startswith("HTTP/1.1 200"), head)
            names.append(json.loads(body)["name"])
    s.close()
    check(names == ["shelves/1/books/%d" % i for i in range(20)], "order %r" % names)


def case_upstream_down(e):
    st, _, d = e.call("GET", "/v1/shelves/1/books/2")
    check(st == 503, "status %d %r" % (st, d))
    check(error_body(d, 14)["message"].startswith("meshd:"), repr(d))


# ---- request streams: NDJSON bodies -----------------------------------------------------------

def case_client_stream(e):
    books = [{"name": "b%d" % i, "pages": i} for i in range(50)]
    body = "\n".join(json.dumps(b) for b in books) + "\n\n"
    st, h, d = e.call("POST", "/v1/books:batchAdd", body, headers={"Content-Type": "application/json"})
    check(st == 200 and h["content-type"] == "application/json", "%d %r" % (st, d))
    j = json.loads(d)
    check(j == {"count": 50, "pages": str(sum(range(50))), "names": ["b%d" % i for i in range(50)]},
          repr(j))
    # chunked upload, lines split across chunks, no final newline
    c = http.client.HTTPConnection("127.0.0.1", e.port, timeout=30)
    c.putrequest("POST", "/v1/books:batchAdd")
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    text = '{"name": "x", "pages": 3}\n{"name": "y", "pa' + 'ges": 4}\n{"name": "z"}'
    for part in (text[:10], text[10:33], text[33:]):
        c.send(b"%x\r\n%s\r\n" % (len(part), part.encode()))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    j = json.loads(r.read())
    c.close()
    check(r.status == 200 and j == {"count": 3, "pages": "7", "names": ["x", "y", "z"]}, repr(j))
    # an empty stream, a bad line (400 naming line and column), an upstream error after messages
    st, _, d = e.call("POST", "/v1/books:batchAdd", "", headers={"Content-Type": "application/json"})
    check(st == 200 and json.loads(d) == {}, "empty: %d %r" % (st, d))
    st, _, d = e.call("POST", "/v1/books:batchAdd", '{"name": "a"}\n{"name": }\n',
                      headers={"Content-Type": "application/json"})
    check(st == 400 and "line 1 column" in error_body(d, 3)["message"], "bad line: %d %r" % (st, d))
    st, _, d = e.call("POST", "/v1/books:batchAdd", '{"name": "a"}\n{"title": "fail:OUT_OF_RANGE"}\n',
                      headers={"Content-Type": "application/json"})
    check(st == 400 and error_body(d, 11)["message"] == "book 1 failed as asked", "%d %r" % (st, d))
    # over h2c too
    ver, st, d = curl(e, ["--http2-prior-knowledge", "-H", "Content-Type: application/json",
                          "--data-binary", body], "/v1/books:batchAdd")
    check(ver == "2" and st == 200 and json.loads(d)["count"] == 50, "%s %d %r" % (ver, st, d))


def case_bidi_stream(e):
    body = "".join(json.dumps({"name": "n%d" % i, "title": "t%d" % i}) + "\n" for i in range(20))
    st, h, d = e.call("POST", "/gwtest.v1.Library/Shout", body,
                      headers={"Content-Type": "application/json"})
    check(st == 200 and h["content-type"] == "application/x-ndjson", "%d %r" % (st, h))
    lines = [json.loads(l) for l in d.decode().splitlines()]
    check(lines == [{"name": "n%d" % i, "title": "T%d" % i} for i in range(20)], repr(lines))
    # answers flow while the request is still open: one line in, one line out (a raw socket,
    # chunked upload)
    s = socket.create_connection(("127.0.0.1", e.port), timeout=30)
    s.sendall(b"POST /gwtest.v1.Library/Shout HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    got = b""
    for i in range(3):
        line = b'{"title": "hi%d"}\n' % i
        s.sendall(b"%x\r\n%s\r\n" % (len(line), line))
        while b'"HI%d"' % i not in got:
            chunk = s.recv(65536)
            check(chunk, "closed: %r" % got)
            got += chunk
    s.sendall(b"0\r\n\r\n")
    while not got.endswith(b"0\r\n\r\n"):
        chunk = s.recv(65536)
        check(chunk, "closed before the end: %r" % got)
        got += chunk
    s.close()
    # over h2c, and a bad line after good ones: the stream ends with an error line
    ver, st, d = curl(e, ["--http2-prior-knowledge", "-H", "Content-Type: application/json",
                          "--data-binary", '{"title": "a"}\n{"title": 5}\n'],
                      "/gwtest.v1.Library/Shout")
    lines = [json.loads(l) for l in d.splitlines()]
    check(ver == "2" and st in (200, 400), "%s %d %r" % (ver, st, d))
    check(lines[-1].get("error", lines[-1]).get("code") == 3, repr(lines))


# ---- h2c: HTTP/2 cleartext on the same port ---------------------------------------------------

def curl(e, args, path):
    """curl over h2c; returns (HTTP version, status, body)."""
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_version} %{http_code}"]
                         + args + ["http://127.0.0.1:%d%s" % (e.port, path)],
                         capture_output=True, check=True).stdout.decode()
    body, _, tail = out.rpartition("\n")
    ver, code = tail.split()
    return ver, int(code), body


def case_h2c_prior(e):
    pk = ["--http2-prior-knowledge"]
    ver, st, d = curl(e, pk, "/v1/shelves/1/books/2?full=true&tags=a")
    check(ver == "2" and st == 200, "%s %d %r" % (ver, st, d))
    check(json.loads(d)["tags"] == ["a"] and json.loads(d)["pages"] == "1099511627776", d)
    ver, st, d = curl(e, pk + ["-H", "Content-Type: application/json", "-d",
                               '{"name": "b9", "pages": 12}'], "/v1/shelves/s1/books")
    check(ver == "2" and st == 200 and json.loads(d) == {"name": "shelves/s1/books/b9",
                                                          "pages": "12"}, "%d %r" % (st, d))
    ver, st, d = curl(e, pk + ["-i"], "/v1/shelves/1/books/2")
    check("content-length: " in d and "grpc-metadata-x-saw-xff: 127.0.0.1" in d, d)
    # several requests on one connection, one after the other (upgraded first: Debian's curl
    # 7.88.1 fails to reuse a prior-knowledge connection, against nghttpx as well)
    argv = ["curl", "-sS", "--http2", "-w", "%{http_code} %{num_connects}\n"]
    for i in range(5):
        argv += ["-o", "/dev/null", "http://127.0.0.1:%d/v1/shelves/1/books/%d" % (e.port, i)]
    out = subprocess.run(argv,
                         capture_output=True, check=True).stdout.decode().split()
    check(out == ["200", "1"] + ["200", "0"] * 4, "reuse: %r" % out)


def case_h2c_upgrade(e):
    ver, st, d = curl(e, ["--http2", "-v"], "/v1/shelves/1/books/2")
    check(ver == "2" and st == 200 and json.loads(d)["name"] == "shelves/1/books/2",
          "%s %d %r" % (ver, st, d))
    # with a body: the HTTP/1.1 request (and its body) becomes stream 1
    ver, st, d = curl(e, ["--http2", "-H", "Content-Type: application/json", "-d",
                          '{"title": "up", "pages": "3"}'], "/gwtest.v1.Library/Echo")
    check(ver == "2" and st == 200 and json.loads(d) == {"title": "up", "pages": "3"},
          "%s %d %r" % (ver, st, d))
    ver, st, d = curl(e, ["--http2"], "/v1/shelves/s/books?count=3")
    check(ver == "2" and [json.loads(l)["name"] for l in d.splitlines()] ==
          ["shelves/s/books/%d" % i for i in range(3)], "%s %r" % (ver, d))
    # nghttp's upgrade, then more streams on the upgraded connection
    out = subprocess.run(["nghttp", "-u", "-s", "http://127.0.0.1:%d/v1/shelves/1/books/2" % e.port,
                          "http://127.0.0.1:%d/v1/shelves/1/books/3" % e.port],
                         capture_output=True, timeout=20).stdout.decode()
    check(out.count(" 200 ") == 2, "nghttp -u: %s" % out)
    # a later request's Upgrade is ignored: answered in HTTP/1.1
    s = socket.create_connection(("127.0.0.1", e.port), timeout=20)
    s.sendall(b"GET /v1/shelves/1/books/1 HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /v1/shelves/1/books/2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, "
              b"HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
    buf = b""
    while buf.count(b"HTTP/1.1 200") < 2:
        chunk = s.recv(65536)
        check(chunk, "closed: %r" % buf)
        buf += chunk
    check(b"101" not in buf, repr(buf))
    s.close()


def case_h2c_stream(e):
    pk = ["--http2-prior-knowledge", "-i"]
    ver, st, d = curl(e, pk, "/v1/shelves/s/books?count=2&fail=ABORTED")
    head, _, body = d.replace("\r\n", "\n").partition("\n\n")
    check(st == 200 and "content-type: application/x-ndjson" in head, d)
    lines = [json.loads(l) for l in body.splitlines()]
    check(len(lines) == 3 and lines[1]["name"] == "shelves/s/books/1" and
          lines[2]["error"]["code"] == 10, repr(lines))
    ver, st, d = curl(e, ["--http2-prior-knowledge", "-H", "Accept: text/event-stream"],
                      "/v1/shelves/s/books?count=2&fail=NOT_FOUND")
    events = [ev for ev in d.split("\n\n") if ev]
    check(len(events) == 3 and events[2].startswith("event: error\ndata: "), repr(events))


def case_h2c_errors(e):
    pk = ["--http2-prior-knowledge"]
    for path, st_want, code in [("/nowhere", 404, 5), ("/v1/fail/PERMISSION_DENIED", 403, 7),
                                ("/v1/fail/UNAVAILABLE", 503, 14)]:
        ver, st, d = curl(e, pk, path)
        check(ver == "2" and st == st_want, "%s: %d" % (path, st))
        error_body(d, code)
    ver, st, d = curl(e, pk + ["-X", "DELETE"], "/v1/shelves/1/books/2")
    check(st == 405, "405: %d" % st)
    ver, st, d = curl(e, pk + ["-X", "PUT", "-H", "Content-Type: application/json", "-d",
                               '{"name": '], "/v1/books")
    check(st == 400 and "line 1 column" in error_body(d, 3)["message"], d)
    ver, st, d = curl(e, pk + ["-X", "PUT", "-H", "Content-Type: text/plain", "-d", "x"], "/v1/books")
    check(st == 415, "415: %d" % st)
    big = os.path.join(e.work, "big.json")
    with open(big, "w") as f:
        json.dump({"blob": "z" * (2 << 20)}, f)
    ver, st, d = curl(e, pk + ["-X", "PUT", "-H", "Content-Type: application/json", "--data-binary",
                               "@" + big], "/v1/books")
    check(st == 413, "413: %d %r" % (st, d[:200]))
    ver, st, d = curl(e, pk + ["-H", "Grpc-Timeout: 200m"], "/v1/shelves/1/books/2?delayMs=3000")
    check(st == 504, "504: %d" % st)
    # the connection still serves after all that
    ver, st, d = curl(e, pk, "/v1/shelves/1/books/2")
    check(st == 200, "after errors: %d" % st)


def case_h2c_concurrent(e):
    # 200 streams on one connection (at most 100 at once: the server's SETTINGS), each its own
    # answer, unary and streaming mixed
    urls = []
    for i in range(150):
        urls.append("http://127.0.0.1:%d/v1/shelves/1/books/%d" % (e.port, i))
    for i in range(50):
        urls.append("http://127.0.0.1:%d/v1/shelves/x%d/books?count=5" % (e.port, i))
    out = subprocess.run(["nghttp", "-n", "-s"] + urls, capture_output=True, timeout=60)
    text = out.stdout.decode()
    ok = [l for l in text.splitlines() if " 200 " in l]
    check(out.returncode == 0 and len(ok) == 200, "nghttp: %d ok\n%s%s" % (
        len(ok), text[-2000:], out.stderr.decode()[-2000:]))
    # the bodies: each stream got its own
    out = subprocess.run(["nghttp"] + urls[140:160], capture_output=True, timeout=60)
    text = out.stdout.decode()
    for i in range(140, 150):
        check('"name":"shelves/1/books/%d"' % i in text, "book %d missing" % i)
    for i in range(0, 10):
        for j in range(5):
            check('"name":"shelves/x%d/books/%d"' % (i, j) in text, "stream %d/%d missing" % (i, j))
    # h2load: many connections, many streams each
    out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "50",
                          "http://127.0.0.1:%d/v1/shelves/1/books/2" % e.port],
                         capture_output=True, timeout=120).stdout.decode()
    check("2000 succeeded" in out and "2000 2xx" in out, out)


def upstream_progress(e):
    try:
        return int(open(os.path.join(e.work, "progress")).read())
    except (OSError, ValueError):
        return 0


class H2Raw:
    """A minimal HTTP/2 client over a socket: enough to hold a stream's window shut."""

    def __init__(self, port, window):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = bytearray()
        self.off = 0
        settings = struct.pack(">HI", 4, window)  # SETTINGS_INITIAL_WINDOW_SIZE
        self.s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(4, 0, 0, settings))

    @staticmethod
    def frame(typ, flags, sid, payload):
        return struct.pack(">I", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">I", sid) + payload

    def get(self, sid, path, extra=()):
        def lit(n, v):  # literal header field without indexing, no Huffman
            return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
        block = lit(b":method", b"GET") + lit(b":scheme", b"http") + lit(b":path", path) + \
            lit(b":authority", b"x")
        for n, v in extra:
            block += lit(n, v)
        self.s.sendall(self.frame(1, 0x5, sid, block))  # END_STREAM | END_HEADERS

    def window(self, sid, n):
        self.s.sendall(self.frame(8, 0, sid, struct.pack(">I", n)))

    def read_frame(self):
        b, o = self.buf, self.off
        while len(b) - o < 9 or len(b) - o < 9 + int.from_bytes(b[o:o + 3], "big"):
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise AssertionError("connection closed")
            del b[:o]
            o = 0
            b += chunk
        n = int.from_bytes(b[o:o + 3], "big")
        typ, flags = b[o + 3], b[o + 4]
        sid = int.from_bytes(b[o + 5:o + 9], "big") & 0x7fffffff
        payload = bytes(b[o + 9:o + 9 + n])
        self.off = o + 9 + n
        if typ == 4 and not flags & 1:
            self.s.sendall(self.frame(4, 1, 0, b""))  # SETTINGS ACK
        return typ, flags, sid, payload


def rss_kb(pid):
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])
    return 0


def case_h2c_backpressure(e):
    # A server stream of 200,000 messages (~9 MB of NDJSON) to a client whose stream window is
    # 0: the gateway holds about a stream buffer, stops reading the upstream call, and the
    # upstream's HTTP/2 window closes, so the server stops producing far before the end (it
    # writes its progress); then every line arrives once the client opens its window.
    gw = e.procs[-1].pid
    c = H2Raw(e.port, 0)
    # The call's deadline: the wait below and the transfer after it took more than the default
    # 60 s (--gateway-timeout) on a loaded CI machine ("Deadline Exceeded" mid-stream).
    c.get(1, b"/v1/shelves/s/books?count=200000", [(b"grpc-timeout", b"600S")])
    t = c.read_frame()
    while not (t[0] == 1 and t[2] == 1):  # the response HEADERS
        t = c.read_frame()
    before = rss_kb(gw)
    # wait until the upstream stops (no progress for 1.5 s; generous deadline)
    last, still, end = -1, time.monotonic(), time.monotonic() + 60
    while time.monotonic() < end:
        p = upstream_progress(e)
        if p != last:
            last, still = p, time.monotonic()
        elif time.monotonic() - still > 1.5:
            break
        time.sleep(0.1)
    stopped_at = upstream_progress(e)
    grown = rss_kb(gw) - before
    check(stopped_at < 60000, "the upstream produced %d of 200000 messages while the client "
          "read nothing" % stopped_at)
    got = []
    t0 = time.monotonic()
    c.window(0, 1 << 30)
    c.window(1, 1 << 30)
    while True:
        typ, flags, sid, payload = c.read_frame()
        if typ == 0 and sid == 1:
            got.append(payload)
            if flags & 1:
                break
        elif typ == 3 and sid == 1:
            raise AssertionError("stream reset after %d frames" % len(got))
    lines = b"".join(got).decode().splitlines()
    check(len(lines) == 200000 and json.loads(lines[-1])["name"] == "shelves/s/books/199999",
          "%d lines, last %r" % (len(lines), lines[-1:]))
    print("h2c backpressure: the upstream stopped at %d messages, gateway RSS +%d KiB while the "
          "window was shut; then %d lines in %.1f s" % (stopped_at, grown, len(lines),
                                                         time.monotonic() - t0))


# ---- request-side backpressure: long client streams to an upstream that stops reading ---------

STREAM_N = 200000
STREAM_PAD = "p" * 150


def stream_body(bad_at=None):
    """The NDJSON body of STREAM_N books (~40 MB) in pieces of about 64 KiB; the first book
    asks the server to wait for the gate file, then to check the order. Line bad_at, if
    given, is not valid JSON."""
    piece = []
    size = 0
    for i in range(STREAM_N):
        title = "gate:seq" if i == 0 else STREAM_PAD
        line = '{"name": "b%d", "pages": %d, "title": "%s"}\n' % (i, i, title)
        if i == bad_at:
            line = '{"name": }\n'
        piece.append(line)
        size += len(line)
        if size >= 65536:
            yield "".join(piece).encode()
            piece, size = [], 0
    if piece:
        yield "".join(piece).encode()


def gateway_gauge(e, name="meshd_gateway_request_buffered_bytes"):
    c = http.client.HTTPConnection("127.0.0.1", e.admin, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for l in text.splitlines():
        if l.startswith(name + " "):
            return int(float(l.split()[1]))
    raise AssertionError("no %s in /metrics" % name)


def wait_stall(progress, t):
    """Waits until progress[0] has not moved for 2 s (generous deadline); returns it."""
    last, still, end = -1, time.monotonic(), time.monotonic() + 90
    while time.monotonic() < end and t.is_alive():
        if progress[0] != last:
            last, still = progress[0], time.monotonic()
        elif time.monotonic() - still > 2.0:
            break
        time.sleep(0.1)
    return progress[0]


def h1_stream_request(e, progress, bad_at=None):
    """Sends the stream as one chunked HTTP/1.1 request; returns (status line, body)."""
    s = socket.create_connection(("127.0.0.1", e.port), timeout=300)
    s.sendall(b"POST /v1/books:batchAdd HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    for p in stream_body(bad_at):
        s.sendall(b"%x\r\n%s\r\n" % (len(p), p))
        progress[0] += len(p)
    s.sendall(b"0\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(65536)
        check(chunk, "closed before the answer: %r" % got)
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n")
             if l.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        chunk = s.recv(65536)
        check(chunk, "closed in the answer")
        body += chunk
    s.close()
    return head.split(b"\r\n")[0], body


def client_stream_stall(e, sender, proto):
    """Runs sender(progress) in a thread (it sends the stream and returns the response body),
    waits until it stops making progress while the upstream reads nothing, checks that the
    gateway then holds a bounded number of request bytes and the client could not send the
    whole stream, opens the gate and checks that every book arrived, in order."""
    total = sum(len(p) for p in stream_body())
    gw = e.procs[-1].pid
    rss0 = rss_kb(gw)
    progress = [0]
    result = {}

    def run():
        try:
            result["body"] = sender(progress)
        except Exception as x:  # reported by the main thread
            result["error"] = x
    t = threading.Thread(target=run, daemon=True)
    t.start()
    stalled_at = wait_stall(progress, t)
    check(t.is_alive(), "the sender ended while the upstream read nothing: %r" % result)
    time.sleep(0.6)  # a worker report tick (250 ms) after the stall
    held = gateway_gauge(e)
    grown = rss_kb(gw) - rss0
    check(stalled_at < total // 2, "%s: the client sent %d of %d bytes while the upstream read "
          "nothing: the gateway did not stop reading it" % (proto, stalled_at, total))
    check(held <= 1 << 20, "%s: the gateway holds %d request bytes (bound: 1 MiB)" % (proto, held))
    open(os.path.join(e.work, "progress.go"), "w").close()
    t.join(180)
    check(not t.is_alive(), "%s: the stream did not finish after the gate opened" % proto)
    if "error" in result:
        raise result["error"]
    j = json.loads(result["body"])
    check(j == {"count": STREAM_N, "pages": str(sum(range(STREAM_N)))},
          "%s: the upstream saw %r" % (proto, j))
    end = time.monotonic() + 10
    while gateway_gauge(e) != 0 and time.monotonic() < end:
        time.sleep(0.1)
    check(gateway_gauge(e) == 0, "%s: request bytes still held after the call" % proto)
    print("%s client stream: %d bytes (%d lines); the client stalled after %d bytes; the gateway "
          "held %d request bytes (meshd_gateway_request_buffered_bytes), RSS +%d KiB; then "
          "every line arrived in order" % (proto, total, STREAM_N, stalled_at, held, grown))


def case_client_stream_backpressure(e):
    # HTTP/1.1 chunked: the gateway stops reading the connection while the call is full.
    def send(progress):
        status, body = h1_stream_request(e, progress)
        check(status.startswith(b"HTTP/1.1 200"), "answer %r %r" % (status, body[:300]))
        return body
    client_stream_stall(e, send, "HTTP/1.1")


def case_client_stream_backpressure_error(e):
    # A bad line met after the client was paused: 400 naming it, the call cancelled, and the
    # gateway reads on (the rest of the body is dropped), so the client's upload completes and
    # it gets the answer instead of hanging on a connection nobody reads.
    progress, result = [0], {}

    def run():
        try:
            result["answer"] = h1_stream_request(e, progress, bad_at=150000)
        except Exception as x:
            result["error"] = x
    t = threading.Thread(target=run, daemon=True)
    t.start()
    stalled_at = wait_stall(progress, t)
    check(t.is_alive(), "the sender ended while the upstream read nothing: %r" % result)
    open(os.path.join(e.work, "progress.go"), "w").close()
    t.join(180)
    check(not t.is_alive(), "the client hangs after the bad line")
    if "error" in result:
        raise result["error"]
    status, body = result["answer"]
    check(status.startswith(b"HTTP/1.1 400"), "answer %r %r" % (status, body[:300]))
    j = error_body(body, 3)
    check("line 1 column" in j["message"], repr(j))
    check(progress[0] == sum(len(p) for p in stream_body(150000)), "sent %d" % progress[0])
    print("bad line 150,000 after a stall at %d bytes: %r" % (stalled_at, j["message"]))


def case_h2c_client_stream_backpressure(e):
    # h2c: the stream's window stays shut while the call is full; the client sends only what
    # the gateway's WINDOW_UPDATEs allow.
    def send(progress):
        c = H2Raw(e.port, 65535)
        def lit(n, v):
            return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v
        block = lit(b":method", b"POST") + lit(b":scheme", b"http") + \
            lit(b":path", b"/v1/books:batchAdd") + lit(b":authority", b"x") + \
            lit(b"content-type", b"application/json")
        c.s.sendall(c.frame(1, 0x4, 1, block))  # END_HEADERS
        conn_win, win = 65535, 65535
        body = b""
        done = False

        def handle(f):
            nonlocal conn_win, win, body, done
            typ, flags, sid, payload = f
            if typ == 8:
                inc = int.from_bytes(payload[:4], "big") & 0x7fffffff
                if sid == 0:
                    conn_win += inc
                elif sid == 1:
                    win += inc
            elif typ == 4 and not flags & 1:
                for i in range(0, len(payload), 6):
                    ident, val = struct.unpack(">HI", payload[i:i + 6])
                    if ident == 4:
                        win += val - 65535
            elif typ == 0 and sid == 1:
                body += payload
                done = done or bool(flags & 1)
            elif typ == 1 and sid == 1:
                done = done or bool(flags & 1)
            elif typ == 3 or typ == 7:
                raise AssertionError("stream reset or GOAWAY: %r" % (f,))
        for p in stream_body():
            off = 0
            while off < len(p):
                while min(conn_win, win) <= 0:
                    handle(c.read_frame())
                n = min(conn_win, win, 16384, len(p) - off)
                c.s.sendall(c.frame(0, 0, 1, p[off:off + n]))
                conn_win -= n
                win -= n
                off += n
                progress[0] += n
        c.s.sendall(c.frame(0, 1, 1, b""))  # END_STREAM
        while not done:
            handle(c.read_frame())
        c.s.close()
        return body
    client_stream_stall(e, send, "h2c")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="meshd-gw-") as work:
        e = Env(a.meshd, work, backend_up=a.case != "upstream_down")
        try:
            CASES[a.case](e)
        except Exception:
            for f in os.listdir(work):
                if f.endswith(".log"):
                    sys.stderr.write("---- %s\n%s" % (f, open(os.path.join(work, f)).read()[-3000:]))
            raise
        finally:
            e.stop()
    print("ok", a.case)


if __name__ == "__main__":
    main()
