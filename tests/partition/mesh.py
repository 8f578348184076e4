"""tests/partition/mesh.py: real meshd processes in the namespaces of a netns.Net.

A Mesh owns one run: its Net (one namespace per node, plus "etcd"), a temp folder with every
process's log, a gossip keyring made for the run (`openssl rand -base64 32`), and the
processes it started, each inside its node's namespace through `ip netns exec` (which execs:
the PID we hold is the process itself, so kill -9 hits exactly it).

Per namespace every port is the same (each has its own port space):
  etcd      client 2379, peer 2380 on the etcd namespace's address
  proxy     gRPC listener ADDR:9090, gossip ADDR:7946, admin API ADDR:9901
  sidecar   listener ADDR:9090 (the registered address), gossip ADDR:7946, admin ADDR:9901,
            probes 127.0.0.1:8081; its app (tests/peers/echo_server.py) on 127.0.0.1:50051
            of the same namespace, answering with server_id = the node's name
The harness (root namespace, the bridge's .1) reads /v1/members and /v1/routes of every node,
etcd's keys with etcdctl, and calls through the proxies with tests/peers/echo_client.py.

Also here: Load (calls through one proxy in a loop, failures kept with their time and
reason) and Sampler (membership and routes of every node every 250 ms, for "never dead",
"no flap" and convergence checks after the fact).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(os.path.dirname(HERE), "peers")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import netns  # noqa: E402

ECHO = "meshd.test.Echo"
ETCD_PREFIX = "meshd/services"
SKIP = 77


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("  ok:", what, flush=True)


def wait_until(pred, timeout, what, step=0.05):
    """Polls pred() until true (returns its value) or the deadline (raises Fail)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(step)


def meshd_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}


class Proc:
    """A process we started inside a namespace: its log and its PID, nothing else."""

    def __init__(self, name, argv, log, env):
        self.name, self.log = name, log
        with open(log, "wb") as f:
            self.p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env)
        self.started = time.monotonic()

    def alive(self):
        return self.p.poll() is None

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_line(self, regex, timeout):
        def found():
            if not self.alive():
                raise Fail("%s exited (%s) before ready:\n%s" % (self.name, self.p.returncode,
                                                                 self.output()[-3000:]))
            return re.search(regex, self.output())
        return wait_until(found, timeout, "%s to print %r" % (self.name, regex))

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def http_json(url, timeout=3):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return json.loads(r.read().decode())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None


class Node:
    def __init__(self, mesh, name, role):
        self.mesh, self.name, self.role = mesh, name, role
        self.ip = mesh.net.addrs[name]
        self.addr = "%s:9090" % self.ip          # gRPC listener (registered for a sidecar)
        self.gossip = "%s:7946" % self.ip
        self.admin = "http://%s:9901" % self.ip
        self.meshd = None
        self.app = None

    def members(self):
        j = http_json(self.admin + "/v1/members")
        return {m["node"]: m for m in j["members"]} if j else None

    def routes(self):
        """({(service, address): instance}, etcd state) or (None, None) when unreachable."""
        j = http_json(self.admin + "/v1/routes")
        if j is None:
            return None, None
        out = {}
        for s in j.get("services", []):
            for i in s["instances"]:
                out[(s["service"], i["address"])] = i
        return out, j.get("etcd")

    def routable(self, service=ECHO):
        r, _ = self.routes()
        if r is None:
            return None
        return {a for (s, a), i in r.items() if s == service and i["state"] == "routable"}

    def gossip_counters(self):
        """The gossip section's counters of /v1/node (probes, indirect_probes, suspicions,
        refutations, deaths, ...) or {}."""
        j = http_json(self.admin + "/v1/node")
        return ((j or {}).get("gossip") or {}).get("counters") or {}

    def etcd_state(self):
        return self.routes()[1]

    def kill(self):
        """kill -9 of the whole pod: sidecar and app."""
        for p in (self.meshd, self.app):
            if p:
                p.kill()


def counters(nodes):
    """{counter: sum over nodes} of the gossip counters."""
    out = {}
    for n in nodes:
        for k, v in n.gossip_counters().items():
            if isinstance(v, int):
                out[k] = out.get(k, 0) + v
    return out


def counters_delta(before, after, keys=("probes", "indirect_probes", "stream_probes",
                                        "suspicions", "refutations", "deaths")):
    return " ".join("%s %d" % (k, after.get(k, 0) - before.get(k, 0)) for k in keys)


class Mesh:
    def __init__(self, args, names):
        """names: the mesh nodes ("p1", "s1", ...); an "etcd" namespace is always added."""
        self.args = args
        os.environ["MESHD_PROTO_PY"] = args.proto_py  # tests/peers/stubs.py finds them there
        sys.path.insert(0, PEERS)
        import echo_client  # noqa: F401  (fails here, in the main thread, when stubs are missing)
        self.dir = tempfile.mkdtemp(prefix="meshd-partition-")
        self.net = netns.Net(["etcd"] + list(names))
        self.procs = []
        self.nodes = {}
        self.etcd_url = None
        self.keyfile = os.path.join(self.dir, "gossip.key")

    def up(self):
        t0 = time.monotonic()
        self.net.up()
        netns.on_exit(self.kill_all)
        key = subprocess.run(["openssl", "rand", "-base64", "32"], capture_output=True,
                             check=True).stdout.decode()
        with open(self.keyfile, "w") as f:
            f.write(key)
        print("net %s: %s, bridge %s (host %s), namespaces %s, built in %.2f s" % (
            self.net.prefix, self.net.subnet, self.net.bridge, self.net.host,
            " ".join("%s=%s" % (n, a) for n, a in self.net.addrs.items()),
            time.monotonic() - t0), flush=True)
        return self

    # --- processes -----------------------------------------------------------------------
    def start(self, node, name, argv, env=None):
        log = os.path.join(self.dir, name + ".log")
        if os.path.exists(log):
            n = 2
            while os.path.exists(os.path.join(self.dir, "%s.%d.log" % (name, n))):
                n += 1
            log = os.path.join(self.dir, "%s.%d.log" % (name, n))
        full = self.net.exec_argv(node, argv)
        if self.args.verbose:
            print("starting in %s: %s" % (node, " ".join(argv)), flush=True)
        p = Proc(name, full, log, env or meshd_env())
        self.procs.append(p)
        return p

    def start_etcd(self):
        ip = self.net.addrs["etcd"]
        self.etcd_url = "http://%s:2379" % ip
        peer = "http://%s:2380" % ip
        argv = ["etcd", "--name", "e1", "--data-dir", os.path.join(self.dir, "etcd-data"),
                "--logger=zap", "--log-level=error", "--listen-client-urls", self.etcd_url,
                "--advertise-client-urls", self.etcd_url, "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=" + peer]
        p = self.start("etcd", "etcd", argv, env=dict(os.environ))

        def healthy():
            if not p.alive():
                raise Fail("etcd exited: %s" % p.output()[-2000:])
            j = http_json(self.etcd_url + "/health", timeout=1)
            return j and j.get("health") == "true"
        wait_until(healthy, 30, "etcd to be healthy")
        return p

    def _meshd(self, n, role, extra, join):
        argv = [self.args.meshd, role, "--node", n.name, "--workers", "1",
                "--listen", n.addr, "--gossip-bind", n.gossip, "--gossip-key", self.keyfile,
                "--admin-listen", n.admin[len("http://"):], "--log-format", "text"]
        if self.etcd_url:
            argv += ["--etcd", self.etcd_url]
        if join:
            argv += ["--gossip-join", ",".join(self.nodes[j].gossip for j in join)]
        n.meshd = self.start(n.name, n.name, argv + list(extra))
        n.meshd.wait_line(r"admin API on", 20)
        n.ready = time.monotonic()

    def proxy(self, name, join=(), extra=()):
        n = Node(self, name, "proxy")
        self.nodes[name] = n
        self._meshd(n, "proxy", extra, join)
        return n

    def app(self, n):
        n.app = self.start(n.name, "app-" + n.name,
                           ["/usr/bin/python3", os.path.join(PEERS, "echo_server.py"),
                            "--host", "127.0.0.1", "--port", "50051", "--threads", "8",
                            "--id", n.name, "--proto-py", self.args.proto_py],
                           env=dict(os.environ))
        n.app.wait_line(r"listening on", 30)

    def sidecar(self, name, join=(), extra=(), with_app=True):
        """An app and its sidecar in namespace `name`; returns the Node once the sidecar's
        admin API is up (registration follows its first health check)."""
        n = Node(self, name, "sidecar")
        self.nodes[name] = n
        if with_app:
            self.app(n)
        self._meshd(n, "sidecar", ["--app", "127.0.0.1:50051", "--probe-listen",
                                   "127.0.0.1:8081", "--health-interval", "500ms"] +
                    list(extra), join)
        return n

    def kill_all(self):
        for p in reversed(self.procs):
            p.kill()

    def stop(self, failed, tail=4000):
        try:
            self.kill_all()
            if failed:
                for name in sorted(os.listdir(self.dir)):
                    if name.endswith(".log"):
                        with open(os.path.join(self.dir, name), errors="replace") as f:
                            print("---- %s ----\n%s" % (name, f.read()[-tail:]))
            elif self.args.keep_logs:
                print("logs kept in", self.dir)
        finally:
            self.net.down()
            if not self.args.keep_logs:
                shutil.rmtree(self.dir, ignore_errors=True)

    # --- views ---------------------------------------------------------------------------
    def etcd_view(self):
        """{(service, address)} registered in etcd now (None when etcd does not answer)."""
        env = dict(os.environ, ETCDCTL_API="3")
        try:
            r = subprocess.run(["etcdctl", "--endpoints", self.etcd_url, "--command-timeout=3s",
                                "get", "--prefix", "--keys-only", ETCD_PREFIX + "/"],
                               capture_output=True, env=env, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        out = set()
        for k in r.stdout.decode().split():
            parts = k[len(ETCD_PREFIX) + 1:].split("/")
            if len(parts) >= 2:
                out.add((parts[0], parts[-1]))
        return out

    def etcd_routes(self, n):
        """{(service, address)} that node n routes to (every source)."""
        r, _ = n.routes()
        if r is None:
            return None
        return {k for k, i in r.items() if i["state"] == "routable"}

    def members_agree(self, nodes, alive):
        """Every node in nodes sees exactly the names in alive as alive (others not alive)."""
        for n in nodes:
            m = n.members()
            if m is None:
                return False
            live = {k for k, v in m.items() if v["state"] == "alive"}
            if live != set(alive):
                return False
        return True

    def proxies(self):
        return [n for n in self.nodes.values() if n.role == "proxy"]

    def live_nodes(self):
        return [n for n in self.nodes.values() if n.meshd and n.meshd.alive()]


class Load(threading.Thread):
    """Unary calls through one proxy from the host, in a loop (5 s deadline each); failures
    kept as (start, end, reason), successes as their end times."""

    def __init__(self, proxy, interval=0.02):
        super().__init__(daemon=True)
        self.proxy, self.interval = proxy, interval
        self.stop_ = threading.Event()
        self.ok, self.failed, self.by = 0, [], {}
        self.last_ok = None
        self.error = None
        self.ok_times = []

    def run(self):
        try:
            self._run()
        except BaseException as e:  # a dead load thread must not pass for "0 failures"
            self.error = repr(e)
            raise

    def _run(self):
        from echo_client import EchoClient
        with EchoClient(self.proxy.addr) as c:
            while not self.stop_.is_set():
                start = time.monotonic()
                r = c.unary(payload=b"x", timeout=5)
                now = time.monotonic()
                if r.ok:
                    self.ok += 1
                    self.last_ok = now
                    self.ok_times.append(now)
                    sid = r.replies[0].server_id
                    self.by[sid] = self.by.get(sid, 0) + 1
                else:
                    self.failed.append((start, now, "%s: %s" % (r.code.name, r.details)))
                time.sleep(self.interval)

    def ok_between(self, t0, t1):
        return [t for t in self.ok_times if t0 <= t <= t1]

    def failed_between(self, t0, t1):
        """Failed calls that started in [t0, t1]: (start, end, reason)."""
        return [f for f in self.failed if t0 <= f[0] <= t1]

    def finish(self):
        self.stop_.set()
        self.join(15)
        if self.error or self.ok == 0:
            raise Fail("the load through %s did not run: %s" % (self.proxy.name,
                                                                 self.error or "no call at all"))

    def summary(self):
        return "%s: %d ok, %d failed, by app %s" % (self.proxy.name, self.ok, len(self.failed),
                                                     dict(sorted(self.by.items())))


class Sampler(threading.Thread):
    """Every period: each live node's members (name -> state) and routable Echo addresses."""

    def __init__(self, mesh, period=0.25):
        super().__init__(daemon=True)
        self.mesh, self.period = mesh, period
        self.stop_ = threading.Event()
        self.samples = []  # (time, node name, {member: state} or None, routable set or None)
        self.lock = threading.Lock()

    def run(self):
        while not self.stop_.is_set():
            for n in list(self.mesh.live_nodes()):
                m = n.members()
                r = n.routable() if n.role == "proxy" else None
                with self.lock:
                    self.samples.append((time.monotonic(), n.name,
                                         {k: v["state"] for k, v in m.items()} if m else None,
                                         r))
            self.stop_.wait(self.period)

    def finish(self):
        self.stop_.set()
        self.join(15)

    def seen(self, t0=0, t1=float("inf")):
        with self.lock:
            return [s for s in self.samples if t0 <= s[0] <= t1]

    def deaths(self, t0=0, t1=float("inf"), who=None):
        """{(observer, member)} pairs where observer saw member dead in [t0, t1]."""
        out = set()
        for t, obs, m, _ in self.seen(t0, t1):
            for k, st in (m or {}).items():
                if st == "dead" and (who is None or k in who):
                    out.add((obs, k))
        return out

    def states(self, t0=0, t1=float("inf")):
        """{state: number of (sample, member) observations} in [t0, t1]."""
        out = {}
        for t, obs, m, _ in self.seen(t0, t1):
            for k, st in (m or {}).items():
                out[st] = out.get(st, 0) + 1
        return out
