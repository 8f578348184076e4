"""tests/integration/lib/certs.py: certificates and keys for the tests, made with the openssl
CLI (an independent implementation: what meshd reads, a user could have made the same way)."""
import subprocess

from procs import Fail


def openssl(*argv):
    """Runs `openssl ARGV`; its stdout, or Fail with openssl's stderr."""
    r = subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Fail("openssl %s: %s" % (" ".join(argv[:2]), r.stderr))
    return r.stdout

