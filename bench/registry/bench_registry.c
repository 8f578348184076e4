/*
 * bench/registry/bench_registry.c: the registry actor's view against a real etcd on loopback.
 *
 *   1. put-to-visible: N sequential puts of instance records; the time from issuing each put
 *      until the registry actor (on its own executor thread) publishes a view containing it
 *      (includes the 5 ms coalescing window; polled every 1 ms), p50/p99/max.
 *   2. full resync: M instances in etcd; a fresh view's initial range, parse, diff and routing
 *      table build (time to first publish); then a resync of the warm view (range + diff with
 *      nothing changed) and a resync after all M values changed.
 *   3. memory per instance: the table's own accounting and the heap growth (mallinfo2).
 *
 * Usage: bench_registry [N=1000] [M=10000]
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/etcd_codec.h"
#include "registry/instance.h"
#include "registry/view_table.h"
#include "tests/integration/registry/etcd_harness.h"
#include "tests/integration/registry/registry_rig.h"

#define P "meshd/services"

static uv_loop_t loop;

static rig_t rig;

/* Waits until the viewer holds key. */
typedef struct want {
    viewer_t *v;
    const char *key;
} want_t;

static int seen(void *ud)
{
    want_t *w = ud;
    return viewer_has(w->v, w->key);
}

static int done_flag(void *ud)
{
    return *(int *)ud != 0;
}

static void on_done(void *ud, int err, const char *body, size_t len)
{
    *(int *)ud = err == ETCD_OK ? 1 : -1;
}

typedef struct raw {
    int done;
    char *body;
    size_t len;
} raw_t;

static void on_raw(void *ud, int err, const char *body, size_t len)
{
    raw_t *r = ud;
    r->done = err == ETCD_OK ? 1 : -1;
    r->body = malloc(len + 1);
    memcpy(r->body, body, len);
    r->len = len;
}

static int raw_done(void *ud)
{
    return ((raw_t *)ud)->done != 0;
}

static int apply_kv(void *ud, const etcd_kv_t *kv)
{
    reg_table_put(ud, kv->key, kv->key_len, kv->value, kv->value_len, kv->mod_revision, kv->lease);
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char *instance_value(int i, const char *version)
{
    static const char *const methods[] = {"Get", "List", "Create", "Delete"};
    char addr[32], node[32];
    snprintf(addr, sizeof(addr), "10.%d.%d.%d:50051", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    snprintf(node, sizeof(node), "node-%d", i % 500);
    reg_instance_t in = {.addr = addr,
                         .node = node,
                         .zone = i % 2 ? "zone-a" : "zone-b",
                         .version = version,
                         .methods = methods,
                         .n_methods = 4,
                         .weight = 1};
    return reg_value_format(&in);
}

/* Writes M instances (200 services) in txns of 100 puts. */
static void populate(etcd_client_t *c, int m, const char *version)
{
    for (int base = 0; base < m; base += 100) {
        size_t cap = 100 * 1024, len = 0;
        char *body = malloc(cap);
        len += (size_t)snprintf(body, cap, "{\"success\":[");
        for (int i = base; i < base + 100 && i < m; i++) {
            char key[128];
            char *v = instance_value(i, version);
            char *vaddr = strstr(v, "\"Addr\":\"") + 8;
            snprintf(key, sizeof(key), P "/bench.Service%03d/%.*s", i % 200,
                     (int)(strchr(vaddr, '"') - vaddr), vaddr);
            char *k64 = malloc(etcd_b64_len(strlen(key)) + 1);
            char *v64 = malloc(etcd_b64_len(strlen(v)) + 1);
            etcd_b64_encode(key, strlen(key), k64);
            etcd_b64_encode(v, strlen(v), v64);
            len += (size_t)snprintf(body + len, cap - len,
                                    "%s{\"requestPut\":{\"key\":\"%s\",\"value\":\"%s\"}}",
                                    i > base ? "," : "", k64, v64);
            free(k64);
            free(v64);
            free(v);
        }
        snprintf(body + len, cap - len, "]}");
        int done = 0;
        etcd_client_post(c, "/v3/kv/txn", body, on_done, &done);
        free(body);
        if (!h_wait(&loop, done_flag, &done, 10000) || done < 0) {
            fprintf(stderr, "populate failed\n");
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    int m = argc > 2 ? atoi(argv[2]) : 10000;
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    uv_loop_init(&loop);
    etcd_cluster_t ec;
    if (h_cluster_start(&ec, 1) != 0) {
        fprintf(stderr, "cannot start etcd\n");
        return 1;
    }
    etcd_client_cfg_t cc = {.endpoints = ec.endpoints};
    etcd_client_t *c = etcd_client_new(&loop, &cc);

    rig_start(&rig, &loop);

    /* 1. put-to-visible */
    viewer_t *v = viewer_start(&rig, ec.endpoints, NULL, 0, 0);
    h_run_for(&loop, 200);
    double *lat = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < n; i++) {
        char key[128];
        snprintf(key, sizeof(key), P "/bench.Latency/127.0.0.1:%d", 10000 + i);
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", 10000 + i);
        reg_instance_t in = {.addr = addr, .node = "n", .weight = 1};
        char *val = reg_value_format(&in);
        char *body = etcd_req_put(key, val, strlen(val), 0);
        int done = 0;
        want_t w = {v, key};
        double t0 = h_now_ms();
        etcd_client_post(c, "/v3/kv/put", body, on_done, &done);
        if (!h_wait(&loop, seen, &w, 5000)) {
            fprintf(stderr, "put %d never became visible\n", i);
            return 1;
        }
        lat[i] = h_now_ms() - t0;
        h_wait(&loop, done_flag, &done, 5000);
        free(body);
        free(val);
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_d);
    viewer_stop(v);

    /* 2. full resync of M instances */
    populate(c, m, "1.0");
    struct mallinfo2 mi0 = mallinfo2();
    double t0 = h_now_ms();
    v = viewer_start(&rig, ec.endpoints, NULL, 0, 0);
    while (viewer_publishes(v) == 0 && h_now_ms() - t0 < 20000)
        h_run_for(&loop, 1);
    double cold = h_now_ms() - t0;
    struct mallinfo2 mi1 = mallinfo2();
    size_t count = viewer_valid(v);
    size_t table_bytes = viewer_table_bytes(v);
    size_t services = viewer_services(v);
    double heap_per = (double)(mi1.uordblks - mi0.uordblks) / (double)count;
    viewer_stop(v);

    /* Changed resync: every value changes (new version), a fresh view ranges again. */
    populate(c, m, "2.0");
    double t1 = h_now_ms();
    v = viewer_start(&rig, ec.endpoints, NULL, 0, 0);
    while (viewer_publishes(v) == 0 && h_now_ms() - t1 < 20000)
        h_run_for(&loop, 1);
    double cold2 = h_now_ms() - t1;
    viewer_stop(v);

    /* Where the cold resync goes: etcd serving the range vs. decoding and applying it. */
    raw_t raw = {0};
    char *rb = etcd_req_range_prefix(P "/");
    double t5 = h_now_ms();
    etcd_client_post(c, "/v3/kv/range", rb, on_raw, &raw);
    h_wait(&loop, raw_done, &raw, 10000);
    double range_rtt = h_now_ms() - t5;
    free(rb);
    reg_table_t tt;
    reg_table_init(&tt, P);
    etcd_decoder_t dec;
    etcd_decoder_init(&dec);
    etcd_range_info_t ri;
    double t6 = h_now_ms();
    etcd_decode_range(&dec, raw.body, raw.len, &ri, apply_kv, &tt);
    double decode_apply = h_now_ms() - t6;
    etcd_decoder_destroy(&dec);
    free(raw.body);

    /* Warm resync measured on a table alone: mark, put the same M (same revisions), sweep. */
    size_t n3 = tt.n_valid;
    const reg_entry_t **es = calloc(n3, sizeof(*es));
    reg_table_sorted(&tt, es, n3);
    double t2 = h_now_ms();
    reg_table_mark(&tt);
    for (size_t i = 0; i < n3; i++)
        reg_table_put(&tt, es[i]->key, strlen(es[i]->key), "", 0, es[i]->mod_revision,
                      es[i]->lease);
    size_t removed = reg_table_sweep(&tt);
    double warm_diff = h_now_ms() - t2;
    double t4 = h_now_ms();
    mesh_routes_t *routes = reg_table_build_routes(&tt);
    double build = h_now_ms() - t4;
    mesh_routes_unref(routes);
    free(es);
    reg_table_destroy(&tt);

    printf("\nmeshd registry benchmark (etcd 3.4 on loopback, 1 member)\n");
    printf("%-52s %12s\n", "measure", "value");
    printf("%-52s %12d\n", "put-to-visible samples", n);
    printf("%-52s %9.2f ms\n", "put-to-visible p50 (put issued -> view callback)", lat[n / 2]);
    printf("%-52s %9.2f ms\n", "put-to-visible p99", lat[(size_t)(n * 0.99)]);
    printf("%-52s %9.2f ms\n", "put-to-visible max", lat[n - 1]);
    printf("%-52s %12zu\n", "instances in the resync", count);
    printf("%-52s %9.1f ms\n", "full resync, cold view (range+parse+routes)", cold);
    printf("%-52s %9.1f ms\n", "full resync, every value changed", cold2);
    printf("%-52s %9.1f ms\n", "warm resync diff, nothing changed (table only)", warm_diff);
    printf("%-52s %9.1f ms\n", "routing table build", build);
    printf("%-52s %9.1f ms\n", "  of which: range round trip (etcd answer)", range_rtt);
    printf("%-52s %9.1f ms\n", "  of which: decode + parse + apply in meshd", decode_apply);
    printf("%-52s %9.0f B\n", "table bytes per instance (entries + buckets)",
           (double)table_bytes / (double)count);
    printf("%-52s %9.0f B\n", "heap growth per instance (mallinfo2)", heap_per);
    printf("(removed in warm diff: %zu; services: %zu)\n", removed, services);
    free(lat);
    rig_stop(&rig);
    rig_free_all();
    etcd_client_free(c);
    h_run_for(&loop, 10);
    h_member_kill(&ec, 0);
    return 0;
}
