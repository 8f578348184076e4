/*
 * tests/unit/registry/test_table.c: instance keys and values (the naming-resolver format,
 * malformed values), the view table (put/delete, resync by mark and sweep, one warning per
 * malformed key), the snapshot file and the conversion to a routing table.
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

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    test_keys();
    test_values();
    test_table();
    test_snapshot_and_routes();
    printf("ok\n");
    return 0;
}
