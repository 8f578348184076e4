/*
 * tests/unit/registry/test_table.c: instance keys and values (the naming-resolver format,
 * malformed values), the view table (put/delete, resync by mark and sweep, one warning per
 * malformed key), the snapshot file and the conversion to a routing table, made again only
 * for the services that changed (compared against a table built from scratch).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/instance.h"
#include "registry/route_table.h"
#include "registry/view_table.h"
#include "tests/check.h"

#define P "meshd/services"

static void test_keys(void)
{
    reg_key_t k;
    const char *key = P "/pkg.Greeter/10.0.0.1:50051";
    CHECK(reg_key_parse(key, strlen(key), P, strlen(P), &k) == 0);
    CHECK(k.service_len == 11 && memcmp(k.service, "pkg.Greeter", 11) == 0);
    CHECK(k.addr_len == 14 && memcmp(k.addr, "10.0.0.1:50051", 14) == 0);
    CHECK(reg_key_parse(key, strlen(key), P "/", strlen(P) + 1, &k) == 0); /* trailing slash */
    const char *bad[] = {P "/pkg.Greeter",        P "/pkg.Greeter/", P "//a:1",   P "/a/b/c",
                         "other/pkg.Greeter/a:1", P "x/pkg.G/a:1",   P "/a b/c:1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(reg_key_parse(bad[i], strlen(bad[i]), P, strlen(P), &k) == -1);
    char buf[128];
    CHECK(reg_key_format(buf, sizeof(buf), P "/", "pkg.S", "h:1") > 0);
    CHECK(strcmp(buf, P "/pkg.S/h:1") == 0);
    CHECK(reg_key_format(buf, 8, P, "pkg.S", "h:1") == -1);
}

static void test_values(void)
{
    const char *methods[] = {"Get", "Put"};
    reg_instance_t in = {.addr = "127.0.0.1:5000",
                         .node = "n1",
                         .zone = "z1",
                         .version = "1.2.3",
                         .methods = methods,
                         .n_methods = 2,
                         .weight = 3};
    char *s = reg_value_format(&in);
    CHECK(s);
    CHECK(strcmp(s, "{\"Op\":0,\"Addr\":\"127.0.0.1:5000\",\"Metadata\":null,\"meshd\":{"
                    "\"node\":\"n1\",\"methods\":[\"Get\",\"Put\"],\"zone\":\"z1\",\"weight\":3,"
                    "\"version\":\"1.2.3\"}}") == 0);
    reg_value_t v;
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK(strcmp(v.inst.addr, "127.0.0.1:5000") == 0 && strcmp(v.inst.node, "n1") == 0);
    CHECK(v.inst.n_methods == 2 && strcmp(v.inst.methods[1], "Put") == 0 && v.inst.weight == 3);
    reg_value_release(&v);
    free(s);
    /* What grpc-go's etcd naming writes: no Metadata at all. */
    const char *plain = "{\"Op\":0,\"Addr\":\"1.2.3.4:80\"}";
    CHECK(reg_value_parse(plain, strlen(plain), &v) == REG_VALUE_OK);
    CHECK(v.inst.weight == 1 && v.inst.node == NULL && v.inst.n_methods == 0);
    reg_value_release(&v);
    const char *noop = "{\"Addr\":\"1.2.3.4:80\",\"Metadata\":\"opaque\"}";
    CHECK(reg_value_parse(noop, strlen(noop), &v) == REG_VALUE_OK);
    reg_value_release(&v);
    const char *del = "{\"Op\":1,\"Addr\":\"1.2.3.4:80\"}";
    CHECK(reg_value_parse(del, strlen(del), &v) == REG_VALUE_DELETE);
    const char *bad[] = {"",
                         "garbage",
                         "[1,2]",
                         "{\"Op\":0}",
                         "{\"Op\":\"x\",\"Addr\":\"a:1\"}",
                         "{\"Op\":7,\"Addr\":\"a:1\"}",
                         "{\"Addr\":\"\"}",
                         "{\"Addr\":5}",
                         "{\"Addr\":\"a:1\",\"Metadata\":{\"weight\":\"heavy\"}}",
                         "{\"Addr\":\"a:1\",\"Metadata\":{\"methods\":\"Get\"}}",
                         "{\"Addr\":\"a:1\",\"Metadata\":{\"methods\":[1]}}",
                         "{\"Addr\":\"a:1\"",
                         "{\"Addr\":\"a:1\",\"Addr\":\"b:2\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(reg_value_parse(bad[i], strlen(bad[i]), &v) == REG_VALUE_INVALID);
}

static int put(reg_table_t *t, const char *key, const char *val, int64_t rev)
{
    return reg_table_put(t, key, strlen(key), val, strlen(val), rev, 0);
}

static char *value(const char *addr, const char *m1)
{
    const char *ms[] = {m1};
    reg_instance_t in = {.addr = addr, .node = "n", .methods = ms, .n_methods = 1, .weight = 1};
    return reg_value_format(&in);
}

static void test_table(void)
{
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    char *a = value("h:1", "Get"), *b = value("h:2", "Get"), *a2 = value("h:1", "Put");
    CHECK(put(&t, P "/pkg.S/h:1", a, 2) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.S/h:2", b, 3) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.S/h:1", a, 2) == REG_TABLE_UNCHANGED); /* same revision */
    CHECK(put(&t, P "/pkg.S/h:1", a, 4) == REG_TABLE_UNCHANGED); /* same content */
    CHECK(put(&t, P "/pkg.S/h:1", a2, 5) == REG_TABLE_CHANGED);
    CHECK(put(&t, "elsewhere/x/y:1", a, 6) == REG_TABLE_UNCHANGED);
    CHECK(t.n_valid == 2 && t.n_entries == 2);
    /* Malformed: skipped, warned once however often it comes back. */
    CHECK(put(&t, P "/pkg.S/h:3", "{broken", 7) == REG_TABLE_UNCHANGED);
    CHECK(put(&t, P "/pkg.S/h:3", "{broken", 8) == REG_TABLE_UNCHANGED);
    CHECK(put(&t, P "/pkg.S/h:3", "{broken", 8) == REG_TABLE_UNCHANGED);
    CHECK(put(&t, P "/pkg.S", a, 9) == REG_TABLE_UNCHANGED); /* bad key */
    CHECK(t.n_warned == 2 && t.n_valid == 2 && t.n_entries == 4);
    /* A malformed key that becomes valid, and a valid one that turns malformed. */
    CHECK(put(&t, P "/pkg.S/h:3", b, 10) == REG_TABLE_CHANGED && t.n_valid == 3);
    CHECK(put(&t, P "/pkg.S/h:2", "nope", 11) == REG_TABLE_CHANGED && t.n_valid == 2);
    CHECK(reg_table_delete(&t, P "/pkg.S/h:2", strlen(P "/pkg.S/h:2")) == REG_TABLE_UNCHANGED);
    CHECK(reg_table_delete(&t, P "/pkg.S/h:1", strlen(P "/pkg.S/h:1")) == REG_TABLE_CHANGED);
    CHECK(t.n_valid == 1);
    /* An Op 1 (Delete) record removes the instance. */
    CHECK(put(&t, P "/pkg.S/h:3", "{\"Op\":1,\"Addr\":\"h:2\"}", 12) == REG_TABLE_CHANGED);
    CHECK(t.n_valid == 0);
    /* Resync: what the range lacks goes. */
    for (int i = 0; i < 300; i++) {
        char key[64];
        snprintf(key, sizeof(key), P "/pkg.T/h:%d", i);
        CHECK(put(&t, key, b, 100 + i) == REG_TABLE_CHANGED);
    }
    CHECK(t.n_valid == 300);
    reg_table_mark(&t);
    for (int i = 0; i < 300; i += 2) {
        char key[64];
        snprintf(key, sizeof(key), P "/pkg.T/h:%d", i);
        CHECK(put(&t, key, b, 100 + i) == REG_TABLE_UNCHANGED);
    }
    CHECK(reg_table_sweep(&t) == 150 && t.n_valid == 150);
    size_t mem = reg_table_memory(&t);
    CHECK(mem > 150 * sizeof(reg_entry_t) && mem < 150 * 1024);
    const reg_entry_t *es[200];
    CHECK(reg_table_sorted(&t, es, 200) == 150);
    CHECK(strcmp(es[0]->service, "pkg.T") == 0 && strcmp(es[0]->methods[0], "Get") == 0);
    reg_table_clear(&t);
    CHECK(t.n_valid == 0 && t.bytes == 0);
    reg_table_destroy(&t);
    free(a);
    free(b);
    free(a2);
}

static void test_snapshot_and_routes(void)
{
    char dir[] = "/tmp/meshd-reg-unit-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/view.snapshot", dir);
    reg_table_t t, u;
    CHECK(reg_table_init(&t, P) == 0 && reg_table_init(&u, P) == 0);
    char *a = value("h:1", "Get"), *b = value("h:2", "Put");
    put(&t, P "/pkg.S/h:1", a, 2);
    put(&t, P "/pkg.S/h:2", b, 3);
    put(&t, P "/pkg.U/h:1", a, 4);
    put(&t, P "/pkg.S/h:9", "malformed", 5);
    CHECK(reg_table_save(&t, path, 42) == 0);
    int64_t rev = 0;
    CHECK(reg_table_load(&u, path, &rev) == 3 && rev == 42 && u.n_valid == 3);
    reg_entry_t *e = reg_table_find(&u, P "/pkg.S/h:2", strlen(P "/pkg.S/h:2"));
    CHECK(e && e->mod_revision == 3 && strcmp(e->methods[0], "Put") == 0);
    reg_table_t w;
    CHECK(reg_table_init(&w, "other/prefix") == 0);
    CHECK(reg_table_load(&w, path, &rev) == -1); /* not ours */
    CHECK(reg_table_load(&w, "/nonexistent/file", &rev) == -1);
    reg_table_destroy(&w);

    mesh_routes_t *routes = reg_table_build_routes(&u);
    CHECK(routes);
    const mesh_route_service_t *s = mesh_routes_service(routes, "pkg.S");
    CHECK(s && s->n_instances == 2 && s->instances[0].source == MESH_ROUTE_ETCD);
    CHECK(s->n_methods == 2);
    CHECK(mesh_routes_lookup(routes, "/pkg.S/Put", 10, &s) == MESH_ROUTE_FOUND);
    CHECK(mesh_routes_lookup(routes, "/pkg.U/Put", 10, &s) == MESH_ROUTE_NO_METHOD);
    CHECK(mesh_routes_count(routes) == 2);
    mesh_routes_unref(routes);
    reg_table_destroy(&t);
    reg_table_destroy(&u);
    free(a);
    free(b);
    unlink(path);
    rmdir(dir);
}

/* Same services, instances (by address) and fields in both tables. */
static void check_same_routes(const mesh_routes_t *a, const mesh_routes_t *b)
{
    CHECK_EQ(mesh_routes_count(a), mesh_routes_count(b));
    for (size_t i = 0; i < mesh_routes_count(a); i++) {
        const mesh_route_service_t *x = mesh_routes_at(a, i), *y = mesh_routes_at(b, i);
        CHECK(strcmp(x->name, y->name) == 0);
        CHECK_EQ(x->n_instances, y->n_instances);
        CHECK_EQ(x->n_methods, y->n_methods);
        CHECK((x->methods == NULL) == (y->methods == NULL));
        for (size_t j = 0; j < x->n_methods; j++)
            CHECK(strcmp(x->methods[j], y->methods[j]) == 0);
        for (size_t j = 0; j < x->n_instances; j++) {
            const mesh_route_instance_t *p = &x->instances[j], *q = NULL;
            for (size_t k = 0; k < y->n_instances; k++)
                if (strcmp(y->instances[k].addr, p->addr) == 0)
                    q = &y->instances[k];
            CHECK(q && strcmp(p->node, q->node) == 0 && strcmp(p->zone, q->zone) == 0);
            CHECK(p->weight == q->weight && p->n_methods == q->n_methods &&
                  p->source == MESH_ROUTE_ETCD && q->source == MESH_ROUTE_ETCD);
            for (size_t k = 0; k < p->n_methods; k++)
                CHECK(strcmp(p->methods[k], q->methods[k]) == 0);
        }
    }
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* reg_table_routes() rebuilds only what changed, shares the rest, and always equals a table
 * built from scratch. */
static void test_incremental_routes(void)
{
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    char key[96], addr[32];
    char *vals[4] = {value("x:1", "Get"), value("x:1", "Put"), value("x:2", "Get"),
                     strdup("{\"Op\":0,\"Addr\":\"x:3\"}")}; /* lists no methods */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), P "/pkg.S%02d/h:%d", i % 20, i);
        CHECK(put(&t, key, vals[i % 3], 10 + i) == REG_TABLE_CHANGED);
    }
    CHECK(reg_table_changed(&t) == 0); /* no table yet: nothing to track */
    mesh_routes_t *r1 = reg_table_routes(&t);
    CHECK(r1 && mesh_routes_count(r1) == 20);
    mesh_routes_t *again = reg_table_routes(&t);
    CHECK(again == r1); /* nothing changed: the same table */
    mesh_routes_unref(again);

    /* One instance changes: one service is rebuilt, nineteen are shared. */
    CHECK(put(&t, P "/pkg.S03/h:3", vals[1], 500) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.S03/h:3", vals[1], 501) == REG_TABLE_UNCHANGED);
    CHECK(reg_table_changed(&t) == 1);
    mesh_routes_t *r2 = reg_table_routes(&t);
    CHECK(reg_table_changed(&t) == 0);
    int shared = 0;
    for (size_t i = 0; i < 20; i++)
        shared += mesh_routes_svc_at(r1, i) == mesh_routes_svc_at(r2, i);
    CHECK_EQ(shared, 19);
    CHECK(mesh_routes_svc_at(r2, 3) != mesh_routes_svc_at(r1, 3));

    /* A service whose instances all go leaves the table; the old table is untouched. */
    for (int i = 5; i < 100; i += 20) {
        snprintf(key, sizeof(key), P "/pkg.S05/h:%d", i);
        CHECK(reg_table_delete(&t, key, strlen(key)) == REG_TABLE_CHANGED);
    }
    mesh_routes_t *r3 = reg_table_routes(&t);
    CHECK(mesh_routes_count(r3) == 19 && mesh_routes_service(r3, "pkg.S05") == NULL);
    CHECK(mesh_routes_service(r2, "pkg.S05") != NULL);

    /* An instance that lists no methods is routable for every method of its service. */
    CHECK(put(&t, P "/pkg.N/h:9", vals[3], 600) == REG_TABLE_CHANGED);
    mesh_routes_t *r4 = reg_table_routes(&t);
    CHECK(mesh_routes_lookup(r4, "/pkg.N/Anything", 15, NULL) == MESH_ROUTE_FOUND);

    /* Random puts, rewrites, malformed values, deletes and resyncs: always equal to a
     * table built from scratch. */
    uint32_t seed = 12345;
    mesh_routes_t *cur = r4;
    for (int round = 0; round < 60; round++) {
        if (round % 15 == 14)
            reg_table_mark(&t);
        for (int k = 0; k < 25; k++) {
            uint32_t r = rnd(&seed);
            int svc = (int)(r % 7), inst = (int)((r >> 8) % 9), op = (int)((r >> 16) % 10);
            snprintf(key, sizeof(key), P "/pkg.R%d/h:%d", svc, inst);
            snprintf(addr, sizeof(addr), "h:%d", inst);
            if (op < 6)
                put(&t, key, vals[(r >> 20) % 4], 1000 + round * 100 + k);
            else if (op < 7)
                put(&t, key, "{not json", 1000 + round * 100 + k);
            else
                reg_table_delete(&t, key, strlen(key));
        }
        if (round % 15 == 14)
            reg_table_sweep(&t);
        mesh_routes_t *inc = reg_table_routes(&t), *full = reg_table_build_routes(&t);
        CHECK(inc && full);
        check_same_routes(inc, full);
        mesh_routes_unref(full);
        mesh_routes_unref(cur);
        cur = inc;
    }
    mesh_routes_unref(cur);
    mesh_routes_unref(r1);
    mesh_routes_unref(r2);
    mesh_routes_unref(r3);
    reg_table_clear(&t);
    mesh_routes_t *empty = reg_table_routes(&t);
    CHECK(empty && mesh_routes_count(empty) == 0);
    mesh_routes_unref(empty);
    reg_table_destroy(&t);
    for (int i = 0; i < 4; i++)
        free(vals[i]);
}

/* With a journal attached, every change of a valid entry is recorded as the bytes etcd sent;
 * replaying the journal into an empty table gives the same view. */
static void test_journal(void)
{
    char dir[] = "/tmp/meshd-reg-unit-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/view.snapshot", dir);
    reg_table_t t, u;
    CHECK(reg_table_init(&t, P) == 0 && reg_table_init(&u, P) == 0);
    reg_snap_buf_t j = {0};
    t.journal = &j;
    char *a = value("h:1", "Get"), *b = value("h:2", "Put");
    /* etcd may send pretty-printed JSON: its line breaks must not break the file's lines */
    const char *pretty = "{\n\t\"Op\": 0,\r\n\t\"Addr\": \"h:5\"\n}";
    put(&t, P "/pkg.S/h:1", a, 2);
    put(&t, P "/pkg.S/h:2", b, 3);
    put(&t, P "/pkg.S/h:2", b, 4);        /* same content, newer revision: recorded */
    put(&t, P "/pkg.S/h:3", "broken", 5); /* never valid: not recorded */
    put(&t, P "/pkg.S/h:1", "broken", 6); /* valid -> malformed: a delete */
    put(&t, P "/pkg.T/h:5", pretty, 7);
    reg_table_delete(&t, P "/pkg.S/h:9", strlen(P "/pkg.S/h:9")); /* absent: nothing */
    CHECK_EQ(j.records, 5);
    CHECK(reg_snap_file_write(path, P, 7, &j) == 0);
    int64_t rev = 0;
    CHECK(reg_table_load(&u, path, &rev) == 2 && rev == 7);
    reg_entry_t *e = reg_table_find(&u, P "/pkg.S/h:2", strlen(P "/pkg.S/h:2"));
    CHECK(e && e->mod_revision == 4 && strcmp(e->methods[0], "Put") == 0);
    CHECK(reg_table_find(&u, P "/pkg.S/h:1", strlen(P "/pkg.S/h:1")) == NULL);
    e = reg_table_find(&u, P "/pkg.T/h:5", strlen(P "/pkg.T/h:5"));
    CHECK(e && e->valid && strcmp(e->addr, "h:5") == 0);
    /* A resync's sweep records the deletes too. */
    size_t before = j.records;
    reg_table_mark(&t);
    put(&t, P "/pkg.S/h:2", b, 4);
    CHECK(reg_table_sweep(&t) == 1 && j.records == before + 1);
    reg_snap_buf_free(&j);
    t.journal = NULL;
    reg_table_destroy(&t);
    reg_table_destroy(&u);
    free(a);
    free(b);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    test_keys();
    test_values();
    test_table();
    test_snapshot_and_routes();
    test_incremental_routes();
    test_journal();
    printf("ok\n");
    return 0;
}
