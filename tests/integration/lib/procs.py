"""tests/integration/lib/procs.py: the basics every integration test shares: a failed check
(Fail, check), polling until something holds (wait_until), a free loopback port, a process
the test started and kills by PID (Proc; Proc.wait_listening waits for every listen port in its
argv), the environment meshd runs in (meshd_env), and the end of a test's folder (remove_dir: its
logs printed first when the test failed)."""
import os
import re
import shutil
import socket
import subprocess
import time


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("  ok:", what, flush=True)


def wait_until(pred, timeout, what):
    """Poll pred() until it is true (its value returned) or the deadline passes (then fail
    with `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.02)


_GIVEN = set()


def free_port():
    """A loopback port nothing listens on, never one this process was given before: the kernel
    hands a port just closed out again, and two of a test's listeners on one port made a meshd
    refuse to start ("--admin-listen 45065 and --probe-listen 127.0.0.1:45065 share a port")."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def meshd_env(**extra):
    """The environment without any MESHD_* variable of the caller, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    env.update(extra)
    return env


# meshd's options that open a TCP listener. meshd opens them one after another: the gRPC
# listener (--listen; --grpc-listen for the gateway, whose --listen is HTTP), its --tls-listen
# and the --http-listen front end, then "listening on ..." is logged, then --admin-listen ("admin
# API on ..."), and the sidecar's --probe-listen only once its actor started ("probes /livez
# /readyz on ..."). A port that took a connection stays open, so each one is waited for.
# (Calls on the gRPC and HTTP ports are answered only once the admin port listens: a call made
# first hides a missing admin wait, not a missing probe wait: with every listen(2) delayed by
# 3 s, a sidecar answered a call at once and refused its probe port for 3 s more.)
LISTEN_OPTS = ("--listen", "--grpc-listen", "--tls-listen", "--http-listen", "--admin-listen",
               "--probe-listen")


def listen_addrs(argv, env=None, skip=()):
    """The (host, port) of every listen option (LISTEN_OPTS but those in skip) in argv, as
    "--opt VALUE" or "--opt=VALUE", and in env as MESHD_OPT (what meshd reads when argv does not
    say). A bare PORT or :PORT is loopback, a wildcard host is reached on loopback; port 0 (the
    kernel picks) is left out: the caller learns that port from the log."""
    given = {}
    for i, a in enumerate(argv):
        opt, eq, val = a.partition("=")
        if opt in LISTEN_OPTS and opt not in skip:
            if eq:
                given[opt] = val
            elif i + 1 < len(argv):
                given[opt] = argv[i + 1]
    for opt in LISTEN_OPTS:
        var = "MESHD_" + opt[2:].upper().replace("-", "_")
        if opt not in given and opt not in skip and env and env.get(var):
            given[opt] = env[var]
    out = []
    for opt, val in given.items():
        host, _, port = str(val).rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0", "localhost"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if port.isdigit() and int(port) != 0:
            out.append((host, int(port)))
    return out


def accepts(host, port):
    """True once host:port takes a TCP connection (closed at once)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


class Proc:
    """A process this test started: its log file and its PID, nothing else is ever killed."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log = os.path.join(workdir, name + ".log")
        with open(self.log, "wb") as f:
            self.p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, env=env)

    def alive(self):
        return self.p.poll() is None

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_line(self, regex, timeout):
        def found():
            if not self.alive():
                raise Fail("%s exited (%s) before ready:\n%s" % (self.name, self.p.returncode,
                                                                 self.output()[-2000:]))
            return re.search(regex, self.output())
        return wait_until(found, timeout, "%s to print %r" % (self.name, regex))

    def accepts(self, port):
        """True once 127.0.0.1:port takes a TCP connection; fails when the process exited."""
        if not self.alive():
            raise Fail("%s exited (%s):\n%s" % (self.name, self.p.returncode,
                                                 self.output()[-3000:]))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def wait_listening(self, timeout, skip=()):
        """Waits until every listen port of its argv (and environment) takes a connection
        (listen_addrs; options in skip are not waited for: a TLS port would count a failed
        handshake); fails when the process exits first."""
        env = self.env if self.env is not None else os.environ  # (None: meshd inherits ours)
        for host, port in listen_addrs(self.argv, env, skip):
            def up():
                if not self.alive():
                    raise Fail("%s exited (%s) before listening on %s:%d:\n%s"
                               % (self.name, self.p.returncode, host, port, self.output()[-3000:]))
                return accepts(host, port)
            wait_until(up, timeout, "%s to listen on %s:%d" % (self.name, host, port))

    def kill(self):
        if self.alive():
            self.p.kill()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def remove_dir(workdir, failed, tail=3000):
    """Removes a test's folder; when the test failed, prints the end (tail characters) of each
    of its *.log files first."""
    if failed:
        for name in sorted(os.listdir(workdir)):
            if name.endswith(".log"):
                with open(os.path.join(workdir, name), errors="replace") as f:
                    print("---- %s ----\n%s" % (name, f.read()[-tail:]))
    shutil.rmtree(workdir, ignore_errors=True)
