/*
 * node/admin_page.c: the admin web page (see node/admin_page.h): the server-side rendering of
 * its tables from the JSON endpoints, and the embedded style and script.
 */
#include "node/admin_page.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* node/webui/page.css and page.js, embedded by node/webui/embed.cmake. */
extern const char mesh_webui_css[], mesh_webui_js[];
extern const size_t mesh_webui_css_len, mesh_webui_js_len;

int mesh_admin_html_escape(h1_body_t *b, const char *s)
{
    const char *run = s;
    int rc = 0;
    for (; *s; s++) {
        const char *rep = *s == '&'    ? "&amp;"
                          : *s == '<'  ? "&lt;"
                          : *s == '>'  ? "&gt;"
                          : *s == '"'  ? "&quot;"
                          : *s == '\'' ? "&#39;"
                                       : NULL;
        if (!rep)
            continue;
        rc |= h1_body_write(b, run, (size_t)(s - run));
        rc |= h1_body_write(b, rep, strlen(rep));
        run = s + 1;
    }
    rc |= h1_body_write(b, run, (size_t)(s - run));
    return rc ? -1 : 0;
}

static void w(h1_body_t *b, const char *s)
{
    h1_body_write(b, s, strlen(s));
}

static void esc(h1_body_t *b, const char *s)
{
    mesh_admin_html_escape(b, s ? s : "-");
}

/* A JSON value as text: strings as they are, null as "-", numbers and booleans printed. */
static void text_of(json_t *v, char *buf, size_t cap)
{
    if (json_is_string(v))
        snprintf(buf, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(buf, cap, "-");
}

static void td(h1_body_t *b, const char *cls, json_t *v)
{
    char buf[512];
    text_of(v, buf, sizeof(buf));
    w(b, cls ? "<td class=\"" : "<td>");
    if (cls) {
        esc(b, cls);
        w(b, "\">");
    }
    esc(b, buf);
    w(b, "</td>");
}

/* A state cell: class s-STATE. */
static void td_state(h1_body_t *b, json_t *v)
{
    char cls[80];
    snprintf(cls, sizeof(cls), "s-%s", json_is_string(v) ? json_string_value(v) : "unknown");
    td(b, cls, v);
}

static void table_head(h1_body_t *b, const char *id, const char *const *cols)
{
    w(b, "<div class=\"scroll\"><table id=\"");
    w(b, id);
    w(b, "\"><thead><tr>");
    for (; *cols; cols++) {
        w(b, "<th>");
        w(b, *cols);
        w(b, "</th>");
    }
    w(b, "</tr></thead><tbody>");
}

static void table_empty(h1_body_t *b, int ncol, const char *msg)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "<tr><td class=\"muted\" colspan=\"%d\">", ncol);
    w(b, buf);
    w(b, msg);
    w(b, "</td></tr>");
}

static void table_end(h1_body_t *b)
{
    w(b, "</tbody></table></div>");
}

static json_t *api(mesh_admin_t *a, const char *path, const h1_req_t *req)
{
    int status;
    json_t *o = mesh_admin_json_of(a, path, req, &status);
    if (o && status != 200) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void header(h1_body_t *b, json_t *node, int members, int monitor)
{
    const char *name = json_string_value(json_object_get(node, "node"));
    w(b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
         "<link rel=\"icon\" href=\"data:,\"><title>meshd ");
    esc(b, name);
    w(b, "</title><style>");
    h1_body_write(b, mesh_webui_css, mesh_webui_css_len);
    /* The script asks only for the endpoints this node serves (a 404 is a console error). */
    w(b, "</style></head><body data-members=\"");
    w(b, members ? "1" : "0");
    w(b, "\" data-monitor=\"");
    w(b, monitor ? "1" : "0");
    w(b, "\"><header><span id=\"live\" class=\"muted\">static</span>"
         "<h1>meshd <span id=\"node-name\">");
    esc(b, name);
    w(b, "</span></h1><p>roles: <span id=\"node-roles\">");
    json_t *roles = json_object_get(node, "roles"), *r;
    size_t i;
    json_array_foreach(roles, i, r)
    {
        if (i)
            w(b, ", ");
        esc(b, json_string_value(r));
    }
    char buf[128];
    const char *etcd = json_string_value(json_object_get(node, "etcd"));
    w(b, "</span> · etcd: <b id=\"node-etcd\" class=\"s-");
    esc(b, etcd);
    w(b, "\">");
    esc(b, etcd);
    json_t *counts = json_object_get(node, "counts");
    snprintf(buf, sizeof(buf), "%lld services, %lld instances",
             (long long)json_integer_value(json_object_get(counts, "services")),
             (long long)json_integer_value(json_object_get(counts, "instances")));
    w(b, "</b> · <span id=\"node-counts\">");
    esc(b, buf);
    snprintf(buf, sizeof(buf), "%.0f s", json_number_value(json_object_get(node, "uptime_s")));
    w(b, "</span> · up <span id=\"node-uptime\">");
    esc(b, buf);
    w(b, "</span> · <a style=\"color:#c9d1dc\" href=\"/metrics\">metrics</a></p></header><main>");
}

static void routes_section(h1_body_t *b, json_t *routes)
{
    static const char *const cols[] = {"Service", "Instance", "Source", "State",
                                       "Node",    "Methods",  NULL};
    w(b, "<section><h2>Services and instances</h2>");
    table_head(b, "routes", cols);
    size_t i, j, n = 0;
    json_t *s, *in;
    json_array_foreach(json_object_get(routes, "services"), i, s)
    {
        json_t *svc = json_object_get(s, "service");
        json_array_foreach(json_object_get(s, "instances"), j, in)
        {
            w(b, "<tr data-service=\"");
            esc(b, json_string_value(svc));
            w(b, "\" data-address=\"");
            esc(b, json_string_value(json_object_get(in, "address")));
            w(b, "\" data-state=\"");
            esc(b, json_string_value(json_object_get(in, "state")));
            w(b, "\">");
            td(b, NULL, svc);
            td(b, "addr", json_object_get(in, "address"));
            td(b, NULL, json_object_get(in, "source"));
            td_state(b, json_object_get(in, "state"));
            td(b, NULL, json_object_get(in, "node"));
            json_t *m = json_object_get(in, "methods"), *x;
            size_t k;
            w(b, "<td class=\"methods\">");
            if (!json_is_array(m))
                w(b, "*");
            json_array_foreach(m, k, x)
            {
                if (k)
                    w(b, ", ");
                esc(b, json_string_value(x));
            }
            w(b, "</td></tr>");
            n++;
        }
    }
    if (!n)
        table_empty(b, 6, "no routes");
    table_end(b);
    w(b, "</section>");
}

static void members_section(h1_body_t *b, json_t *members)
{
    static const char *const cols[] = {"Node",      "Address", "State", "Incarnation",
                                       "Instances", "Since",   NULL};
    w(b, members ? "<section id=\"members-sec\">" : "<section id=\"members-sec\" hidden>");
    w(b, "<h2>Gossip members</h2>");
    table_head(b, "members", cols);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(members, "members"), i, m)
    {
        w(b, "<tr data-node=\"");
        esc(b, json_string_value(json_object_get(m, "node")));
        w(b, "\" data-state=\"");
        esc(b, json_string_value(json_object_get(m, "state")));
        w(b, "\"><td>");
        esc(b, json_string_value(json_object_get(m, "node")));
        if (json_is_true(json_object_get(m, "self")))
            w(b, " (self)");
        w(b, "</td>");
        td(b, "addr", json_object_get(m, "addr"));
        td_state(b, json_object_get(m, "state"));
        td(b, "num", json_object_get(m, "incarnation"));
        td(b, "num", json_object_get(m, "instances"));
        td(b, NULL, json_object_get(m, "since"));
        w(b, "</tr>");
    }
    table_end(b);
    w(b, "</section>");
}

static void audit_section(h1_body_t *b, json_t *audit)
{
    static const char *const cols[] = {"Audit", "", NULL};
    static const char *const keys[] = {"sink",    "state",      "sent", "acknowledged",
                                       "written", "last_error", NULL};
    w(b, "<section><h2>Audit</h2>");
    table_head(b, "audit", cols);
    for (const char *const *k = keys; audit && *k; k++) {
        json_t *v = json_object_get(audit, *k);
        if (!v)
            continue;
        w(b, "<tr><td>");
        w(b, *k);
        w(b, "</td>");
        if (!strcmp(*k, "state"))
            td_state(b, v);
        else
            td(b, NULL, v);
        w(b, "</tr>");
    }
    json_t *spool = json_object_get(audit, "spool");
    if (spool) {
        char buf[128];
        snprintf(buf, sizeof(buf), "%lld records, %lld bytes",
                 (long long)json_integer_value(json_object_get(spool, "records")),
                 (long long)json_integer_value(json_object_get(spool, "bytes")));
        w(b, "<tr><td>spooled</td><td>");
        esc(b, buf);
        w(b, "</td></tr>");
    }
    table_end(b);
    w(b, "</section>");
}

static void monitor_section(h1_body_t *b, json_t *mon)
{
    static const char *const cols[] = {"Service",   "Instance",   "Verdict", "Fails",
                                       "Evictions", "Last error", NULL};
    w(b, mon ? "<section id=\"monitor-sec\">" : "<section id=\"monitor-sec\" hidden>");
    json_t *role = json_object_get(mon, "role");
    w(b, "<h2>Monitor verdicts <span class=\"badge\"><span id=\"monitor-role\" class=\"s-");
    esc(b, json_string_value(role));
    w(b, "\">");
    esc(b, json_string_value(role));
    w(b, "</span></span></h2>");
    table_head(b, "monitor", cols);
    size_t i, n = 0;
    json_t *v;
    json_array_foreach(json_object_get(mon, "verdicts"), i, v)
    {
        w(b, "<tr data-address=\"");
        esc(b, json_string_value(json_object_get(v, "address")));
        w(b, "\" data-state=\"");
        esc(b, json_string_value(json_object_get(v, "state")));
        w(b, "\">");
        td(b, NULL, json_object_get(v, "service"));
        td(b, "addr", json_object_get(v, "address"));
        td_state(b, json_object_get(v, "state"));
        td(b, "num", json_object_get(v, "fails"));
        td(b, "num", json_object_get(v, "evictions"));
        td(b, NULL, json_object_get(v, "last_error"));
        w(b, "</tr>");
        n++;
    }
    if (!n)
        table_empty(b, 6, "every instance answers");
    table_end(b);
    w(b, "</section>");
}

static void calls_section(h1_body_t *b)
{
    static const char *const cols[] = {
        "Calls", "Total", "Errors (status not OK)", "Per second", "Errors per second", NULL};
    w(b, "<section><h2>Calls</h2>");
    table_head(b, "calls", cols);
    table_empty(b, 5, "rates need JavaScript (or /metrics)");
    table_end(b);
    w(b, "</section>");
}

/* GET /. */
static int page_handler(void *ud, const h1_req_t *req, h1_body_t *b)
{
    mesh_admin_t *a = ud;
    h1_body_set_type(b, "text/html; charset=utf-8");
    json_t *node = api(a, "/v1/node", req), *routes = api(a, "/v1/routes", req);
    json_t *members = api(a, MESH_ADMIN_MEMBERS_PATH, req), *audit = api(a, "/v1/audit", req);
    json_t *mon = api(a, "/v1/monitor", req);
    header(b, node, members != NULL, mon != NULL);
    routes_section(b, routes);
    members_section(b, members);
    monitor_section(b, mon);
    calls_section(b);
    audit_section(b, audit);
    w(b, "</main><script>");
    h1_body_write(b, mesh_webui_js, mesh_webui_js_len);
    w(b, "</script></body></html>\n");
    json_decref(node);
    json_decref(routes);
    json_decref(members);
    json_decref(audit);
    json_decref(mon);
    return 200;
}

int mesh_admin_page_init(mesh_admin_t *a)
{
    return mesh_admin_add(a, "/", page_handler, a);
}
