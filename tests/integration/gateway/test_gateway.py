#!/usr/bin/python3
"""tests/integration/gateway/test_gateway.py: `meshd gateway` end to end: a real grpcio server
(library_server.py) behind the gateway, called over HTTP/1.1 with http.client and raw sockets,
as a user would. One case per run (--case NAME); each asserts what the HTTP client sees.

  test_gateway.py --meshd MESHD --case NAME
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = [os.path.join(HERE, "protos"),
          os.path.join(HERE, "..", "..", "unit", "gateway_route", "protos"), "/usr/include"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.desc = os.path.join(work, "library.pb")
        args = ["protoc"] + ["-I" + p for p in PROTOS] + [
            "--include_imports", "--descriptor_set_out=" + self.desc, "gwtest/v1/library.proto"]
        subprocess.run(args, check=True)
        self.backend = free_port()
        if backend_up:
            self.start([sys.executable, os.path.join(HERE, "library_server.py"),
                        "--descriptor-set", self.desc, "--port", str(self.backend)], "server")
            wait_port(self.backend)
        self.port = free_port()
        self.start([meshd, "gateway", "--listen", "127.0.0.1:%d" % self.port, "--workers", "2",
                    "--descriptor-set", self.desc, "--log-level", "warn",
                    "--static", "gwtest.v1.Library=127.0.0.1:%d" % self.backend], "gateway")
        wait_port(self.port)

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
