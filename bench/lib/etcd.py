"""bench/lib/etcd.py: one etcd member for the benchmarks, and calls to its JSON gateway.

Each benchmark starts the process its own way (its process class stops it by PID); this module
gives the command line, the health check and the v3 JSON calls they share:

  argv, url = etcd.argv(rundir, client_port, peer_port)
  ... start argv, then wait until etcd.healthy(url) ...
  etcd.call(url, "/v3/kv/put", {"key": etcd.b64(k), "value": etcd.b64(v)})

Stop it with SIGKILL: a SIGTERMed member may take seconds to leave (docs: TESTING.md).
"""
import base64
import json
import os
import urllib.request


def argv(rundir, client_port, peer_port):
    """The command line of a one-member cluster with its data in rundir/etcd, and its URL."""
    url = "http://127.0.0.1:%d" % client_port
    peer = "http://127.0.0.1:%d" % peer_port
    return (["etcd", "--logger=zap", "--log-level=error", "--name", "e1",
             "--data-dir", os.path.join(rundir, "etcd"), "--listen-client-urls", url,
             "--advertise-client-urls", url, "--listen-peer-urls", peer,
             "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=" + peer], url)


def healthy(url):
    """Whether the member at url answers /health with true."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as r:
            return b"true" in r.read()
    except OSError:
        return False


def call(url, path, body, timeout=10):
    """POSTs body (JSON) to the gateway path (e.g. /v3/kv/put) and returns the decoded answer."""
    req = urllib.request.Request(url + path, data=json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def b64(s):
    """The base64 the JSON gateway wants for keys and values."""
    return base64.b64encode(s.encode()).decode()
