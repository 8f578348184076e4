/*
 * node/reflect_entry.c: the descriptor cache's pools become reflection indexes for the workers
 * (node/reflect_entry.h).
 */
#include "node/reflect_entry.h"

#include <jansson.h>

#include "common/log.h"
#include "grpc/reflect_server.h"
#include "node/admin.h"
#include "node/reflect_options.h"

#define ACTOR "reflect"

typedef struct {
    mesh_rsrv_index_t *ix;
    int failed;
} unf_ctx_t;

static void mark_unfetchable(void *ud, const char *service)
{
    unf_ctx_t *u = ud;
    if (mesh_rsrv_index_add_unfetchable(u->ix, service,
                                        "its instances serve no reflection (v1 or v1alpha)") != 0)
        u->failed = 1;
}

void node_reflect_entry_publish(node_reflect_entry_t *e, const gw_cache_t *c,
                                const mesh_desc_pool_t *merged, uint64_t generation)
{
    mesh_rsrv_index_t *ix = mesh_rsrv_index_new(merged, generation);
    if (!ix) {
        mesh_error(ACTOR,
                   "out of memory indexing descriptors generation %llu: workers keep "
                   "the last index",
                   (unsigned long long)generation);
        return;
    }
    unf_ctx_t u = {ix, 0};
    size_t n_conf = gw_cache_conflict_count(c);
    for (size_t i = 0; i < n_conf; i++) {
        const char *why;
        const char *file = gw_cache_conflict(c, i, &why);
        if (mesh_rsrv_index_add_conflict(ix, file, why) != 0)
            u.failed = 1;
    }
    gw_cache_each_unfetchable(c, mark_unfetchable, &u);
    if (u.failed) {
        mesh_error(ACTOR, "out of memory indexing descriptors: workers keep the last index");
        mesh_rsrv_index_unref(ix);
        return;
    }
    mesh_info(ACTOR, "index generation %llu: %zu files, %zu symbols, %zu conflicting file%s",
              (unsigned long long)generation, mesh_rsrv_index_files(ix),
              mesh_rsrv_index_symbols(ix), n_conf, n_conf == 1 ? "" : "s");
    if (mesh_node_ext_publish(e->node, e->ext_id, node_reflect_index_ref, ix) == 0) {
        e->generation = generation;
        e->files = mesh_rsrv_index_files(ix);
        e->symbols = mesh_rsrv_index_symbols(ix);
        e->conflicting = n_conf;
    }
    mesh_rsrv_index_unref(ix);
}

/* The cache reports a new merged pool (control loop). */
static void on_pool(void *ctx, const mesh_desc_pool_t *merged, uint64_t generation)
{
    node_reflect_entry_t *e = ctx;
    node_reflect_entry_publish(e, e->cache.live, merged, generation);
}

int node_reflect_entry_init(node_reflect_entry_t *e, mesh_node_t *node, const mesh_config_t *cfg)
{
    const reflect_options_t *o = reflect_options(cfg);
    e->node = node;
    e->wcfg.hold_ms = o ? (uint64_t)o->hold_ms : 0;
    e->ext = node_reflect_ext;
    e->ext.arg = &e->wcfg;
    e->ext_id = mesh_node_add_ext(node, &e->ext);
    if (e->ext_id < 0) {
        mesh_error(ACTOR, "cannot install reflection on the workers");
        return -1;
    }
    return 0;
}

int node_reflect_entry_start(node_reflect_entry_t *e, node_control_t *control)
{
    e->cache = (gw_cache_args_t){
        .rpc_new = mesh_node_upstream_rpc, /* TLS to instances as the workers reach them */
        .rpc_arg = e->node,
        .on_pool = on_pool,
        .ctx = e,
        .routes_from = mesh_node_actor(e->node),
    };
    return node_control_add(control, &gw_cache_actor_ops, &e->cache, 0, NULL);
}

/* GET /v1/reflection (control loop). */
static json_t *admin_reflection(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    node_reflect_entry_t *e = ud;
    json_t *o = gw_cache_stats_json(e->cache.live);
    if (o)
        json_object_set_new(o, "index",
                            json_pack("{s:I,s:I,s:I,s:I}", "generation", (json_int_t)e->generation,
                                      "files", (json_int_t)e->files, "symbols",
                                      (json_int_t)e->symbols, "conflicting_files",
                                      (json_int_t)e->conflicting));
    return o;
}

int node_reflect_entry_admin(node_reflect_entry_t *e, struct mesh_admin *admin)
{
    if (admin && mesh_admin_add_json(admin, "/v1/reflection", admin_reflection, e) != 0) {
        mesh_error(ACTOR, "cannot serve /v1/reflection");
        return -1;
    }
    return 0;
}
