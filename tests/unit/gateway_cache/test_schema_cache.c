/*
 * tests/unit/gateway_cache/test_schema_cache.c: the gateway's descriptor cache
 * (gateway/schema_cache.h) on the simulated executor against scripted servers
 * (script_rpc.h): first fetch with its imports, the v1alpha fallback, a silent instance timed
 * out for another, backoff, no reflection, a version change, two versions at once, removal
 * after the grace period, coalesced callbacks, and a table of 10,000 instances where one
 * change fetches nothing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/sim.h"
#include "gateway/schema_cache.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "registry/reg_msgs.h"
#include "registry/route_table.h"
#include "script_rpc.h"
#include "tests/check.h"

#define MS 1000000ull
#define S  1000000000ull

/* ---- descriptors ---------------------------------------------------------------------------- */

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob_t;

/* A file: package pkg, imports deps, a message msg (may be NULL), a service svc (may be
 * NULL) whose methods take and return type (".pkg.Msg"). */
static blob_t mkfile(const char *name, const char *pkg, const char *dep, const char *msg,
                     const char *svc, const char *const *methods, size_t nm, const char *type)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto *mp = &m;
    Google__Protobuf__ServiceDescriptorProto s = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto *sp = &s;
    Google__Protobuf__MethodDescriptorProto md[8];
    Google__Protobuf__MethodDescriptorProto *mdp[8];
    char *deps[1] = {(char *)dep};
    f.name = (char *)name;
    f.package = (char *)pkg;
    f.syntax = "proto3";
    if (dep) {
        f.n_dependency = 1;
        f.dependency = deps;
    }
    if (msg) {
        m.name = (char *)msg;
        f.n_message_type = 1;
        f.message_type = &mp;
    }
    if (svc) {
        CHECK(nm <= 8);
        for (size_t i = 0; i < nm; i++) {
            google__protobuf__method_descriptor_proto__init(&md[i]);
            md[i].name = (char *)methods[i];
            md[i].input_type = (char *)type;
            md[i].output_type = (char *)type;
            mdp[i] = &md[i];
        }
        s.name = (char *)svc;
        s.n_method = nm;
        s.method = mdp;
        f.n_service = 1;
        f.service = &sp;
    }
    blob_t b;
    b.len = google__protobuf__file_descriptor_proto__get_packed_size(&f);
    b.data = malloc(b.len);
    CHECK(b.data);
    google__protobuf__file_descriptor_proto__pack(&f, b.data);
    return b;
}

/* Serves service pkg.Svc (pkg/svc.proto importing pkg/common.proto) with methods at app a. */
static void serve(sr_app_t *a, const char *pkg, const char *const *methods, size_t nm)
{
    char common[128], svcf[128], type[128];
    snprintf(common, sizeof(common), "%s/common.proto", pkg);
    snprintf(svcf, sizeof(svcf), "%s/svc.proto", pkg);
    snprintf(type, sizeof(type), ".%s.Msg", pkg);
    blob_t c = mkfile(common, pkg, NULL, "Msg", NULL, NULL, 0, NULL);
    blob_t s = mkfile(svcf, pkg, common, NULL, "Svc", methods, nm, type);
    sr_file_t files[2] = {{c.data, c.len}, {s.data, s.len}};
    sr_app_set_files(a, files, 2);
    free(c.data);
    free(s.data);
}

/* ---- the rig -------------------------------------------------------------------------------- */

typedef struct rig {
    mesh_exec_t *sim;
    sr_world_t *w;
    gw_cache_args_t args;
    mesh_actor_id_t id;
    mesh_routes_t *table;
    unsigned pools;
    uint64_t gen, last_at, min_gap;
    size_t services, files;
    char paths[8192]; /* every method path of the last pool, ',' separated */
} rig_t;

static void on_pool(void *ctx, const mesh_desc_pool_t *p, uint64_t gen)
{
    rig_t *r = ctx;
    uint64_t now = mesh_sim_now(r->sim);
    if (r->pools && (!r->min_gap || now - r->last_at < r->min_gap))
        r->min_gap = now - r->last_at;
    r->last_at = now;
    r->pools++;
    CHECK(gen > r->gen);
    r->gen = gen;
    r->services = mesh_desc_pool_service_count(p);
    r->files = mesh_desc_pool_file_count(p);
    r->paths[0] = '\0';
    for (size_t i = 0; i < r->services; i++) {
        const mesh_desc_service_t *s = mesh_desc_pool_service(p, i);
        for (size_t k = 0; k < s->n_methods; k++) {
            size_t n = strlen(r->paths);
            snprintf(r->paths + n, sizeof(r->paths) - n, "%s,", s->methods[k].path);
        }
    }
}

static void rig_init(rig_t *r, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    r->sim = mesh_sim_new(seed);
    r->w = sr_world_new(r->sim, 2 * MS);
    r->args.rpc_new = sr_factory;
    r->args.rpc_arg = r->w;
    r->args.on_pool = on_pool;
    r->args.ctx = r;
    r->args.fetch_timeout_ms = 5000;
    r->args.grace_ms = 30000;
    CHECK(mesh_exec_spawn(r->sim, &gw_cache_actor_ops, &r->args, NULL, &r->id) == 0);
}

static void rig_free(rig_t *r)
{
    mesh_exec_free(r->sim);
    sr_world_free(r->w);
    mesh_routes_unref(r->table);
}

static void run_for(rig_t *r, uint64_t ns)
{
    mesh_sim_run_until(r->sim, mesh_sim_now(r->sim) + ns);
}

typedef struct inst {
    const char *addr;
    const char *version;
    const char *const *methods; /* NULL: not listed */
    size_t nm;
} inst_t;

/* The next table: service name with these instances (none: removed); sent to the cache. */
static void set_service(rig_t *r, const char *name, const inst_t *in, size_t n)
{
    mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
    mesh_route_edit_t e = {name, NULL};
    for (size_t i = 0; i < n; i++) {
        CHECK(mesh_route_svc_builder_add(b, in[i].addr, in[i].methods, in[i].nm, MESH_ROUTE_ETCD,
                                         "", "", 1) == 0);
        CHECK(mesh_route_svc_builder_set_version(b, in[i].version) == 0);
    }
    if (n)
        CHECK(mesh_route_svc_builder_finish(b, name, &e.svc) == 0);
    mesh_route_svc_builder_free(b);
    mesh_routes_t *t = mesh_routes_update(r->table, &e, 1);
    CHECK(t);
    mesh_routes_unref(r->table);
    r->table = t;
    CHECK(mesh_exec_send_ptr(r->sim, r->id, REG_MSG_ROUTES, mesh_routes_ref(t),
                             (void (*)(void *))mesh_routes_unref) == 0);
}

static gw_cache_counts_t counts(rig_t *r)
{
    gw_cache_counts_t n;
    gw_cache_counts(r->args.live, &n);
    return n;
}

static const char *const GET[] = {"Get"};
static const char *const GET_PUT[] = {"Get", "Put"};

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_first_fetch(void)
{
    rig_t r;
    rig_init(&r, 1);
    sr_app_t *a = sr_app(r.w, "10.0.0.1:50051");
    serve(a, "shop", GET, 1);
    inst_t in[] = {{"10.0.0.1:50051", "v1", GET, 1}};
    set_service(&r, "shop.Svc", in, 1);
    run_for(&r, 1 * S);
    CHECK_EQ(r.pools, 1);
    CHECK_EQ(r.services, 1);
    CHECK_EQ(r.files, 2); /* the import came by file_by_filename */
    CHECK_STR(r.paths, "/shop.Svc/Get,");
    CHECK_EQ(sr_app_calls(a), 1);
    gw_cache_counts_t n = counts(&r);
    CHECK_EQ(n.services, 1);
    CHECK_EQ(n.held, 1);
    CHECK_EQ(n.fetched, 1);
    CHECK_EQ(n.files, 2);
    /* The admin stats say the same. */
    json_t *j = gw_cache_stats_json(r.args.live);
    CHECK(j);
    CHECK_EQ(json_integer_value(json_object_get(j, "held")), 1);
    json_t *s0 = json_array_get(json_object_get(j, "schemas"), 0);
    CHECK_STR(json_string_value(json_object_get(s0, "service")), "shop.Svc");
    CHECK_STR(json_string_value(json_object_get(s0, "state")), "ok");
    json_t *v0 = json_array_get(json_object_get(s0, "versions"), 0);
    CHECK_STR(json_string_value(json_object_get(v0, "version")), "v1");
    CHECK_STR(json_string_value(json_object_get(v0, "from")), "10.0.0.1:50051");
    json_decref(j);
    /* Nothing more happens while nothing changes. */
    run_for(&r, 120 * S);
    CHECK_EQ(r.pools, 1);
    CHECK_EQ(sr_world_calls(r.w), 1);
    rig_free(&r);
}

static void test_v1alpha_fallback(void)
{
    rig_t r;
    rig_init(&r, 2);
    sr_app_t *a = sr_app(r.w, "10.0.0.1:1");
    serve(a, "shop", GET, 1);
    sr_app_set_mode(a, SR_V1ALPHA_ONLY);
    inst_t in[] = {{"10.0.0.1:1", "", GET, 1}};
    set_service(&r, "shop.Svc", in, 1);
    run_for(&r, 1 * S);
    CHECK_EQ(r.pools, 1);
    CHECK_STR(r.paths, "/shop.Svc/Get,");
    CHECK_EQ(sr_app_calls(a), 2); /* v1, then v1alpha */
    rig_free(&r);
}

static void test_silent_instance(void)
{
    rig_t r;
    rig_init(&r, 3);
    sr_app_t *hung = sr_app(r.w, "10.0.0.1:1");
    sr_app_t *good = sr_app(r.w, "10.0.0.2:1");
    sr_app_set_mode(hung, SR_SILENT);
    serve(good, "shop", GET, 1);
    inst_t in[] = {{"10.0.0.1:1", "v1", GET, 1}, {"10.0.0.2:1", "v1", GET, 1}};
    uint64_t t0 = mesh_sim_now(r.sim);
    set_service(&r, "shop.Svc", in, 2);
    run_for(&r, 4 * S);
    CHECK_EQ(r.pools, 0); /* still waiting for the silent one */
    CHECK_EQ(counts(&r).fetching, 1);
    run_for(&r, 2 * S);
    CHECK_EQ(r.pools, 1);
    CHECK(r.last_at - t0 >= 5 * S); /* after the deadline, from the other instance */
    CHECK_EQ(sr_app_calls(hung), 1);
    CHECK_EQ(sr_app_calls(good), 1);
    CHECK_EQ(counts(&r).timeouts, 1);
    rig_free(&r);
}

static void test_backoff(void)
{
    rig_t r;
    rig_init(&r, 4);
    r.args.backoff_min_ms = 1000;
    r.args.backoff_max_ms = 8000;
    sr_app_t *a = sr_app(r.w, "10.0.0.1:1");
    sr_app_set_mode(a, SR_REFUSE);
    inst_t in[] = {{"10.0.0.1:1", "v1", GET, 1}};
    set_service(&r, "shop.Svc", in, 1);
    run_for(&r, 100 * MS);
    CHECK_EQ(sr_app_calls(a), 1);
    gw_cache_counts_t n = counts(&r);
    CHECK_EQ(n.failed, 1);
    json_t *j = gw_cache_stats_json(r.args.live);
    json_t *s0 = json_array_get(json_object_get(j, "schemas"), 0);
    CHECK_STR(json_string_value(json_object_get(s0, "state")), "failed");
    CHECK(strstr(json_string_value(json_object_get(s0, "last_error")), "10.0.0.1:1"));
    json_decref(j);
    /* Backoff doubles: 1 s, 2 s, 4 s, then 8 s (each with jitter between half and all of
     * it): in 60 s there are far fewer retries than seconds, and at least the doubling ones. */
    run_for(&r, 60 * S);
    unsigned calls = sr_app_calls(a);
    CHECK(calls >= 5 && calls <= 16);
    /* The app comes back: the next retry gets it. */
    serve(a, "shop", GET, 1);
    sr_app_set_mode(a, SR_SERVE);
    run_for(&r, 9 * S);
    CHECK_EQ(r.pools, 1);
    CHECK_EQ(counts(&r).failed, 0);
    CHECK_STR(r.paths, "/shop.Svc/Get,");
    rig_free(&r);
}

static void test_no_reflection(void)
{
    rig_t r;
    rig_init(&r, 5);
    sr_app_t *a = sr_app(r.w, "10.0.0.1:1");
    sr_app_set_mode(a, SR_NO_REFLECTION);
    inst_t in[] = {{"10.0.0.1:1", "v1", GET, 1}};
    set_service(&r, "shop.Svc", in, 1);
    /* Health and reflection themselves are never asked about. */
    inst_t infra[] = {{"10.0.0.1:1", "", NULL, 0}};
    set_service(&r, "grpc.health.v1.Health", infra, 1);
    set_service(&r, "grpc.reflection.v1alpha.ServerReflection", infra, 1);
    run_for(&r, 120 * S);
    CHECK_EQ(sr_app_calls(a), 2); /* v1 and v1alpha, once: skipped, not retried */
    gw_cache_counts_t n = counts(&r);
    CHECK_EQ(n.no_reflection, 1);
    CHECK_EQ(n.failed, 0);
    CHECK_EQ(n.services, 1);
    /* one report, with no files, so reflection at the entry learns the service cannot be
     * described (gw_cache_each_unfetchable) instead of waiting for it */
    CHECK_EQ(r.pools, 1);
    rig_free(&r);
}

static void test_version_change(void)
{
    rig_t r;
    rig_init(&r, 6);
    sr_app_t *a = sr_app(r.w, "10.0.0.1:1");
    sr_app_t *b = sr_app(r.w, "10.0.0.2:1");
    serve(a, "shop", GET, 1);
    serve(b, "shop", GET_PUT, 2);
    inst_t v1[] = {{"10.0.0.1:1", "v1", GET, 1}};
    set_service(&r, "shop.Svc", v1, 1);
    run_for(&r, 1 * S);
    CHECK_STR(r.paths, "/shop.Svc/Get,");
    /* A rolling deploy: the v1 instance is replaced by a v2 one. */
    inst_t v2[] = {{"10.0.0.2:1", "v2", GET_PUT, 2}};
    set_service(&r, "shop.Svc", v2, 1);
    run_for(&r, 1 * S);
    CHECK_EQ(r.pools, 2);
    CHECK_STR(r.paths, "/shop.Svc/Get,/shop.Svc/Put,"); /* v2's shop/svc.proto won */
    CHECK_EQ(sr_app_calls(b), 1);
    CHECK_EQ(counts(&r).conflicts, 1);
    /* Same label, new method set (a server restarted with a new method, no --version): a new
     * variant, fetched too. */
    sr_app_t *c = sr_app(r.w, "10.0.0.3:1");
    static const char *const GPD[] = {"Del", "Get", "Put"};
    serve(c, "shop", GPD, 3);
    inst_t v2b[] = {{"10.0.0.3:1", "v2", GPD, 3}};
    set_service(&r, "shop.Svc", v2b, 1);
    run_for(&r, 1 * S);
    CHECK_EQ(sr_app_calls(c), 1);
    CHECK_STR(r.paths, "/shop.Svc/Del,/shop.Svc/Get,/shop.Svc/Put,");
    rig_free(&r);
}

static void test_two_versions(void)
{
    rig_t r;
    rig_init(&r, 7);
    /* v1 and v2 of shop.Svc in files of their own (shop/v1/..., shop/v2/... as a versioned
     * package would be), plus other.Svc: both versions resolve at once. */
    sr_app_t *a = sr_app(r.w, "10.0.0.1:1");
    sr_app_t *b = sr_app(r.w, "10.0.0.2:1");
    blob_t c1 = mkfile("shop/v1/m.proto", "shop", NULL, "Msg1", NULL, NULL, 0, NULL);
    blob_t s1 =
        mkfile("shop/v1/svc.proto", "shop", "shop/v1/m.proto", NULL, "Svc", GET, 1, ".shop.Msg1");
    blob_t c2 = mkfile("shop/v2/m.proto", "shop", NULL, "Msg2", NULL, NULL, 0, NULL);
    blob_t s2 = mkfile("shop/v2/svc.proto", "shop", "shop/v2/m.proto", NULL, "Svc", GET_PUT, 2,
                       ".shop.Msg2");
    sr_file_t fa[] = {{c1.data, c1.len}, {s1.data, s1.len}};
    sr_file_t fb[] = {{c2.data, c2.len}, {s2.data, s2.len}};
    sr_app_set_files(a, fa, 2);
    sr_app_set_files(b, fb, 2);
    inst_t both[] = {{"10.0.0.1:1", "v1", GET, 1}, {"10.0.0.2:1", "v2", GET_PUT, 2}};
    set_service(&r, "shop.Svc", both, 2);
    run_for(&r, 1 * S);
    CHECK_EQ(sr_app_calls(a), 1);
    CHECK_EQ(sr_app_calls(b), 1);
    gw_cache_counts_t n = counts(&r);
    CHECK_EQ(n.fetched, 2);
    CHECK_EQ(n.files, 4);
    CHECK_EQ(r.files, 4); /* every file of both versions is in the merged pool */
    CHECK_EQ(n.conflicts, 0);
    CHECK(r.pools >= 1 && r.pools <= 2);
    CHECK_STR(r.paths, "/shop.Svc/Get,/shop.Svc/Put,");
    free(c1.data);
    free(s1.data);
    free(c2.data);
    free(s2.data);
    rig_free(&r);
}

static void test_removal_after_grace(void)
{
    rig_t r;
    rig_init(&r, 8);
    serve(sr_app(r.w, "10.0.0.1:1"), "shop", GET, 1);
    serve(sr_app(r.w, "10.0.0.2:1"), "cart", GET, 1);
    inst_t s[] = {{"10.0.0.1:1", "v1", GET, 1}};
    inst_t c[] = {{"10.0.0.2:1", "v1", GET, 1}};
    set_service(&r, "shop.Svc", s, 1);
    set_service(&r, "cart.Svc", c, 1);
    run_for(&r, 1 * S);
    CHECK_EQ(r.services, 2);
    unsigned pools = r.pools;
    set_service(&r, "shop.Svc", NULL, 0);
    run_for(&r, 29 * S);
    CHECK_EQ(r.pools, pools); /* still held during the grace period */
    CHECK_EQ(counts(&r).services, 1);
    CHECK_EQ(counts(&r).held, 2);
    run_for(&r, 2 * S);
    CHECK_EQ(r.pools, pools + 1);
    CHECK_EQ(r.services, 1);
    CHECK_STR(r.paths, "/cart.Svc/Get,");
    CHECK_EQ(counts(&r).held, 1);
    /* Back within the grace period: nothing is fetched again. */
    set_service(&r, "cart.Svc", NULL, 0);
    run_for(&r, 10 * S);
    set_service(&r, "cart.Svc", c, 1);
    run_for(&r, 60 * S);
    CHECK_EQ(sr_world_calls(r.w), 2);
    CHECK_EQ(r.services, 1);
    rig_free(&r);
}

static void test_coalesced(void)
{
    rig_t r;
    rig_init(&r, 9);
    char names[40][32], addrs[40][32], pkgs[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(pkgs[i], sizeof(pkgs[i]), "p%d", i);
        snprintf(names[i], sizeof(names[i]), "p%d.Svc", i);
        snprintf(addrs[i], sizeof(addrs[i]), "10.0.1.%d:1", i);
        serve(sr_app(r.w, addrs[i]), pkgs[i], GET, 1);
        inst_t in[] = {{addrs[i], "v1", GET, 1}};
        set_service(&r, names[i], in, 1);
    }
    run_for(&r, 5 * S);
    CHECK_EQ(r.services, 40);
    CHECK_EQ(counts(&r).fetched, 40);
    CHECK(r.pools < 40);
    CHECK(r.pools >= 2);
    CHECK(r.min_gap >= 100 * MS); /* at most one call per 100 ms */
    rig_free(&r);
}

/* 1,000 services of 10 instances each: once all are held, one instance changing (or joining
 * with a known version) fetches nothing and calls on_pool for nothing. */
static void test_large_table_no_refetch(void)
{
    rig_t r;
    rig_init(&r, 10);
    r.args.max_fetches = 4;
    enum { NS = 1000, NI = 10 };
    mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
    mesh_route_edit_t *edits = calloc(NS, sizeof(*edits));
    static char names[NS][24];
    blob_t *blobs = calloc(2 * NS, sizeof(*blobs));
    sr_file_t *files = calloc(2 * NS, sizeof(*files));
    CHECK(b && edits && blobs && files);
    for (int i = 0; i < NS; i++) {
        char pkg[16], common[48], svcf[48], type[48];
        snprintf(pkg, sizeof(pkg), "p%d", i);
        snprintf(common, sizeof(common), "%s/common.proto", pkg);
        snprintf(svcf, sizeof(svcf), "%s/svc.proto", pkg);
        snprintf(type, sizeof(type), ".%s.Msg", pkg);
        blobs[2 * i] = mkfile(common, pkg, NULL, "Msg", NULL, NULL, 0, NULL);
        blobs[2 * i + 1] = mkfile(svcf, pkg, common, NULL, "Svc", GET, 1, type);
        snprintf(names[i], sizeof(names[i]), "p%d.Svc", i);
        char addr[NI][32]; /* borrowed until finish */
        for (int k = 0; k < NI; k++) {
            snprintf(addr[k], sizeof(addr[k]), "10.%d.%d.%d:1", i / 250, i % 250, k);
            CHECK(mesh_route_svc_builder_add(b, addr[k], GET, 1, MESH_ROUTE_ETCD, "", "", 1) == 0);
            CHECK(mesh_route_svc_builder_set_version(b, "v1") == 0);
        }
        edits[i].name = names[i];
        CHECK(mesh_route_svc_builder_finish(b, names[i], &edits[i].svc) == 0);
    }
    for (int i = 0; i < 2 * NS; i++)
        files[i] = (sr_file_t){blobs[i].data, blobs[i].len};
    sr_app_set_files(sr_app(r.w, NULL), files, 2 * NS); /* every address serves every file */
    r.table = mesh_routes_update(NULL, edits, NS);
    CHECK(mesh_exec_send_ptr(r.sim, r.id, REG_MSG_ROUTES, mesh_routes_ref(r.table),
                             (void (*)(void *))mesh_routes_unref) == 0);
    run_for(&r, 60 * S);
    CHECK_EQ(counts(&r).fetched, NS);
    CHECK_EQ(r.services, NS);
    unsigned calls = sr_world_calls(r.w), pools = r.pools;
    CHECK_EQ(calls, NS);

    /* One instance changes weight; one joins another service with the known version. */
    inst_t changed[NI];
    char addrs[NI + 1][32];
    for (int k = 0; k < NI; k++) {
        snprintf(addrs[k], sizeof(addrs[k]), "10.0.7.%d:1", k);
        changed[k] = (inst_t){addrs[k], "v1", GET, 1};
    }
    set_service(&r, "p7.Svc", changed, NI - 1); /* one instance left */
    inst_t more[NI + 1];
    for (int k = 0; k <= NI; k++) {
        snprintf(addrs[k], sizeof(addrs[k]), "10.0.9.%d:1", k);
        more[k] = (inst_t){addrs[k], "v1", GET, 1};
    }
    set_service(&r, "p9.Svc", more, NI + 1); /* one instance joined */
    run_for(&r, 60 * S);
    CHECK_EQ(sr_world_calls(r.w), calls);
    CHECK_EQ(r.pools, pools);
    CHECK_EQ(counts(&r).fetching, 0);
    CHECK_EQ(counts(&r).queued, 0);

    for (int i = 0; i < 2 * NS; i++)
        free(blobs[i].data);
    free(blobs);
    free(files);
    free(edits);
    mesh_route_svc_builder_free(b);
    rig_free(&r);
}

int main(void)
{
    test_first_fetch();
    test_v1alpha_fallback();
    test_silent_instance();
    test_backoff();
    test_no_reflection();
    test_version_change();
    test_two_versions();
    test_removal_after_grace();
    test_coalesced();
    test_large_table_no_refetch();
    printf("test_schema_cache: ok\n");
    return 0;
}
