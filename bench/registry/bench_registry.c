/*
 * bench/registry/bench_registry.c: the registry at scale, measured the way a user runs it.
 *
 * Default mode (`proxy`): a real etcd 3.4 on loopback holding M instances of S services, a
 * real `meshd proxy --etcd ... --snapshot-file ...` process (one worker per core, default log
 * level) watching them, and instances coming and going at R changes per second (half puts of
 * new instances, half deletes of existing ones). It prints:
 *   1. RSS per instance: (RSS of the loaded proxy after the churn - RSS of the same proxy
 *      watching an empty prefix) / M; VmRSS and RssAnon.
 *   2. CPU of the whole proxy process over T seconds of churn (every thread, summed from
 *      /proc/PID/task/TID/schedstat), as % of one core; the control thread and the rest apart.
 *   3. put-to-routable: P probes with the churn running, each a put of a new service whose one
 *      instance is a closed loopback port; the time from issuing the put until a call on each
 *      of C client connections (spread over the workers by SO_REUSEPORT) is routed (the proxy
 *      answers "meshd: ... no live instance" instead of UNIMPLEMENTED "no route"). Polled
 *      every 2 ms. p50 / p99 / max.
 *
 * `view` mode: the registry actor's view alone in this process (put-to-visible in the actor's
 * view hook, full resync of M instances, table memory), as the registry's first benchmark
 * measured.
 *
 * Usage: bench_registry [proxy] [--instances M] [--services S] [--rate R] [--seconds T]
 *                       [--probes P] [--conns C] [--workers W] [--meshd PATH] [--hold S]
 * (--hold keeps the proxy running S seconds after the measurements, to inspect it.)
 *        bench_registry view [N=1000] [M=10000]
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/etcd_codec.h"
#include "registry/instance.h"
#include "registry/view_table.h"
#include "tests/integration/registry/etcd_harness.h"
#include "tests/integration/registry/registry_rig.h"
#include "transport/grpc_client.h"

#define P "meshd/services"

static uv_loop_t loop;

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int done_flag(void *ud)
{
    return *(int *)ud != 0;
}

static void on_done(void *ud, int err, const char *body, size_t len)
{
    if (ud)
        *(int *)ud = err == ETCD_OK ? 1 : -1;
}

/* Instance i: address 10.a.b.c:50051, four methods, a node, a zone and a version. */
static void instance_addr(int i, char *addr, size_t cap)
{
    snprintf(addr, cap, "10.%d.%d.%d:50051", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static char *instance_value(int i, const char *version)
{
    static const char *const methods[] = {"Get", "List", "Create", "Delete"};
    char addr[32], node[32];
    instance_addr(i, addr, sizeof(addr));
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

static void instance_key(int i, int services, char *key, size_t cap)
{
    char addr[32];
    instance_addr(i, addr, sizeof(addr));
    snprintf(key, cap, P "/bench.Service%05d/%s", i % services, addr);
}

/* Writes instances [0, m) of `services` services in txns of 100 puts. */
static void populate(etcd_client_t *c, int m, int services, const char *version)
{
    for (int base = 0; base < m; base += 100) {
        size_t cap = 100 * 1024, len = 0;
        char *body = malloc(cap);
        len += (size_t)snprintf(body, cap, "{\"success\":[");
        for (int i = base; i < base + 100 && i < m; i++) {
            char key[128];
            char *v = instance_value(i, version);
            instance_key(i, services, key, sizeof(key));
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
            fprintf(stderr, "bench_registry: populate failed\n");
            exit(1);
        }
    }
}

/* Puts key=value without waiting; the answer only decrements *outstanding. */
static void on_async_done(void *ud, int err, const char *body, size_t len)
{
    (*(int *)ud)--;
    if (err != ETCD_OK)
        fprintf(stderr, "bench_registry: etcd write failed: %s\n", etcd_strerror(err));
}

static void put_async(etcd_client_t *c, const char *key, const char *val, int *outstanding)
{
    char *body = etcd_req_put(key, val, strlen(val), 0);
    (*outstanding)++;
    if (!etcd_client_post(c, "/v3/kv/put", body, on_async_done, outstanding))
        (*outstanding)--;
    free(body);
}

static void delete_async(etcd_client_t *c, const char *key, int *outstanding)
{
    char *body = etcd_req_delete(key);
    (*outstanding)++;
    if (!etcd_client_post(c, "/v3/kv/deleterange", body, on_async_done, outstanding))
        (*outstanding)--;
    free(body);
}

/* ---- churn: instances coming and going ------------------------------------------------------ */

typedef struct churn {
    etcd_client_t *c;
    int services;
    int *live; /* ids of the instances in etcd */
    int n_live, cap;
    int next_id;
    int outstanding;
    uint64_t ops;
    uint32_t rng;
    uv_timer_t timer;
} churn_t;

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void churn_tick(uv_timer_t *t)
{
    churn_t *ch = t->data;
    if (ch->outstanding > 200)
        return; /* etcd is behind: do not pile up */
    char key[128];
    if (ch->ops++ % 2 == 0 || ch->n_live == 0) {
        int id = ch->next_id++;
        instance_key(id, ch->services, key, sizeof(key));
        char *v = instance_value(id, "1.0");
        put_async(ch->c, key, v, &ch->outstanding);
        free(v);
        ch->live[ch->n_live++] = id;
    } else {
        int k = (int)(rnd(&ch->rng) % (uint32_t)ch->n_live);
        instance_key(ch->live[k], ch->services, key, sizeof(key));
        delete_async(ch->c, key, &ch->outstanding);
        ch->live[k] = ch->live[--ch->n_live];
    }
}

static void churn_start(churn_t *ch, etcd_client_t *c, int m, int services, double rate)
{
    memset(ch, 0, sizeof(*ch));
    ch->c = c;
    ch->services = services;
    ch->cap = m + 16;
    ch->live = malloc((size_t)ch->cap * sizeof(int));
    for (int i = 0; i < m; i++)
        ch->live[i] = i;
    ch->n_live = m;
    ch->next_id = m;
    ch->rng = 2463534242u;
    uv_timer_init(&loop, &ch->timer);
    ch->timer.data = ch;
    uint64_t every = (uint64_t)(1000.0 / rate + 0.5);
    uv_timer_start(&ch->timer, churn_tick, every, every ? every : 1);
}

/* ---- the meshd process ---------------------------------------------------------------------- */

static pid_t spawn_meshd(const char *bin, const char *dir, const char *tag, int port,
                         const char *endpoints, const char *prefix, int workers)
{
    char listen[64], log[600], snap[600], wk[16];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(log, sizeof(log), "%s/meshd-%s.log", dir, tag);
    snprintf(snap, sizeof(snap), "%s/registry-%s.snapshot", dir, tag);
    snprintf(wk, sizeof(wk), "%d", workers);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "proxy", "--listen", listen, "--etcd", endpoints, "--etcd-prefix", prefix,
              "--snapshot-file", snap, "--workers", wk, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        h_track_pid(pid);
    return pid;
}

/* CPU time (ns, from schedstat) of every thread of a process. */
typedef struct cpu_sample {
    int n;
    int tid[64];
    uint64_t ns[64];
} cpu_sample_t;

static void proc_cpu(pid_t pid, cpu_sample_t *out)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    out->n = 0;
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && out->n < 64) {
        if (de->d_name[0] == '.')
            continue;
        int tid = atoi(de->d_name);
        char sp[160];
        snprintf(sp, sizeof(sp), "/proc/%d/task/%d/schedstat", (int)pid, tid);
        FILE *f = fopen(sp, "r");
        unsigned long long ns = 0;
        if (f) {
            if (fscanf(f, "%llu", &ns) != 1)
                ns = 0;
            fclose(f);
        }
        out->tid[out->n] = tid;
        out->ns[out->n++] = ns;
    }
    closedir(d);
}

/* CPU used between two samples, in ns: all threads, and the main (control) thread. */
static uint64_t cpu_delta(const cpu_sample_t *a, const cpu_sample_t *b, pid_t pid, uint64_t *ctl)
{
    uint64_t sum = 0;
    *ctl = 0;
    for (int i = 0; i < b->n; i++) {
        uint64_t before = 0;
        for (int j = 0; j < a->n; j++)
            if (a->tid[j] == b->tid[i])
                before = a->ns[j];
        sum += b->ns[i] - before;
        if (b->tid[i] == pid)
            *ctl = b->ns[i] - before;
    }
    return sum;
}

/* Prints each thread's share of one core between two samples (threads in creation order:
 * the control loop, the workers, then libuv's pool threads). */
static void print_threads(const cpu_sample_t *a, const cpu_sample_t *b, double wall_ms)
{
    for (int i = 0; i < b->n; i++) {
        uint64_t before = 0;
        for (int j = 0; j < a->n; j++)
            if (a->tid[j] == b->tid[i])
                before = a->ns[j];
        double pct = (double)(b->ns[i] - before) / 1e6 / wall_ms * 100.0;
        if (pct >= 0.01)
            printf("    thread %-8d %43.2f %%\n", b->tid[i], pct);
    }
}

/* A field of /proc/PID/status in kB ("VmRSS", "RssAnon"), or -1. */
static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* ---- probes: is a new service routable on every connection? ---------------------------------- */

typedef struct prober prober_t;

typedef struct probe_conn {
    prober_t *pr;
    mesh_grpc_client_t *client;
    int busy;
    int routed;
    double routed_at;
} probe_conn_t;

struct prober {
    probe_conn_t *conns;
    int n;
    char path[128];
    int n_routed;
    int errors;
    uint64_t calls;
    uv_timer_t timer;
};

static void probe_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    probe_conn_t *pc = ud;
    pc->busy = 0;
    if (status == 12) /* UNIMPLEMENTED: "meshd: no route for ..." */
        return;
    if (status == 14 && strncmp(message, "meshd:", 6) != 0)
        return; /* our own connection failed: the proxy is not listening yet */
    if (status == 14 && strncmp(message, "meshd:", 6) == 0) {
        if (!pc->routed) {
            pc->routed = 1;
            pc->routed_at = h_now_ms();
            pc->pr->n_routed++;
        }
        return;
    }
    pc->pr->errors++;
    fprintf(stderr, "bench_registry: probe call ended %d %s\n", status, message);
}

static const mesh_grpc_call_ops_t probe_ops = {.on_end = probe_end};

static void probe_poll(uv_timer_t *t)
{
    prober_t *pr = t->data;
    for (int i = 0; i < pr->n; i++) {
        probe_conn_t *pc = &pr->conns[i];
        if (pc->routed || pc->busy)
            continue;
        pc->busy = 1;
        pr->calls++;
        if (!mesh_grpc_unary(pc->client, pr->path, NULL, 0, 5000, &probe_ops, pc))
            pc->busy = 0;
    }
}

static void prober_init(prober_t *pr, int n, int port)
{
    memset(pr, 0, sizeof(*pr));
    pr->n = n;
    pr->conns = calloc((size_t)n, sizeof(*pr->conns));
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    for (int i = 0; i < n; i++) {
        mesh_grpc_client_cfg_t cfg = {.addr = addr};
        pr->conns[i].pr = pr;
        pr->conns[i].client = mesh_grpc_client_new(&loop, &cfg);
    }
    uv_timer_init(&loop, &pr->timer);
    pr->timer.data = pr;
}

static int all_routed(void *ud)
{
    prober_t *pr = ud;
    return pr->n_routed == pr->n || pr->errors > 0;
}

/* Polls `path` on every connection every `every_ms`; returns 1 when all are routed. */
static int probe_wait(prober_t *pr, const char *service, uint64_t every_ms, uint64_t timeout_ms)
{
    snprintf(pr->path, sizeof(pr->path), "/%s/Echo", service);
    pr->n_routed = 0;
    for (int i = 0; i < pr->n; i++)
        pr->conns[i].routed = 0;
    probe_poll(&pr->timer);
    uv_timer_start(&pr->timer, probe_poll, every_ms, every_ms);
    int ok = h_wait(&loop, all_routed, pr, timeout_ms) && pr->errors == 0;
    uv_timer_stop(&pr->timer);
    return ok;
}

static double prober_last(const prober_t *pr)
{
    double last = 0;
    for (int i = 0; i < pr->n; i++)
        if (pr->conns[i].routed_at > last)
            last = pr->conns[i].routed_at;
    return last;
}

static int idle(void *ud)
{
    prober_t *pr = ud;
    for (int i = 0; i < pr->n; i++)
        if (pr->conns[i].busy)
            return 0;
    return 1;
}

/* Puts a probe service pointing at a closed loopback port; returns put-to-routable in ms. */
static double probe_once(etcd_client_t *c, prober_t *pr, const char *service, uint64_t every_ms,
                         int *outstanding)
{
    char key[160], addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", h_free_port());
    snprintf(key, sizeof(key), P "/%s/%s", service, addr);
    reg_instance_t in = {.addr = addr, .node = "probe", .weight = 1};
    char *val = reg_value_format(&in);
    h_wait(&loop, idle, pr, 5000);
    double t0 = h_now_ms();
    put_async(c, key, val, outstanding);
    free(val);
    int ok = probe_wait(pr, service, every_ms, 120000);
    double lat = ok ? prober_last(pr) - t0 : -1;
    delete_async(c, key, outstanding);
    return lat;
}

typedef struct opts {
    int instances, services, probes, conns, workers;
    double rate, seconds, hold;
    const char *meshd;
} opts_t;

static int run_proxy(const opts_t *o)
{
    mesh_log_init("bench", MESH_LOG_WARN, MESH_LOG_FORMAT_TEXT);
    uv_loop_init(&loop);
    signal(SIGPIPE, SIG_IGN);
    const char *dir = h_tmpdir("bench-registry");
    etcd_cluster_t ec;
    if (!dir || h_cluster_start(&ec, 1) != 0) {
        fprintf(stderr, "bench_registry: cannot start etcd\n");
        return 1;
    }
    etcd_client_cfg_t cc = {.endpoints = ec.endpoints};
    etcd_client_t *c = etcd_client_new(&loop, &cc);
    int outstanding = 0;

    /* Baseline: the same proxy watching an empty prefix (one probe instance). */
    int port0 = h_free_port();
    pid_t base =
        spawn_meshd(o->meshd, dir, "empty", port0, ec.endpoints, "bench/empty", o->workers);
    prober_t pr0;
    prober_init(&pr0, 1, port0);
    {
        char key[160], addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", h_free_port());
        snprintf(key, sizeof(key), "bench/empty/bench.Probe/%s", addr);
        reg_instance_t in = {.addr = addr, .node = "probe", .weight = 1};
        char *val = reg_value_format(&in);
        put_async(c, key, val, &outstanding);
        free(val);
    }
    if (!probe_wait(&pr0, "bench.Probe", 20, 30000)) {
        fprintf(stderr, "bench_registry: the baseline proxy never routed its probe\n");
        return 1;
    }
    h_run_for(&loop, 1000);
    long rss0 = proc_status_kb(base, "VmRSS"), anon0 = proc_status_kb(base, "RssAnon");
    h_kill_pid(base);

    /* The registry: M instances of S services, then the proxy. */
    double tp = h_now_ms();
    populate(c, o->instances, o->services, "1.0");
    double populate_ms = h_now_ms() - tp;
    int port = h_free_port();
    double ts = h_now_ms();
    pid_t pid = spawn_meshd(o->meshd, dir, "main", port, ec.endpoints, P, o->workers);
    prober_t pr;
    prober_init(&pr, o->conns, port);
    double load_ms = probe_once(c, &pr, "bench.Probe0", 50, &outstanding);
    if (load_ms < 0) {
        fprintf(stderr, "bench_registry: the proxy never loaded the registry\n");
        return 1;
    }
    load_ms = h_now_ms() - ts;
    long rss_loaded = proc_status_kb(pid, "VmRSS");

    /* Churn: warm-up, then the CPU window (churn only), then the probes (churn running). */
    churn_t ch;
    churn_start(&ch, c, o->instances, o->services, o->rate);
    h_run_for(&loop, 3000);
    cpu_sample_t c0, c1;
    proc_cpu(pid, &c0);
    uint64_t ops0 = ch.ops;
    double w0 = h_now_ms();
    h_run_for(&loop, (uint64_t)(o->seconds * 1000));
    double wall = h_now_ms() - w0;
    proc_cpu(pid, &c1);
    uint64_t ctl;
    double changes_per_s = (double)(ch.ops - ops0) * 1000.0 / wall;
    double cpu_pct = (double)cpu_delta(&c0, &c1, pid, &ctl) / 1e6 / wall * 100.0;
    double ctl_pct = (double)ctl / 1e6 / wall * 100.0;
    long rss1 = proc_status_kb(pid, "VmRSS"), anon1 = proc_status_kb(pid, "RssAnon");
    long hwm = proc_status_kb(pid, "VmHWM");

    double *lat = calloc((size_t)o->probes, sizeof(double));
    cpu_sample_t p0s, p1s;
    proc_cpu(pid, &p0s);
    double p0 = h_now_ms();
    int n = 0;
    for (int i = 0; i < o->probes; i++) {
        char svc[64];
        snprintf(svc, sizeof(svc), "bench.Probe%d", i + 1);
        double l = probe_once(c, &pr, svc, 2, &outstanding);
        if (l < 0) {
            fprintf(stderr, "bench_registry: probe %d never became routable\n", i + 1);
            break;
        }
        lat[n++] = l;
        h_run_for(&loop, 20);
    }
    double pwall = h_now_ms() - p0;
    proc_cpu(pid, &p1s);
    uint64_t pctl;
    uv_timer_stop(&ch.timer);
    qsort(lat, (size_t)n, sizeof(double), cmp_d);

    printf("\nmeshd registry at scale: `meshd proxy --etcd --snapshot-file --workers %d`%s\n",
           o->workers, o->workers ? "" : " (one worker per core)");
    printf("%-58s %14s\n", "measure", "value");
    printf("%-58s %14d\n", "instances", o->instances);
    printf("%-58s %14d\n", "services", o->services);
    printf("%-58s %11.1f s\n", "populate etcd (txns of 100 puts)", populate_ms / 1000);
    printf("%-58s %11.1f s\n", "proxy start -> every instance routable", load_ms / 1000);
    printf("%-58s %12.1f /s\n", "changes (instances put or deleted) in the CPU window",
           changes_per_s);
    printf("%-58s %12.2f %%\n", "CPU of the whole proxy process, % of one core", cpu_pct);
    printf("%-58s %12.2f %%\n", "  of which the control thread", ctl_pct);
    printf("%-58s %12.2f %%\n", "  of which the workers (and other threads)", cpu_pct - ctl_pct);
    print_threads(&c0, &c1, wall);
    printf("%-58s %11ld kB\n", "RSS of a proxy watching an empty prefix", rss0);
    printf("%-58s %11ld kB\n", "RSS loaded, before churn", rss_loaded);
    printf("%-58s %11ld kB\n", "RSS after churn", rss1);
    printf("%-58s %11ld kB\n", "peak RSS (VmHWM: the initial range is parsed whole)", hwm);
    printf("%-58s %12.0f B\n", "RSS per instance ((after churn - empty) / instances)",
           (double)(rss1 - rss0) * 1024.0 / o->instances);
    printf("%-58s %12.0f B\n", "  anonymous RSS per instance",
           (double)(anon1 - anon0) * 1024.0 / o->instances);
    if (n > 0) {
        printf("%-58s %14d\n", "put-to-routable samples (churn running)", n);
        printf("%-58s %11.2f ms\n", "put-to-routable p50", lat[n / 2]);
        printf("%-58s %11.2f ms\n", "put-to-routable p99", lat[(size_t)(n * 0.99)]);
        printf("%-58s %11.2f ms\n", "put-to-routable max", lat[n - 1]);
        printf("%-58s %12.2f %%\n", "CPU of the proxy during the probes (with probe calls)",
               (double)cpu_delta(&p0s, &p1s, pid, &pctl) / 1e6 / pwall * 100.0);
        printf("%-58s %14" PRIu64 "\n", "probe calls made", pr.calls);
    }
    free(lat);
    if (o->hold > 0) {
        printf("holding meshd (pid %d, log %s/meshd-main.log) for %.0f s\n", (int)pid, dir,
               o->hold);
        fflush(stdout);
        h_run_for(&loop, (uint64_t)(o->hold * 1000));
    }
    h_kill_pid(pid);
    for (int i = 0; i < pr.n; i++)
        mesh_grpc_client_free(pr.conns[i].client);
    for (int i = 0; i < pr0.n; i++)
        mesh_grpc_client_free(pr0.conns[i].client);
    uv_close((uv_handle_t *)&ch.timer, NULL);
    uv_close((uv_handle_t *)&pr.timer, NULL);
    uv_close((uv_handle_t *)&pr0.timer, NULL);
    etcd_client_free(c);
    h_run_for(&loop, 10);
    free(ch.live);
    free(pr.conns);
    free(pr0.conns);
    h_member_kill(&ec, 0);
    return n == o->probes ? 0 : 1;
}

/* ---- view mode: the registry actor's view, in this process ----------------------------------- */

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

static int run_view(int n, int m)
{
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
    populate(c, m, 200, "1.0");
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
    populate(c, m, 200, "2.0");
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

    printf("\nmeshd registry view benchmark (etcd 3.4 on loopback, 1 member)\n");
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

static void usage(void)
{
    fprintf(stderr, "usage: bench_registry [proxy] [--instances M] [--services S] [--rate R]\n"
                    "                      [--seconds T] [--probes P] [--conns C] [--workers W]\n"
                    "                      [--meshd PATH] [--hold S]\n"
                    "       bench_registry view [N=1000] [M=10000]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "view") == 0)
        return run_view(argc > 2 ? atoi(argv[2]) : 1000, argc > 3 ? atoi(argv[3]) : 10000);
    opts_t o = {.instances = 10000,
                .services = 1000,
                .rate = 70,
                .seconds = 10,
                .probes = 200,
                .conns = 8,
                .workers = 0,
                .meshd = MESHD_BIN};
    int i = argc > 1 && strcmp(argv[1], "proxy") == 0 ? 2 : 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--instances") == 0)
            o.instances = atoi(v);
        else if (strcmp(a, "--services") == 0)
            o.services = atoi(v);
        else if (strcmp(a, "--rate") == 0)
            o.rate = atof(v);
        else if (strcmp(a, "--seconds") == 0)
            o.seconds = atof(v);
        else if (strcmp(a, "--probes") == 0)
            o.probes = atoi(v);
        else if (strcmp(a, "--conns") == 0)
            o.conns = atoi(v);
        else if (strcmp(a, "--workers") == 0)
            o.workers = atoi(v);
        else if (strcmp(a, "--meshd") == 0)
            o.meshd = v;
        else if (strcmp(a, "--hold") == 0)
            o.hold = atof(v);
        else
            usage();
    }
    if (o.instances < 1 || o.services < 1 || o.rate <= 0 || o.seconds <= 0 || o.probes < 1 ||
        o.conns < 1)
        usage();
    return run_proxy(&o);
}
