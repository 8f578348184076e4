/* node/webui/page.js: the admin web page's live refresh (embedded into meshd at build time).
 * The server renders every table first (readable without JavaScript); this script fetches the
 * JSON API (/v1/node, /v1/routes, /v1/members, /v1/audit, /v1/monitor) and /metrics every two
 * seconds (members and monitor only when the node served them as the page was made) and
 * rebuilds the same tables with DOM nodes (textContent only: nothing the mesh
 * says is ever parsed as HTML). A token kept in sessionStorage ("meshd-admin-token") is sent
 * as a bearer token. */
"use strict";
(function () {
  var PERIOD = 2000;
  var prevCalls = null;

  function headers() {
    var t = null;
    try { t = window.sessionStorage.getItem("meshd-admin-token"); } catch (e) { t = null; }
    return t ? { "Authorization": "Bearer " + t } : {};
  }

  /* GET path: the parsed JSON (or text), null for a 404 (the endpoint is not on this node). */
  function get(path, text) {
    return fetch(path, { headers: headers(), cache: "no-store" }).then(function (r) {
      if (r.status === 404) return null;
      if (!r.ok) throw new Error(path + " answered " + r.status);
      return text ? r.text() : r.json();
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function row(cells, attrs) {
    var tr = el("tr");
    cells.forEach(function (c) { tr.appendChild(el("td", c[1] || "", c[0])); });
    Object.keys(attrs || {}).forEach(function (k) { tr.setAttribute("data-" + k, attrs[k]); });
    return tr;
  }

  function fill(id, rows, empty, ncol) {
    var tb = document.querySelector("#" + id + " tbody");
    if (!tb) return;
    while (tb.firstChild) tb.removeChild(tb.firstChild);
    if (!rows.length) {
      var tr = el("tr"), td = el("td", "muted", empty);
      td.colSpan = ncol;
      tr.appendChild(td);
      tb.appendChild(tr);
      return;
    }
    rows.forEach(function (r) { tb.appendChild(r); });
  }

  function text(id, v, cls) {
    var e = document.getElementById(id);
    if (!e) return;
    e.textContent = v;
    if (cls !== undefined) e.className = cls;
  }

  function show(id, on) {
    var e = document.getElementById(id);
    if (e) e.hidden = !on;
  }

  function methods(m) { return m ? m.join(", ") : "*"; }

  function renderNode(n) {
    text("node-name", n.node);
    text("node-roles", n.roles.join(", "));
    text("node-etcd", n.etcd, "s-" + n.etcd);
    text("node-counts", n.counts.services + " services, " + n.counts.instances + " instances");
    text("node-uptime", Math.round(n.uptime_s) + " s");
  }

  function renderRoutes(r) {
    var rows = [];
    r.services.forEach(function (s) {
      s.instances.forEach(function (i) {
        rows.push(row([[s.service], [i.address, "addr"], [i.source], [i.state, "s-" + i.state],
                       [i.node === null ? "-" : i.node], [methods(i.methods), "methods"]],
                      { service: s.service, address: i.address, state: i.state }));
      });
    });
    fill("routes", rows, "no routes", 6);
  }

  function renderMembers(m) {
    show("members-sec", !!m);
    if (!m) return;
    fill("members", m.members.map(function (x) {
      return row([[x.node + (x.self ? " (self)" : "")], [x.addr, "addr"], [x.state, "s-" + x.state],
                  [x.incarnation, "num"], [x.instances, "num"], [x.since]],
                 { node: x.node, state: x.state });
    }), "no members", 6);
  }

  function renderAudit(a) {
    var keys = ["sink", "state", "sent", "acknowledged", "written", "last_error"];
    var rows = [];
    keys.forEach(function (k) {
      if (a[k] === undefined) return;
      rows.push(row([[k], [a[k] === null ? "-" : a[k], k === "state" ? "s-" + a[k] : ""]]));
    });
    if (a.spool) rows.push(row([["spooled"], [a.spool.records + " records, " + a.spool.bytes + " bytes"]]));
    if (a.dropped) {
      var d = 0;
      Object.keys(a.dropped).forEach(function (k) { if (typeof a.dropped[k] === "number") d += a.dropped[k]; });
      rows.push(row([["dropped"], [d]]));
    }
    fill("audit", rows, "-", 2);
  }

  function renderMonitor(m) {
    show("monitor-sec", !!m);
    if (!m) return;
    text("monitor-role", m.role, "s-" + m.role);
    fill("monitor", (m.verdicts || []).map(function (v) {
      return row([[v.service], [v.address, "addr"], [v.state, "s-" + v.state], [v.fails, "num"],
                  [v.evictions, "num"], [v.last_error]], { address: v.address, state: v.state });
    }), "every instance answers", 6);
  }

  /* Calls by service from meshd_calls_total{service,method,code}: every call, and the calls
     that ended with a status other than OK. */
  function calls(metrics) {
    var out = {};
    metrics.split("\n").forEach(function (line) {
      var m = /^meshd_calls_total\{([^}]*)\} ([0-9.e+]+)$/.exec(line);
      if (!m) return;
      var svc = /service="((?:[^"\\]|\\.)*)"/.exec(m[1]);
      var code = /code="([^"]*)"/.exec(m[1]);
      var k = svc ? svc[1].replace(/\\(.)/g, "$1") : "(all services)";
      var n = parseFloat(m[2]);
      out[k] = out[k] || { calls: 0, failed: 0 };
      out[k].calls += n;
      if (code && code[1] !== "OK") out[k].failed += n;
    });
    return out;
  }

  function renderCalls(metrics, now) {
    var cur = calls(metrics), rows = [];
    Object.keys(cur).sort().forEach(function (k) {
      var p = prevCalls && prevCalls.v[k], dt = prevCalls ? (now - prevCalls.t) / 1000 : 0;
      var rate = p && dt > 0 ? ((cur[k].calls - p.calls) / dt).toFixed(1) : "-";
      var erate = p && dt > 0 ? ((cur[k].failed - p.failed) / dt).toFixed(1) : "-";
      rows.push(row([[k], [cur[k].calls, "num"], [cur[k].failed, "num"], [rate, "num"],
                     [erate, "num"]], { service: k }));
    });
    prevCalls = { v: cur, t: now };
    fill("calls", rows, "no calls yet", 5);
  }

  function refresh() {
    var now = Date.now();
    var body = document.body.dataset;
    Promise.all([get("/v1/node"), get("/v1/routes"),
                 body.members === "1" ? get("/v1/members") : null, get("/v1/audit"),
                 body.monitor === "1" ? get("/v1/monitor") : null,
                 get("/metrics", true)]).then(function (r) {
      if (r[0]) renderNode(r[0]);
      if (r[1]) renderRoutes(r[1]);
      renderMembers(r[2]);
      if (r[3]) renderAudit(r[3]);
      renderMonitor(r[4]);
      if (r[5] !== null) renderCalls(r[5], now);
      text("live", "live · " + new Date(now).toLocaleTimeString(), "s-ok");
    }).catch(function (e) {
      text("live", "not refreshed: " + e.message, "s-failed");
    });
  }

  refresh();
  window.setInterval(refresh, PERIOD);
})();
