/*
 * tests/unit/registry/test_route_table.c: route table building, lookup by :path, merging
 * and reference counting.
 */
#include "registry/route_table.h"
#include "tests/check.h"

#include <string.h>

static mesh_route_status_t look(const mesh_routes_t *t, const char *path,
                                const mesh_route_service_t **out)
{
    return mesh_routes_lookup(t, path, strlen(path), out);
}

static void test_lookup(void)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    const char *m1[] = {"SayHello", "Check"};
    const char *m2[] = {"Watch"};
    CHECK(mesh_route_builder_add(b, "pkg.Greeter", "127.0.0.1:1", m1, 2, MESH_ROUTE_ETCD, "n1",
                                 "z1", 0) == 0);
    CHECK(mesh_route_builder_add(b, "pkg.Greeter", "127.0.0.1:2", m2, 1, MESH_ROUTE_ETCD, NULL,
                                 NULL, 3) == 0);
    /* Same address again: merged, later source wins. */
    CHECK(mesh_route_builder_add(b, "pkg.Greeter", "127.0.0.1:1", NULL, 0, MESH_ROUTE_GOSSIP, "n1b",
                                 "", 2) == 0);
    CHECK(mesh_route_builder_add(b, "a.Any", "10.0.0.1:9", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) ==
          0);
    CHECK(mesh_route_builder_add(b, "", "x:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == -1);
    CHECK(mesh_route_builder_add(b, "s", "", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == -1);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    CHECK(t);
    CHECK(mesh_routes_count(t) == 2);
    CHECK(strcmp(mesh_routes_at(t, 0)->name, "a.Any") == 0);
    CHECK(strcmp(mesh_routes_at(t, 1)->name, "pkg.Greeter") == 0);
    CHECK(mesh_routes_at(t, 2) == NULL);

    const mesh_route_service_t *s = NULL;
    CHECK(look(t, "/pkg.Greeter/SayHello", &s) == MESH_ROUTE_FOUND);
    CHECK(s == mesh_routes_at(t, 1));
    CHECK(mesh_routes_index_of(t, s) == 1);
    CHECK(s->n_instances == 2);
    CHECK(strcmp(s->instances[0].addr, "127.0.0.1:1") == 0);
    CHECK(s->instances[0].source == MESH_ROUTE_GOSSIP);
    CHECK(strcmp(s->instances[0].node, "n1b") == 0);
    CHECK(s->instances[0].weight == 2);
    CHECK(s->instances[1].weight == 3 && s->instances[1].index == 1);
    CHECK(strcmp(s->instances[1].node, "") == 0);
    CHECK(s->n_methods == 3);
    CHECK(strcmp(s->methods[0], "Check") == 0 && strcmp(s->methods[2], "Watch") == 0);
    CHECK(look(t, "/pkg.Greeter/Watch", NULL) == MESH_ROUTE_FOUND);
    CHECK(look(t, "/pkg.Greeter/Nope", NULL) == MESH_ROUTE_NO_METHOD);
    CHECK(look(t, "/pkg.Greeter/SayHell", NULL) == MESH_ROUTE_NO_METHOD);
    CHECK(look(t, "/pkg.Greeter/SayHelloX", NULL) == MESH_ROUTE_NO_METHOD);
    CHECK(look(t, "/pkg.Other/SayHello", NULL) == MESH_ROUTE_NO_SERVICE);
    CHECK(look(t, "/pkg.Greete/SayHello", NULL) == MESH_ROUTE_NO_SERVICE);
    CHECK(look(t, "/a.Any/Whatever", &s) == MESH_ROUTE_FOUND && s->methods == NULL);
    CHECK(look(t, "pkg.Greeter/SayHello", NULL) == MESH_ROUTE_BAD_PATH);
    CHECK(look(t, "/pkg.Greeter/", NULL) == MESH_ROUTE_BAD_PATH);
    CHECK(look(t, "//SayHello", NULL) == MESH_ROUTE_BAD_PATH);
    CHECK(look(t, "/pkg.Greeter", NULL) == MESH_ROUTE_BAD_PATH);
    CHECK(look(t, "/a/b/c", NULL) == MESH_ROUTE_BAD_PATH);
    /* The path need not be NUL-terminated. */
    const char *longer = "/pkg.Greeter/CheckXYZ";
    CHECK(mesh_routes_lookup(t, longer, strlen(longer) - 3, NULL) == MESH_ROUTE_FOUND);
    CHECK(mesh_routes_service(t, "pkg.Greeter") == mesh_routes_at(t, 1));
    CHECK(mesh_routes_service(t, "pkg") == NULL);

    /* Each instance keeps its own (sorted) methods: a call goes only where it is served. */
    s = mesh_routes_at(t, 1);
    CHECK(s->instances[0].n_methods == 2 && strcmp(s->instances[0].methods[0], "Check") == 0);
    CHECK(mesh_route_instance_serves(&s->instances[0], "SayHello", 8));
    CHECK(!mesh_route_instance_serves(&s->instances[0], "Watch", 5));
    CHECK(mesh_route_instance_serves(&s->instances[1], "Watch", 5));
    CHECK(!mesh_route_instance_serves(&s->instances[1], "SayHelloX", 8)); /* "SayHello" */
    CHECK(!mesh_route_instance_serves(&s->instances[1], "Check", 5));
    CHECK(mesh_route_instance_serves(&mesh_routes_at(t, 0)->instances[0], "Any", 3)); /* unknown */

    /* Reference counting: the table lives until the last unref. */
    CHECK(mesh_routes_ref(t) == t);
    mesh_routes_unref(t);
    CHECK(look(t, "/a.Any/X", NULL) == MESH_ROUTE_FOUND);
    mesh_routes_unref(t); /* frees; ASan reports a leak or a use after free otherwise */
}

static void test_empty(void)
{
    mesh_routes_t *t = mesh_route_builder_finish(mesh_route_builder_new());
    CHECK(mesh_routes_count(t) == 0);
    CHECK(look(t, "/a.B/C", NULL) == MESH_ROUTE_NO_SERVICE);
    mesh_routes_unref(t);
    mesh_route_builder_t *b = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(b, "x.Y", "h:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    mesh_route_builder_free(b);
}

int main(void)
{
    RUN(test_lookup);
    RUN(test_empty);
    fprintf(stderr, "ok\n");
    return 0;
}
