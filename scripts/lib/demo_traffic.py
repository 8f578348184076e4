#!/usr/bin/python3
"""scripts/lib/demo_traffic.py: the demo's caller: one unary call through the mesh every
interval, printing which instance answered, until interrupted.

    demo_traffic.py --target HOST:PORT [--interval 0.5] [--count N]
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "peers"))
import echo_client  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--count", type=int, default=0, help="0 = until Ctrl-C")
    a = ap.parse_args()
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    served = {}
    n = 0
    with echo_client.EchoClient(a.target) as c:
        while (a.count == 0 or n < a.count) and not stop:
            n += 1
            r = c.unary(payload=b"hello mesh", report=True, timeout=2.0)
            if r.ok:
                who = r.replies[0].server_id
                served[who] = served.get(who, 0) + 1
                tally = "  ".join("%s=%d" % kv for kv in sorted(served.items()))
                print("call %4d  /meshd.test.Echo/Unary  -> %-8s %6.1f ms   [%s]"
                      % (n, who, r.elapsed_ms, tally), flush=True)
            else:
                print("call %4d  /meshd.test.Echo/Unary  -> %s: %s"
                      % (n, r.code.name, r.details), flush=True)
            time.sleep(a.interval)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
