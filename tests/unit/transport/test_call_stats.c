/*
 * tests/unit/transport/test_call_stats.c: a worker's per-call table: rows by service name
 * (only the names the caller lets in; "other" beyond the bound), method columns (the known
 * list, every method when none is known, "other" beyond the bound), counts by status, bytes,
 * retries and the latency histogram, connect failures per instance, and snapshots that copy
 * everything and change only when the table did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "transport/call_stats.h"

static void t_rows(void)
{
    mesh_call_stats_t cs;
    CHECK_EQ(mesh_cs_init(&cs), 0);
    CHECK_STR(cs.svc[MESH_CS_OTHER]->name, "other");
    /* a name the caller does not let in counts as "other" */
    CHECK_EQ(mesh_cs_service(&cs, "pkg.Unknown", 11, 0), MESH_CS_OTHER);
    uint32_t a = mesh_cs_service(&cs, "pkg.A/ignored", 5, 1);
    CHECK(a != MESH_CS_OTHER);
    CHECK_STR(cs.svc[a]->name, "pkg.A");
    CHECK_EQ(mesh_cs_service(&cs, "pkg.A", 5, 0), a); /* found again without inserting */
    uint32_t b = mesh_cs_service(&cs, "pkg.B", 5, 1);
    CHECK(b != a && b != MESH_CS_OTHER);
    CHECK_EQ(mesh_cs_service(&cs, "", 0, 1), MESH_CS_OTHER);
    char longname[MESH_CS_NAME + 8];
    memset(longname, 'x', sizeof(longname));
    CHECK_EQ(mesh_cs_service(&cs, longname, sizeof(longname), 1), MESH_CS_OTHER);
    /* the bound: MESH_CS_SERVICES named rows, then "other" */
    char name[32];
    for (int i = 0; i < MESH_CS_SERVICES + 20; i++) {
        int n = snprintf(name, sizeof(name), "svc.N%d", i);
        mesh_cs_service(&cs, name, (size_t)n, 1);
    }
    CHECK_EQ(cs.n_svc, MESH_CS_SERVICES + 1);
    CHECK_EQ(mesh_cs_service(&cs, "svc.Late", 8, 1), MESH_CS_OTHER);
    CHECK_EQ(mesh_cs_service(&cs, "pkg.B", 5, 1), b); /* earlier rows still found */
    for (int i = 0; i < MESH_CS_SERVICES - 2; i++) {
        int n = snprintf(name, sizeof(name), "svc.N%d", i);
        uint32_t r = mesh_cs_service(&cs, name, (size_t)n, 0);
        CHECK(r != MESH_CS_OTHER);
        CHECK_STR(cs.svc[r]->name, name);
    }
    mesh_cs_free(&cs);
}

static void t_methods(void)
{
    mesh_call_stats_t cs;
    CHECK_EQ(mesh_cs_init(&cs), 0);
    uint32_t a = mesh_cs_service(&cs, "pkg.A", 5, 1);
    static const char *const known[] = {"Get", "List", "Put"};
    uint32_t get = mesh_cs_method(&cs, a, "Get", 3, known, 3);
    CHECK(get < MESH_CS_METHODS);
    CHECK_EQ(mesh_cs_method(&cs, a, "Get", 3, known, 3), get);
    CHECK_EQ(mesh_cs_method(&cs, a, "Gets", 4, known, 3), MESH_CS_METHODS); /* not listed */
    CHECK_EQ(mesh_cs_method(&cs, a, "Ge", 2, known, 3), MESH_CS_METHODS);
    CHECK_EQ(mesh_cs_method(&cs, a, "Delete", 6, known, 3), MESH_CS_METHODS);
    uint32_t put = mesh_cs_method(&cs, a, "Put", 3, known, 3);
    CHECK(put < MESH_CS_METHODS && put != get);
    CHECK_STR(cs.svc[a]->methods[put], "Put");
    /* no list known: every method takes a column, up to the bound */
    uint32_t b = mesh_cs_service(&cs, "pkg.B", 5, 1);
    char m[32];
    for (int i = 0; i < MESH_CS_METHODS; i++) {
        int n = snprintf(m, sizeof(m), "M%d", i);
        CHECK_EQ(mesh_cs_method(&cs, b, m, (size_t)n, NULL, 0), i);
    }
    CHECK_EQ(mesh_cs_method(&cs, b, "Late", 4, NULL, 0), MESH_CS_METHODS);
    CHECK_EQ(mesh_cs_method(&cs, b, "M7", 2, NULL, 0), 7);
    /* the "other" row has the "other" column only */
    CHECK_EQ(mesh_cs_method(&cs, MESH_CS_OTHER, "Get", 3, NULL, 0), MESH_CS_METHODS);
    mesh_cs_free(&cs);
}

/* Method names of every length a column takes, each against names that differ from it in one
 * byte (first, middle, last) and against its own prefixes: found only when equal (the lookup
 * compares by words). The names are built in exact-size heap blocks, so ASan sees any byte
 * read beyond them. */
static void t_method_compare(void)
{
    mesh_call_stats_t cs;
    CHECK_EQ(mesh_cs_init(&cs), 0);
    for (size_t len = 1; len < MESH_CS_METHOD_NAME; len++) {
        char svc[32];
        int sl = snprintf(svc, sizeof(svc), "pkg.L%zu", len);
        uint32_t row = mesh_cs_service(&cs, svc, (size_t)sl, 1);
        CHECK(row != MESH_CS_OTHER);
        char *m = malloc(len);
        for (size_t i = 0; i < len; i++)
            m[i] = (char)('a' + i % 26);
        CHECK_EQ(mesh_cs_method(&cs, row, m, len, NULL, 0), 0);
        size_t at[3] = {0, len / 2, len - 1};
        for (int k = 0; k < 3; k++) {
            char *v = malloc(len);
            memcpy(v, m, len);
            v[at[k]] = 'Z';
            uint32_t col = mesh_cs_method(&cs, row, v, len, NULL, 0);
            CHECK(col != 0);
            CHECK_EQ(mesh_cs_method(&cs, row, v, len, NULL, 0), col); /* found again */
            free(v);
        }
        for (size_t pl = 1; pl < len; pl++) {
            char *pre = malloc(pl);
            memcpy(pre, m, pl);
            CHECK(mesh_cs_method(&cs, row, pre, pl, NULL, 0) != 0);
            free(pre);
        }
        CHECK_EQ(mesh_cs_method(&cs, row, m, len, NULL, 0), 0);
        free(m);
    }
    mesh_cs_free(&cs);
}

static void t_record_and_snapshot(void)
{
    mesh_call_stats_t cs;
    CHECK_EQ(mesh_cs_init(&cs), 0);
    uint32_t a = mesh_cs_service(&cs, "pkg.A", 5, 1);
    uint32_t get = mesh_cs_method(&cs, a, "Get", 3, NULL, 0);
    mesh_cs_record(&cs, a, get, 0, 10, 20, 0, 0.0015);
    mesh_cs_record(&cs, a, get, 0, 10, 20, 1, 0.0007);
    mesh_cs_record(&cs, a, get, 14, 5, 0, 0, 0.00005);
    mesh_cs_record(&cs, a, MESH_CS_METHODS, 99, 0, 0, 0, 70.0); /* bad code: UNKNOWN */
    mesh_cs_record(&cs, MESH_CS_OTHER, MESH_CS_METHODS, 12, 0, 0, 0, 0.0001);
    mesh_cs_connect_failure(&cs, "10.0.0.1:80");
    mesh_cs_connect_failure(&cs, "10.0.0.1:80");
    mesh_cs_connect_failure(&cs, "10.0.0.2:80");
    const mesh_cs_service_t *r = cs.svc[a];
    CHECK_EQ(r->calls[get][0], 2);
    CHECK_EQ(r->calls[get][14], 1);
    CHECK_EQ(r->calls[MESH_CS_METHODS][2], 1);
    CHECK_EQ(r->req_bytes, 25);
    CHECK_EQ(r->resp_bytes, 40);
    CHECK_EQ(r->retries, 1);
    CHECK_EQ(r->latency.count, 4);
    CHECK_EQ(r->latency.counts[0], 1);                   /* 50 us: le 0.0001 */
    CHECK_EQ(r->latency.counts[PROM_LATENCY_BOUNDS], 1); /* 70 s: +Inf */
    CHECK_EQ(cs.svc[MESH_CS_OTHER]->calls[MESH_CS_METHODS][12], 1);

    mesh_cs_snap_t *s = mesh_cs_snapshot(&cs);
    CHECK(s);
    CHECK_EQ(s->gen, cs.gen);
    CHECK_EQ(s->n_svc, 2);
    CHECK_STR(s->svc[a].name, "pkg.A");
    CHECK_STR(s->svc[a].methods[get], "Get");
    CHECK_EQ(s->svc[a].calls[get][0], 2);
    CHECK_EQ(s->svc[a].latency.count, 4);
    CHECK_EQ(s->n_inst, 3);
    CHECK_STR(s->inst[1].addr, "10.0.0.1:80");
    CHECK_EQ(s->inst[1].connect_failures, 2);
    CHECK_EQ(s->inst[2].connect_failures, 1);
    /* the copy is the worker's no more: later calls change the table only */
    mesh_cs_record(&cs, a, get, 0, 1, 1, 0, 0.001);
    CHECK_EQ(s->svc[a].calls[get][0], 2);
    CHECK(cs.gen != s->gen);
    free(s);
    mesh_cs_free(&cs);
}

static void t_instance_bound(void)
{
    mesh_call_stats_t cs;
    CHECK_EQ(mesh_cs_init(&cs), 0);
    char addr[32];
    for (int i = 0; i < MESH_CS_INSTANCES + 5; i++) {
        snprintf(addr, sizeof(addr), "10.0.%d.%d:80", i / 250, i % 250);
        mesh_cs_connect_failure(&cs, addr);
    }
    CHECK_EQ(cs.n_inst, MESH_CS_INSTANCES + 1);
    CHECK_EQ(cs.inst[0].connect_failures, 5); /* beyond the bound: "other" */
    mesh_cs_free(&cs);
}

int main(void)
{
    RUN(t_rows);
    RUN(t_methods);
    RUN(t_method_compare);
    RUN(t_record_and_snapshot);
    RUN(t_instance_bound);
    return 0;
}
