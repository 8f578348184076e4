#!/usr/bin/python3
"""tests/integration/proxy/test_proxy_dns.py: `meshd proxy` routes to host names and follows them.

The names live in /etc/hosts (the system resolver reads it on every lookup), under a name
unique to this run; the test adds and changes its own lines and removes them at the end, also
on failure or SIGTERM (lines left by a killed run are removed by the next one). Needs root.

Cases (--case NAME):
  late_name  a --static route to a name that does not resolve when meshd starts: calls get
             UNAVAILABLE saying the name cannot be resolved; once the name appears in
             /etc/hosts it becomes routable within seconds (retry with backoff), and every
             worker resolves it.
  follow     a name that resolves to 127.0.0.1 (backend py1) is changed to 127.0.0.2 (backend
             py2, same port): after the refresh (--dns-refresh 1s) calls go to py2; a call in
             flight on the old address completes there; the proxy's idle connection to the
             old address closes at once, the busy one when its call ended.
"""
import argparse
import atexit
import fcntl
import os
import queue
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from test_proxy import EchoClient  # noqa: E402
from procs import Proc, check, free_port, wait_until, Fail  # noqa: E402
from echo_client import make_request  # noqa: E402  (test_proxy put tests/peers on the path)
import grpc  # noqa: E402

SKIP = 77
HOSTS = "/etc/hosts"
MARK = "# meshd-test pid="


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class HostsFile:
    """This run's lines in /etc/hosts, each tagged "# meshd-test pid=PID".

    Every change reads the file, replaces this run's lines and writes it back in place (the
    file may be a bind mount, so no rename), under an exclusive flock so concurrent runs do
    not lose each other's lines. Lines of runs whose process is gone are dropped too. When a
    change only appends or only removes a tail, it is one write or one truncate, so another
    process reading the file never sees a half-written line of the entries it needs."""

    def __init__(self):
        self.tag = "%s%d" % (MARK, os.getpid())
        with open(HOSTS, "rb") as f:
            self.original = f.read()
        atexit.register(self.restore)

    def _keep(self, line):
        m = re.search(re.escape(MARK) + r"(\d+)", line)
        if not m:
            return True
        pid = int(m.group(1))
        return pid != os.getpid() and _pid_alive(pid)

    def set(self, entries):
        """Makes this run's lines exactly entries: [(ip, name)]."""
        with open(HOSTS, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                old = f.read()
                lines = old.decode("utf-8", "replace").splitlines(keepends=True)
                kept = "".join(l for l in lines if self._keep(l))
                if kept and not kept.endswith("\n"):
                    kept += "\n"
                new = (kept + "".join("%s %s %s\n" % (ip, name, self.tag)
                                      for ip, name in entries)).encode()
                if new == old:
                    return
                if old.startswith(new):
                    f.truncate(len(new))
                elif new.startswith(old):
                    f.seek(len(old))
                    f.write(new[len(old):])
                else:
                    f.seek(0)
                    f.write(new)
                    f.truncate()
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def restore(self):
        try:
            self.set([])
        except OSError as e:
            print("WARNING: could not clean %s: %s" % (HOSTS, e), flush=True)


def unique_name():
    return "meshd-dns-%d-%s.test" % (os.getpid(), uuid.uuid4().hex[:8])


def start_backend(procs, workdir, args, sid, host, port=0):
    p = Proc("backend-" + sid, ["/usr/bin/python3", args.py_server, "--host", host, "--port",
                                str(port), "--id", sid], workdir)
    procs.append(p)
    m = p.wait_line(r"listening on (\d+)", 20)
    return int(m.group(1))


def start_proxy(procs, workdir, args, extra):
    port = free_port()
    argv = [args.meshd, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "2"] + extra
    print("starting:", " ".join(argv), flush=True)
    menv = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    p = Proc("meshd", argv, workdir, env=menv)
    procs.append(p)
    p.wait_line(r"listening on", 15)
    return p, "127.0.0.1:%d" % port


def answers(target, n=6, **fields):
    """What n unary calls on fresh channels get (fresh connections spread over the workers):
    the server id, or 'CODE: details'."""
    out = []
    for _ in range(n):
        with EchoClient(target) as c:
            r = c.unary(payload=b"x", timeout=5, **fields)
            out.append(r.replies[0].server_id if r.ok else "%s: %s" % (r.code.name, r.details))
    return out


def proxy_conns_to(pid, ip, port):
    """Established TCP connections of process pid to ip:port (from /proc: its socket inodes
    matched against /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    a, b, c, d = (int(x) for x in ip.split("."))
    want = "%02X%02X%02X%02X:%04X" % (d, c, b, a, port)
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[2] == want and cols[3] == "01" and cols[9] in inodes:
                n += 1
    return n


def case_late_name(args, workdir, procs, hosts):
    name = unique_name()
    port = start_backend(procs, workdir, args, "py1", "127.0.0.1")
    proxy, target = start_proxy(procs, workdir, args,
                                ["--static", "meshd.test.Echo=%s:%d" % (name, port)])
    want = ("UNAVAILABLE: meshd: no live instance of meshd.test.Echo: cannot resolve upstream "
            "%s:%d: " % (name, port))

    def told_cannot_resolve():
        got = answers(target, 2)
        for g in got:
            if not (g.startswith(want) or g.endswith("is being resolved")):
                raise Fail("unexpected answer before the name exists: %s" % g)
        return all(g.startswith(want) for g in got)
    wait_until(told_cannot_resolve, 15, "calls to be told the name cannot be resolved")
    print("  before: %s" % answers(target, 1)[0], flush=True)
    # Failed lookups are retried with a doubling delay (1 s, 2 s, ...): wait for the second
    # retry of both workers, so the name appears while they back off.
    failed = r"worker %%d: cannot resolve upstream %s:%d \(.*\); retrying in %%d ms" % (
        re.escape(name), port)
    wait_until(lambda: all(re.search(failed % (w, 2000), proxy.output()) for w in (0, 1)), 20,
               "both workers to back off after two failed lookups")
    check(all(re.search(failed % (w, 1000), proxy.output()) for w in (0, 1)),
          "meshd logs each failed lookup and its retry, 1 s then 2 s")

    t0 = time.monotonic()
    hosts.set([("127.0.0.1", name)])
    wait_until(lambda: answers(target) == ["py1"] * 6, 20,
               "the name to become routable on every worker")
    print("  name in /etc/hosts -> routable in %.1f s"
          % (time.monotonic() - t0), flush=True)
    line = "upstream %s:%d resolved to 127.0.0.1:%d" % (name, port, port)
    wait_until(lambda: proxy.output().count(line) == 2, 20, "both workers to resolve the name")
    check(proxy.output().count(line) == 2, "each worker logged the resolution once")


def case_follow(args, workdir, procs, hosts):
    name = unique_name()
    hosts.set([("127.0.0.1", name)])
    port = start_backend(procs, workdir, args, "py1", "127.0.0.1")
    start_backend(procs, workdir, args, "py2", "127.0.0.2", port)
    proxy, target = start_proxy(procs, workdir, args,
                                ["--static", "meshd.test.Echo=%s:%d" % (name, port),
                                 "--dns-refresh", "1s"])
    wait_until(lambda: answers(target) == ["py1"] * 6, 15, "the name to route to py1")

    def both_pooled():
        # Calls on fresh connections until the kernel has handed one to each worker (six
        # calls all land on one worker once in 32 runs).
        answers(target, 2)
        return proxy_conns_to(proxy.p.pid, "127.0.0.1", port) == 2
    wait_until(both_pooled, 20, "one pooled connection to py1 per worker")

    # A call in flight on the old address when the name moves (a bidi call whose second
    # request the test sends only after the move): it must complete on the old address.
    release = queue.Queue()

    def reqs():
        yield make_request(payload=b"before")
        release.get(timeout=30)
        yield make_request(payload=b"after")
    slow = EchoClient(target)
    call = slow.echo.Bidi(reqs(), timeout=60)
    replies = iter(call)
    first = next(replies)
    check(first.server_id == "py1", "a bidi call is open on py1")

    t0 = time.monotonic()
    hosts.set([("127.0.0.2", name)])
    wait_until(lambda: answers(target) == ["py2"] * 6, 15, "calls to follow the name to py2")
    print("  /etc/hosts changed -> every worker routes to the new address in %.1f s"
          % (time.monotonic() - t0), flush=True)
    wait_until(lambda: proxy_conns_to(proxy.p.pid, "127.0.0.1", port) == 1, 10,
               "the idle connection to the old address to close, the busy one to stay")
    release.put(1)
    rest = list(replies)
    check(len(rest) == 1 and rest[0].server_id == "py1" and rest[0].payload == b"after" and
          call.code() == grpc.StatusCode.OK,
          "the call in flight on the old address completed there")
    slow.close()
    wait_until(lambda: proxy_conns_to(proxy.p.pid, "127.0.0.1", port) == 0, 10,
               "the proxy's connections to the old address to close")
    check(1 <= proxy_conns_to(proxy.p.pid, "127.0.0.2", port) <= 2,
          "pooled connections to the new address (one per worker that had calls)")
    check(re.search(r"upstream %s:%d now resolves to 127\.0\.0\.2:%d \(was 127\.0\.0\.1:%d\)"
                    % (re.escape(name), port, port, port), proxy.output()),
          "meshd logs the address change")


CASES = {"late_name": case_late_name, "follow": case_follow}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    args = ap.parse_args()
    if os.geteuid() != 0 or not os.access(HOSTS, os.W_OK):
        print("SKIP: needs root to edit %s" % HOSTS)
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM"))
    workdir = tempfile.mkdtemp(prefix="meshd-it-dns-")
    procs = []
    hosts = HostsFile()
    ok = False
    try:
        print("== case %s" % args.case, flush=True)
        CASES[args.case](args, workdir, procs, hosts)
        ok = True
    except Fail as e:
        print("== FAIL %s: %s" % (args.case, e), flush=True)
    except Exception as e:
        print("== FAIL %s: %s: %s" % (args.case, type(e).__name__, e), flush=True)
    finally:
        hosts.restore()
        for p in reversed(procs):
            p.kill()
        if not ok:
            for p in procs:
                print("---- %s log ----\n%s" % (p.name, p.output()[-3000:]))
        shutil.rmtree(workdir, ignore_errors=True)
    with open(HOSTS, "rb") as f:
        now = f.read()
    if MARK + str(os.getpid()) in now.decode("utf-8", "replace"):
        print("FAIL: %s still has this run's lines" % HOSTS)
        return 1
    if now != hosts.original:
        print("note: %s differs from its content at start (another process changed it)" % HOSTS)
    print("  ok: %s restored" % HOSTS)
    if ok:
        print("== PASS %s" % args.case)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
