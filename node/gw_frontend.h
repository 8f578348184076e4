/*
 * node/gw_frontend.h: a node's HTTP/JSON front end, shared by `meshd gateway` and the sidecar's
 * --http-listen: the gateway front end (gateway/gw_front.h) installed on every worker through
 * the node's front-end hook (node/node.h), and the one function that turns a descriptor pool
 * into an API bundle (gateway/gw_api.h) for every worker.
 *
 * Schemas come from up to two sources. A static one, --descriptor-set FILE (meshd gateway:
 * node_gw_load_set), and a learned one: the gateway's descriptor cache (gateway/schema_cache.h)
 * or the sidecar actor's reflection pool, handed in with node_gw_publish whenever it changes.
 * With both, the bundle is built from their merge: every file of the set, then the learned
 * files of other names; a service the set describes is taken from the set, and a learned
 * schema of it is ignored (logged, with the services it concerns). Every bundle gets the next
 * generation; workers swap to it by message, requests in flight keep theirs.
 *
 * Control loop (or the main thread before the node runs), like the node's other setters.
 */
#ifndef MESH_NODE_GW_FRONTEND_H
#define MESH_NODE_GW_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "gateway/gw_front.h"
#include "grpc/descriptors.h"
#include "node/node.h"

struct json_t;

/** One node's HTTP/JSON front end; lives as long as the node. */
typedef struct node_gw {
    mesh_node_t *node;
    const char *who; /* log component: "gateway" or "sidecar" */
    gw_front_config_t fcfg;
    char http_host[256];
    int http_port;
    uint64_t generation; /* of the last bundle published; 0: none yet */
    /* the static source (--descriptor-set): its bytes and the services it describes */
    char *set_path;
    uint8_t *set_data;
    size_t set_len;
    char **set_services;
    size_t n_set_services;
    /* the last bundle, for the admin API */
    size_t methods, routes, overridden;
} node_gw_t;

/**
 * Prepares g for node: the HTTP address listen ("HOST:PORT"; port 0 picks one shared by every
 * worker) and the gateway options of cfg (gateway/gw_options.h: deadlines, body limit), and
 * installs the front end on the node (call before mesh_node_listen). who names the log
 * component. 0, or -1 when listen is not HOST:PORT (logged).
 */
int node_gw_init(node_gw_t *g, mesh_node_t *node, const mesh_config_t *cfg, const char *listen,
                 const char *who);

/** The HTTP port listened on (after mesh_node_listen). */
int node_gw_port(const node_gw_t *g);

/**
 * Loads --descriptor-set FILE as the static source and publishes its API. 0, or -1 when the
 * file cannot be read or its services not modelled (logged).
 */
int node_gw_load_set(node_gw_t *g, const char *path);

/**
 * Publishes the API of learned (a built pool; NULL: nothing learned) merged with the static
 * source, as the next generation, to every worker. learned is only read.
 */
void node_gw_publish(node_gw_t *g, const mesh_desc_pool_t *learned);

/** {"generation":N,"methods":M,"http_routes":R,"descriptor_set":{"file":..,"services":[..],
 *  "overrides":K}} (the set only when there is one). A new reference, NULL when out of memory. */
struct json_t *node_gw_status_json(const node_gw_t *g);

/** Frees what g holds (after the node ran). */
void node_gw_destroy(node_gw_t *g);

#endif
