"""tests/peers/stubs.py: finds and imports the generated Python stubs (package meshd_pb).

The build generates them under <build>/proto/py (see proto/CMakeLists.txt). The directory is
taken from the MESHD_PROTO_PY environment variable, or else the newest
<repo>/build*/proto/py that exists.
"""
import glob
import os
import sys


def stub_dir():
    d = os.environ.get("MESHD_PROTO_PY")
    if d:
        return d
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    found = [p for p in glob.glob(os.path.join(repo, "build*", "proto", "py"))
             if os.path.exists(os.path.join(p, "meshd_pb", "echo_pb2.py"))]
    if not found:
        sys.exit("meshd peers: generated stubs not found; build first or set MESHD_PROTO_PY")
    return max(found, key=lambda p: os.path.getmtime(os.path.join(p, "meshd_pb", "echo_pb2.py")))


def load(path=None):
    """Put the stub directory on sys.path (once) and return it."""
    d = path or stub_dir()
    if d not in sys.path:
        sys.path.insert(0, d)
    return d
