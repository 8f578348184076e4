/*
 * tests/unit/registry/test_reconciler.c: merging static, etcd and gossip tables, incrementally:
 * a service of one source is shared as is (the very object), a service in several sources is
 * merged (the later source wins an address), and a new source table rebuilds only the
 * services that differ from the one before.
 */
#include <string.h>

#include "registry/reconciler.h"
#include "tests/check.h"

static mesh_routes_t *table(mesh_route_source_t src, const char *const *svc_addr, size_t n,
                            const char *node)
{
    mesh_route_builder_t *b = mesh_route_builder_new();
    const char *ms[] = {"Get"};
    for (size_t i = 0; i < n; i += 2)
        CHECK(mesh_route_builder_add(b, svc_addr[i], svc_addr[i + 1],
                                     src == MESH_ROUTE_STATIC ? NULL : ms, 1, src, node, "",
                                     1) == 0);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    CHECK(t);
    return t;
}

static mesh_route_svc_t *obj(const mesh_routes_t *t, const char *name)
{
    return mesh_routes_find(t, name);
}

static void test_merge(void)
{
    mesh_reconciler_t r;
    mesh_reconciler_init(&r);
    mesh_routes_t *empty = mesh_reconciler_build(&r);
    CHECK(empty && mesh_routes_count(empty) == 0);
    mesh_routes_unref(empty);

    const char *st[] = {"s.Static", "a:1", "m.Mixed", "m:1"};
    mesh_routes_t *stat = table(MESH_ROUTE_STATIC, st, 4, "");
    mesh_reconciler_set(&r, MESH_ROUTE_STATIC, mesh_routes_ref(stat));
    mesh_routes_t *t1 = mesh_reconciler_build(&r);
    CHECK(t1 == stat); /* one source: its table is the merged table */

    const char *et[] = {"e.Etcd", "e:1", "m.Mixed", "m:1", "m.Mixed", "m:2"};
    mesh_routes_t *etcd = table(MESH_ROUTE_ETCD, et, 6, "n-etcd");
    mesh_reconciler_set(&r, MESH_ROUTE_ETCD, mesh_routes_ref(etcd));
    mesh_routes_t *t2 = mesh_reconciler_build(&r);
    CHECK(t2 && mesh_routes_count(t2) == 3);
    CHECK(obj(t2, "s.Static") == obj(stat, "s.Static")); /* shared, not copied */
    CHECK(obj(t2, "e.Etcd") == obj(etcd, "e.Etcd"));
    const mesh_route_service_t *m = mesh_routes_service(t2, "m.Mixed");
    CHECK(m && m->n_instances == 2 && r.merges == 1);
    CHECK(strcmp(m->instances[0].addr, "m:1") == 0);
    CHECK(m->instances[0].source == MESH_ROUTE_ETCD); /* the later source wins */
    CHECK(strcmp(m->instances[0].node, "n-etcd") == 0 && m->instances[0].n_methods == 1);
    CHECK(m->instances[1].source == MESH_ROUTE_ETCD);
    /* Static instances list no methods, etcd's do: the service's methods are the etcd ones. */
    CHECK(mesh_routes_lookup(t2, "/m.Mixed/Get", 12, NULL) == MESH_ROUTE_FOUND);

    /* The etcd view changes one service: only that one is looked at again. */
    const char *et2[] = {"e.Etcd", "e:1", "e.Etcd", "e:2"};
    mesh_routes_t *e2svc = table(MESH_ROUTE_ETCD, et2, 4, "n2");
    mesh_route_edit_t ed = {.svc = mesh_route_svc_ref(obj(e2svc, "e.Etcd"))};
    mesh_routes_t *etcd2 = mesh_routes_update(etcd, &ed, 1);
    mesh_routes_unref(e2svc);
    mesh_reconciler_set(&r, MESH_ROUTE_ETCD, etcd2);
    mesh_routes_t *t3 = mesh_reconciler_build(&r);
    CHECK(r.rebuilt == 1 && r.merges == 1);
    CHECK(obj(t3, "m.Mixed") == obj(t2, "m.Mixed") && obj(t3, "s.Static") == obj(t2, "s.Static"));
    CHECK(mesh_routes_service(t3, "e.Etcd")->n_instances == 2);

    /* Gossip describes m:1 too: gossip wins over etcd for that address. */
    const char *go[] = {"m.Mixed", "m:1"};
    mesh_reconciler_set(&r, MESH_ROUTE_GOSSIP, table(MESH_ROUTE_GOSSIP, go, 2, "n-gossip"));
    mesh_routes_t *t4 = mesh_reconciler_build(&r);
    m = mesh_routes_service(t4, "m.Mixed");
    CHECK(r.rebuilt == 1 && m->n_instances == 2 && m->instances[0].source == MESH_ROUTE_GOSSIP);
    CHECK(strcmp(m->instances[0].node, "n-gossip") == 0);

    /* etcd and gossip gone: the static table alone again. */
    mesh_reconciler_set(&r, MESH_ROUTE_ETCD, NULL);
    mesh_reconciler_set(&r, MESH_ROUTE_GOSSIP, NULL);
    mesh_routes_t *t5 = mesh_reconciler_build(&r);
    CHECK(t5 == stat);
    /* and back: the merge starts from the static table and adds what etcd has */
    mesh_reconciler_set(&r, MESH_ROUTE_ETCD, mesh_routes_ref(etcd));
    mesh_routes_t *t6 = mesh_reconciler_build(&r);
    CHECK(mesh_routes_count(t6) == 3 && mesh_routes_service(t6, "m.Mixed")->n_instances == 2);
    CHECK(mesh_routes_service(t6, "e.Etcd")->n_instances == 1);

    mesh_routes_t *all[] = {t1, t2, t3, t4, t5, t6, stat, etcd};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        mesh_routes_unref(all[i]);
    mesh_reconciler_destroy(&r);
}

int main(void)
{
    RUN(test_merge);
    fprintf(stderr, "ok\n");
    return 0;
}
