/*
 * tests/unit/node/test_call_metrics.c: the merge of workers' per-call snapshots and the
 * families written from it: rows and methods matched by name whatever their position in each
 * worker, counts and histograms summed (the histogram's count equals the calls), "other"
 * kept apart and written last, instances merged by address, the latest snapshot per worker
 * replacing the one before, and output promtool would accept (one header per family).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/call_metrics.h"
#include "tests/check.h"

typedef struct {
    char *data;
    size_t len, cap;
} sink_t;

static int sink_write(void *ud, const void *p, size_t n)
{
    sink_t *s = ud;
    if (s->len + n + 1 > s->cap) {
        size_t nc = (s->len + n + 1) * 2;
        char *d = realloc(s->data, nc);
        if (!d)
            return -1;
        s->data = d;
        s->cap = nc;
    }
    memcpy(s->data + s->len, p, n);
    s->len += n;
    s->data[s->len] = '\0';
    return 0;
}

static void call(mesh_call_stats_t *cs, const char *svc, const char *m, int code, double secs)
{
    uint32_t r = mesh_cs_service(cs, svc, strlen(svc), 1);
    uint32_t c = mesh_cs_method(cs, r, m, strlen(m), NULL, 0);
    mesh_cs_record(cs, r, c, code, 100, 200, 0, secs);
}

/* Two workers that met the same services in a different order. */
static void two_workers(mesh_cs_snap_t **s1, mesh_cs_snap_t **s2)
{
    mesh_call_stats_t w1, w2;
    CHECK_EQ(mesh_cs_init(&w1), 0);
    CHECK_EQ(mesh_cs_init(&w2), 0);
    call(&w1, "pkg.A", "Get", 0, 0.001);
    call(&w1, "pkg.A", "Put", 0, 0.002);
    call(&w1, "pkg.B", "Get", 14, 0.0001);
    mesh_cs_connect_failure(&w1, "10.0.0.9:80");
    call(&w2, "pkg.B", "Get", 0, 0.003);
    call(&w2, "pkg.A", "Put", 0, 0.004);
    call(&w2, "pkg.A", "Put", 5, 0.004);
    mesh_cs_record(&w2, MESH_CS_OTHER, MESH_CS_METHODS, 12, 0, 0, 0, 0.00001);
    mesh_cs_connect_failure(&w2, "10.0.0.9:80");
    mesh_cs_connect_failure(&w2, "10.0.0.8:80");
    *s1 = mesh_cs_snapshot(&w1);
    *s2 = mesh_cs_snapshot(&w2);
    CHECK(*s1 && *s2);
    mesh_cs_free(&w1);
    mesh_cs_free(&w2);
}

static const mesh_cs_service_t *row(const node_calls_merged_t *m, const char *name)
{
    for (size_t i = 0; i < m->n_svc; i++)
        if (!strcmp(m->svc[i].name, name))
            return &m->svc[i];
    return NULL;
}

static uint64_t method_calls(const mesh_cs_service_t *r, const char *m, int code)
{
    for (uint32_t k = 0; k < r->n_methods; k++)
        if (!strcmp(r->methods[k], m))
            return r->calls[k][code];
    return (uint64_t)-1;
}

static void t_merge(void)
{
    mesh_cs_snap_t *s1, *s2;
    two_workers(&s1, &s2);
    node_calls_merged_t m;
    CHECK_EQ(node_calls_merged_init(&m), 0);
    CHECK_EQ(node_calls_merge(&m, s1), 0);
    CHECK_EQ(node_calls_merge(&m, s2), 0);
    CHECK_EQ(m.n_svc, 3);
    const mesh_cs_service_t *a = row(&m, "pkg.A"), *b = row(&m, "pkg.B");
    CHECK(a && b);
    CHECK_EQ(method_calls(a, "Get", 0), 1);
    CHECK_EQ(method_calls(a, "Put", 0), 2);
    CHECK_EQ(method_calls(a, "Put", 5), 1);
    CHECK_EQ(method_calls(b, "Get", 0), 1);
    CHECK_EQ(method_calls(b, "Get", 14), 1);
    CHECK_EQ(a->latency.count, 4);
    CHECK_EQ(b->latency.count, 2);
    CHECK_EQ(a->req_bytes, 400);
    CHECK_EQ(a->resp_bytes, 800);
    CHECK_EQ(m.svc[0].calls[MESH_CS_METHODS][12], 1);
    CHECK_EQ(m.n_inst, 3);
    for (size_t i = 1; i < m.n_inst; i++)
        CHECK_EQ(m.inst[i].connect_failures, strcmp(m.inst[i].addr, "10.0.0.9:80") ? 1 : 2);
    node_calls_merged_free(&m);
    free(s1);
    free(s2);
}

static void t_write(void)
{
    mesh_cs_snap_t *s1, *s2;
    two_workers(&s1, &s2);
    node_calls_t c;
    CHECK_EQ(node_calls_init(&c, 2), 0);
    node_calls_take(&c, 0, s1);
    node_calls_take(&c, 1, s2);
    node_calls_take(&c, 7, NULL); /* no such worker: ignored */
    sink_t out = {0};
    prom_t p;
    prom_init(&p, sink_write, &out);
    node_calls_write(&c, &p);
    CHECK(!prom_failed(&p));
    const char *t = out.data;
    CHECK_CONTAINS(t, "# TYPE meshd_calls_total counter\n");
    CHECK_CONTAINS(t, "meshd_calls_total{service=\"pkg.A\",method=\"Get\",code=\"OK\"} 1\n");
    CHECK_CONTAINS(t, "meshd_calls_total{service=\"pkg.A\",method=\"Put\",code=\"OK\"} 2\n");
    CHECK_CONTAINS(t, "meshd_calls_total{service=\"pkg.A\",method=\"Put\",code=\"NOT_FOUND\"} 1\n");
    CHECK_CONTAINS(t,
                   "meshd_calls_total{service=\"pkg.B\",method=\"Get\",code=\"UNAVAILABLE\"} 1\n");
    CHECK_CONTAINS(
        t, "meshd_calls_total{service=\"other\",method=\"other\",code=\"UNIMPLEMENTED\"} 1\n");
    CHECK(!strstr(t, "code=\"ABORTED\"")); /* zero series are left out */
    /* services in name order, "other" last */
    CHECK(strstr(t, "service=\"pkg.A\"") < strstr(t, "service=\"pkg.B\""));
    CHECK(strstr(t, "meshd_calls_total{service=\"pkg.B\"") <
          strstr(t, "meshd_calls_total{service=\"other\""));
    CHECK_CONTAINS(t, "# TYPE meshd_call_duration_seconds histogram\n");
    CHECK_CONTAINS(t, "meshd_call_duration_seconds_bucket{service=\"pkg.A\",le=\"0.001\"} 1\n");
    CHECK_CONTAINS(t, "meshd_call_duration_seconds_bucket{service=\"pkg.A\",le=\"+Inf\"} 4\n");
    CHECK_CONTAINS(t, "meshd_call_duration_seconds_count{service=\"pkg.A\"} 4\n");
    CHECK_CONTAINS(t, "meshd_call_duration_seconds_count{service=\"pkg.B\"} 2\n");
    CHECK_CONTAINS(t, "meshd_request_bytes_total{service=\"pkg.A\"} 400\n");
    CHECK_CONTAINS(t, "meshd_response_bytes_total{service=\"pkg.B\"} 400\n");
    CHECK_CONTAINS(t, "meshd_retries_total{service=\"pkg.A\"} 0\n");
    CHECK_CONTAINS(t, "meshd_upstream_connect_failures_total{upstream=\"10.0.0.8:80\"} 1\n");
    CHECK_CONTAINS(t, "meshd_upstream_connect_failures_total{upstream=\"10.0.0.9:80\"} 2\n");
    /* each family once */
    const char *fams[] = {"meshd_calls_total",         "meshd_call_duration_seconds",
                          "meshd_request_bytes_total", "meshd_response_bytes_total",
                          "meshd_retries_total",       "meshd_upstream_connect_failures_total"};
    for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
        char h[128];
        snprintf(h, sizeof(h), "# TYPE %s ", fams[i]);
        const char *first = strstr(t, h);
        CHECK(first && !strstr(first + 1, h));
    }

    /* a newer snapshot of worker 0 replaces its older one (snapshots are cumulative) */
    mesh_call_stats_t w;
    CHECK_EQ(mesh_cs_init(&w), 0);
    for (int i = 0; i < 5; i++)
        call(&w, "pkg.A", "Get", 0, 0.001);
    node_calls_take(&c, 0, mesh_cs_snapshot(&w));
    mesh_cs_free(&w);
    out.len = 0;
    prom_init(&p, sink_write, &out);
    node_calls_write(&c, &p);
    t = out.data;
    CHECK_CONTAINS(t, "meshd_calls_total{service=\"pkg.A\",method=\"Get\",code=\"OK\"} 5\n");
    CHECK_CONTAINS(t, "meshd_call_duration_seconds_count{service=\"pkg.A\"} 7\n");
    free(out.data);
    node_calls_destroy(&c);
}

/* Methods beyond the bound in the merged row count as "other", nothing is lost. */
static void t_merged_method_bound(void)
{
    node_calls_merged_t m;
    CHECK_EQ(node_calls_merged_init(&m), 0);
    for (int wk = 0; wk < 2; wk++) {
        mesh_call_stats_t w;
        CHECK_EQ(mesh_cs_init(&w), 0);
        char name[16];
        for (int i = 0; i < MESH_CS_METHODS; i++) {
            snprintf(name, sizeof(name), "W%dM%d", wk, i);
            call(&w, "pkg.A", name, 0, 0.001);
        }
        mesh_cs_snap_t *s = mesh_cs_snapshot(&w);
        CHECK_EQ(node_calls_merge(&m, s), 0);
        free(s);
        mesh_cs_free(&w);
    }
    const mesh_cs_service_t *a = row(&m, "pkg.A");
    CHECK(a);
    CHECK_EQ(a->n_methods, MESH_CS_METHODS);
    CHECK_EQ(a->calls[MESH_CS_METHODS][0], MESH_CS_METHODS);
    uint64_t sum = 0;
    for (int k = 0; k <= MESH_CS_METHODS; k++)
        sum += a->calls[k][0];
    CHECK_EQ(sum, 2 * MESH_CS_METHODS);
    CHECK_EQ(a->latency.count, 2 * MESH_CS_METHODS);
    node_calls_merged_free(&m);
}

int main(void)
{
    RUN(t_merge);
    RUN(t_write);
    RUN(t_merged_method_bound);
    return 0;
}
