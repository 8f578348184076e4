/*
 * bench/registry/bench_registry_path.c: the path of one registry change through the code, for
 * counting instructions with callgrind (time on this shared machine is noisy): N instances of S
 * services in a view table, a reconciler with (empty) static routes, two proxy workers; then
 * CHANGES changes, each an etcd put of a new value for one instance.
 *
 *   control_change   the control loop's part: apply the put (and record it for the snapshot),
 *                    make the etcd routing table, merge it in the reconciler
 *   worker_install   one worker installing the merged table
 *   snapshot_batch   the snapshot writer thread's part for 35 changes (at 70 changes/s and a
 *                    500 ms gap, one batch per 35 changes): append and fsync
 *
 * valgrind --tool=callgrind --collect-atstart=no --toggle-collect=control_change \
 *     build/rel/bench/registry/bench_registry_path 10000 1000 350
 * then divide the total by CHANGES (by 2 * CHANGES for worker_install, by CHANGES / 35 for
 * snapshot_batch). Run natively it prints microseconds per change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "registry/reconciler.h"
#include "registry/snapshot_file.h"
#include "registry/view_table.h"
#include "transport/proxy.h"

#define BATCH 35

static int n_inst, n_svc;
static reg_table_t table;
static mesh_reconciler_t rec;
static mesh_routes_t *merged;
static reg_snap_buf_t journal;
static char snap[256];

static char *value(int i, int v)
{
    static const char *const methods[] = {"Get", "List", "Create", "Delete"};
    char addr[32], node[32];
    snprintf(addr, sizeof(addr), "10.%d.%d.%d:50051", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    snprintf(node, sizeof(node), "node-%d", i % 500);
    reg_instance_t in = {.addr = addr,
                         .node = node,
                         .zone = i % 2 ? "zone-a" : "zone-b",
                         .version = v ? "2.0" : "1.0",
                         .methods = methods,
                         .n_methods = 4,
                         .weight = 1};
    return reg_value_format(&in);
}

static void key(int i, char *k, size_t cap)
{
    snprintf(k, cap, REG_DEFAULT_PREFIX "/bench.Service%05d/10.%d.%d.%d:50051", i % n_svc,
             (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

__attribute__((noinline)) void control_change(const char *k, const char *v, int64_t rev)
{
    reg_table_put(&table, k, strlen(k), v, strlen(v), rev, 0);
    mesh_reconciler_set(&rec, MESH_ROUTE_ETCD, reg_table_routes(&table));
    merged = mesh_reconciler_build(&rec);
}

__attribute__((noinline)) void worker_install(mesh_proxy_worker_t *w, mesh_routes_t *r)
{
    mesh_proxy_worker_set_routes(w, r);
}

__attribute__((noinline)) void snapshot_batch(int64_t rev)
{
    reg_snap_file_append(snap, rev, &journal);
    reg_snap_buf_free(&journal);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_registry_path INSTANCES SERVICES CHANGES\n");
        return 2;
    }
    n_inst = atoi(argv[1]);
    n_svc = atoi(argv[2]);
    int changes = atoi(argv[3]);
    if (n_inst < 1 || n_svc < 1 || changes < 1)
        return 2;
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    snprintf(snap, sizeof(snap), "/tmp/bench-registry-path-%d.snapshot", (int)getpid());
    uv_loop_t loop;
    uv_loop_init(&loop);
    mesh_proxy_worker_t *w[2];
    for (int i = 0; i < 2; i++) {
        mesh_proxy_config_t cfg = {.listen_host = "127.0.0.1", .worker_index = i};
        w[i] = mesh_proxy_worker_new(&loop, &cfg);
        if (!w[i])
            return 1;
    }
    reg_table_init(&table, REG_DEFAULT_PREFIX);
    mesh_reconciler_init(&rec);
    mesh_reconciler_set(&rec, MESH_ROUTE_STATIC,
                        mesh_route_builder_finish(mesh_route_builder_new()));
    for (int i = 0; i < n_inst; i++) {
        char k[128];
        key(i, k, sizeof(k));
        char *v = value(i, 0);
        reg_table_put(&table, k, strlen(k), v, strlen(v), i + 1, 0);
        free(v);
    }
    mesh_reconciler_set(&rec, MESH_ROUTE_ETCD, reg_table_routes(&table));
    merged = mesh_reconciler_build(&rec);
    for (int i = 0; i < 2; i++)
        mesh_proxy_worker_set_routes(w[i], mesh_routes_ref(merged));
    mesh_routes_unref(merged);
    reg_table_save(&table, snap, 1);
    table.journal = &journal;
    double t_ctl = 0, t_wk = 0, t_snap = 0;
    for (int c = 0; c < changes; c++) {
        int i = (int)(((long long)c * 7919) % n_inst);
        char k[128];
        key(i, k, sizeof(k));
        char *v = value(i, c & 1);
        double t0 = now_us();
        control_change(k, v, n_inst + c + 1);
        double t1 = now_us();
        free(v);
        for (int j = 0; j < 2; j++)
            worker_install(w[j], mesh_routes_ref(merged));
        double t2 = now_us();
        mesh_routes_unref(merged);
        t_ctl += t1 - t0;
        t_wk += (t2 - t1) / 2;
        if (c % BATCH == BATCH - 1) {
            double t3 = now_us();
            snapshot_batch(n_inst + c + 1);
            t_snap += now_us() - t3;
        }
    }
    printf("%d instances, %d services, %d changes: control %.1f us, each worker %.1f us per change;"
           " snapshot thread %.1f us per %d changes\n",
           n_inst, n_svc, changes, t_ctl / changes, t_wk / changes,
           changes >= BATCH ? t_snap / (changes / BATCH) : 0.0, BATCH);
    table.journal = NULL;
    reg_snap_buf_free(&journal);
    for (int i = 0; i < 2; i++)
        mesh_proxy_worker_free(w[i]);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    mesh_reconciler_destroy(&rec);
    reg_table_destroy(&table);
    unlink(snap);
    return 0;
}
