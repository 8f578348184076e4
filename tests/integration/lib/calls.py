"""tests/integration/lib/calls.py: gRPC calls a test makes through the mesh with the Echo
client of tests/peers (echo_client.py)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "peers"))
from echo_client import EchoClient  # noqa: E402


def served_by(target, n=6):
    """The server ids answering n unary calls to target (errors as 'CODE: details')."""
    out = []
    with EchoClient(target) as c:
        for _ in range(n):
            r = c.unary(payload=b"x", timeout=5)
            out.append(r.replies[0].server_id if r.ok else "%s: %s" % (r.code.name, r.details))
    return out
