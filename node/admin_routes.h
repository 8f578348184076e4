/*
 * node/admin_routes.h: the records of the admin API's /v1/routes listing, and its JSON.
 *
 * A listing is a set of records, one per (service, instance address), each saying where the
 * instance came from (source: static, etcd, gossip) and whether calls go to it (state:
 * routable, owner_dead, ejected). The node puts in its routing table (every instance of the
 * table the workers route with is routable unless a later source says otherwise); other
 * sources (node/admin.h mesh_admin_add_routes_source) then add records or change them. The
 * JSON is sorted by service, then address, whatever order the records came in:
 *
 *   {"etcd": "connected" | "degraded" | "off",
 *    "services": [{"service": "pkg.Svc", "methods": [...] | null,
 *                  "upstream_tls": "off" | {"ca", "server_name", "cert", "key"} | null,
 *                  "instances": [{"address", "node", "zone", "weight", "version",
 *                                 "methods": [...] | null, "source", "state",
 *                                 "tls": "mtls" | null, "transport": "h2c" | "tls" | "mtls"}]}]}
 *
 * node, zone and version are null when unknown; methods null means "every method" (an
 * instance that does not list its methods). A service's methods are the union of its
 * instances' lists, null when one instance serves every method. upstream_tls is the service's
 * own `routes:` setting (null: none, the node's apply); an instance's tls is what its record
 * says ("mtls": a meshd mesh port serving TLS with a mesh identity); transport is how this node
 * calls it, decided as the upstream pool decides (mesh_admin_route_transport).
 *
 * Strings are copied into the listing (a listing lives for one request); methods are copied.
 */
#ifndef MESH_ADMIN_ROUTES_H
#define MESH_ADMIN_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "registry/route_table.h"
#include "transport/svc_policy.h"

struct json_t;

/** Whether calls go to an instance. */
typedef enum {
    MESH_ADMIN_ROUTE_ROUTABLE = 0,
    MESH_ADMIN_ROUTE_OWNER_DEAD = 1, /* its node is dead or left (gossip) */
    MESH_ADMIN_ROUTE_EJECTED = 2,    /* outlier detection or the breaker took it out */
} mesh_admin_route_state_t;

/** One record; strings may be NULL or "" for unknown. */
typedef struct mesh_admin_route {
    const char *service;
    const char *addr;
    const char *node;
    const char *zone;
    const char *version;
    const char *const *methods; /* NULL: every method */
    size_t n_methods;
    uint32_t weight;
    mesh_route_source_t source;
    mesh_admin_route_state_t state;
    int mesh_tls; /* its record says "tls":"mtls" */
} mesh_admin_route_t;

/** What the node's upstream TLS settings are, for "transport" and "upstream_tls". */
typedef struct mesh_admin_tls_view {
    int mesh;          /* an identity (--tls-mesh): "tls":"mtls" instances are called over mTLS */
    int upstream;      /* --tls-upstream-ca: other instances are called over TLS */
    int upstream_mtls; /* ... with a client certificate (--tls-upstream-cert) */
    /** The service's own settings (routes: upstream-tls), or NULL; may be NULL itself. */
    const mesh_svc_policy_t *(*svc)(void *ud, const char *service);
    void *ud;
} mesh_admin_tls_view_t;

/** How this node calls an instance ("h2c", "tls" or "mtls"), in the upstream pool's order: the
 *  service's own upstream-tls (sp, may be NULL), then mesh TLS for an instance whose record
 *  says so (when the node has an identity), then --tls-upstream-ca, else h2c. v NULL: h2c
 *  unless sp says otherwise. */
const char *mesh_admin_route_transport(const mesh_admin_tls_view_t *v, const mesh_svc_policy_t *sp,
                                       int mesh_tls);

typedef struct mesh_admin_routes mesh_admin_routes_t;

/** An empty listing; NULL on OOM. */
mesh_admin_routes_t *mesh_admin_routes_new(void);
void mesh_admin_routes_free(mesh_admin_routes_t *l);

/** Adds r (copied), or replaces the record with the same service and address. 0 or -1. */
int mesh_admin_routes_put(mesh_admin_routes_t *l, const mesh_admin_route_t *r);

/** The record of service at addr (its fields may be changed in place, strings excepted), or
 *  NULL. */
mesh_admin_route_t *mesh_admin_routes_get(mesh_admin_routes_t *l, const char *service,
                                          const char *addr);

/** Number of records. */
size_t mesh_admin_routes_count(const mesh_admin_routes_t *l);

/** Puts every instance of table t (may be NULL) as routable. 0 or -1. */
int mesh_admin_routes_add_table(mesh_admin_routes_t *l, const mesh_routes_t *t);

/** The names of a source and a state as the JSON says them. */
const char *mesh_admin_route_source_name(mesh_route_source_t s);
const char *mesh_admin_route_state_name(mesh_admin_route_state_t s);

/** The listing's JSON (a new tree, see above) with etcd ("connected", "degraded", "off") and the
 *  node's TLS settings (NULL: none); NULL on OOM. */
struct json_t *mesh_admin_routes_json(const mesh_admin_routes_t *l, const char *etcd,
                                      const mesh_admin_tls_view_t *tls);

#endif
