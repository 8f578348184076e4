/*
 * tests/integration/gateway_cache/gw_cache_probe.c: runs the gateway's descriptor cache
 * (gateway/schema_cache.h) on a real libuv loop with the real gRPC seam (transport/rpc_grpc.c),
 * driven by lines on stdin, for the integration tests and the fetch-time benchmark.
 *
 * Commands (one per line):
 *   table SERVICE ADDR VERSION [ADDR VERSION ...]   the service's instances ("-": no version)
 *   remove SERVICE                                  the service left the table
 *   stats                                           prints the admin stats
 *   quit
 * Output, one JSON object per line on stdout:
 *   {"event":"ready"}
 *   {"event":"pool","generation":N,"files":N,"methods":["/pkg.Svc/M",...]}
 *   {"event":"stats", ...gw_cache_stats_json()...}
 * Options: --fetch-timeout-ms N, --grace-ms N, --backoff-min-ms N.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/exec.h"
#include "gateway/schema_cache.h"
#include "registry/reg_msgs.h"
#include "registry/route_table.h"

typedef struct probe {
    mesh_exec_t *exec;
    gw_cache_args_t args;
    mesh_actor_id_t id;
    mesh_routes_t *table; /* the reader thread's */
    atomic_int reader_done;
} probe_t;

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) {
        printf("%s\n", s);
        fflush(stdout);
        free(s);
    }
    json_decref(o);
}

static void on_pool(void *ctx, const mesh_desc_pool_t *p, uint64_t gen)
{
    (void)ctx;
    json_t *methods = json_array();
    for (size_t i = 0; i < mesh_desc_pool_service_count(p); i++) {
        const mesh_desc_service_t *s = mesh_desc_pool_service(p, i);
        for (size_t k = 0; k < s->n_methods; k++)
            json_array_append_new(methods, json_string(s->methods[k].path));
    }
    print_json(json_pack("{s:s, s:I, s:I, s:o}", "event", "pool", "generation", (json_int_t)gen,
                         "files", (json_int_t)mesh_desc_pool_file_count(p), "methods", methods));
}

static void print_stats(void *arg)
{
    probe_t *pr = arg;
    json_t *o = gw_cache_stats_json(pr->args.live);
    if (o) {
        json_object_set_new(o, "event", json_string("stats"));
        print_json(o);
    }
}

static void print_ready(void *arg)
{
    (void)arg;
    print_json(json_pack("{s:s}", "event", "ready"));
}

/* Sets (n > 0) or removes one service in the next table and sends it to the cache. */
static void set_service(probe_t *pr, const char *name, char **addrs, char **versions, size_t n)
{
    mesh_route_edit_t e = {name, NULL};
    if (n) {
        mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
        for (size_t i = 0; b && i < n; i++)
            if (mesh_route_svc_builder_add(b, addrs[i], NULL, 0, MESH_ROUTE_STATIC, "", "", 1) ||
                mesh_route_svc_builder_set_version(b, strcmp(versions[i], "-") == 0 ? ""
                                                                                    : versions[i]))
                fprintf(stderr, "gw_cache_probe: bad instance %s\n", addrs[i]);
        if (!b || mesh_route_svc_builder_finish(b, name, &e.svc) < 0) {
            fprintf(stderr, "gw_cache_probe: out of memory\n");
            exit(1);
        }
        mesh_route_svc_builder_free(b);
    }
    mesh_routes_t *t = mesh_routes_update(pr->table, &e, 1);
    if (!t)
        exit(1);
    mesh_routes_unref(pr->table);
    pr->table = t;
    if (mesh_exec_send_ptr(pr->exec, pr->id, REG_MSG_ROUTES, mesh_routes_ref(t),
                           (void (*)(void *))mesh_routes_unref) != 0)
        fprintf(stderr, "gw_cache_probe: the cache refused the table\n");
}

static void *reader(void *arg)
{
    probe_t *pr = arg;
    char line[4096];
    while (fgets(line, sizeof(line), stdin)) {
        char *words[64];
        size_t n = 0;
        for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w && n < 64;
             w = strtok_r(NULL, " \t\r\n", &save))
            words[n++] = w;
        if (!n)
            continue;
        if (strcmp(words[0], "quit") == 0)
            break;
        if (strcmp(words[0], "stats") == 0)
            mesh_exec_post(pr->exec, 0, print_stats, pr);
        else if (strcmp(words[0], "table") == 0 && n >= 4 && n % 2 == 0) {
            char *addrs[32], *vers[32];
            size_t k = 0;
            for (size_t i = 2; i + 1 < n && k < 32; i += 2, k++) {
                addrs[k] = words[i];
                vers[k] = words[i + 1];
            }
            set_service(pr, words[1], addrs, vers, k);
        } else if (strcmp(words[0], "remove") == 0 && n == 2)
            set_service(pr, words[1], NULL, NULL, 0);
        else
            fprintf(stderr, "gw_cache_probe: unknown command %s\n", words[0]);
    }
    atomic_store(&pr->reader_done, 1);
    mesh_exec_shutdown(pr->exec);
    return NULL;
}

int main(int argc, char **argv)
{
    static probe_t pr;
    pr.args.rpc_new = gw_cache_rpc_grpc;
    pr.args.on_pool = on_pool;
    pr.args.ctx = &pr;
    for (int i = 1; i + 1 < argc; i += 2) {
        unsigned long long v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--fetch-timeout-ms") == 0)
            pr.args.fetch_timeout_ms = v;
        else if (strcmp(argv[i], "--grace-ms") == 0)
            pr.args.grace_ms = v;
        else if (strcmp(argv[i], "--backoff-min-ms") == 0)
            pr.args.backoff_min_ms = v;
        else {
            fprintf(stderr, "usage: gw_cache_probe [--fetch-timeout-ms N] [--grace-ms N] "
                            "[--backoff-min-ms N] < commands\n");
            return 2;
        }
    }
    mesh_exec_opts_t o = {.workers = -1};
    pr.exec = mesh_exec_new(&o);
    if (!pr.exec || mesh_exec_spawn(pr.exec, &gw_cache_actor_ops, &pr.args, NULL, &pr.id) != 0)
        return 1;
    mesh_exec_post(pr.exec, 0, print_ready, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, reader, &pr) != 0)
        return 1;
    mesh_exec_run(pr.exec);
    if (!atomic_load(&pr.reader_done)) { /* stopped by a signal: the reader sits in fgets */
        fflush(stdout);
        _exit(0);
    }
    pthread_join(th, NULL);
    mesh_exec_free(pr.exec);
    mesh_routes_unref(pr.table);
    return 0;
}
