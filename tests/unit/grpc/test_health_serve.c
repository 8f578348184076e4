/*
 * tests/unit/grpc/test_health_serve.c: the mesh entry's grpc.health.v1 rules (grpc/health_serve.h)
 * as routing tables change, on a fake clock: the node's status and the drain, a service with
 * and without instances, one that leaves (NOT_SERVING until the TTL, then unknown) and comes
 * back, unknown names, and a Watch that reports only changes; plus the request/response codec
 * the handler uses (grpc/health_msg.h), including malformed and oversized requests.
 */
#include "grpc/health_serve.h"

#include <stdio.h>
#include <string.h>

#include "tests/check.h"

/* A table from "svc=addr" pairs (NULL-terminated). */
static mesh_routes_t *table(const char *const *pairs)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    for (size_t i = 0; pairs[i]; i++) {
        char svc[64];
        const char *eq = strchr(pairs[i], '=');
        snprintf(svc, sizeof(svc), "%.*s", (int)(eq - pairs[i]), pairs[i]);
        CHECK(mesh_route_builder_add(b, svc, eq + 1, NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    }
    return mesh_route_builder_finish(b);
}

/* A table made from base by edits (so the diff reads its log, as the registry's tables). */
static mesh_routes_t *update(const mesh_routes_t *base, const char *name, const char *addr)
{
    mesh_route_edit_t e = {.name = name};
    if (addr) {
        mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
        CHECK(mesh_route_svc_builder_add(b, addr, NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == 0);
        CHECK(mesh_route_svc_builder_finish(b, name, &e.svc) == 0);
        mesh_route_svc_builder_free(b);
    }
    mesh_routes_t *t = mesh_routes_update(base, &e, 1);
    CHECK(t);
    return t;
}

#define ST(t, d, name) mesh_health_entry_status(e, t, d, name)

static void test_rules(void)
{
    mesh_health_entry_t *e = mesh_health_entry_new(60000);
    CHECK(e);
    /* before any table: the node cannot route yet; nothing else is known */
    CHECK_EQ(ST(NULL, 0, ""), MESH_HEALTH_NOT_SERVING);
    CHECK_EQ(ST(NULL, 0, "a.A"), MESH_HEALTH_SERVICE_UNKNOWN);
    const char *const p1[] = {"a.A=10.0.0.1:1", "a.A=10.0.0.2:1", "b.B=10.0.0.3:1", NULL};
    mesh_routes_t *t1 = table(p1);
    CHECK(mesh_health_entry_routes(e, NULL, t1, 1000) == 0);
    CHECK_EQ(ST(t1, 0, ""), MESH_HEALTH_SERVING);
    CHECK_EQ(ST(t1, 0, MESH_HEALTH_SERVICE), MESH_HEALTH_SERVING);
    CHECK_EQ(ST(t1, 0, "a.A"), MESH_HEALTH_SERVING);
    CHECK_EQ(ST(t1, 0, "b.B"), MESH_HEALTH_SERVING);
    CHECK_EQ(ST(t1, 0, "c.C"), MESH_HEALTH_SERVICE_UNKNOWN);
    CHECK_EQ(ST(t1, 0, "a.a"), MESH_HEALTH_SERVICE_UNKNOWN); /* names are exact */
    /* draining: the node and every known service say NOT_SERVING; unknown stays unknown */
    CHECK_EQ(ST(t1, 1, ""), MESH_HEALTH_NOT_SERVING);
    CHECK_EQ(ST(t1, 1, "a.A"), MESH_HEALTH_NOT_SERVING);
    CHECK_EQ(ST(t1, 1, "c.C"), MESH_HEALTH_SERVICE_UNKNOWN);

    /* b.B's last instance goes: NOT_SERVING (remembered), not unknown */
    mesh_routes_t *t2 = update(t1, "b.B", NULL);
    CHECK(mesh_health_entry_routes(e, t1, t2, 2000) == 0);
    CHECK_EQ(ST(t2, 0, "b.B"), MESH_HEALTH_NOT_SERVING);
    CHECK_EQ(mesh_health_entry_gone(e), 1);
    CHECK_EQ(ST(t2, 0, "a.A"), MESH_HEALTH_SERVING);
    /* a new service appears; an unrelated change keeps the memory */
    mesh_routes_t *t3 = update(t2, "c.C", "10.0.0.4:1");
    CHECK(mesh_health_entry_routes(e, t2, t3, 3000) == 0);
    CHECK_EQ(ST(t3, 0, "c.C"), MESH_HEALTH_SERVING);
    CHECK_EQ(ST(t3, 0, "b.B"), MESH_HEALTH_NOT_SERVING);
    /* b.B comes back: SERVING, forgotten as gone */
    mesh_routes_t *t4 = update(t3, "b.B", "10.0.0.5:1");
    CHECK(mesh_health_entry_routes(e, t3, t4, 4000) == 0);
    CHECK_EQ(ST(t4, 0, "b.B"), MESH_HEALTH_SERVING);
    CHECK_EQ(mesh_health_entry_gone(e), 0);
    /* gone again, then past the TTL: unknown */
    mesh_routes_t *t5 = update(t4, "b.B", NULL);
    CHECK(mesh_health_entry_routes(e, t4, t5, 5000) == 0);
    CHECK_EQ(ST(t5, 0, "b.B"), MESH_HEALTH_NOT_SERVING);
    CHECK(mesh_health_entry_routes(e, t5, t5, 5000 + 59999) == 0);
    CHECK_EQ(ST(t5, 0, "b.B"), MESH_HEALTH_NOT_SERVING);
    CHECK(mesh_health_entry_routes(e, t5, t5, 5000 + 60000) == 0);
    CHECK_EQ(ST(t5, 0, "b.B"), MESH_HEALTH_SERVICE_UNKNOWN);
    CHECK_EQ(mesh_health_entry_gone(e), 0);
    /* a whole new table not made from the last one (diff by walking): a.A leaves */
    const char *const p6[] = {"c.C=10.0.0.4:1", NULL};
    mesh_routes_t *t6 = table(p6);
    CHECK(mesh_health_entry_routes(e, t5, t6, 70000) == 0);
    CHECK_EQ(ST(t6, 0, "a.A"), MESH_HEALTH_NOT_SERVING);
    CHECK_EQ(ST(t6, 0, "c.C"), MESH_HEALTH_SERVING);
    mesh_routes_t *all[] = {t1, t2, t3, t4, t5, t6};
    for (size_t i = 0; i < 6; i++)
        mesh_routes_unref(all[i]);
    mesh_health_entry_free(e);
}

static void test_watch(void)
{
    mesh_health_watch_t w;
    mesh_health_watch_init(&w);
    int sent = 0;
    mesh_health_status_t seq[] = {MESH_HEALTH_SERVICE_UNKNOWN, MESH_HEALTH_SERVICE_UNKNOWN,
                                  MESH_HEALTH_SERVING,         MESH_HEALTH_SERVING,
                                  MESH_HEALTH_SERVING,         MESH_HEALTH_NOT_SERVING,
                                  MESH_HEALTH_NOT_SERVING,     MESH_HEALTH_SERVING};
    int expect[] = {1, 0, 1, 0, 0, 1, 0, 1};
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
        int s = mesh_health_watch_update(&w, seq[i]);
        CHECK_EQ(s, expect[i]);
        sent += s;
    }
    CHECK_EQ(sent, 4); /* the first status, then each change only */
}

static void test_codec(void)
{
    uint8_t b[600];
    char name[512];
    int n = mesh_health_encode_request("pkg.Svc", b, sizeof(b));
    CHECK(n > 0);
    CHECK(mesh_health_decode_request(b, (size_t)n, name, sizeof(name)) == 0);
    CHECK_STR(name, "pkg.Svc");
    CHECK(mesh_health_decode_request(b, 0, name, sizeof(name)) == 0); /* empty: the server */
    CHECK_STR(name, "");
    CHECK(mesh_health_decode_request(b, (size_t)n, name, 4) == -1); /* does not fit */
    const uint8_t bad[] = {0x0a, 0x7f, 'x'};                        /* length past the end */
    CHECK(mesh_health_decode_request(bad, sizeof(bad), name, sizeof(name)) == -1);
    memset(b, 'a', sizeof(b));
    b[0] = 0x0a;
    b[1] = 0x80 | (590 & 0x7f);
    b[2] = 590 >> 7;
    CHECK(mesh_health_decode_request(b, 593, name, sizeof(name)) == -1); /* too long a name */
    n = mesh_health_encode_response(MESH_HEALTH_NOT_SERVING, b, sizeof(b));
    CHECK(n == 2 && b[0] == 0x08 && b[1] == 0x02);
    mesh_health_status_t st;
    CHECK(mesh_health_decode_response(b, (size_t)n, &st) == 0 && st == MESH_HEALTH_NOT_SERVING);
    n = mesh_health_encode_response(MESH_HEALTH_SERVICE_UNKNOWN, b, sizeof(b));
    CHECK(n == 2 && b[1] == 0x03);
    CHECK(mesh_health_encode_response(MESH_HEALTH_SERVING, b, 1) == -1);
}

int main(void)
{
    test_rules();
    test_watch();
    test_codec();
    fprintf(stderr, "ok\n");
    return 0;
}
