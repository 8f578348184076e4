/*
 * node/admin.h: the node's admin HTTP API (--admin-listen): a JSON server on the control loop
 * that subsystems add their endpoints to.
 *
 * One mesh_admin_t per node, created by the node (node/node.h mesh_node_admin_listen) on the
 * control loop, where the node actor, the registry actor and the other control actors live:
 * handlers run on that loop, between messages, and may read the state of any control-loop
 * actor directly (as the sidecar's probes read the sidecar's). A handler must not block: it
 * builds its answer from memory and returns.
 *
 * Endpoints today (schemas in docs/admin.md):
 *   GET /v1/node     the node: name, roles, version, pid, uptime, addresses, etcd, counts
 *   GET /v1/routes   the routing table the workers use, one record per (service, instance)
 *   GET /v1/members  the gossip membership: served only once the gossip layer registered
 *                    its handler with mesh_admin_set_members(); until then 404 with
 *                    {"error":"gossip is not enabled on this node"}
 *   GET /metrics     Prometheus text (node/admin_metrics.h): the process families, then every
 *                    collector added with mesh_admin_add_metrics()
 *   GET /            the web page (node/admin_page.h)
 * Subsystems add endpoints with mesh_admin_add (any content type) or mesh_admin_add_json.
 *
 * JSON is built with jansson and streamed into the answer by json_dump_callback (no second
 * copy of the text). A tree for 10k instances is a few MB for the length of one request;
 * a hand-written streaming writer would save that transient memory at the price of a second
 * way of writing JSON, which the project avoids (one way: the JSON library).
 *
 * Gossip's hooks: the members endpoint (mesh_admin_set_members) and route annotations
 * (mesh_admin_add_routes_source in node/admin_routes.h): gossip-sourced instances arrive in
 * the routing table itself (MESH_ROUTE_GOSSIP), and a source can add the instances the table
 * dropped (owner dead) or mark others (ejected).
 */
#ifndef MESH_ADMIN_H
#define MESH_ADMIN_H

#include <uv.h>

#include "common/prom.h"
#include "node/admin_routes.h"
#include "transport/http1_server.h"

struct json_t;

/** The path of the gossip membership endpoint. */
#define MESH_ADMIN_MEMBERS_PATH "/v1/members"

typedef struct mesh_admin mesh_admin_t;

/** Builds a JSON answer: returns a new tree (the admin writes and frees it) and sets *status
 *  (preset to 200); NULL answers 500. On the control loop. */
typedef struct json_t *(*mesh_admin_json_fn)(void *ud, const h1_req_t *req, int *status);

/** A new admin server on loop (the control loop), not yet listening; NULL on OOM. */
mesh_admin_t *mesh_admin_new(uv_loop_t *loop);

/**
 * Listens on spec: "HOST:PORT", ":PORT" or "PORT" (loopback; node/admin_options.h). Returns 0,
 * or -1 with the reason logged ("cannot listen on ...: address already in use").
 */
int mesh_admin_listen(mesh_admin_t *a, const char *spec);

struct mesh_tls_holder;

/** Serves the API over TLS with the holder's current context (--admin-tls), a handshake bounded
 *  by handshake_timeout_ms (--tls-handshake-timeout; UINT64_MAX: none); before listening. */
void mesh_admin_set_tls(mesh_admin_t *a, struct mesh_tls_holder *tls,
                        uint64_t handshake_timeout_ms);

/**
 * Requires "Authorization: Bearer <token>" on every endpoint but /livez and /readyz (compared
 * in constant time; others get 401 {"error": ...} with WWW-Authenticate: Bearer). token NULL
 * lifts the requirement. Copied. 0, or -1 when too long.
 */
int mesh_admin_set_token(mesh_admin_t *a, const char *token);

/** The bound address as "host:port" (empty before mesh_admin_listen succeeded). */
const char *mesh_admin_address(const mesh_admin_t *a);

/** The bound port, or -1. */
int mesh_admin_port(const mesh_admin_t *a);

/** Adds an endpoint with a raw handler (any content type: h1_body_set_type). 0, or -1 when
 *  the path is taken. */
int mesh_admin_add(mesh_admin_t *a, const char *path, h1_handler_fn fn, void *ud);

/**
 * Adds an endpoint that answers POST as well as GET (h1_server_add_post): the mesh CA's
 * POST /v1/ca/sign. own_auth nonzero exempts it from the admin token (it checks credentials of
 * its own, e.g. bootstrap tokens, in the same Authorization header). 0, or -1.
 */
int mesh_admin_add_post(mesh_admin_t *a, const char *path, h1_handler_fn fn, void *ud,
                        int own_auth);

/** Adds a JSON endpoint. 0, or -1 when the path is taken. */
int mesh_admin_add_json(mesh_admin_t *a, const char *path, mesh_admin_json_fn fn, void *ud);

/** Runs the JSON endpoint of path as a GET would (the web page renders from them): its new
 *  tree, with *status set, or NULL when path has no JSON endpoint or the handler failed. */
struct json_t *mesh_admin_json_of(mesh_admin_t *a, const char *path, const h1_req_t *req,
                                  int *status);

/** Removes an endpoint (an actor that stops or restarts removes what it added). 0 or -1. */
int mesh_admin_remove(mesh_admin_t *a, const char *path);

/**
 * The gossip layer's hook: serves GET /v1/members with fn, whose answer is
 * {"self": NODE, "members": [{"node","addr","state","incarnation","instances","since"}]}
 * (docs/admin.md). fn NULL puts back the 404 "gossip is not enabled on this node" (call it
 * from the gossip actor's stop). 0 or -1.
 */
int mesh_admin_set_members(mesh_admin_t *a, mesh_admin_json_fn fn, void *ud);

/** A subsystem's part of /v1/node: a new JSON value (NULL: null). */
typedef struct json_t *(*mesh_admin_node_fn)(void *ud);

/**
 * Adds (fn set) or removes (fn NULL) the member `name` of /v1/node, which is null until a
 * subsystem sets it (the gossip layer sets "gossip"). At most 8 names. 0 or -1.
 */
int mesh_admin_set_node_section(mesh_admin_t *a, const char *name, mesh_admin_node_fn fn, void *ud);

/** Sets every section on obj (the /v1/node object): null for names added without fn. */
void mesh_admin_node_sections(mesh_admin_t *a, struct json_t *obj);

/** Fills a route listing for /v1/routes (node/admin_routes.h). */
typedef void (*mesh_admin_routes_fn)(void *ud, mesh_admin_routes_t *list);

/**
 * Adds a source of the /v1/routes listing. Sources run in the order they were added, each on
 * the listing the previous ones filled: the node adds its routing table first; the gossip
 * layer adds a source after it that marks instances whose owner SWIM declared dead
 * (mesh_admin_routes_get(...)->state = MESH_ADMIN_ROUTE_OWNER_DEAD, or mesh_admin_routes_put
 * for an instance the table no longer holds). 0, or -1 on OOM.
 */
int mesh_admin_add_routes_source(mesh_admin_t *a, mesh_admin_routes_fn fn, void *ud);

/** Removes a source added with the same fn and ud. 0, or -1 when absent. */
int mesh_admin_remove_routes_source(mesh_admin_t *a, mesh_admin_routes_fn fn, void *ud);

/** Runs every routes source on list, in order. */
void mesh_admin_collect_routes(mesh_admin_t *a, mesh_admin_routes_t *list);

/** Writes some metric families into p (GET /metrics): a collector owns its families' names
 *  (every sample of a family right after its header, common/prom.h). On the control loop;
 *  reads state, never blocks. */
typedef void (*mesh_admin_metrics_fn)(void *ud, prom_t *p);

/**
 * Adds a collector of GET /metrics (node/admin_metrics.h). Collectors run in the order they
 * were added, after the process families. 0, or -1 on OOM.
 */
int mesh_admin_add_metrics(mesh_admin_t *a, mesh_admin_metrics_fn fn, void *ud);

/** Removes a collector added with the same fn and ud (in the actor's stop). 0, or -1. */
int mesh_admin_remove_metrics(mesh_admin_t *a, mesh_admin_metrics_fn fn, void *ud);

/** Runs every collector on p, in order. */
void mesh_admin_collect_metrics(mesh_admin_t *a, prom_t *p);

/** Closes the listener and the connections, and frees the admin once they are closed (on the
 *  loop; the loop must run for that). NULL is ignored. */
void mesh_admin_close(mesh_admin_t *a);

#endif
