"""tests/integration/lib/cases.py: what the case-based integration tests share: a Case holding
the processes one case started in its own temp folder (killed by PID at the end, their logs
printed when the case failed), and the command-line runner (`--meshd`, `--py-server`, `--case
NAME` and a test's own options: run, or parse_args and run_case for a test with its own case
object). The basics (Proc, check, wait_until, free_port, meshd_env) are in lib/procs.py."""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "peers"))
from procs import Proc, Fail, meshd_env, remove_dir  # noqa: E402,F401  (meshd_env for the cases)


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
        remove_dir(self.dir, failed, tail)


def parse_args(cases, add_args=None):
    """The command line: --meshd, --py-server, --case NAME (one of cases) and what add_args(ap)
    adds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--meshd", required=True)
    ap.add_argument("--py-server", required=True)
    ap.add_argument("--case", required=True, choices=sorted(cases))
    if add_args:
        add_args(ap)
    return ap.parse_args()


def run_case(cases, name, c):
    """Runs the case name on c (anything with stop(failed)), which it stops at the end; says
    PASS or FAIL; the exit code."""
    ok = False
    try:
        print("== case", name, flush=True)
        cases[name](c)
        ok = True
        print("PASS", name)
    except Fail as e:
        print("FAIL:", e)
    finally:
        c.stop(not ok)
    return 0 if ok else 1


def run(cases, make_case, add_args=None):
    """Parses the command line, runs the case it names with make_case(args); the exit code."""
    args = parse_args(cases, add_args)
    return run_case(cases, args.case, make_case(args))
