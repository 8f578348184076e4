/*
 * node/admin.c: the admin HTTP API's server (see node/admin.h): an HTTP server
 * (transport/http1_server.h) whose JSON endpoints return jansson trees, the placeholder of the
 * gossip members endpoint, and the sources of the /v1/routes listing.
 */
#include "node/admin.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "node/admin_metrics.h"
#include "node/admin_options.h"
#include "node/admin_page.h"

#define LOG "admin"

/* A JSON endpoint: what h1_server calls back with. */
typedef struct json_ep {
    struct json_ep *next;
    char *path;
    mesh_admin_json_fn fn;
    void *ud;
} json_ep_t;

typedef struct routes_src {
    mesh_admin_routes_fn fn;
    void *ud;
} routes_src_t;

typedef struct metrics_src {
    mesh_admin_metrics_fn fn;
    void *ud;
} metrics_src_t;

#define NODE_SECTIONS 8

struct mesh_admin {
    struct {
        char name[32];
        mesh_admin_node_fn fn;
        void *ud;
    } sections[NODE_SECTIONS];
    h1_server_t *http;
    json_ep_t *eps;
    routes_src_t *srcs;
    size_t n_srcs, cap_srcs;
    metrics_src_t *msrcs;
    size_t n_msrcs, cap_msrcs;
    char address[300];
    char token[MESH_ADMIN_TOKEN_MAX + 1]; /* "" when none is required */
    size_t token_len;
    char **own_auth; /* paths that check their own credentials (mesh_admin_add_post) */
    size_t n_own_auth;
};

/* ---- JSON endpoints ------------------------------------------------------------------------ */

static int json_handler(void *ud, const h1_req_t *req, h1_body_t *b)
{
    json_ep_t *ep = ud;
    int status = 200;
    json_t *o = ep->fn(ep->ud, req, &status);
    if (!o)
        return 500;
    int rc = h1_body_json(b, o);
    json_decref(o);
    return rc == 0 ? status : 500;
}

static json_ep_t **find_ep(mesh_admin_t *a, const char *path)
{
    json_ep_t **p = &a->eps;
    while (*p && strcmp((*p)->path, path) != 0)
        p = &(*p)->next;
    return p;
}

int mesh_admin_add_json(mesh_admin_t *a, const char *path, mesh_admin_json_fn fn, void *ud)
{
    json_ep_t *ep = calloc(1, sizeof(*ep));
    if (!ep || !(ep->path = strdup(path))) {
        free(ep);
        return -1;
    }
    ep->fn = fn;
    ep->ud = ud;
    if (h1_server_add(a->http, path, json_handler, ep) != 0) {
        free(ep->path);
        free(ep);
        return -1;
    }
    ep->next = a->eps;
    a->eps = ep;
    return 0;
}

json_t *mesh_admin_json_of(mesh_admin_t *a, const char *path, const h1_req_t *req, int *status)
{
    json_ep_t *ep = *find_ep(a, path);
    *status = 404;
    if (!ep)
        return NULL;
    *status = 200;
    return ep->fn(ep->ud, req, status);
}

int mesh_admin_add(mesh_admin_t *a, const char *path, h1_handler_fn fn, void *ud)
{
    return h1_server_add(a->http, path, fn, ud);
}

int mesh_admin_add_post(mesh_admin_t *a, const char *path, h1_handler_fn fn, void *ud, int own_auth)
{
    if (own_auth) {
        char **v = realloc(a->own_auth, (a->n_own_auth + 1) * sizeof(*v));
        if (!v)
            return -1;
        a->own_auth = v;
        if (!(v[a->n_own_auth] = strdup(path)))
            return -1;
        a->n_own_auth++;
    }
    if (h1_server_add_post(a->http, path, fn, ud) != 0) {
        if (own_auth)
            free(a->own_auth[--a->n_own_auth]);
        return -1;
    }
    return 0;
}

int mesh_admin_remove(mesh_admin_t *a, const char *path)
{
    if (h1_server_remove(a->http, path) != 0)
        return -1;
    for (size_t i = 0; i < a->n_own_auth; i++)
        if (strcmp(a->own_auth[i], path) == 0) {
            free(a->own_auth[i]);
            a->own_auth[i--] = a->own_auth[--a->n_own_auth];
        }
    json_ep_t **p = find_ep(a, path);
    if (*p) {
        json_ep_t *ep = *p;
        *p = ep->next;
        free(ep->path);
        free(ep);
    }
    return 0;
}

/* ---- /v1/members until gossip takes it --------------------------------------------------------
 */

static json_t *members_off(void *ud, const h1_req_t *req, int *status)
{
    *status = 404;
    return json_pack("{s:s,s:s}", "error", "gossip is not enabled on this node", "path",
                     MESH_ADMIN_MEMBERS_PATH);
}

int mesh_admin_set_members(mesh_admin_t *a, mesh_admin_json_fn fn, void *ud)
{
    mesh_admin_remove(a, MESH_ADMIN_MEMBERS_PATH);
    return mesh_admin_add_json(a, MESH_ADMIN_MEMBERS_PATH, fn ? fn : members_off, fn ? ud : NULL);
}

/* ---- /v1/node sections ----------------------------------------------------------------------- */

int mesh_admin_set_node_section(mesh_admin_t *a, const char *name, mesh_admin_node_fn fn, void *ud)
{
    int free_slot = -1;
    for (int i = 0; i < NODE_SECTIONS; i++) {
        if (!strcmp(a->sections[i].name, name)) {
            a->sections[i].fn = fn;
            a->sections[i].ud = ud;
            return 0;
        }
        if (free_slot < 0 && !a->sections[i].name[0])
            free_slot = i;
    }
    if (free_slot < 0 || strlen(name) >= sizeof(a->sections[0].name))
        return -1;
    snprintf(a->sections[free_slot].name, sizeof(a->sections[0].name), "%s", name);
    a->sections[free_slot].fn = fn;
    a->sections[free_slot].ud = ud;
    return 0;
}

void mesh_admin_node_sections(mesh_admin_t *a, json_t *obj)
{
    for (int i = 0; i < NODE_SECTIONS; i++)
        if (a->sections[i].name[0]) {
            json_t *v = a->sections[i].fn ? a->sections[i].fn(a->sections[i].ud) : NULL;
            json_object_set_new(obj, a->sections[i].name, v ? v : json_null());
        }
}

/* ---- route sources ------------------------------------------------------------------------- */

int mesh_admin_add_routes_source(mesh_admin_t *a, mesh_admin_routes_fn fn, void *ud)
{
    if (a->n_srcs == a->cap_srcs) {
        size_t nc = a->cap_srcs ? a->cap_srcs * 2 : 4;
        routes_src_t *ns = realloc(a->srcs, nc * sizeof(*ns));
        if (!ns)
            return -1;
        a->srcs = ns;
        a->cap_srcs = nc;
    }
    a->srcs[a->n_srcs++] = (routes_src_t){fn, ud};
    return 0;
}

int mesh_admin_remove_routes_source(mesh_admin_t *a, mesh_admin_routes_fn fn, void *ud)
{
    for (size_t i = 0; i < a->n_srcs; i++)
        if (a->srcs[i].fn == fn && a->srcs[i].ud == ud) {
            memmove(&a->srcs[i], &a->srcs[i + 1], (a->n_srcs - i - 1) * sizeof(*a->srcs));
            a->n_srcs--;
            return 0;
        }
    return -1;
}

void mesh_admin_collect_routes(mesh_admin_t *a, mesh_admin_routes_t *list)
{
    for (size_t i = 0; i < a->n_srcs; i++)
        a->srcs[i].fn(a->srcs[i].ud, list);
}

/* ---- metrics collectors ------------------------------------------------------------------- */

int mesh_admin_add_metrics(mesh_admin_t *a, mesh_admin_metrics_fn fn, void *ud)
{
    if (a->n_msrcs == a->cap_msrcs) {
        size_t nc = a->cap_msrcs ? a->cap_msrcs * 2 : 8;
        metrics_src_t *ns = realloc(a->msrcs, nc * sizeof(*ns));
        if (!ns)
            return -1;
        a->msrcs = ns;
        a->cap_msrcs = nc;
    }
    a->msrcs[a->n_msrcs++] = (metrics_src_t){fn, ud};
    return 0;
}

int mesh_admin_remove_metrics(mesh_admin_t *a, mesh_admin_metrics_fn fn, void *ud)
{
    for (size_t i = 0; i < a->n_msrcs; i++)
        if (a->msrcs[i].fn == fn && a->msrcs[i].ud == ud) {
            memmove(&a->msrcs[i], &a->msrcs[i + 1], (a->n_msrcs - i - 1) * sizeof(*a->msrcs));
            a->n_msrcs--;
            return 0;
        }
    return -1;
}

void mesh_admin_collect_metrics(mesh_admin_t *a, prom_t *p)
{
    for (size_t i = 0; i < a->n_msrcs && !prom_failed(p); i++)
        a->msrcs[i].fn(a->msrcs[i].ud, p);
}

/* ---- the bearer token ------------------------------------------------------------------------ */

/* Equal in a time that depends on the expected length only, not on where they differ. */
static int same_token(const char *got, size_t got_len, const char *want, size_t want_len)
{
    volatile unsigned char d = got_len != want_len;
    for (size_t i = 0; i < want_len; i++)
        d |= (unsigned char)(want[i] ^ (i < got_len ? got[i] : 0));
    return d == 0;
}

/* The guard of every request: the probes pass, the rest need the token (when one is set). */
static int token_guard(void *ud, const h1_req_t *req, h1_body_t *b)
{
    mesh_admin_t *a = ud;
    if (!a->token_len || h1_req_path_is(req, "/livez") || h1_req_path_is(req, "/readyz"))
        return 0;
    for (size_t i = 0; i < a->n_own_auth; i++)
        if (h1_req_path_is(req, a->own_auth[i]))
            return 0;
    const char *v = req->authorization;
    size_t n = req->authorization_len;
    if (v && n > 7 && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7, n -= 7;
        while (n && *v == ' ')
            v++, n--;
        if (same_token(v, n, a->token, a->token_len))
            return 0;
    }
    const char *msg = req->authorization
                          ? "{\"error\":\"meshd: admin: the bearer token is wrong\"}"
                          : "{\"error\":\"meshd: admin: this endpoint needs Authorization: Bearer "
                            "<token> (the node runs with --admin-token-file)\"}";
    h1_body_write(b, msg, strlen(msg));
    h1_body_set_header(b, "WWW-Authenticate: Bearer realm=\"meshd-admin\"");
    return 401;
}

int mesh_admin_set_token(mesh_admin_t *a, const char *token)
{
    size_t n = token ? strlen(token) : 0;
    if (n > MESH_ADMIN_TOKEN_MAX)
        return -1;
    memcpy(a->token, token ? token : "", n + 1);
    a->token_len = n;
    return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

mesh_admin_t *mesh_admin_new(uv_loop_t *loop)
{
    mesh_admin_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    h1_server_config_t hc = {.name = LOG, .max_connections = 32};
    a->http = h1_server_new(loop, &hc);
    if (a->http)
        h1_server_set_guard(a->http, token_guard, a);
    if (!a->http || mesh_admin_set_members(a, NULL, NULL) != 0 || mesh_admin_metrics_init(a) != 0 ||
        mesh_admin_page_init(a) != 0) {
        mesh_admin_close(a);
        return NULL;
    }
    return a;
}

void mesh_admin_set_tls(mesh_admin_t *a, struct mesh_tls_holder *tls, uint64_t handshake_timeout_ms)
{
    h1_server_set_tls(a->http, tls, handshake_timeout_ms);
}

int mesh_admin_listen(mesh_admin_t *a, const char *spec)
{
    char host[256];
    int port;
    if (mesh_admin_listen_split(spec, host, sizeof(host), &port) != 0) {
        mesh_error(LOG, "admin-listen: '%s' is not HOST:PORT, :PORT or PORT", spec);
        return -1;
    }
    int rc = h1_server_listen(a->http, host, port);
    if (rc < 0) {
        mesh_error(LOG, "cannot listen on %s for the admin API: %s", spec, uv_strerror(rc));
        return -1;
    }
    snprintf(a->address, sizeof(a->address), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
             h1_server_port(a->http));
    mesh_info(LOG, "admin API on http://%s/v1/ (web page http://%s/, metrics /metrics)%s",
              a->address, a->address, a->token_len ? ", bearer token required" : "");
    if (!a->token_len && strcmp(host, "127.0.0.1") && strcmp(host, "::1") &&
        strcmp(host, "localhost"))
        mesh_warn(LOG,
                  "the admin API listens on %s without a token: anyone who reaches it sees the "
                  "routes and members (--admin-token-file protects it)",
                  a->address);
    return 0;
}

const char *mesh_admin_address(const mesh_admin_t *a)
{
    return a->address;
}

int mesh_admin_port(const mesh_admin_t *a)
{
    return h1_server_port(a->http);
}

void mesh_admin_close(mesh_admin_t *a)
{
    if (!a)
        return;
    if (a->http) /* frees itself once its handles closed; it holds no pointer into a after */
        h1_server_close(a->http, NULL, NULL);
    while (a->eps) {
        json_ep_t *ep = a->eps;
        a->eps = ep->next;
        free(ep->path);
        free(ep);
    }
    free(a->srcs);
    for (size_t i = 0; i < a->n_own_auth; i++)
        free(a->own_auth[i]);
    free(a->own_auth);
    free(a->msrcs);
    free(a);
}
