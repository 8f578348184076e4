/*
 * node/role_admin_cli.c: `meshd routes`, `meshd members` and `meshd audit status`, clients of a
 * running node's admin API (node/admin.h): one GET through libcurl (common/curl_lib.h), then
 * a table for people or, with --json, the server's JSON as it came.
 *
 *   meshd routes  --admin HOST:PORT [--json]         GET /v1/routes
 *   meshd members --admin HOST:PORT [--json]         GET /v1/members
 *   meshd audit status --admin HOST:PORT [--json]    GET /v1/audit
 *   (each also takes --admin-token-file PATH, or MESHD_ADMIN_TOKEN_FILE: the bearer token)
 *
 * Exit codes: 0 shown; 1 the node could not be reached or answered an error (its JSON is
 * printed); 2 bad flags (with the usage).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/curl_lib.h"
#include "node/admin.h"
#include "node/admin_options.h"
#include "node/cli.h"

typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} buf_t;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    size_t k = size * n;
    if (b->len + k + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->len + k + 1)
            nc *= 2;
        char *nd = realloc(b->data, nc);
        if (!nd) {
            b->oom = 1;
            return 0;
        }
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

/* GETs path from the admin at addr. Returns the HTTP status (body in *out), or -1 with the
 * reason in err. */
static long get(const char *addr, const char *path, const char *token, const char *ca, buf_t *out,
                char *err, size_t errlen)
{
    char host[256];
    int port;
    if (mesh_admin_listen_split(addr, host, sizeof(host), &port) != 0 || port == 0) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", addr);
        return -1;
    }
    const mesh_curl_t *c = mesh_curl(err, errlen);
    if (!c)
        return -1;
    CURL *e = c->easy_init();
    if (!e) {
        snprintf(err, errlen, "cannot create a libcurl handle");
        return -1;
    }
    char url[400];
    /* With a CA the node's admin API is TLS (--admin-tls): its certificate is checked against
     * the CA and the host given. */
    snprintf(url, sizeof(url), strchr(host, ':') ? "%s://[%s]:%d%s" : "%s://%s:%d%s",
             ca ? "https" : "http", host, port, path);
    char cerr[CURL_ERROR_SIZE] = "";
    c->easy_setopt(e, CURLOPT_URL, url);
    c->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    c->easy_setopt(e, CURLOPT_WRITEDATA, out);
    c->easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
    c->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    c->easy_setopt(e, CURLOPT_TIMEOUT_MS, 60000L);
    c->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    c->easy_setopt(e, CURLOPT_NOPROXY, "*"); /* a loopback admin, never through http_proxy */
    if (ca)
        c->easy_setopt(e, CURLOPT_CAINFO, ca);
    struct curl_slist *headers = NULL;
    char auth[MESH_ADMIN_TOKEN_MAX + 32];
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        headers = c->slist_append(NULL, auth);
        if (!headers) {
            snprintf(err, errlen, "out of memory");
            c->easy_cleanup(e);
            return -1;
        }
        c->easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    }
    CURLcode rc = c->easy_perform(e);
    long status = -1;
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s", cerr[0] ? cerr : c->easy_strerror(rc));
    else if (out->oom)
        snprintf(err, errlen, "out of memory reading the answer");
    else
        c->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    c->easy_cleanup(e);
    if (headers)
        c->slist_free_all(headers);
    return out->oom ? -1 : status;
}

/* ---- tables -------------------------------------------------------------------------------- */

/* A table of strings: rows of ncol cells, printed with each column as wide as its widest. */
typedef struct {
    size_t ncol, n, cap;
    char **cells;
} table_t;

static void table_add(table_t *t, char **row)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->cells = realloc(t->cells, t->cap * t->ncol * sizeof(char *));
        if (!t->cells) {
            fprintf(stderr, "meshd: out of memory\n");
            exit(1);
        }
    }
    for (size_t i = 0; i < t->ncol; i++)
        t->cells[t->n * t->ncol + i] = strdup(row[i] ? row[i] : "");
    t->n++;
}

static void table_print(table_t *t, FILE *out)
{
    size_t *w = calloc(t->ncol, sizeof(*w));
    for (size_t r = 0; r < t->n; r++)
        for (size_t i = 0; i < t->ncol; i++) {
            size_t l = strlen(t->cells[r * t->ncol + i]);
            if (l > w[i])
                w[i] = l;
        }
    for (size_t r = 0; r < t->n; r++) {
        for (size_t i = 0; i < t->ncol; i++) {
            const char *c = t->cells[r * t->ncol + i];
            if (i + 1 == t->ncol)
                fprintf(out, "%s\n", c);
            else
                fprintf(out, "%-*s  ", (int)w[i], c);
        }
    }
    for (size_t k = 0; k < t->n * t->ncol; k++)
        free(t->cells[k]);
    free(t->cells);
    free(w);
}

/* A JSON string, or "-" for null / missing. */
static const char *str_or_dash(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "-";
}

/* Methods as "A,B", "*" for every method (null). */
static char *methods_text(json_t *m)
{
    if (!json_is_array(m))
        return strdup("*");
    size_t len = 1;
    size_t i;
    json_t *v;
    json_array_foreach(m, i, v) len += strlen(json_string_value(v) ? json_string_value(v) : "") + 1;
    char *s = calloc(1, len);
    json_array_foreach(m, i, v)
    {
        if (i)
            strcat(s, ",");
        strcat(s, json_string_value(v) ? json_string_value(v) : "");
    }
    return s;
}

static int print_routes(json_t *o, FILE *out)
{
    json_t *svcs = json_object_get(o, "services");
    if (!json_is_array(svcs))
        return -1;
    fprintf(out, "etcd: %s\n\n", str_or_dash(json_object_get(o, "etcd")));
    table_t t = {.ncol = 6};
    char *head[] = {"SERVICE", "ADDRESS", "SOURCE", "STATE", "TRANSPORT", "METHODS"};
    table_add(&t, head);
    size_t i, j, n = 0;
    json_t *s, *in;
    json_array_foreach(svcs, i, s)
    {
        json_array_foreach(json_object_get(s, "instances"), j, in)
        {
            char *m = methods_text(json_object_get(in, "methods"));
            char *row[] = {(char *)str_or_dash(json_object_get(s, "service")),
                           (char *)str_or_dash(json_object_get(in, "address")),
                           (char *)str_or_dash(json_object_get(in, "source")),
                           (char *)str_or_dash(json_object_get(in, "state")),
                           (char *)str_or_dash(json_object_get(in, "transport")),
                           m};
            table_add(&t, row);
            free(m);
            n++;
        }
    }
    table_print(&t, out);
    fprintf(out, "\n%zu service%s, %zu instance%s\n", json_array_size(svcs),
            json_array_size(svcs) == 1 ? "" : "s", n, n == 1 ? "" : "s");
    return 0;
}

/* "since" (RFC 3339 UTC or Unix seconds) as an age: 42s, 5m3s, 2h4m, 3d2h. */
static void age_text(json_t *since, char *buf, size_t cap)
{
    time_t t = 0;
    if (json_is_number(since)) {
        t = (time_t)json_number_value(since);
    } else if (json_is_string(since)) {
        struct tm tm = {0};
        const char *end = strptime(json_string_value(since), "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end) {
            snprintf(buf, cap, "%s", json_string_value(since));
            return;
        }
        t = timegm(&tm);
    } else {
        snprintf(buf, cap, "-");
        return;
    }
    long long d = (long long)(time(NULL) - t);
    if (d < 0)
        d = 0;
    if (d < 60)
        snprintf(buf, cap, "%llds", d);
    else if (d < 3600)
        snprintf(buf, cap, "%lldm%llds", d / 60, d % 60);
    else if (d < 86400)
        snprintf(buf, cap, "%lldh%lldm", d / 3600, d % 3600 / 60);
    else
        snprintf(buf, cap, "%lldd%lldh", d / 86400, d % 86400 / 3600);
}

static int print_members(json_t *o, FILE *out)
{
    json_t *ms = json_object_get(o, "members");
    if (!json_is_array(ms))
        return -1;
    fprintf(out, "self: %s\n\n", str_or_dash(json_object_get(o, "self")));
    table_t t = {.ncol = 6};
    char *head[] = {"NODE", "ADDR", "STATE", "INCARNATION", "INSTANCES", "SINCE"};
    table_add(&t, head);
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        char inc[32], inst[32], age[64];
        snprintf(inc, sizeof(inc), "%lld",
                 (long long)json_integer_value(json_object_get(m, "incarnation")));
        json_t *iv = json_object_get(m, "instances");
        snprintf(inst, sizeof(inst), "%zu",
                 json_is_array(iv) ? json_array_size(iv) : (size_t)json_integer_value(iv));
        age_text(json_object_get(m, "since"), age, sizeof(age));
        char *row[] = {(char *)str_or_dash(json_object_get(m, "node")),
                       (char *)str_or_dash(json_object_get(m, "addr")),
                       (char *)str_or_dash(json_object_get(m, "state")),
                       inc,
                       inst,
                       age};
        table_add(&t, row);
    }
    table_print(&t, out);
    fprintf(out, "\n%zu member%s\n", json_array_size(ms), json_array_size(ms) == 1 ? "" : "s");
    return 0;
}

static json_int_t int_of(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* GET /v1/audit for people: where records go, how far they got, what was lost. */
static int print_audit(json_t *o, FILE *out)
{
    const char *sink = json_string_value(json_object_get(o, "sink"));
    if (!sink)
        return -1;
    fprintf(out, "sink: %s   state: %s\n", sink, str_or_dash(json_object_get(o, "state")));
    if (!strcmp(sink, "kafka")) {
        json_t *sp = json_object_get(o, "spool"), *d = json_object_get(o, "dropped");
        fprintf(out, "kafka: topic %s at %s\n", str_or_dash(json_object_get(o, "topic")),
                str_or_dash(json_object_get(o, "brokers")));
        fprintf(out,
                "records: %lld accepted, %lld sent, %lld acknowledged, %lld in flight, %lld "
                "delivery failures\n",
                (long long)int_of(o, "accepted"), (long long)int_of(o, "sent"),
                (long long)int_of(o, "acknowledged"), (long long)int_of(o, "in_flight"),
                (long long)int_of(o, "delivery_failures"));
        fprintf(out, "spool %s: %lld records waiting, %lld of %lld bytes, %lld segments\n",
                str_or_dash(json_object_get(sp, "dir")), (long long)int_of(sp, "records"),
                (long long)int_of(sp, "bytes"), (long long)int_of(sp, "max_bytes"),
                (long long)int_of(sp, "segments"));
        fprintf(out, "at start: %lld records replayed, %lld corrupt bytes cut\n",
                (long long)int_of(o, "replayed_at_start"),
                (long long)int_of(o, "corrupt_bytes_truncated"));
        fprintf(out,
                "dropped: %lld spool full, %lld oldest deleted, %lld disk errors, %lld "
                "unreadable, %lld not taken; %lld reported in audit_dropped events\n",
                (long long)int_of(d, "spool_full"), (long long)int_of(d, "oldest_deleted"),
                (long long)int_of(d, "disk_errors"), (long long)int_of(d, "unreadable"),
                (long long)int_of(d, "not_taken"), (long long)int_of(d, "reported"));
    } else if (!strcmp(sink, "file")) {
        fprintf(out, "file %s: %lld records written, %lld rotations, %lld lost\n",
                str_or_dash(json_object_get(o, "file")), (long long)int_of(o, "written"),
                (long long)int_of(o, "rotations"),
                (long long)int_of(json_object_get(o, "dropped"), "write_errors"));
    }
    json_t *le = json_object_get(o, "last_error");
    if (json_is_string(le))
        fprintf(out, "last error (%s): %s\n", str_or_dash(json_object_get(o, "last_error_at")),
                json_string_value(le));
    return 0;
}

/* ---- the commands -------------------------------------------------------------------------- */

static int usage(const char *cmd)
{
    fprintf(stderr,
            "usage: meshd %s --admin HOST:PORT [--admin-token-file PATH] [--admin-ca PATH] "
            "[--json]\n\n"
            "Asks a running node's admin API (its --admin-listen) for its %s:\n"
            "a table, or with --json the server's JSON as it is. --admin-token-file sends\n"
            "the node's bearer token (the node's own --admin-token-file). --admin-ca: the node\n"
            "serves its admin API over TLS (--admin-tls); its certificate is checked against\n"
            "this CA (also MESHD_ADMIN_CA).\n",
            cmd,
            strcmp(cmd, "routes") == 0    ? "routes"
            : strcmp(cmd, "members") == 0 ? "gossip members"
                                          : "audit pipeline's state");
    return 2;
}

static int run(const char *cmd, const char *path, int (*print)(json_t *, FILE *), int argc,
               char **argv)
{
    const char *admin = NULL, *token_file = NULL, *ca = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc) {
            admin = argv[++i];
        } else if (strncmp(argv[i], "--admin=", 8) == 0) {
            admin = argv[i] + 8;
        } else if (strcmp(argv[i], "--admin-token-file") == 0 && i + 1 < argc) {
            token_file = argv[++i];
        } else if (strncmp(argv[i], "--admin-token-file=", 19) == 0) {
            token_file = argv[i] + 19;
        } else if (strcmp(argv[i], "--admin-ca") == 0 && i + 1 < argc) {
            ca = argv[++i];
        } else if (strncmp(argv[i], "--admin-ca=", 11) == 0) {
            ca = argv[i] + 11;
        } else {
            fprintf(stderr, "meshd %s: unknown argument '%s'\n", cmd, argv[i]);
            return usage(cmd);
        }
    }
    if (!admin || !*admin) {
        fprintf(stderr, "meshd %s: --admin HOST:PORT is required\n", cmd);
        return usage(cmd);
    }
    char host[256];
    int port;
    if (mesh_admin_listen_split(admin, host, sizeof(host), &port) != 0 || port == 0) {
        fprintf(stderr, "meshd %s: --admin: '%s' is not HOST:PORT\n", cmd, admin);
        return usage(cmd);
    }
    char token[MESH_ADMIN_TOKEN_MAX + 1], err[512];
    if (!token_file)
        token_file = getenv("MESHD_ADMIN_TOKEN_FILE");
    if (token_file && *token_file &&
        mesh_admin_token_read(token_file, token, sizeof(token), err, sizeof(err)) < 0) {
        fprintf(stderr, "meshd %s: %s\n", cmd, err);
        return 2;
    }
    if (!ca)
        ca = getenv("MESHD_ADMIN_CA");
    buf_t b = {0};
    long status = get(admin, path, token_file && *token_file ? token : NULL, ca && *ca ? ca : NULL,
                      &b, err, sizeof(err));
    int rc = 1;
    if (status < 0) {
        fprintf(stderr, "meshd %s: cannot reach admin at %s: %s\n", cmd, admin, err);
        goto out;
    }
    json_error_t jerr;
    json_t *o = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
    if (status != 200) {
        if (status == 404 && strcmp(path, MESH_ADMIN_MEMBERS_PATH) == 0)
            fprintf(stderr, "meshd %s: gossip is not enabled on this node (%s)\n", cmd, admin);
        else if (status == 401)
            fprintf(stderr, "meshd %s: %s wants a bearer token: %s\n", cmd, admin,
                    token_file ? "the token is wrong" : "give --admin-token-file PATH");
        else
            fprintf(stderr, "meshd %s: %s answered %ld\n", cmd, admin, status);
        if (b.len)
            fprintf(stderr, "%s%s", b.data, b.data[b.len - 1] == '\n' ? "" : "\n");
    } else if (json) {
        fwrite(b.data ? b.data : "", 1, b.len, stdout);
        if (!b.len || b.data[b.len - 1] != '\n')
            putchar('\n');
        rc = 0;
    } else if (!o || print(o, stdout) != 0) {
        fprintf(stderr, "meshd %s: %s answered something that is not %s's JSON\n", cmd, admin,
                path);
    } else {
        rc = 0;
    }
    json_decref(o);
out:
    free(b.data);
    return rc;
}

int mesh_cli_routes(int argc, char **argv)
{
    return run("routes", "/v1/routes", print_routes, argc, argv);
}

int mesh_cli_members(int argc, char **argv)
{
    return run("members", MESH_ADMIN_MEMBERS_PATH, print_members, argc, argv);
}

/* GET /v1/monitor as a few lines: role, fence, counts, valve, then the verdicts. */
static int print_monitor(json_t *o, FILE *out)
{
    const char *role = json_string_value(json_object_get(o, "role"));
    if (!role)
        return -1;
    json_t *in = json_object_get(o, "instances"), *c = json_object_get(o, "counters"),
           *v = json_object_get(o, "valve");
    fprintf(out, "monitor %s: %s   fence: %lld   eviction lease: %lld%s\n",
            str_or_dash(json_object_get(o, "node")), role,
            (long long)json_integer_value(json_object_get(o, "fence")),
            (long long)json_integer_value(json_object_get(o, "eviction_lease")),
            json_is_true(json_object_get(o, "dry_run")) ? "   (dry run)" : "");
    fprintf(out, "instances: %lld checked, %lld failing, %lld evicted\n",
            (long long)json_integer_value(json_object_get(in, "checked")),
            (long long)json_integer_value(json_object_get(in, "failing")),
            (long long)json_integer_value(json_object_get(in, "evicted")));
    fprintf(out,
            "rounds %lld  checks %lld  failed %lld  evictions %lld  readmissions %lld  "
            "stale %lld  fenced %lld\n",
            (long long)json_integer_value(json_object_get(c, "rounds")),
            (long long)json_integer_value(json_object_get(c, "checks")),
            (long long)json_integer_value(json_object_get(c, "check_failures")),
            (long long)json_integer_value(json_object_get(c, "evictions")),
            (long long)json_integer_value(json_object_get(c, "readmissions")),
            (long long)json_integer_value(json_object_get(c, "stale_verdicts")),
            (long long)json_integer_value(json_object_get(c, "fenced")));
    fprintf(out, "valve: %s   %s\n", json_is_true(json_object_get(v, "closed")) ? "CLOSED" : "open",
            str_or_dash(json_object_get(v, "reason")));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(o, "verdicts"), i, e)
    {
        fprintf(out, "  %-8s %s %s  fails %lld  oks %lld  evictions %lld  %s\n",
                str_or_dash(json_object_get(e, "state")),
                str_or_dash(json_object_get(e, "service")),
                str_or_dash(json_object_get(e, "address")),
                (long long)json_integer_value(json_object_get(e, "fails")),
                (long long)json_integer_value(json_object_get(e, "oks")),
                (long long)json_integer_value(json_object_get(e, "evictions")),
                str_or_dash(json_object_get(e, "last_error")));
    }
    return 0;
}

int mesh_cli_monitor_status(int argc, char **argv)
{
    return run("monitor status", "/v1/monitor", print_monitor, argc, argv);
}

int mesh_cli_audit_status(int argc, char **argv)
{
    return run("audit status", "/v1/audit", print_audit, argc, argv);
}
