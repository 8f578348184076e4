#!/usr/bin/python3
"""tests/integration/admin/test_webui.py: GET /metrics, the web page (GET /) and the admin token
against a real mesh: a real etcd, two Python gRPC apps each behind `meshd sidecar`, and
`meshd proxy`, all in one gossip group; checked with Debian's promtool, a real Prometheus
server and headless Chromium.

Cases (--case NAME):
  metrics  promtool accepts the proxy's and a sidecar's /metrics; a Prometheus server started
           here (its own config, data folder and loopback port) scrapes both, and its query API
           says: both targets up, the proxy routes 2 etcd instances of the echo service, etcd
           connected, 3 gossip members alive, the calls made through the proxy counted, process
           RSS and open fds present. The per-call families after known calls (5 OK, 3 that
           the app answers NOT_FOUND, 2 to a static instance that refuses connections):
           meshd_calls_total by service, method and code on the proxy (and summed over the
           sidecars, which see the same calls), the latency histogram's count equal to the
           calls, request and response bytes, connect failures of the refusing instance and
           the UNAVAILABLE its calls got, label values escaped (promtool accepts them).
  page     GET / without JavaScript already holds the tables (one row per instance, members,
           HTML-escaped names); in headless Chromium (DevTools protocol) the page shows the
           rows, refreshes itself, and when a sidecar is SIGKILLed its instance leaves the
           page that stays open (no reload); no console error or exception on the way.
  token    --admin-token-file: every admin endpoint (/, /metrics, /v1/..., unknown paths)
           answers 401 with a JSON error and WWW-Authenticate without the token or with a
           wrong one, 200 with it; the sidecar's probes need none; `meshd routes` with
           --admin-token-file works, without it exits 1 saying a token is needed; a bare admin
           port listens on loopback; an unreadable token file is a config error (exit 2).

Every process is started here on free loopback ports in a temp folder and killed by PID
(Chromium by its own process group) at the end, also on failure.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import grpc  # python3-grpcio

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "proxy"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "registry_proxy"))
from test_proxy import EchoClient  # noqa: E402
from procs import check, free_port, wait_until, Fail  # noqa: E402
from web import get as http  # noqa: E402
from test_proxy_etcd import Etcd  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
from cases import Case, meshd_env, run  # noqa: E402

ECHO = "meshd.test.Echo"


class Mesh:
    """etcd, two apps with sidecars, a proxy; all in one gossip group."""

    def __init__(self, c, token_file=None):
        self.c = c
        etcd = Etcd(c.dir)
        etcd.start()
        c.procs.append(etcd.proc)
        self.etcd = etcd
        extra = ["--admin-token-file", token_file] if token_file else []
        self.proxy_gossip = free_port()
        self.port, self.admin = free_port(), free_port()
        self.proxy = c.start("proxy", [c.args.meshd, "proxy", "--listen", "127.0.0.1:%d" % self.port,
                                       "--workers", "2", "--etcd", etcd.url, "--node", "proxy-1",
                                       "--admin-listen", str(self.admin),
                                       "--gossip-bind", "127.0.0.1:%d" % self.proxy_gossip,
                                       "--gossip-profile", "local",
                                       "--static", 'odd<b>"&.S=127.0.0.1:1',
                                       "--log-format", "text"] + extra)
        self.proxy.wait_line(r"admin API on http://127\.0\.0\.1:%d/" % self.admin, 15)
        self.sidecars = []
        for k in (1, 2):
            app = c.backend("py%d" % k)
            sc_port, probe, admin = free_port(), free_port(), free_port()
            sc = c.start("sidecar%d" % k, [
                c.args.meshd, "sidecar", "--app", app.addr, "--listen", "127.0.0.1:%d" % sc_port,
                "--probe-listen", "127.0.0.1:%d" % probe, "--admin-listen", str(admin),
                "--health-interval", "300ms", "--lease-ttl", "3s", "--workers", "1",
                "--node", "sc-%d" % k, "--etcd", etcd.url,
                "--gossip-bind", "127.0.0.1:%d" % free_port(), "--gossip-profile", "local",
                "--gossip-join", "127.0.0.1:%d" % self.proxy_gossip,
                "--log-format", "text"] + extra)
            sc.wait_line(r"admin API on", 15)
            sc.wait_listening(15)  # its --probe-listen port opens after the admin API's
            sc.addr, sc.admin, sc.probe = "127.0.0.1:%d" % sc_port, admin, probe
            self.sidecars.append(sc)

    def wait_routed(self, token=None):
        def both():
            st, _, body = http(self.admin, "/v1/routes", token)
            if st != 200:
                return None
            r = json.loads(body)
            got = sorted(i["address"] for s in r["services"] if s["service"] == ECHO
                         for i in s["instances"] if i["state"] == "routable")
            return got == sorted(s.addr for s in self.sidecars) and r["etcd"] == "connected"
        wait_until(both, 30, "both sidecars' instances routable in the proxy")

    def wait_members(self, n, token=None):
        def alive():
            st, _, body = http(self.admin, "/v1/members", token)
            return st == 200 and sum(m["state"] == "alive"
                                     for m in json.loads(body)["members"]) == n
        wait_until(alive, 30, "%d gossip members alive" % n)

    def calls(self, n):
        with EchoClient("127.0.0.1:%d" % self.port) as cl:
            ok = sum(cl.unary(payload=b"x", timeout=5).ok for _ in range(n))
        check(ok == n, "%d calls through the proxy succeed" % n)


# ---- metrics ---------------------------------------------------------------------------------

def samples(text, name):
    """{frozenset(labels.items()): value} of family member name in exposition text."""
    out = {}
    for line in text.splitlines():
        mt = re.match(r'^%s\{(.*)\} (\S+)$' % re.escape(name), line)
        if not mt:
            continue
        labels = dict((k, v.replace('\\"', '"').replace("\\\\", "\\"))
                      for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', mt.group(1)))
        out[frozenset(labels.items())] = float(mt.group(2))
    return out


def total(text, name, **want):
    return sum(v for k, v in samples(text, name).items() if all(
        (lk, lv) in k for lk, lv in want.items()))


def per_call(m):
    """The per-call families on the proxy and the sidecars after the calls above."""
    want = {("Unary", "OK"): 5, ("Unary", "NOT_FOUND"): 3}

    odd = 'odd<b>"&.S'

    def proxy_counted():
        # Each worker publishes its counters on its own tick: wait for every call made above,
        # the refused ones included (they may have run on another worker than the echo calls).
        text = http(m.admin, "/metrics")[2]
        got = {(mth, code): total(text, "meshd_calls_total", service=ECHO, method=mth, code=code)
               for mth, code in want}
        odd_seen = total(text, "meshd_calls_total", service=odd, code="UNAVAILABLE")
        refused = total(text, "meshd_upstream_connect_failures_total", upstream="127.0.0.1:1")
        return text if got == want and odd_seen >= 2 and refused >= 1 else None
    text = wait_until(proxy_counted, 30,
                      "the proxy counts 5 OK and 3 NOT_FOUND echo calls and 2 refused ones")
    check(total(text, "meshd_calls_total", service=ECHO) == 8,
          "no other echo calls on the proxy: %s" % samples(text, "meshd_calls_total"))
    check(total(text, "meshd_call_duration_seconds_count", service=ECHO) == 8,
          "the proxy's latency histogram counts the 8 calls")
    check(total(text, "meshd_call_duration_seconds_bucket", service=ECHO, le="+Inf") == 8,
          "the +Inf bucket holds the 8 calls")
    check(total(text, "meshd_call_duration_seconds_sum", service=ECHO) > 0, "durations summed")
    check(total(text, "meshd_request_bytes_total", service=ECHO) > 0 and
          total(text, "meshd_response_bytes_total", service=ECHO) > 0, "bytes in and out counted")
    check(total(text, "meshd_calls_total", service=odd, code="UNAVAILABLE") == 2,
          "the refused instance's calls: UNAVAILABLE under their (escaped) service name")
    check(total(text, "meshd_upstream_connect_failures_total", upstream="127.0.0.1:1") >= 1,
          "connect failures of 127.0.0.1:1 counted")
    check('service="odd<b>\\"&.S"' in text, "the label value is escaped")
    promtool(text, "the proxy's /metrics with the per-call families")

    def sidecars_counted():
        texts = [http(sc.admin, "/metrics")[2] for sc in m.sidecars]
        got = {(mth, code): sum(total(t, "meshd_calls_total", service=ECHO, method=mth,
                                      code=code) for t in texts) for mth, code in want}
        return texts if got == want else None
    texts = wait_until(sidecars_counted, 30, "the sidecars count the same calls, by method")
    check(sum(total(t, "meshd_call_duration_seconds_count", service=ECHO) for t in texts) == 8,
          "the sidecars' histograms count the 8 calls")


def promtool(text, what):
    r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode()
    check(r.returncode == 0, "promtool check metrics accepts %s: %s" % (what, out.strip()[:500]))


def case_metrics(c):
    m = Mesh(c)
    m.wait_routed()
    m.wait_members(3)
    m.calls(5)
    with EchoClient("127.0.0.1:%d" % m.port) as cl:
        nf = [cl.unary(payload=b"x", status_code=5, status_message="no such thing",
                       timeout=5).code for _ in range(3)]
    check(all(x == grpc.StatusCode.NOT_FOUND for x in nf), "3 calls the app answers NOT_FOUND")
    with grpc.insecure_channel("127.0.0.1:%d" % m.port) as ch:
        down = []
        for _ in range(2):
            try:
                ch.unary_unary('/odd<b>"&.S/Get')(b"", timeout=5)
                down.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                down.append(e.code())
    check(all(x == grpc.StatusCode.UNAVAILABLE for x in down),
          "2 calls to the refusing static instance: UNAVAILABLE (%s)" % down)
    per_call(m)
    st, h, text = http(m.admin, "/metrics")
    check(st == 200 and h["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8",
          "/metrics: 200, text format 0.0.4")
    print(text[:3000], flush=True)
    promtool(text, "the proxy's /metrics")
    st, _, stext = http(m.sidecars[0].admin, "/metrics")
    promtool(stext, "a sidecar's /metrics")
    for fam in ("meshd_process_cpu_seconds_total", "meshd_etcd_revision",
                "meshd_gossip_suspicions_total", "meshd_gossip_probe_rtt_seconds",
                "meshd_audit_records_dropped_total",
                "meshd_upstream_connections_total"):
        check("# TYPE %s " % fam in text, "the proxy exposes %s" % fam)

    prom_port = free_port()
    pdir = os.path.join(c.dir, "prometheus")
    os.makedirs(pdir)
    cfg = os.path.join(pdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n"
                "  - job_name: proxy\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
                "  - job_name: sidecar\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
                % (m.admin, m.sidecars[0].admin))
    prom = c.start("prometheus", ["prometheus", "--config.file", cfg,
                                  "--storage.tsdb.path", os.path.join(pdir, "data"),
                                  "--web.listen-address", "127.0.0.1:%d" % prom_port],
                   env=dict(os.environ))
    prom.wait_line(r"Server is ready to receive web requests", 60)

    def query(q):
        st, _, body = http(prom_port, "/api/v1/query?query=" + urllib.parse.quote(q))
        if st != 200:
            return None
        r = json.loads(body)["data"]["result"]
        return [(x["metric"], float(x["value"][1])) for x in r]

    def value(q, want, what):
        def ok():
            r = query(q)
            return r if r and all(v == want for _, v in r) else None
        r = wait_until(ok, 60, "Prometheus: %s (%s == %s)" % (what, q, want))
        check(True, "Prometheus: %s: %s" % (what, r))

    value('up{job="proxy"}', 1, "the proxy target is up")
    value('up{job="sidecar"}', 1, "the sidecar target is up")
    value('meshd_service_instances{job="proxy",service="%s",source="etcd"}' % ECHO, 2,
          "the proxy routes 2 etcd instances of the echo service")
    value('meshd_etcd_state{job="proxy",state="connected"}', 1, "the proxy sees etcd connected")
    value('meshd_gossip_members{job="proxy",state="alive"}', 3, "3 gossip members alive")
    value('meshd_gossip_probe_rtt_seconds_count{job="proxy"} > bool 0', 1,
          "the proxy's SWIM probes have round trips")
    value('histogram_quantile(0.5, meshd_gossip_probe_rtt_seconds_bucket{job="proxy"}) < bool 1',
          1, "a median probe round trip under a second on loopback")
    value('sum(meshd_calls_total{job="proxy"}) >= bool 5', 1, "the 5 calls are counted")
    value('sum(meshd_calls_total{job="proxy",service="%s",method="Unary",code="OK"})' % ECHO, 5,
          "the proxy's OK calls of the echo service")
    value('sum(meshd_calls_total{job="proxy",service="%s",code="NOT_FOUND"})' % ECHO, 3,
          "the proxy's NOT_FOUND calls")
    value('meshd_call_duration_seconds_count{job="proxy",service="%s"}' % ECHO, 8,
          "the latency histogram counts every call")
    value('meshd_call_duration_seconds_bucket{job="proxy",service="%s",le="+Inf"}' % ECHO, 8,
          "the +Inf bucket holds every call")
    value('meshd_upstream_connect_failures_total{job="proxy",upstream="127.0.0.1:1"} > bool 0',
          1, "connect failures of the refusing instance")
    value('histogram_quantile(0.5, sum by (le) (meshd_call_duration_seconds_bucket{job="proxy",'
          'service="%s"})) > bool 0' % ECHO, 1, "a median latency from the histogram")
    value('meshd_process_resident_memory_bytes{job="proxy"} > bool 1000000', 1, "RSS is there")
    value('meshd_process_open_fds{job="sidecar"} > bool 5', 1, "open fds are there")
    value('meshd_etcd_revision{job="proxy"} > bool 0', 1, "the etcd revision is there")


# ---- the page --------------------------------------------------------------------------------

class Chromium:
    """Headless Chromium with the DevTools protocol on a loopback port (its own profile)."""

    def __init__(self, c):
        import websocket  # python3-websocket
        self.port = free_port()
        prof = os.path.join(c.dir, "chromium")
        log = open(os.path.join(c.dir, "chromium.log"), "wb")
        self.p = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                   "--no-first-run", "--user-data-dir=" + prof,
                                   "--remote-debugging-port=%d" % self.port,
                                   "--window-size=390,844", "about:blank"],
                                  stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        c.procs.append(self)

        def page():
            try:
                st, _, body = http(self.port, "/json/list")
            except OSError:
                return None
            pages = [p for p in json.loads(body) if p.get("type") == "page"] if st == 200 else []
            return pages[0]["webSocketDebuggerUrl"] if pages else None
        url = wait_until(page, 30, "Chromium's DevTools endpoint")
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.id = 0
        self.errors = []
        for m in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(m)

    def call(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.id:
                if "error" in msg:
                    raise Fail("DevTools %s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.event(msg)

    def event(self, msg):
        m, p = msg.get("method"), msg.get("params", {})
        if m == "Runtime.exceptionThrown":
            self.errors.append("exception: %s" % json.dumps(p.get("exceptionDetails"))[:500])
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p["type"], json.dumps(p.get("args"))[:500]))
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            self.errors.append("log: %s %s" % (p["entry"].get("text"), p["entry"].get("url")))

    def eval(self, js):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True)
        return r.get("result", {}).get("value")

    def alive(self):
        return self.p.poll() is None

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)  # Chromium and the children it started
        except ProcessLookupError:
            pass
        self.p.wait(timeout=10)


ROWS = ("JSON.stringify(Array.from(document.querySelectorAll('#routes tbody tr[data-address]'))"
        ".map(function(r){return [r.dataset.service, r.dataset.address, r.dataset.state]}))")
MEMBERS = ("JSON.stringify(Array.from(document.querySelectorAll('#members tbody tr[data-node]'))"
           ".map(function(r){return [r.dataset.node, r.dataset.state]}))")


def case_page(c):
    m = Mesh(c)
    m.wait_routed()
    m.wait_members(3)
    m.calls(3)
    st, h, html = http(m.admin, "/")
    check(st == 200 and h["Content-Type"] == "text/html; charset=utf-8", "GET /: 200, HTML")
    check(not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", html),
          "the page fetches nothing from elsewhere")
    for sc in m.sidecars:
        check('data-service="%s" data-address="%s" data-state="routable"' % (ECHO, sc.addr) in html,
              "without JavaScript the table has %s's row" % sc.addr)
    check('data-service="odd&lt;b&gt;&quot;&amp;.S"' in html and "odd<b>" not in html,
          "names are HTML-escaped")
    check(html.count('<tr data-node="') == 3, "without JavaScript: 3 gossip members")

    ch = Chromium(c)
    ch.call("Page.navigate", url="http://127.0.0.1:%d/" % m.admin)
    wait_until(lambda: (ch.eval("document.getElementById('live') && "
                                "document.getElementById('live').textContent") or "")
               .startswith("live"), 30, "the page's script to refresh from the API")
    rows = json.loads(ch.eval(ROWS))
    print("rows:", rows, flush=True)
    want = sorted([[ECHO, sc.addr, "routable"] for sc in m.sidecars] +
                  [['odd<b>"&.S', "127.0.0.1:1", "routable"]])
    rows = [r for r in rows if r[0] != "meshd.test.Other"]  # the apps serve that one too
    check(sorted(rows) == want, "Chromium shows one row per instance: %s" % rows)
    members = json.loads(ch.eval(MEMBERS))
    check(sorted(s for _, s in members) == ["alive"] * 3, "3 members alive: %s" % members)
    calls = ch.eval("document.querySelector('#calls tbody tr[data-service] td:nth-child(2)')"
                    ".textContent")
    check(calls is not None and int(calls) >= 3, "the calls table counts the calls: %s" % calls)
    check(ch.eval("document.documentElement.scrollWidth <= window.innerWidth + 1"),
          "at phone width (390 px) the page does not scroll sideways")

    victim = m.sidecars[1]
    victim.p.send_signal(signal.SIGKILL)
    victim.p.wait(timeout=10)

    def gone():
        """The victim's row gone, or shown as owner_dead (gossip lists the instances of dead
        owners the table dropped); the survivor still routable."""
        r = json.loads(ch.eval(ROWS))
        echo = {a: s for svc, a, s in r if svc == ECHO}
        return r if echo.get(m.sidecars[0].addr) == "routable" and \
            echo.get(victim.addr, "gone") in ("gone", "owner_dead") else None
    rows = wait_until(gone, 40, "the killed sidecar's instance to leave the open page")
    check(True, "the open page shows the killed instance gone by itself: %s" % rows)
    wait_until(lambda: "dead" in ch.eval(MEMBERS) or "suspect" in ch.eval(MEMBERS), 40,
               "the killed sidecar's member to turn suspect or dead on the page")
    ch.call("Runtime.evaluate", expression="1")  # drain pending events
    check(not ch.errors, "no console error or exception: %s" % ch.errors)


# ---- token -----------------------------------------------------------------------------------

def case_token(c):
    tok = os.path.join(c.dir, "admin.token")
    with open(tok, "w") as f:
        f.write("t0k3n-%d\n" % os.getpid())
    secret = "t0k3n-%d" % os.getpid()
    m = Mesh(c, token_file=tok)
    for path in ("/", "/metrics", "/v1/node", "/v1/routes", "/v1/members", "/v1/nope"):
        st, h, body = http(m.admin, path)
        check(st == 401 and "Bearer" in json.loads(body)["error"] and
              h["WWW-Authenticate"].startswith("Bearer"), "%s without the token: 401" % path)
        st, h, body = http(m.admin, path, token=secret + "x")
        check(st == 401 and "wrong" in json.loads(body)["error"], "%s, wrong token: 401" % path)
    m.wait_routed(token=secret)
    for path in ("/", "/metrics", "/v1/node"):
        st, _, _ = http(m.admin, path, token=secret)
        check(st == 200, "%s with the token: 200" % path)
    st, _, body = http(m.admin, "/v1/node", token=secret)
    check(json.loads(body)["listen"]["admin"] == "127.0.0.1:%d" % m.admin,
          "a bare admin port listens on loopback")
    sc = m.sidecars[0]
    for path in ("/livez", "/readyz"):
        st, _, _ = http(sc.probe, path)
        check(st == 200, "the sidecar's %s needs no token" % path)
    st, _, _ = http(sc.admin, "/v1/node")
    check(st == 401, "the sidecar's admin API needs the token too")

    r = subprocess.run([c.args.meshd, "routes", "--admin", str(m.admin), "--admin-token-file", tok],
                       capture_output=True, env=meshd_env(), timeout=30)
    check(r.returncode == 0 and ECHO in r.stdout.decode(), "meshd routes --admin-token-file")
    r = subprocess.run([c.args.meshd, "routes", "--admin", str(m.admin)], capture_output=True,
                       env=meshd_env(), timeout=30)
    err = r.stderr.decode()
    check(r.returncode == 1 and "wants a bearer token" in err and "--admin-token-file" in err,
          "meshd routes without the token: exit 1, says so: %s" % err.strip())
    r = subprocess.run([c.args.meshd, "proxy", "--admin-listen", str(free_port()),
                        "--admin-token-file", os.path.join(c.dir, "missing")],
                       capture_output=True, env=meshd_env(), timeout=30)
    check(r.returncode == 2 and "cannot read the admin token file" in r.stderr.decode(),
          "an unreadable token file: exit 2")


CASES = {"metrics": case_metrics, "page": case_page, "token": case_token}


if __name__ == "__main__":
    sys.exit(run(CASES, lambda args: Case(args, "meshd-it-webui-")))
