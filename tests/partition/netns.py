"""tests/partition/netns.py: the real-network half of the partition tests, the network itself.

A Net is one run's private network: one network namespace per node (mesh nodes and etcd),
each joined by a veth pair to a Linux bridge in the root namespace, on a /24 of 10.77.0.0/16
that no other interface on the machine uses (picked under a lock, so parallel runs get
different subnets). The bridge holds .1 (the "host": this harness, which queries admin APIs,
etcd, and makes calls from the root namespace); etcd and the nodes get .2 upwards.

Every name carries the run's prefix "mpt<pid in base 36>" (namespaces "mpt1a2b-p1", host-side
veths "mpt1a2b-p1", bridge "mpt1a2b-br"), so two runs never collide, and a later run can tell
leftovers of a dead run (its pid is gone) from a live one and remove them (stale_cleanup).
Inside each namespace the veth is "eth0".

Faults are nftables rules in the namespaces' own table "inet mpt_fault" (chain "in", on the
input hook): packets are dropped silently by the receiver (no RST, no ICMP), exactly like a
cable pulled somewhere in between. Never on the output hook: a packet dropped there fails the
sender's sendto()/connect() at once with EPERM, which no real network does. The host address .1 is accepted first and never
faulted: the observer keeps seeing everything. ARP is not filtered (nftables' inet family
does not see it), so a partition is an IP blackhole, not a link down.
  partition(A, B)    drop everything between the groups, both directions
  one_way(src, dsts) drop the packets src sends to dsts (their packets still reach src)
  isolate(n)         partition([n], everyone else)
  drop_port(n, port) drop the TCP packets others send to n's port (a blackholed data port)
  loss(pct, nodes)   drop pct % of every packet those nodes receive (numgen random mod 100)
  heal()             remove every fault
There is no netem in this kernel: delay and reordering are the simulator's (simulations/).

Cleanup is layered: Net.down() in the caller's finally, an atexit hook and SIGTERM/SIGINT/
SIGHUP handlers for the same, and stale_cleanup() at the start of every run for what a
SIGKILLed run left behind (its processes, found with `ip netns pids`, are killed by PID).
"""
import atexit
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import sys
import time

LOCK = "/run/lock/meshd-partition.lock"
PREFIX_RE = re.compile(r"^mpt([0-9a-z]{1,6})-")
BASE = ipaddress.ip_network("10.77.0.0/16")
TABLE = "mpt_fault"

_live = []  # Nets that are up, for atexit and the signal handlers


class NetError(Exception):
    """The namespaces could not be built (not root, no iproute2/nftables, ...)."""


def _b36(n):
    s = ""
    while True:
        n, r = divmod(n, 36)
        s = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + s
        if n == 0:
            return s


def sh(argv, check=True, input=None, timeout=30):
    r = subprocess.run(argv, capture_output=True, input=input, timeout=timeout)
    if check and r.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(argv), r.returncode,
                                            (r.stderr or r.stdout).decode(errors="replace")))
    return r.stdout.decode(errors="replace")


def _pid_alive(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read() != b""
    except OSError:
        return False


def stale_cleanup(keep=None):
    """Removes namespaces, links and state of earlier runs whose harness pid is gone
    (their leftover processes are killed by PID first). keep: our own prefix."""
    removed = []
    with open(LOCK, "a") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        for ns in sh(["ip", "netns", "list"], check=False).split("\n"):
            ns = ns.split(" ")[0]
            m = PREFIX_RE.match(ns)
            if not m or ns.startswith(keep or "\0") or _pid_alive(int(m.group(1), 36)):
                continue
            for pid in sh(["ip", "netns", "pids", ns], check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            sh(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
        for line in sh(["ip", "-o", "link", "show"], check=False).split("\n"):
            parts = line.split(": ")
            if len(parts) < 2:
                continue
            name = parts[1].split("@")[0]
            m = PREFIX_RE.match(name)
            if m and not name.startswith(keep or "\0") and not _pid_alive(int(m.group(1), 36)):
                sh(["ip", "link", "del", name], check=False)
                removed.append(name)
    return removed


class Net:
    def __init__(self, names, verbose=False):
        """names: the nodes, in address order ("etcd", "p1", "s1", ...)."""
        self.prefix = "mpt%s-" % _b36(os.getpid())
        self.names = list(names)
        self.bridge = self.prefix + "br"
        self.subnet = None
        self.addrs = {}
        self.verbose = verbose
        self.is_up = False
        self.faults = []  # descriptions of the faults in force, for the log

    # --- building and tearing down -------------------------------------------------------
    def up(self):
        if os.geteuid() != 0:
            raise NetError("network namespaces need root (euid %d)" % os.geteuid())
        for tool in ("ip", "nft"):
            if sh(["sh", "-c", "command -v " + tool], check=False) == "":
                raise NetError("%s not found: run scripts/install-deps (iproute2, nftables)"
                               % tool)
        gone = stale_cleanup(keep=self.prefix)
        if gone:
            print("netns: removed leftovers of dead runs: %s" % " ".join(gone), flush=True)
        _live.append(self)
        _install_handlers()
        with open(LOCK, "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            self.subnet = self._free_subnet()
            hosts = list(self.subnet.hosts())
            self.host = str(hosts[0])
            sh(["ip", "link", "add", self.bridge, "type", "bridge"])
            self.is_up = True
            sh(["ip", "addr", "add", "%s/%d" % (self.host, self.subnet.prefixlen),
                "dev", self.bridge])
            sh(["ip", "link", "set", self.bridge, "up"])
        for i, n in enumerate(self.names):
            self.addrs[n] = str(hosts[i + 1])
            self._add_node(n)
        # the bridge forwards at once (no STP listening delay: STP is off by default)
        for n in self.names:
            self.wait_reachable(n)
        return self

    def _free_subnet(self):
        used = set()
        for line in sh(["ip", "-4", "-o", "addr", "show"]).split("\n"):
            m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/(\d+)", line)
            if m:
                used.add(ipaddress.ip_network("%s/%s" % m.groups(), strict=False))
        for net in BASE.subnets(new_prefix=24):
            if not any(net.overlaps(u) for u in used):
                return net
        raise NetError("no free /24 in %s" % BASE)

    def ns(self, name):
        return self.prefix + name

    def _add_node(self, n):
        ns, veth = self.ns(n), self.prefix + n
        if len(veth) > 15:
            raise NetError("interface name %s too long (node names: at most %d characters)"
                           % (veth, 15 - len(self.prefix)))
        sh(["ip", "netns", "add", ns])
        sh(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        sh(["ip", "link", "set", veth, "master", self.bridge, "up"])
        ex = ["ip", "netns", "exec", ns]
        sh(ex + ["ip", "link", "set", "lo", "up"])
        sh(ex + ["ip", "addr", "add", "%s/%d" % (self.addrs[n], self.subnet.prefixlen),
                 "dev", "eth0"])
        sh(ex + ["ip", "link", "set", "eth0", "up"])
        sh(ex + ["nft", "-f", "-"], input=self._base_table().encode())

    def _base_table(self):
        return ("table inet %s {\n"
                " chain in { type filter hook input priority 0; policy accept;"
                " ip saddr %s accept; }\n}\n") % (TABLE, self.host)

    def wait_reachable(self, n, timeout=10):
        """A datagram from inside n's namespace reaches the host over the bridge."""
        import socket
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.host, 0))
            s.settimeout(0.2)
            code = ("import socket,time\n"
                    "for _ in range(50):\n"
                    "  socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'%s',('%s',%d))\n"
                    "  time.sleep(0.2)\n") % (n, self.host, s.getsockname()[1])
            p = subprocess.Popen(self.exec_argv(n, [sys.executable, "-c", code]),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    try:
                        data, src = s.recvfrom(64)
                    except socket.timeout:
                        continue
                    if data == n.encode() and src[0] == self.addrs[n]:
                        return
                raise NetError("namespace %s (%s) not reachable from the host over %s"
                               % (self.ns(n), self.addrs[n], self.bridge))
            finally:
                p.kill()
                p.wait()

    def down(self):
        """Kills whatever still runs in our namespaces (by PID), removes them, the veths and
        the bridge. Safe to call twice."""
        if not self.is_up:
            return
        self.is_up = False
        for n in self.names:
            for pid in sh(["ip", "netns", "pids", self.ns(n)], check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for n in self.names:
            sh(["ip", "netns", "del", self.ns(n)], check=False)
            sh(["ip", "link", "del", self.prefix + n], check=False)
        sh(["ip", "link", "del", self.bridge], check=False)
        if self in _live:
            _live.remove(self)

    # --- running things inside -----------------------------------------------------------
    def exec_argv(self, n, argv):
        return ["ip", "netns", "exec", self.ns(n)] + list(argv)

    def run(self, n, argv, **kw):
        return subprocess.run(self.exec_argv(n, argv), capture_output=True, **kw)

    # --- faults --------------------------------------------------------------------------
    def _nft(self, batch):
        """batch: {node: [nft commands]}; applied in every namespace at once (in parallel)."""
        procs = []
        for n, cmds in batch.items():
            if not cmds:
                continue
            text = "\n".join(cmds) + "\n"
            p = subprocess.Popen(self.exec_argv(n, ["nft", "-f", "-"]), stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append((n, p, text))
        errs = []
        for n, p, text in procs:
            out, err = p.communicate(text.encode(), timeout=30)
            if p.returncode != 0:
                errs.append("%s: %s (%s)" % (n, err.decode(errors="replace").strip(), text))
        if errs:
            raise NetError("nft failed: " + "; ".join(errs))

    def _set(self, names):
        return "{ %s }" % ", ".join(self.addrs[x] for x in names)

    def _log(self, what):
        self.faults.append(what)
        print("[fault %s] %s" % (time.strftime("%H:%M:%S"), what), flush=True)

    def _drop_from(self, batch, n, srcs):
        batch.setdefault(n, []).append("add rule inet %s in ip saddr %s drop"
                                       % (TABLE, self._set(srcs)))

    def partition(self, a, b):
        """Drops every packet between group a and group b, both directions."""
        batch = {}
        for n in a:
            self._drop_from(batch, n, b)
        for n in b:
            self._drop_from(batch, n, a)
        self._nft(batch)
        self._log("partition %s | %s" % (",".join(a), ",".join(b)))

    def one_way(self, src, dsts):
        """Drops what src sends to dsts; what they send to src still arrives."""
        batch = {}
        for d in dsts:
            self._drop_from(batch, d, [src])
        self._nft(batch)
        self._log("one-way: what %s sends to %s is dropped" % (src, ",".join(dsts)))

    def drop_port(self, n, port):
        """Drops every TCP packet the others send to n's port: a blackholed data port (silent,
        no RST), while n's own connections (to etcd, gossip) keep working."""
        self._nft({n: ["add rule inet %s in ip saddr %s tcp dport %d drop"
                       % (TABLE, self.subnet, port)]})
        self._log("what the others send to %s port %d is dropped" % (n, port))

    def isolate(self, n):
        self.partition([n], [x for x in self.names if x != n])

    def loss(self, pct, nodes=None):
        """Drops pct % of the packets each of nodes (default: all) receives from the others."""
        nodes = nodes or self.names
        rule = "add rule inet %s in ip saddr %s numgen random mod 100 < %d drop" % (
            TABLE, self.subnet, pct)
        self._nft({n: [rule] for n in nodes})
        self._log("%d%% random loss on every packet %s receive" % (pct, ",".join(nodes)))

    def heal(self):
        self._nft({n: ["delete table inet %s" % TABLE, self._base_table()]
                   for n in self.names})
        self._log("heal (all faults removed)")
        self.faults = []

    def rules(self, n):
        return self.run(n, ["nft", "list", "table", "inet", TABLE]).stdout.decode()


def _cleanup_all():
    for net in list(_live):
        try:
            net.down()
        except Exception as e:  # best effort at exit
            print("netns: cleanup of %s failed: %s" % (net.prefix, e), file=sys.stderr)


_hooks = []


def on_exit(fn):
    """fn() runs before the namespaces go at exit or on a signal (to kill processes first)."""
    _hooks.append(fn)


def _run_hooks():
    while _hooks:
        try:
            _hooks.pop()()
        except Exception as e:
            print("netns: exit hook failed: %s" % e, file=sys.stderr)
    _cleanup_all()


_installed = False


def _install_handlers():
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(_run_hooks)

    def handler(sig, _frame):
        print("netns: signal %d: cleaning up" % sig, file=sys.stderr, flush=True)
        _run_hooks()
        os._exit(128 + sig)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)
