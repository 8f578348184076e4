/*
 * bench/gateway_cache/bench_gateway_cache.c: the descriptor cache (gateway/schema_cache.h) at
 * 1,000 services of 10 instances (10,000 instances), each service two files (a service file
 * and its import, as tests/unit/gateway_cache builds them), on the simulated executor against
 * scripted servers. Prints one JSON line:
 *   heap_per_service   heap the cache holds per cached service (service and variant records,
 *                      serialized files, its share of the merged pool and of the routing
 *                      table references): what stopping the cache gives back (mallinfo2)
 *   file_bytes_per_service  serialized descriptor bytes per service
 *   update_ns          wall time per table update that changes one instance of one service
 *                      (send + the cache's handling, through the simulator), mean of 2,000
 *   update_fetches     fetches those updates caused (must be 0)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/sim.h"
#include "common/log.h"
#include "gateway/schema_cache.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "registry/reg_msgs.h"
#include "registry/route_table.h"
#include "script_rpc.h"

enum { NS = 1000, NI = 10, UPDATES = 2000 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t heap(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static sr_file_t mkfile(const char *name, const char *pkg, const char *dep, const char *msg,
                        const char *svc, const char *type)
{
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto *mp = &m;
    Google__Protobuf__FieldDescriptorProto fd[3];
    Google__Protobuf__FieldDescriptorProto *fdp[3];
    Google__Protobuf__ServiceDescriptorProto s = GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__ServiceDescriptorProto *sp = &s;
    Google__Protobuf__MethodDescriptorProto md[3];
    Google__Protobuf__MethodDescriptorProto *mdp[3];
    static const char *const fields[] = {"id", "name", "created_at"};
    static const char *const methods[] = {"Get", "List", "Put"};
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
        for (int i = 0; i < 3; i++) {
            google__protobuf__field_descriptor_proto__init(&fd[i]);
            fd[i].name = (char *)fields[i];
            fd[i].has_number = 1;
            fd[i].number = i + 1;
            fd[i].has_type = 1;
            fd[i].type = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING;
            fdp[i] = &fd[i];
        }
        m.n_field = 3;
        m.field = fdp;
        f.n_message_type = 1;
        f.message_type = &mp;
    }
    if (svc) {
        for (int i = 0; i < 3; i++) {
            google__protobuf__method_descriptor_proto__init(&md[i]);
            md[i].name = (char *)methods[i];
            md[i].input_type = (char *)type;
            md[i].output_type = (char *)type;
            mdp[i] = &md[i];
        }
        s.name = (char *)svc;
        s.n_method = 3;
        s.method = mdp;
        f.n_service = 1;
        f.service = &sp;
    }
    sr_file_t b;
    b.len = google__protobuf__file_descriptor_proto__get_packed_size(&f);
    uint8_t *d = malloc(b.len);
    google__protobuf__file_descriptor_proto__pack(&f, d);
    b.data = d;
    return b;
}

static mesh_route_svc_t *build_svc(mesh_route_svc_builder_t *b, const char *name, int i,
                                   uint32_t weight_of_first)
{
    static const char *const methods[] = {"Get", "List", "Put"};
    char addr[NI][32];
    for (int k = 0; k < NI; k++) {
        snprintf(addr[k], sizeof(addr[k]), "10.%d.%d.%d:50051", i / 250, i % 250, k);
        mesh_route_svc_builder_add(b, addr[k], methods, 3, MESH_ROUTE_ETCD, "", "",
                                   k == 0 ? weight_of_first : 1);
        mesh_route_svc_builder_set_version(b, "v1");
    }
    mesh_route_svc_t *s = NULL;
    if (mesh_route_svc_builder_finish(b, name, &s) < 0)
        abort();
    return s;
}

int main(void)
{
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    static char names[NS][24];
    sr_file_t *files = calloc(2 * NS, sizeof(*files));
    size_t file_bytes = 0;
    for (int i = 0; i < NS; i++) {
        char pkg[16], common[48], svcf[48], type[48];
        snprintf(pkg, sizeof(pkg), "bench.p%d", i);
        snprintf(common, sizeof(common), "bench/p%d/types.proto", i);
        snprintf(svcf, sizeof(svcf), "bench/p%d/service.proto", i);
        snprintf(type, sizeof(type), ".%s.Item", pkg);
        snprintf(names[i], sizeof(names[i]), "%s.Store", pkg);
        files[2 * i] = mkfile(common, pkg, NULL, "Item", NULL, NULL);
        files[2 * i + 1] = mkfile(svcf, pkg, common, NULL, "Store", type);
        file_bytes += files[2 * i].len + files[2 * i + 1].len;
    }
    mesh_exec_t *sim = mesh_sim_new(1);
    sr_world_t *w = sr_world_new(sim, 1000000);
    sr_app_set_files(sr_app(w, NULL), files, 2 * NS);
    mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
    mesh_route_edit_t *edits = calloc(NS, sizeof(*edits));
    for (int i = 0; i < NS; i++)
        edits[i] = (mesh_route_edit_t){names[i], build_svc(b, names[i], i, 1)};
    mesh_routes_t *table = mesh_routes_update(NULL, edits, NS);
    /* Every update's table made up front, so the timed part is the cache's work. */
    mesh_routes_t **upd = calloc(UPDATES, sizeof(*upd));
    mesh_routes_t *prev = table;
    for (int u = 0; u < UPDATES; u++) {
        int i = (int)((u * 7919u) % NS);
        mesh_route_edit_t e = {names[i], build_svc(b, names[i], i, 2 + (uint32_t)u)};
        upd[u] = mesh_routes_update(prev, &e, 1);
        prev = upd[u];
    }

    gw_cache_args_t args = {.rpc_new = sr_factory, .rpc_arg = w};
    mesh_actor_id_t id;
    mesh_exec_spawn(sim, &gw_cache_actor_ops, &args, NULL, &id);
    mesh_exec_send_ptr(sim, id, REG_MSG_ROUTES, mesh_routes_ref(table),
                       (void (*)(void *))mesh_routes_unref);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 120ull * 1000000000ull);
    gw_cache_counts_t n;
    gw_cache_counts(args.live, &n);
    unsigned calls = sr_world_calls(w);

    uint64_t t0 = now_ns();
    for (int u = 0; u < UPDATES; u++) {
        mesh_exec_send_ptr(sim, id, REG_MSG_ROUTES, mesh_routes_ref(upd[u]),
                           (void (*)(void *))mesh_routes_unref);
        mesh_sim_run(sim, 1000);
    }
    uint64_t dt = now_ns() - t0;
    /* What the cache held: the heap its stop gives back (the scripted servers keep theirs). */
    size_t h2 = heap();
    mesh_exec_stop(sim, id);
    mesh_sim_run(sim, 100000);
    size_t h3 = heap();
    printf("{\"services\":%d,\"instances\":%d,\"held\":%zu,\"files\":%zu,"
           "\"heap_per_service\":%zu,\"file_bytes_per_service\":%zu,\"update_ns\":%llu,"
           "\"update_fetches\":%u}\n",
           NS, NS * NI, n.held, n.files, (h2 - h3) / NS, file_bytes / NS,
           (unsigned long long)(dt / UPDATES), sr_world_calls(w) - calls);
    mesh_exec_free(sim);
    sr_world_free(w);
    for (int u = 0; u < UPDATES; u++)
        mesh_routes_unref(upd[u]);
    mesh_routes_unref(table);
    mesh_route_svc_builder_free(b);
    for (int i = 0; i < 2 * NS; i++)
        free((void *)files[i].data);
    free(files);
    free(edits);
    free(upd);
    return 0;
}
