"""tests/integration/lib/cases.py: what the case-based integration tests share (admin, gossip):
a Case holding the processes one case started in its own temp folder (killed by PID at the end,
their logs printed when the case failed), the environment meshd runs in, and the command-line
runner (`--meshd`, `--py-server`, `--case NAME`)."""
import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
from test_proxy import Proc, Fail  # noqa: E402


def meshd_env(**extra):
    """The environment without any MESHD_* variable of the caller, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHD_")}
    env.update(extra)
    return env


class Case:
    def __init__(self, args, prefix):
        self.args = args
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.procs = []

    def start(self, name, argv, env=None):
        print("starting:", " ".join(argv), flush=True)
        p = Proc(name, argv, self.dir, env=env or meshd_env())
        self.procs.append(p)
        return p

    def backend(self, sid, name=None):
        """A Python gRPC echo server (tests/peers/echo_server.py) answering as sid; .addr set."""
        p = self.start(name or "backend-" + sid,
                       ["/usr/bin/python3", self.args.py_server, "--port", "0", "--id", sid],
                       env=dict(os.environ))
        m = p.wait_line(r"listening on (\d+)", 20)
        p.addr = "127.0.0.1:%s" % m.group(1)
        return p

    def stop(self, failed, tail=3000):
        for p in reversed(self.procs):
            p.kill()
        if failed:
            for name in sorted(os.listdir(self.dir)):
                if name.endswith(".log"):
                    with open(os.path.join(self.dir, name), errors="replace") as f:
                        print("---- %s ----\n%s" % (name, f.read()[-tail:]))
        shutil.rmtree(self.dir, ignore_errors=True)


def run(cases, make_case):
    """Parses the command line, runs the case it names with make_case(args); the exit code."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(cases))
    args = ap.parse_args()
    c = make_case(args)
    ok = False
    try:
        print("== case", args.case, flush=True)
        cases[args.case](c)
        ok = True
        print("PASS", args.case)
    except Fail as e:
        print("FAIL:", e)
    finally:
        c.stop(not ok)
    return 0 if ok else 1
