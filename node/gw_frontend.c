/*
 * node/gw_frontend.c: a node's HTTP/JSON front end and its schema sources (see
 * node/gw_frontend.h).
 */
#include "node/gw_frontend.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/file_read.h"
#include "common/log.h"
#include "gateway/gw_api.h"
#include "gateway/gw_options.h"

/* ---- the front end on every worker (node/node.h's hook) ------------------------------------ */

static void *fe_create(void *arg, int worker, uv_loop_t *loop, mesh_proxy_worker_t *engine)
{
    node_gw_t *g = arg;
    gw_front_config_t c = g->fcfg;
    c.port = g->http_port;
    c.worker_index = worker;
    c.http.tls = mesh_node_tls_http(g->node);
    c.http.tls_handshake_timeout_ms = mesh_node_tls_handshake_timeout(g->node);
    if (!c.http.tls && mesh_node_tls_http_wanted(g->node))
        return NULL; /* the certificate did not load (logged) */
    gw_front_t *f = gw_front_new(loop, engine, &c);
    if (f)
        g->http_port = gw_front_port(f); /* port 0: the first worker picks, the others share */
    return f;
}

static void fe_update(void *fe, void *payload)
{
    gw_front_set_api(fe, payload);
}

static void fe_drain(void *fe, void (*done)(void *), void *arg)
{
    gw_front_drain(fe, done, arg);
}

static void fe_destroy(void *fe)
{
    gw_front_free(fe);
}

static uint64_t fe_req_buffered(void *fe)
{
    return gw_front_req_buffered(fe);
}

static void api_unref(void *p)
{
    gw_api_unref(p);
}

static void *api_ref(void *p)
{
    return gw_api_ref(p);
}

int node_gw_init(node_gw_t *g, mesh_node_t *node, const mesh_config_t *cfg, const char *listen,
                 const char *who)
{
    memset(g, 0, sizeof(*g));
    g->node = node;
    g->who = who;
    if (mesh_addr_split(listen, g->http_host, sizeof(g->http_host), &g->http_port) != 0) {
        mesh_error(who, "HTTP listen address '%s' is not HOST:PORT", listen);
        return -1;
    }
    const gw_options_t *go = gw_options(cfg);
    g->fcfg.host = g->http_host[0] ? g->http_host : "0.0.0.0";
    g->fcfg.default_timeout_ms = (uint64_t)go->timeout_ms;
    g->fcfg.max_timeout_ms = (uint64_t)go->max_timeout_ms;
    g->fcfg.headers = go->headers.items;
    g->fcfg.n_headers = go->headers.n;
    g->fcfg.http.conn.max_body = (uint64_t)go->max_body;
    mesh_node_frontend_t fe = {
        .create = fe_create,
        .update = fe_update,
        .drain = fe_drain,
        .destroy = fe_destroy,
        .payload_unref = api_unref,
        .req_buffered = fe_req_buffered,
        .arg = g,
    };
    mesh_node_set_frontend(node, &fe);
    return 0;
}

int node_gw_port(const node_gw_t *g)
{
    return g->http_port;
}

/* ---- schemas --------------------------------------------------------------------------------- */

static void on_route_error(void *ctx, const char *grpc_path, const char *error)
{
    node_gw_t *g = ctx;
    mesh_warn(g->who, "%s: no HTTP routes: %s", grpc_path, error);
}

static int set_has_service(const node_gw_t *g, const char *name)
{
    for (size_t i = 0; i < g->n_set_services; i++)
        if (strcmp(g->set_services[i], name) == 0)
            return 1;
    return 0;
}

/* Whether the file fd defines a service the static set describes. */
static int defines_set_service(const node_gw_t *g, const Google__Protobuf__FileDescriptorProto *fd)
{
    char name[512];
    for (size_t i = 0; i < fd->n_service; i++) {
        snprintf(name, sizeof(name), "%s%s%s", fd->package ? fd->package : "",
                 fd->package && *fd->package ? "." : "", fd->service[i]->name);
        if (set_has_service(g, name))
            return 1;
    }
    return 0;
}

/* Adds one unpacked file to p (serialized again). 0, 1 (name taken) or -1. */
static int add_unpacked(mesh_desc_pool_t *p, const Google__Protobuf__FileDescriptorProto *fd)
{
    size_t len = google__protobuf__file_descriptor_proto__get_packed_size(fd);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return -1;
    google__protobuf__file_descriptor_proto__pack(fd, buf);
    int rc = mesh_desc_pool_add_file(p, buf, len);
    free(buf);
    return rc;
}

/* Builds p's model for names; when that fails, for the services that resolve on their own. */
static void build_model(node_gw_t *g, mesh_desc_pool_t *p, const char **names, size_t n)
{
    if (mesh_desc_pool_build(p, names, n) == 0)
        return;
    size_t good = 0;
    for (size_t i = 0; i < n; i++) {
        if (mesh_desc_pool_build(p, &names[i], 1) == 0)
            names[good++] = names[i];
        else
            mesh_warn(g->who, "service %s left out of the API: %s", names[i],
                      mesh_desc_pool_error(p));
    }
    if (mesh_desc_pool_build(p, names, good) < 0)
        (void)mesh_desc_pool_build(p, names, 0);
}

/* The static set merged with learned (see the header). A new pool, or NULL (logged). */
static mesh_desc_pool_t *merge(node_gw_t *g, const mesh_desc_pool_t *learned)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    size_t n_learned = learned ? mesh_desc_pool_service_count(learned) : 0;
    const char **names = calloc(g->n_set_services + n_learned + 1, sizeof(*names));
    if (!p || !names || mesh_desc_pool_add_set(p, g->set_data, g->set_len) < 0) {
        mesh_error(g->who, "cannot merge the schemas: %s",
                   p ? mesh_desc_pool_error(p) : "out of memory");
        mesh_desc_pool_free(p);
        free(names);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < g->n_set_services; i++)
        names[n++] = g->set_services[i];
    for (size_t i = 0; learned && i < mesh_desc_pool_file_count(learned); i++) {
        const Google__Protobuf__FileDescriptorProto *fd = mesh_desc_pool_file(learned, i);
        if (!mesh_desc_pool_find_file(p, fd->name) && !defines_set_service(g, fd) &&
            add_unpacked(p, fd) < 0)
            mesh_warn(g->who, "learned file %s left out: %s", fd->name, mesh_desc_pool_error(p));
    }
    char over[512];
    size_t ol = 0;
    over[0] = '\0';
    g->overridden = 0;
    for (size_t i = 0; i < n_learned; i++) {
        const char *name = mesh_desc_pool_service(learned, i)->name;
        if (!set_has_service(g, name)) {
            names[n++] = name;
            continue;
        }
        g->overridden++;
        if (ol + 2 < sizeof(over)) {
            int w = snprintf(over + ol, sizeof(over) - ol, "%s%s", ol ? ", " : "", name);
            if (w > 0)
                ol += (size_t)w < sizeof(over) - ol ? (size_t)w : sizeof(over) - ol - 1;
        }
    }
    if (g->overridden)
        mesh_info(g->who,
                  "--descriptor-set %s describes %s: its schema is used, the one learned by "
                  "reflection is ignored",
                  g->set_path, over);
    build_model(g, p, names, n);
    free(names);
    return p;
}

void node_gw_publish(node_gw_t *g, const mesh_desc_pool_t *learned)
{
    mesh_desc_pool_t *merged = NULL;
    const mesh_desc_pool_t *pool = learned;
    if (g->set_data) {
        merged = merge(g, learned);
        if (!merged)
            return;
        pool = merged;
    }
    if (!pool)
        return;
    char err[512];
    uint64_t gen = g->generation + 1;
    gw_api_t *api = gw_api_build(pool, gen, on_route_error, g, err, sizeof(err));
    mesh_desc_pool_free(merged);
    if (!api) {
        mesh_error(g->who, "API schema generation %llu not usable: %s", (unsigned long long)gen,
                   err);
        return;
    }
    g->generation = gen;
    g->methods = gw_api_method_count(api);
    g->routes = gw_routes_count(gw_api_routes(api));
    mesh_info(g->who, "API generation %llu: %zu methods, %zu HTTP routes", (unsigned long long)gen,
              g->methods, g->routes);
    mesh_node_frontend_publish(g->node, api_ref, api);
    gw_api_unref(api);
}

int node_gw_load_set(node_gw_t *g, const char *path)
{
    mesh_desc_pool_t *pool = mesh_desc_pool_new();
    if (!pool)
        return -1;
    int rc = -1;
    char why[600];
    g->set_data = (uint8_t *)mesh_file_read(path, 64u << 20, 0, &g->set_len, why, sizeof(why));
    if (!g->set_data) {
        mesh_error(g->who, "descriptor-set %s", why);
    } else if (mesh_desc_pool_add_set(pool, g->set_data, g->set_len) < 0 ||
               mesh_desc_pool_build(pool, NULL, 0) < 0) {
        mesh_error(g->who, "descriptor-set %s: %s", path, mesh_desc_pool_error(pool));
    } else {
        size_t n = mesh_desc_pool_service_count(pool);
        g->set_services = calloc(n ? n : 1, sizeof(char *));
        g->set_path = strdup(path);
        rc = g->set_services && g->set_path ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!(g->set_services[g->n_set_services++] =
                      strdup(mesh_desc_pool_service(pool, i)->name)))
                rc = -1;
    }
    mesh_desc_pool_free(pool);
    if (rc != 0) {
        free(g->set_data);
        g->set_data = NULL;
        return -1;
    }
    node_gw_publish(g, NULL);
    return 0;
}

json_t *node_gw_status_json(const node_gw_t *g)
{
    json_t *o = json_pack("{s:I,s:I,s:I}", "generation", (json_int_t)g->generation, "methods",
                          (json_int_t)g->methods, "http_routes", (json_int_t)g->routes);
    if (!o || !g->set_data)
        return o;
    json_t *svcs = json_array();
    for (size_t i = 0; svcs && i < g->n_set_services; i++)
        json_array_append_new(svcs, json_string(g->set_services[i]));
    json_t *set = json_pack("{s:s,s:o,s:I}", "file", g->set_path, "services",
                            svcs ? svcs : json_array(), "overrides", (json_int_t)g->overridden);
    if (set)
        json_object_set_new(o, "descriptor_set", set);
    return o;
}

void node_gw_destroy(node_gw_t *g)
{
    for (size_t i = 0; i < g->n_set_services; i++)
        free(g->set_services[i]);
    free(g->set_services);
    free(g->set_data);
    free(g->set_path);
    g->set_services = NULL;
    g->set_data = NULL;
    g->set_path = NULL;
    g->n_set_services = 0;
}
