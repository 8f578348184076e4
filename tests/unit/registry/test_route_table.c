/*
 * tests/unit/registry/test_route_table.c: route table building, lookup by :path, merging
 * and reference counting; service objects shared between tables (update, diff), what a
 * service object stores once, and that an old table stays valid while newer ones are made.
 */
#include "registry/route_table.h"
#include "tests/check.h"

#include <stdio.h>
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
    CHECK(mesh_routes_index_of(t, s) != mesh_routes_index_of(t, mesh_routes_at(t, 0)));
    CHECK(mesh_routes_index_of(t, s) < mesh_routes_index_bound());
    CHECK(mesh_routes_find(t, "pkg.Greeter") == mesh_routes_svc_at(t, 1));
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

/* A service object of name with instances "h:<port>" for each port, all listing methods. */
static mesh_route_svc_t *svc_of(mesh_route_svc_builder_t *sb, const char *name, const int *ports,
                                size_t n, const char *const *methods, size_t n_methods)
{
    char addrs[16][32];
    CHECK(n <= 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "h:%d", ports[i]);
        CHECK(mesh_route_svc_builder_add(sb, addrs[i], methods, n_methods, MESH_ROUTE_ETCD, "node",
                                         "zone", 1) == 0);
    }
    mesh_route_svc_t *s = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, name, &s) == 0);
    return s;
}

typedef struct diffs {
    int n;
    char names[8][32];
    int before[8], after[8];
} diffs_t;

static void on_diff(void *ud, const char *name, const mesh_route_svc_t *before,
                    const mesh_route_svc_t *after)
{
    diffs_t *d = ud;
    CHECK(d->n < 8);
    snprintf(d->names[d->n], sizeof(d->names[0]), "%s", name);
    d->before[d->n] = before != NULL;
    d->after[d->n] = after != NULL;
    d->n++;
}

/* A new table re-uses every service it is not told about: same object, same memory. */
static void test_update_shares(void)
{
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    const char *ms[] = {"Get", "Put"};
    int p1[] = {1, 2}, p2[] = {3}, p3[] = {4, 5, 6};
    mesh_route_edit_t e[3] = {
        {.svc = svc_of(sb, "b.B", p2, 1, ms, 2)},
        {.svc = svc_of(sb, "a.A", p1, 2, ms, 2)},
        {.svc = svc_of(sb, "c.C", p3, 3, NULL, 0)},
    };
    mesh_routes_t *t1 = mesh_routes_update(NULL, e, 3);
    CHECK(t1 && mesh_routes_count(t1) == 3);
    CHECK(strcmp(mesh_routes_at(t1, 0)->name, "a.A") == 0); /* sorted whatever the edit order */
    CHECK(strcmp(mesh_routes_at(t1, 2)->name, "c.C") == 0);

    /* b.B changes, c.C goes, d.D comes; a.A is untouched. */
    int p2b[] = {3, 7}, p4[] = {8};
    mesh_route_edit_t e2[3] = {
        {.svc = svc_of(sb, "b.B", p2b, 2, ms, 2)},
        {.name = "c.C", .svc = NULL},
        {.svc = svc_of(sb, "d.D", p4, 1, ms, 1)},
    };
    mesh_routes_t *t2 = mesh_routes_update(t1, e2, 3);
    CHECK(t2 && mesh_routes_count(t2) == 3);
    CHECK(mesh_routes_svc_at(t2, 0) == mesh_routes_svc_at(t1, 0)); /* a.A shared */
    CHECK(mesh_routes_at(t2, 0)->instances == mesh_routes_at(t1, 0)->instances);
    CHECK(mesh_routes_svc_at(t2, 1) != mesh_routes_svc_at(t1, 1)); /* b.B rebuilt */
    CHECK(mesh_routes_service(t2, "b.B")->n_instances == 2);
    CHECK(mesh_routes_service(t2, "c.C") == NULL);
    CHECK(look(t2, "/d.D/Get", NULL) == MESH_ROUTE_FOUND);
    CHECK(look(t2, "/d.D/Put", NULL) == MESH_ROUTE_NO_METHOD);
    CHECK(mesh_routes_memory(t2) < 1024); /* the root and new leaves: the rest is shared */
    /* A shared service keeps its index (workers keep its state there). */
    CHECK(mesh_routes_index_of(t2, mesh_routes_at(t2, 0)) ==
          mesh_routes_index_of(t1, mesh_routes_at(t1, 0)));
    CHECK(mesh_routes_changes(t2, t1) == 3 && mesh_routes_changes(t1, t2) == (size_t)-1);

    /* The diff names exactly what changed, comparing objects. */
    diffs_t d = {0};
    CHECK(mesh_routes_diff(t1, t2, on_diff, &d) == 3 && d.n == 3);
    CHECK(strcmp(d.names[0], "b.B") == 0 && d.before[0] && d.after[0]);
    CHECK(strcmp(d.names[1], "c.C") == 0 && d.before[1] && !d.after[1]);
    CHECK(strcmp(d.names[2], "d.D") == 0 && !d.before[2] && d.after[2]);
    CHECK(mesh_routes_diff(t2, t2, NULL, NULL) == 0);
    CHECK(mesh_routes_diff(NULL, t2, NULL, NULL) == 3);
    d.n = 0; /* the other way round: no log to read, the tables are walked */
    CHECK(mesh_routes_diff(t2, t1, on_diff, &d) == 3);
    CHECK(strcmp(d.names[1], "c.C") == 0 && !d.before[1] && d.after[1]);

    /* The old table stays whole after the new one exists, and after the new one is gone. */
    mesh_routes_unref(t2);
    CHECK(look(t1, "/c.C/Anything", NULL) == MESH_ROUTE_FOUND);
    CHECK(mesh_routes_service(t1, "b.B")->n_instances == 1);

    /* An object outlives the tables that held it as long as someone holds a reference. */
    mesh_route_svc_t *keep = mesh_route_svc_ref(mesh_routes_svc_at(t1, 0));
    mesh_routes_unref(t1);
    CHECK(strcmp(mesh_route_svc_get(keep)->instances[1].addr, "h:2") == 0);
    mesh_route_svc_unref(keep);

    /* Removing what is not there, and two edits of one name: the table stays consistent. */
    mesh_route_edit_t e3[3] = {
        {.name = "x.X", .svc = NULL},
        {.svc = svc_of(sb, "y.Y", p2, 1, NULL, 0)},
        {.svc = svc_of(sb, "y.Y", p1, 2, NULL, 0)},
    };
    mesh_routes_t *t3 = mesh_routes_update(NULL, e3, 3);
    CHECK(mesh_routes_count(t3) == 1 && mesh_routes_at(t3, 0)->n_instances >= 1);
    mesh_routes_unref(t3);
    mesh_route_svc_builder_free(sb);
}

/* Thousands of services over many shared runs: random edits against a model, lookups by name
 * and position, and diffs between consecutive and distant tables. */
static void test_many_services(void)
{
    enum { N = 3000 };
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    static int model[N]; /* version of each service; 0: absent */
    int p[] = {1};
    mesh_routes_t *t = mesh_routes_update(NULL, NULL, 0), *first = NULL;
    uint32_t seed = 7;
    for (int round = 0; round < 40; round++) {
        mesh_route_edit_t e[64];
        char names[64][32];
        int ne = round == 0 ? 0 : 1 + (int)(seed % 60);
        if (round == 0) {
            /* start with N services in one update */
            mesh_route_edit_t *all = calloc(N, sizeof(*all));
            for (int i = 0; i < N; i++) {
                char name[32];
                snprintf(name, sizeof(name), "svc.S%05d", i * 7 % N);
                p[0] = i * 7 % N;
                all[i].svc = svc_of(sb, name, p, 1, NULL, 0);
                model[i * 7 % N] = 1;
            }
            mesh_routes_t *n = mesh_routes_update(t, all, N);
            free(all);
            mesh_routes_unref(t);
            t = n;
            first = mesh_routes_ref(t);
            continue;
        }
        for (int k = 0; k < ne; k++) {
            seed = seed * 1103515245 + 12345;
            int i = (int)((seed >> 8) % N);
            snprintf(names[k], sizeof(names[k]), "svc.S%05d", i);
            e[k].name = names[k];
            int dup = 0;
            for (int m = 0; m < k; m++)
                dup |= strcmp(names[m], names[k]) == 0;
            if ((seed >> 20) % 3 == 0 || dup) {
                e[k].svc = NULL;
                model[i] = dup ? model[i] : 0;
                if (dup) {
                    e[k].name = "svc.none"; /* keep names unique */
                }
            } else {
                p[0] = 10000 + round;
                e[k].svc = svc_of(sb, names[k], p, 1, NULL, 0);
                model[i] = 1 + round;
            }
        }
        mesh_routes_t *n = mesh_routes_update(t, e, (size_t)ne);
        CHECK(n);
        CHECK(mesh_routes_changes(n, t) <= (size_t)ne);
        CHECK(mesh_routes_diff(t, n, NULL, NULL) == mesh_routes_changes(n, t));
        mesh_routes_unref(t);
        t = n;
        size_t count = 0;
        for (int i = 0; i < N; i++) {
            char name[32];
            snprintf(name, sizeof(name), "svc.S%05d", i);
            const mesh_route_service_t *s = mesh_routes_service(t, name);
            CHECK((s != NULL) == (model[i] != 0));
            if (s) {
                count++;
                CHECK(s->instances[0].addr[0] == 'h');
            }
        }
        CHECK_EQ(mesh_routes_count(t), count);
        for (size_t i = 1; i < count; i++)
            CHECK(strcmp(mesh_routes_at(t, i - 1)->name, mesh_routes_at(t, i)->name) < 0);
        CHECK(mesh_routes_at(t, count) == NULL);
    }
    /* A table far from the first: the diff walks both and finds every change. */
    size_t diffs = mesh_routes_diff(first, t, NULL, NULL);
    CHECK(diffs > 0 && diffs <= N);
    CHECK(mesh_routes_memory(t) < N * sizeof(void *) * 2); /* no per-service copies */
    mesh_routes_unref(first);
    mesh_routes_unref(t);
    mesh_route_svc_builder_free(sb);
}

/* Inside one service, node ids, zones and whole method lists are stored once. */
static void test_service_object(void)
{
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    const char *ms[] = {"Put", "Get", "Get"}; /* unsorted, with a duplicate */
    const char *ms2[] = {"Get"};
    const char *none[1] = {NULL};
    char addrs[200][32];
    for (int i = 0; i < 200; i++) {
        snprintf(addrs[i], sizeof(addrs[i]), "10.0.%d.%d:50051", i / 250, i % 250);
        const char *const *m = i == 7 ? ms2 : i == 8 ? none : ms;
        size_t nm = i == 7 ? 1 : i == 8 ? 0 : 3;
        CHECK(mesh_route_svc_builder_add(sb, addrs[i], m, nm, MESH_ROUTE_ETCD,
                                         i % 2 ? "node-a" : "node-b", "zone-1", 1) == 0);
    }
    CHECK(mesh_route_svc_builder_count(sb) == 200);
    mesh_route_svc_t *o = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, "pkg.Big", &o) == 0 && o);
    CHECK(mesh_route_svc_builder_count(sb) == 0);
    const mesh_route_service_t *s = mesh_route_svc_get(o);
    CHECK(s->n_instances == 200 && strcmp(s->instances[0].addr, "10.0.0.0:50051") == 0);
    CHECK(s->instances[199].index == 199);
    CHECK(s->n_methods == 2 && strcmp(s->methods[0], "Get") == 0);
    CHECK(s->instances[0].n_methods == 2 && strcmp(s->instances[0].methods[1], "Put") == 0);
    CHECK(s->instances[0].methods == s->instances[5].methods); /* one list for all */
    CHECK(s->instances[0].node == s->instances[2].node);       /* one "node-b" */
    CHECK(s->instances[0].zone == s->instances[1].zone);
    CHECK(s->instances[7].n_methods == 1 && s->instances[7].methods != s->instances[0].methods);
    /* An instance that lists no method serves none; one that does not list serves all. */
    CHECK(s->instances[8].methods && s->instances[8].n_methods == 0);
    CHECK(!mesh_route_instance_serves(&s->instances[8], "Get", 3));
    /* Everything fits in one allocation well below a copy per instance. */
    CHECK(mesh_route_svc_memory(o) < 200 * (sizeof(mesh_route_instance_t) + 32));
    mesh_route_svc_unref(o);

    /* Nothing added: no object. A bad name: an error, and the builder is empty again. */
    CHECK(mesh_route_svc_builder_finish(sb, "x.X", &o) == 0 && o == NULL);
    CHECK(mesh_route_svc_builder_add(sb, "", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == -1);
    CHECK(mesh_route_svc_builder_add(sb, "h:1", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == 0);
    CHECK(mesh_route_svc_builder_finish(sb, "", &o) == -1 && o == NULL);
    CHECK(mesh_route_svc_builder_count(sb) == 0);
    mesh_route_svc_builder_free(sb);
}

/* Instances keep the order they were first added in (round robin starts at the first). */
static void test_instance_order(void)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    const char *addrs[] = {"127.0.0.1:40001", "127.0.0.1:39999", "10.0.0.1:1"};
    for (int i = 0; i < 3; i++)
        CHECK(mesh_route_builder_add(b, "o.O", addrs[i], NULL, 0, MESH_ROUTE_STATIC, "", "", 1) ==
              0);
    CHECK(mesh_route_builder_add(b, "o.O", addrs[0], NULL, 0, MESH_ROUTE_ETCD, "late", "", 1) == 0);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    const mesh_route_service_t *s = mesh_routes_service(t, "o.O");
    CHECK(s && s->n_instances == 3);
    for (int i = 0; i < 3; i++)
        CHECK(strcmp(s->instances[i].addr, addrs[i]) == 0 && s->instances[i].index == (uint32_t)i);
    CHECK(s->instances[0].source == MESH_ROUTE_ETCD && strcmp(s->instances[0].node, "late") == 0);
    mesh_routes_unref(t);
}

/* Records of one service naming the same address (two keys, say two registrations of one
 * pod) are one instance; it serves every method any of them lists, whatever order they came
 * in (found by fuzz_instance: an empty list added after ["Get"] used to replace it). */
static void test_same_addr_methods(void)
{
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    const char *get[] = {"Get"}, *put[] = {"Put", "Get"};
    const char *none[1] = {NULL};
    for (int order = 0; order < 2; order++) {
        /* an empty list and ["Get"], then the other way round; an unlisted add in between */
        CHECK(mesh_route_svc_builder_add(sb, "10.0.0.2:1", order ? get : none, order ? 1 : 0,
                                         MESH_ROUTE_ETCD, "n0", "", 1) == 0);
        CHECK(mesh_route_svc_builder_add(sb, "10.0.0.2:1", NULL, 0, MESH_ROUTE_ETCD, "n1", "", 1) ==
              0);
        CHECK(mesh_route_svc_builder_add(sb, "10.0.0.2:1", order ? none : get, order ? 0 : 1,
                                         MESH_ROUTE_ETCD, "n2", "", 1) == 0);
        CHECK(mesh_route_svc_builder_add(sb, "10.0.0.3:1", put, 2, MESH_ROUTE_ETCD, "n3", "", 1) ==
              0);
        CHECK(mesh_route_svc_builder_add(sb, "10.0.0.3:1", put, 1, MESH_ROUTE_ETCD, "n3", "", 1) ==
              0);
        mesh_route_svc_t *o = NULL;
        CHECK(mesh_route_svc_builder_finish(sb, "demo.Svc", &o) == 0 && o);
        const mesh_route_service_t *s = mesh_route_svc_get(o);
        CHECK(s->n_instances == 2 && strcmp(s->instances[0].addr, "10.0.0.2:1") == 0);
        CHECK(strcmp(s->instances[0].node, "n2") == 0); /* the later add's node */
        CHECK(s->instances[0].n_methods == 1 &&
              mesh_route_instance_serves(&s->instances[0], "Get", 3));
        CHECK(!mesh_route_instance_serves(&s->instances[0], "Put", 3));
        CHECK(s->instances[1].n_methods == 2); /* duplicates counted once */
        CHECK(s->n_methods == 2);
        mesh_route_svc_unref(o);
    }
    /* Only unlisted adds: the instance's methods stay unknown (it may serve any). */
    CHECK(mesh_route_svc_builder_add(sb, "h:1", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == 0);
    CHECK(mesh_route_svc_builder_add(sb, "h:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    mesh_route_svc_t *o = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, "demo.Any", &o) == 0 && o);
    CHECK(mesh_route_svc_get(o)->instances[0].methods == NULL);
    CHECK(mesh_route_instance_serves(&mesh_route_svc_get(o)->instances[0], "X", 1));
    mesh_route_svc_unref(o);
    mesh_route_svc_builder_free(sb);
}

/* A service of many instances, most listing one shared method list, some their own copy of it
 * or another list, rebuilt from its own object without the instances of a few owners (what the
 * registry does when owners die): every instance keeps its place, its node and its methods,
 * and the service's methods are the union; an address added twice far apart is one instance. */
static void test_large_rebuild(void)
{
    enum { N = 600 };
    static char addrs[N][32], nodes[N][16];
    const char *shared[] = {"Call", "Watch"}, *other[] = {"Zap"};
    char own_call[] = "Call", own_watch[] = "Watch"; /* equal names, other strings */
    const char *own[] = {own_watch, own_call};
    mesh_route_svc_builder_t *sb = mesh_route_svc_builder_new();
    for (int i = 0; i < N; i++) {
        snprintf(addrs[i], sizeof addrs[i], "10.%d.%d.1:7000", i / 250, i % 250);
        snprintf(nodes[i], sizeof nodes[i], "node-%d", i);
        const char *const *ml = i % 97 == 5 ? own : i % 50 == 7 ? other : shared;
        size_t nm = ml == other ? 1 : 2;
        CHECK(mesh_route_svc_builder_add(sb, addrs[i], ml, nm, MESH_ROUTE_ETCD, nodes[i], "z", 1) ==
              0);
    }
    mesh_route_svc_t *all = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, "big.Svc", &all) == 0 && all);
    const mesh_route_service_t *s = mesh_route_svc_get(all);
    CHECK(s->n_instances == N && s->n_methods == 3);
    CHECK(!strcmp(s->methods[0], "Call") && !strcmp(s->methods[1], "Watch") &&
          !strcmp(s->methods[2], "Zap"));
    for (int i = 0; i < N; i++) {
        const mesh_route_instance_t *in = &s->instances[i];
        CHECK(!strcmp(in->addr, addrs[i]) && !strcmp(in->node, nodes[i]) &&
              in->index == (uint32_t)i);
        int zap = i % 97 != 5 && i % 50 == 7;
        CHECK(in->n_methods == (zap ? 1u : 2u));
        CHECK(mesh_route_instance_serves(in, "Zap", 3) == zap);
        CHECK(mesh_route_instance_serves(in, "Call", 4) == !zap);
        CHECK(mesh_route_instance_serves(in, "Watch", 5) == !zap);
    }
    /* without every third instance, copied from the object */
    for (int i = 0; i < N; i++)
        if (i % 3)
            CHECK(mesh_route_svc_builder_add_instance(sb, &s->instances[i]) == 0);
    mesh_route_svc_t *some = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, "big.Svc", &some) == 0 && some);
    const mesh_route_service_t *t = mesh_route_svc_get(some);
    CHECK(t->n_instances == N - (N + 2) / 3 && t->n_methods == 3);
    for (size_t k = 0, i = 1; k < t->n_instances; k++, i += i % 3 == 1 ? 1 : 2) {
        CHECK(!strcmp(t->instances[k].addr, addrs[i]) && t->instances[k].index == k);
        CHECK(mesh_route_instance_serves(&t->instances[k], "Zap", 3) ==
              (i % 97 != 5 && i % 50 == 7));
    }
    /* the first address again at the end: merged into the first place, methods united */
    for (int i = 0; i < N; i++)
        CHECK(mesh_route_svc_builder_add_instance(sb, &s->instances[i]) == 0);
    CHECK(mesh_route_svc_builder_add(sb, addrs[0], other, 1, MESH_ROUTE_GOSSIP, "late", "", 2) ==
          0);
    mesh_route_svc_t *again = NULL;
    CHECK(mesh_route_svc_builder_finish(sb, "big.Svc", &again) == 0 && again);
    const mesh_route_service_t *u = mesh_route_svc_get(again);
    CHECK(u->n_instances == N && !strcmp(u->instances[0].node, "late"));
    CHECK(u->instances[0].n_methods == 3 && mesh_route_instance_serves(&u->instances[0], "Zap", 3));
    CHECK(!strcmp(u->instances[N - 1].addr, addrs[N - 1]));
    mesh_route_svc_unref(again);
    mesh_route_svc_unref(some);
    mesh_route_svc_unref(all);
    mesh_route_svc_builder_free(sb);
}

/* The release label: "" unless set; the later add of an address wins; copies keep it. */
static void test_version(void)
{
    mesh_route_svc_builder_t *b = mesh_route_svc_builder_new();
    CHECK(mesh_route_svc_builder_set_version(b, "v1") == -1); /* nothing added yet */
    CHECK(mesh_route_svc_builder_add(b, "a:1", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == 0);
    CHECK(mesh_route_svc_builder_set_version(b, "v1") == 0);
    CHECK(mesh_route_svc_builder_add(b, "b:1", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) == 0);
    CHECK(mesh_route_svc_builder_add(b, "a:1", NULL, 0, MESH_ROUTE_GOSSIP, "", "", 1) == 0);
    CHECK(mesh_route_svc_builder_set_version(b, "v2") == 0);
    mesh_route_svc_t *s = NULL;
    CHECK(mesh_route_svc_builder_finish(b, "pkg.S", &s) == 0 && s);
    const mesh_route_service_t *rs = mesh_route_svc_get(s);
    CHECK_EQ(rs->n_instances, 2);
    CHECK_STR(rs->instances[0].version, "v2");
    CHECK_STR(rs->instances[1].version, "");
    CHECK(mesh_route_svc_builder_add_instance(b, &rs->instances[0]) == 0);
    mesh_route_svc_t *copy = NULL;
    CHECK(mesh_route_svc_builder_finish(b, "pkg.S", &copy) == 0 && copy);
    CHECK_STR(mesh_route_svc_get(copy)->instances[0].version, "v2");
    mesh_route_svc_unref(copy);
    mesh_route_svc_unref(s);
    mesh_route_svc_builder_free(b);

    mesh_route_builder_t *tb = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(tb, "pkg.T", "c:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) == 0);
    CHECK(mesh_route_builder_set_version(tb, "canary") == 0);
    mesh_routes_t *t = mesh_route_builder_finish(tb);
    CHECK(t);
    CHECK_STR(mesh_routes_service(t, "pkg.T")->instances[0].version, "canary");
    mesh_routes_unref(t);
}

int main(void)
{
    RUN(test_lookup);
    RUN(test_empty);
    RUN(test_update_shares);
    RUN(test_many_services);
    RUN(test_service_object);
    RUN(test_instance_order);
    RUN(test_same_addr_methods);
    RUN(test_large_rebuild);
    RUN(test_version);
    fprintf(stderr, "ok\n");
    return 0;
}
