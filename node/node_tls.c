/*
 * node/node_tls.c: the node's TLS contexts from the tls.* options, their reloads and metrics
 * (see node/node_tls.h).
 */
#include "node/node_tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_pem.h"
#include "ca/peer_identity.h"
#include "common/addr.h"
#include "common/log.h"
#include "node/ca_options.h"
#include "node/tls_options.h"
#include "transport/tls_holder.h"

#define ACTOR "tls"

struct node_tls {
    mesh_tls_holder_t *server;   /* client-facing listener; NULL: none */
    mesh_tls_holder_t *upstream; /* upstream connections; NULL: h2c */
    mesh_tls_holder_t *http;     /* HTTP listeners (ALPN h2,http/1.1), made when asked for */
    mesh_tls_holder_t *admin;    /* the admin API (ALPN http/1.1), made when asked for */
    mesh_tls_holder_t *mesh;     /* our identity as a client, for meshd nodes serving mTLS */
    int mesh_served;             /* --listen serves TLS with our mesh identity (registered so) */
    int server_waiting;          /* server's files may come later (the identity's) */
    mesh_tls_conf_t server_conf; /* what server was made from (strings: the options') */
    char listen_host[256];       /* tls.listen's host; "" when --listen is TLS */
    int listen_port;
    char *upstream_name;
    int upstream_mtls; /* the upstream context has a client certificate */
    uint64_t poll_ms;
    uint64_t reload_failures;
    uint64_t
        other_reloads; /* reloads of holders that are not the node's (node_tls_reload_holder) */
    char id_cert[4096], id_key[4096], id_ca[4096]; /* the identity's files; "" when none */
};

static int client_auth_of(const char *v)
{
    if (v && strcmp(v, "require") == 0)
        return MESH_TLS_CLIENT_AUTH_REQUIRE;
    if (v && strcmp(v, "optional") == 0)
        return MESH_TLS_CLIENT_AUTH_OPTIONAL;
    return MESH_TLS_CLIENT_AUTH_NONE;
}

static int set(const char *s)
{
    return s && *s;
}

/* A whole small file as a NUL-terminated string, or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = malloc(65537);
    size_t n = b ? fread(b, 1, 65536, f) : 0;
    int bad = !b || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* Whether the certificate in path proves a meshd identity (a SPIFFE node ID, ca/peer_identity.h).
 */
static int cert_is_identity(const char *path)
{
    size_t n = 0;
    char *pem = slurp(path, &n);
    const mesh_crypto_t *C = pem ? ca_crypto(NULL, 0) : NULL;
    X509 *x = C ? ca_pem_read_x509(pem, n) : NULL;
    int yes = 0;
    if (x) {
        ca_peer_identity_t id;
        char err[256];
        yes = ca_peer_identity_from_x509(x, NULL, &id, err, sizeof(err)) == 0;
        if (yes)
            ca_peer_identity_destroy(&id);
        C->x509_free(x);
    }
    if (C)
        C->err_clear_error();
    free(pem);
    return yes;
}

/* The node's mesh identity, if it has one and tls.mesh is on: --identity-dir's files (which the
 * identity actor may not have written yet: 1 in *waiting), else --tls-cert with --tls-ca when the
 * certificate names a SPIFFE node ID. */
static int find_identity(const mesh_config_t *cfg, node_tls_t *t, int *waiting)
{
    const mesh_tls_options_t *o = mesh_tls_options(cfg);
    const mesh_ca_options_t *ca = mesh_ca_options(cfg);
    *waiting = 0;
    if (!o->mesh)
        return 0;
    if (set(ca->identity_dir)) {
        snprintf(t->id_cert, sizeof(t->id_cert), "%s/cert.pem", ca->identity_dir);
        snprintf(t->id_key, sizeof(t->id_key), "%s/key.pem", ca->identity_dir);
        snprintf(t->id_ca, sizeof(t->id_ca), "%s/ca.pem", ca->identity_dir);
        *waiting = 1;
        return 1;
    }
    if (set(o->cert) && set(o->key) && set(o->ca) && cert_is_identity(o->cert)) {
        snprintf(t->id_cert, sizeof(t->id_cert), "%s", o->cert);
        snprintf(t->id_key, sizeof(t->id_key), "%s", o->key);
        snprintf(t->id_ca, sizeof(t->id_ca), "%s", o->ca);
        return 1;
    }
    return 0;
}

int node_tls_new(const mesh_config_t *cfg, node_tls_t **out)
{
    const mesh_tls_options_t *o = mesh_tls_options(cfg);
    *out = NULL;
    node_tls_t *t = calloc(1, sizeof(*t));
    if (!t) {
        mesh_error(ACTOR, "out of memory");
        return -1;
    }
    int waiting = 0;
    int identity = find_identity(cfg, t, &waiting);
    if (set(o->listen) && !set(o->cert) && !identity) {
        mesh_error(ACTOR, "tls-listen: needs --tls-cert and --tls-key (or an identity: "
                          "--identity-dir)");
        free(t);
        return -1;
    }
    if (client_auth_of(o->client_auth) != MESH_TLS_CLIENT_AUTH_NONE && !set(o->ca) &&
        !(identity && !set(o->cert))) {
        mesh_error(ACTOR, "tls-client-auth: needs --tls-ca (the CA of the client certificates), "
                          "or an identity (--identity-dir)");
        free(t);
        return -1;
    }
    if (!set(o->cert) && !set(o->upstream_ca) && !identity) {
        free(t);
        return 0; /* no TLS: libssl is never loaded */
    }
    t->poll_ms = (uint64_t)o->reload_ms;
    char err[768];
    if (set(o->listen) &&
        mesh_addr_split(o->listen, t->listen_host, sizeof(t->listen_host), &t->listen_port) != 0) {
        mesh_error(ACTOR, "tls-listen: '%s' is not HOST:PORT", o->listen);
        node_tls_free(t);
        return -1;
    }
    if (set(o->cert) || identity) {
        /* --tls-cert, else the identity (client certificates asked for and verified against the
         * mesh CA, not required: callers from outside the mesh have none) */
        mesh_tls_conf_t c = {.cert_file = set(o->cert) ? o->cert : t->id_cert,
                             .key_file = set(o->cert) ? o->key : t->id_key,
                             .ca_file = set(o->cert) ? o->ca : t->id_ca,
                             .client_auth = set(o->cert) ? client_auth_of(o->client_auth)
                                                         : MESH_TLS_CLIENT_AUTH_OPTIONAL,
                             .alpn = "h2"};
        if (!set(o->cert) && client_auth_of(o->client_auth) == MESH_TLS_CLIENT_AUTH_REQUIRE)
            c.client_auth = MESH_TLS_CLIENT_AUTH_REQUIRE;
        t->server_conf = c;
        t->server_waiting = !set(o->cert) && waiting;
        t->server = t->server_waiting ? mesh_tls_holder_new_waiting(&c, 1, err, sizeof(err))
                                      : mesh_tls_holder_new(&c, 1, err, sizeof(err));
        if (!t->server) {
            mesh_error(ACTOR, "TLS listener: %s", err);
            node_tls_free(t);
            return -1;
        }
        t->mesh_served = identity && !t->listen_host[0];
        mesh_info(ACTOR, "TLS listener with %s %s%s%s%s", set(o->cert) ? "certificate" : "identity",
                  c.cert_file,
                  c.client_auth == MESH_TLS_CLIENT_AUTH_REQUIRE ? ", client certificates required"
                  : c.client_auth == MESH_TLS_CLIENT_AUTH_OPTIONAL
                      ? ", client certificates verified"
                      : "",
                  t->mesh_served ? ", registered as a mesh TLS port" : "",
                  t->poll_ms ? "" : " (reloaded on SIGHUP only)");
    }
    if (identity) {
        mesh_tls_conf_t c = {
            .cert_file = t->id_cert, .key_file = t->id_key, .ca_file = t->id_ca, .alpn = "h2"};
        t->mesh = waiting ? mesh_tls_holder_new_waiting(&c, 0, err, sizeof(err))
                          : mesh_tls_holder_new(&c, 0, err, sizeof(err));
        if (!t->mesh) {
            mesh_error(ACTOR, "mesh TLS: %s", err);
            node_tls_free(t);
            return -1;
        }
        mesh_tls_ctx_t *now = mesh_tls_holder_get(t->mesh);
        if (now)
            mesh_info(ACTOR, "calls to meshd nodes serving mTLS use the identity %s", t->id_cert);
        else
            mesh_info(ACTOR,
                      "no identity in %s yet (%s): calls to meshd nodes serving mTLS wait for it",
                      t->id_cert, err);
        mesh_tls_ctx_unref(now);
    }
    if (set(o->upstream_ca)) {
        mesh_tls_conf_t c = {.cert_file = o->upstream_cert,
                             .key_file = o->upstream_key,
                             .ca_file = o->upstream_ca,
                             .alpn = "h2"};
        t->upstream = mesh_tls_holder_new(&c, 0, err, sizeof(err));
        if (!t->upstream) {
            mesh_error(ACTOR, "upstream TLS: %s", err);
            node_tls_free(t);
            return -1;
        }
        if (set(o->upstream_name))
            t->upstream_name = strdup(o->upstream_name);
        t->upstream_mtls = set(o->upstream_cert);
        mesh_info(ACTOR, "upstream calls over TLS, servers verified against %s%s%s", o->upstream_ca,
                  set(o->upstream_name) ? " as " : "",
                  set(o->upstream_name) ? o->upstream_name : "");
    }
    *out = t;
    return 0;
}

int node_tls_upstream_mtls(const node_tls_t *t)
{
    return t && t->upstream_mtls;
}

int node_tls_upstream(const node_tls_t *t)
{
    return t && t->upstream;
}

int node_tls_mesh_client(const node_tls_t *t)
{
    return t && t->mesh;
}

void node_tls_free(node_tls_t *t)
{
    if (!t)
        return;
    mesh_tls_holder_free(t->server);
    mesh_tls_holder_free(t->upstream);
    mesh_tls_holder_free(t->http);
    mesh_tls_holder_free(t->admin);
    mesh_tls_holder_free(t->mesh);
    free(t->upstream_name);
    free(t);
}

void node_tls_engine_config(node_tls_t *t, mesh_proxy_config_t *pc, int port)
{
    if (!t)
        return;
    pc->tls = t->server;
    pc->tls_listen_host = t->server && t->listen_host[0] ? t->listen_host : NULL;
    pc->tls_listen_port = port ? port : t->listen_port;
    pc->upstream_tls = t->upstream;
    pc->upstream_tls_name = t->upstream_name;
    pc->mesh_tls = t->mesh;
}

/* A holder on the listener's files with another ALPN list, made once. */
static mesh_tls_holder_t *variant(node_tls_t *t, mesh_tls_holder_t **slot, const char *alpn,
                                  int same_client_auth, const char *what)
{
    if (!t || !t->server)
        return NULL;
    if (!*slot) {
        mesh_tls_conf_t c = t->server_conf;
        c.alpn = alpn;
        if (!same_client_auth)
            c.client_auth = MESH_TLS_CLIENT_AUTH_NONE;
        char err[768];
        *slot = t->server_waiting ? mesh_tls_holder_new_waiting(&c, 1, err, sizeof(err))
                                  : mesh_tls_holder_new(&c, 1, err, sizeof(err));
        if (!*slot)
            mesh_error(ACTOR, "%s: %s", what, err);
    }
    return *slot;
}

mesh_tls_holder_t *node_tls_http(node_tls_t *t)
{
    return variant(t, t ? &t->http : NULL, "h2,http/1.1", 1, "HTTP listener");
}

mesh_tls_holder_t *node_tls_admin(node_tls_t *t)
{
    /* No client certificates: the admin API has its token, and the kubelet's probes have none. */
    return variant(t, t ? &t->admin : NULL, "http/1.1", 0, "admin API");
}

/* Reloads h when its files changed (or force); logs and counts what happened. 1 when new
 * certificates are in use. t may be NULL (nothing counted). */
static int reload_one(node_tls_t *t, mesh_tls_holder_t *h, const char *what, int force)
{
    if (!h)
        return 0;
    char err[768];
    int rv = mesh_tls_holder_reload(h, force, err, sizeof(err));
    if (rv > 0) {
        mesh_info(ACTOR, "%s: certificates reloaded from %s (new handshakes use them)", what,
                  mesh_tls_holder_desc(h));
    } else if (rv < 0) {
        if (t)
            t->reload_failures++;
        mesh_error(ACTOR, "%s: reload refused, the certificates in use stay: %s", what, err);
    }
    return rv > 0;
}

void node_tls_reload_holder(node_tls_t *t, mesh_tls_holder_t *h, const char *what, int force)
{
    if (reload_one(t, h, what, force) && t)
        t->other_reloads++;
}

uint64_t node_tls_poll_ms_of(const mesh_config_t *cfg)
{
    int64_t ms = mesh_tls_options(cfg)->reload_ms;
    return ms > 0 ? (uint64_t)ms : 0;
}

void node_tls_reload(node_tls_t *t, int force)
{
    if (!t)
        return;
    reload_one(t, t->server, "TLS listener", force);
    reload_one(t, t->upstream, "upstream TLS", force);
    reload_one(t, t->http, "HTTP listener", force);
    reload_one(t, t->admin, "admin API", force);
    reload_one(t, t->mesh, "mesh TLS (client)", force);
}

int node_tls_mesh_served(const node_tls_t *t)
{
    return t && t->mesh_served;
}

uint64_t node_tls_handshake_timeout(const mesh_config_t *cfg)
{
    int64_t ms = mesh_tls_options(cfg)->handshake_ms;
    return ms > 0 ? (uint64_t)ms : UINT64_MAX;
}

uint64_t node_tls_poll_ms(const node_tls_t *t)
{
    return t ? t->poll_ms : 0;
}

int node_tls_listener(const node_tls_t *t)
{
    return t && t->server;
}

const char *node_tls_listen_host(const node_tls_t *t)
{
    return t && t->server && t->listen_host[0] ? t->listen_host : NULL;
}

void node_tls_metrics(void *ud, prom_t *p)
{
    node_tls_t *t = ud;
    uint64_t counts[MESH_TLS_FAIL_N];
    mesh_tls_fail_counts(counts);
    prom_family(p, "meshd_tls_handshake_failures_total", PROM_COUNTER,
                "TLS handshakes that failed, by reason (verify, no_peer_certificate, peer_alert, "
                "protocol, alpn, other)");
    for (int i = 0; i < MESH_TLS_FAIL_N; i++) {
        prom_label_t l = {"reason", mesh_tls_fail_name((mesh_tls_fail_t)i)};
        prom_sample_u64(p, "meshd_tls_handshake_failures_total", &l, 1, counts[i]);
    }
    uint64_t hs[2][2];
    mesh_tls_handshake_counts(hs);
    prom_family(p, "meshd_tls_handshakes_total", PROM_COUNTER,
                "TLS handshakes that finished, by side (server: our listeners; client: our "
                "upstream connections) and whether they resumed a session");
    for (int side = 0; side < 2; side++) {
        for (int r = 0; r < 2; r++) {
            prom_label_t l[2] = {{"side", side ? "server" : "client"},
                                 {"resumed", r ? "true" : "false"}};
            prom_sample_u64(p, "meshd_tls_handshakes_total", l, 2, hs[side][r]);
        }
    }
    uint64_t reloads = (t->server ? mesh_tls_holder_reloads(t->server) : 0) +
                       (t->upstream ? mesh_tls_holder_reloads(t->upstream) : 0) +
                       (t->http ? mesh_tls_holder_reloads(t->http) : 0) +
                       (t->admin ? mesh_tls_holder_reloads(t->admin) : 0) +
                       (t->mesh ? mesh_tls_holder_reloads(t->mesh) : 0) + t->other_reloads;
    prom_one(p, "meshd_tls_reloads_total", PROM_COUNTER,
             "certificate reloads that put new certificates in use", (double)reloads);
    prom_one(p, "meshd_tls_reload_failures_total", PROM_COUNTER,
             "certificate reloads refused (the certificates in use stayed)",
             (double)t->reload_failures);
}
