/*
 * tests/unit/node/test_admin_routes.c: the /v1/routes listing (node/admin_routes.h): a table's
 * instances become routable records sorted by service and address whatever order they came
 * in; a later source (as gossip will be) marks an instance owner_dead and adds one the table
 * no longer holds; the JSON carries null for unknown fields and "every method", and a
 * service's methods are the union of its instances'. TLS: an instance's record flag ("tls":
 * "mtls") and how the node calls it ("transport", in the upstream pool's order: the service's
 * own upstream-tls, mesh TLS, the node's upstream CA, h2c), and the service's upstream_tls.
 * Also the admin address syntax.
 */
#include "node/admin_routes.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "node/admin_options.h"
#include "tests/check.h"

static json_t *instance(json_t *o, size_t svc, size_t inst)
{
    return json_array_get(
        json_object_get(json_array_get(json_object_get(o, "services"), svc), "instances"), inst);
}

static mesh_svc_policy_t off_pol, own_pol;

static const mesh_svc_policy_t *svc_of(void *ud, const char *service)
{
    (void)ud;
    if (!strcmp(service, "a.Off"))
        return &off_pol;
    if (!strcmp(service, "a.Own"))
        return &own_pol;
    return NULL;
}

static void test_tls(void)
{
    /* the pool's order, one case at a time */
    mesh_admin_tls_view_t none = {0}, mesh = {.mesh = 1}, up = {.upstream = 1},
                          upm = {.upstream = 1, .upstream_mtls = 1};
    off_pol.upstream_tls = MESH_SVC_TLS_OFF;
    own_pol.upstream_tls = MESH_SVC_TLS_OWN;
    own_pol.tls_ca = "ca.pem";
    own_pol.tls_name = "svc.example";
    CHECK_STR(mesh_admin_route_transport(NULL, NULL, 1), "h2c");
    CHECK_STR(mesh_admin_route_transport(&none, NULL, 1), "h2c"); /* no identity: h2c */
    CHECK_STR(mesh_admin_route_transport(&mesh, NULL, 1), "mtls");
    CHECK_STR(mesh_admin_route_transport(&mesh, NULL, 0), "h2c");
    CHECK_STR(mesh_admin_route_transport(&up, NULL, 0), "tls");
    CHECK_STR(mesh_admin_route_transport(&upm, NULL, 0), "mtls");
    CHECK_STR(mesh_admin_route_transport(&mesh, &off_pol, 1), "h2c"); /* the rule first */
    CHECK_STR(mesh_admin_route_transport(&upm, &own_pol, 0), "tls");
    own_pol.tls_cert = "c.pem";
    CHECK_STR(mesh_admin_route_transport(&none, &own_pol, 0), "mtls");
    own_pol.tls_cert = NULL;

    /* in the JSON */
    mesh_route_builder_t *b = mesh_route_builder_new();
    CHECK(mesh_route_builder_add(b, "a.Mesh", "10.0.1.1:1", NULL, 0, MESH_ROUTE_ETCD, "n1", "",
                                 1) == 0);
    CHECK(mesh_route_builder_set_mesh_tls(b, 1) == 0);
    CHECK(mesh_route_builder_add(b, "a.Mesh", "10.0.1.2:1", NULL, 0, MESH_ROUTE_ETCD, "", "", 1) ==
          0);
    CHECK(mesh_route_builder_add(b, "a.Off", "10.0.1.3:1", NULL, 0, MESH_ROUTE_ETCD, "n3", "", 1) ==
          0);
    CHECK(mesh_route_builder_set_mesh_tls(b, 1) == 0);
    CHECK(mesh_route_builder_add(b, "a.Own", "10.0.1.4:1", NULL, 0, MESH_ROUTE_STATIC, "", "", 1) ==
          0);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    mesh_admin_routes_t *l = mesh_admin_routes_new();
    CHECK(t && l && mesh_admin_routes_add_table(l, t) == 0);
    mesh_admin_tls_view_t v = {.mesh = 1, .svc = svc_of};
    json_t *o = mesh_admin_routes_json(l, "connected", &v);
    CHECK(o);
    char *text = json_dumps(o, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_t *mesh1 = instance(o, 0, 0), *mesh2 = instance(o, 0, 1);
    CHECK_STR(json_string_value(json_object_get(mesh1, "tls")), "mtls");
    CHECK_STR(json_string_value(json_object_get(mesh1, "transport")), "mtls");
    CHECK(json_is_null(json_object_get(mesh2, "tls")));
    CHECK_STR(json_string_value(json_object_get(mesh2, "transport")), "h2c");
    json_t *svcs = json_object_get(o, "services");
    CHECK(json_is_null(json_object_get(json_array_get(svcs, 0), "upstream_tls")));
    /* a.Off: the record says mtls, the rule says off: h2c */
    CHECK_STR(json_string_value(json_object_get(instance(o, 1, 0), "tls")), "mtls");
    CHECK_STR(json_string_value(json_object_get(instance(o, 1, 0), "transport")), "h2c");
    CHECK_STR(json_string_value(json_object_get(json_array_get(svcs, 1), "upstream_tls")), "off");
    /* a.Own: its own CA and server name */
    CHECK_STR(json_string_value(json_object_get(instance(o, 2, 0), "transport")), "tls");
    json_t *ut = json_object_get(json_array_get(svcs, 2), "upstream_tls");
    CHECK_STR(json_string_value(json_object_get(ut, "ca")), "ca.pem");
    CHECK_STR(json_string_value(json_object_get(ut, "server_name")), "svc.example");
    CHECK(json_is_null(json_object_get(ut, "cert")));
    json_decref(o);
    mesh_admin_routes_free(l);
    mesh_routes_unref(t);
}

int main(void)
{
    /* A table, added in an order that is not sorted. */
    mesh_route_builder_t *b = mesh_route_builder_new();
    const char *get[] = {"Get"}, *put[] = {"Put", "Delete"};
    CHECK(mesh_route_builder_add(b, "z.Last", "10.0.0.9:1", NULL, 0, MESH_ROUTE_STATIC, "", "",
                                 1) == 0);
    CHECK(mesh_route_builder_add(b, "a.Kv", "10.0.0.2:1", put, 2, MESH_ROUTE_ETCD, "n2", "z1", 5) ==
          0);
    CHECK(mesh_route_builder_add(b, "a.Kv", "10.0.0.1:1", get, 1, MESH_ROUTE_ETCD, "n1", "", 1) ==
          0);
    mesh_routes_t *t = mesh_route_builder_finish(b);
    CHECK(t);

    mesh_admin_routes_t *l = mesh_admin_routes_new();
    CHECK(l && mesh_admin_routes_add_table(l, t) == 0);
    CHECK_EQ(mesh_admin_routes_count(l), 3);

    /* A later source: n2 is dead; an instance of a dead owner the table dropped is listed. */
    mesh_admin_route_t *r = mesh_admin_routes_get(l, "a.Kv", "10.0.0.2:1");
    CHECK(r && r->state == MESH_ADMIN_ROUTE_ROUTABLE && r->weight == 5);
    r->state = MESH_ADMIN_ROUTE_OWNER_DEAD;
    mesh_admin_route_t gone = {.service = "a.Kv",
                               .addr = "10.0.0.0:1",
                               .node = "n0",
                               .version = "v2",
                               .methods = get,
                               .n_methods = 1,
                               .source = MESH_ROUTE_GOSSIP,
                               .state = MESH_ADMIN_ROUTE_OWNER_DEAD};
    CHECK(mesh_admin_routes_put(l, &gone) == 0);
    gone.state = MESH_ADMIN_ROUTE_EJECTED; /* put again: replaced, not doubled */
    CHECK(mesh_admin_routes_put(l, &gone) == 0);
    CHECK_EQ(mesh_admin_routes_count(l), 4);
    CHECK(mesh_admin_routes_get(l, "a.Kv", "nope:1") == NULL);
    mesh_admin_route_t bad = {.service = "", .addr = "x:1"};
    CHECK(mesh_admin_routes_put(l, &bad) == -1);

    json_t *o = mesh_admin_routes_json(l, "degraded", NULL);
    CHECK(o);
    char *text = json_dumps(o, JSON_COMPACT);
    printf("%s\n", text);
    CHECK_STR(json_string_value(json_object_get(o, "etcd")), "degraded");
    json_t *svcs = json_object_get(o, "services");
    CHECK_EQ(json_array_size(svcs), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(svcs, 0), "service")), "a.Kv");
    CHECK_STR(json_string_value(json_object_get(json_array_get(svcs, 1), "service")), "z.Last");
    /* sorted by address; the gossip record first */
    json_t *i0 = instance(o, 0, 0), *i1 = instance(o, 0, 1), *i2 = instance(o, 0, 2);
    CHECK_STR(json_string_value(json_object_get(i0, "address")), "10.0.0.0:1");
    CHECK_STR(json_string_value(json_object_get(i0, "source")), "gossip");
    CHECK_STR(json_string_value(json_object_get(i0, "state")), "ejected");
    CHECK_STR(json_string_value(json_object_get(i0, "version")), "v2");
    CHECK_STR(json_string_value(json_object_get(i1, "address")), "10.0.0.1:1");
    CHECK_STR(json_string_value(json_object_get(i1, "state")), "routable");
    CHECK_STR(json_string_value(json_object_get(i1, "source")), "etcd");
    CHECK(json_is_null(json_object_get(i1, "zone")) &&
          json_is_null(json_object_get(i1, "version")));
    CHECK_STR(json_string_value(json_object_get(i2, "state")), "owner_dead");
    CHECK_STR(json_string_value(json_object_get(i2, "zone")), "z1");
    CHECK_EQ(json_integer_value(json_object_get(i2, "weight")), 5);
    /* an instance's methods sorted; the service's the union */
    CHECK_STR(json_string_value(json_array_get(json_object_get(i2, "methods"), 0)), "Delete");
    json_t *sm = json_object_get(json_array_get(svcs, 0), "methods");
    CHECK_EQ(json_array_size(sm), 3);
    CHECK_STR(json_string_value(json_array_get(sm, 0)), "Delete");
    CHECK_STR(json_string_value(json_array_get(sm, 1)), "Get");
    CHECK_STR(json_string_value(json_array_get(sm, 2)), "Put");
    /* every method: null, for the instance and its service */
    CHECK(json_is_null(json_object_get(instance(o, 1, 0), "methods")));
    CHECK(json_is_null(json_object_get(json_array_get(svcs, 1), "methods")));
    CHECK_STR(json_string_value(json_object_get(instance(o, 1, 0), "source")), "static");

    /* The same records in another order give the same text. */
    mesh_admin_routes_t *l2 = mesh_admin_routes_new();
    CHECK(mesh_admin_routes_put(l2, &gone) == 0);
    CHECK(mesh_admin_routes_add_table(l2, t) == 0);
    mesh_admin_routes_get(l2, "a.Kv", "10.0.0.2:1")->state = MESH_ADMIN_ROUTE_OWNER_DEAD;
    json_t *o2 = mesh_admin_routes_json(l2, "degraded", NULL);
    char *text2 = json_dumps(o2, JSON_COMPACT);
    CHECK_STR(text2, text);
    free(text);
    free(text2);
    json_decref(o);
    json_decref(o2);
    mesh_admin_routes_free(l);
    mesh_admin_routes_free(l2);

    /* An empty listing (a node without routes yet). */
    mesh_admin_routes_t *e = mesh_admin_routes_new();
    CHECK(mesh_admin_routes_add_table(e, NULL) == 0);
    json_t *eo = mesh_admin_routes_json(e, "off", NULL);
    CHECK(eo && json_array_size(json_object_get(eo, "services")) == 0);
    json_decref(eo);
    mesh_admin_routes_free(e);
    mesh_routes_unref(t);

    test_tls();

    /* --admin-listen: PORT and :PORT are loopback. */
    char host[64];
    int port;
    CHECK(mesh_admin_listen_split("9901", host, sizeof(host), &port) == 0);
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 9901);
    CHECK(mesh_admin_listen_split(":9902", host, sizeof(host), &port) == 0);
    CHECK(strcmp(host, "127.0.0.1") == 0 && port == 9902);
    CHECK(mesh_admin_listen_split("0.0.0.0:9903", host, sizeof(host), &port) == 0);
    CHECK(strcmp(host, "0.0.0.0") == 0 && port == 9903);
    CHECK(mesh_admin_listen_split("[::1]:9904", host, sizeof(host), &port) == 0);
    CHECK(strcmp(host, "::1") == 0 && port == 9904);
    CHECK(mesh_admin_listen_split("99999", host, sizeof(host), &port) == -1);
    CHECK(mesh_admin_listen_split("", host, sizeof(host), &port) == -1);
    CHECK(mesh_admin_listen_split(":", host, sizeof(host), &port) == -1);
    CHECK(mesh_admin_listen_split("a:b:c", host, sizeof(host), &port) == -1);
    printf("test_admin_routes: ok\n");
    return 0;
}
