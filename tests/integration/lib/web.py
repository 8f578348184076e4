"""tests/integration/lib/web.py: plain HTTP GETs to a node's admin port on loopback (no proxy
from the environment): the status, headers and text of an answer, or its JSON."""
import json
import urllib.error
import urllib.request


def url(where, path):
    """where: a port on 127.0.0.1, or "host:port"."""
    host = "127.0.0.1:%d" % where if isinstance(where, int) else where
    return "http://%s%s" % (host, path)


def get(where, path, token=None, timeout=10):
    """(status, headers, body text) of GET path; an HTTP error status is an answer too."""
    req = urllib.request.Request(url(where, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def get_json(where, path, timeout=5):
    """The parsed JSON of GET path, or None while the node does not answer (or not JSON)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url(where, path), timeout=timeout) as r:
            return json.loads(r.read().decode())
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None
