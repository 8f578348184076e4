/*
 * tests/unit/registry/test_instance.c: the etcd record format of an instance (registry/
 * instance.h) in every form meshd meets, and what each form means for routing:
 *   - what meshd writes: {"Op":0,"Addr":..,"Metadata":null,"meshd":{..}};
 *   - what meshd wrote before: meshd's data inside "Metadata";
 *   - what other tools write (etcd's endpoints manager, etcdctl by hand): no meshd data, with
 *     "Metadata" absent, {}, null or any other value. Such an instance does not list its
 *     methods and serves every method of its service, also next to instances that list theirs
 *     (the interoperability bug of issue 9: it used to be routed nothing).
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

/* The value meshd writes, byte for byte: grpc-go's resolver reads Op, Addr and a null
   Metadata; meshd's data is the sibling object. */
static void test_format(void)
{
    const char *methods[] = {"Get", "Put"};
    const reg_label_t labels[] = {{"team", "core"}, {"app.kubernetes.io/tier", "gold"}};
    reg_instance_t in = {.addr = "10.0.0.1:9091",
                         .node = "n1",
                         .zone = "eu-1a",
                         .version = "2.1.0-canary",
                         .methods = methods,
                         .n_methods = 2,
                         .labels = labels,
                         .n_labels = 2,
                         .weight = 5};
    char *s = reg_value_format(&in);
    CHECK_STR(s, "{\"Op\":0,\"Addr\":\"10.0.0.1:9091\",\"Metadata\":null,\"meshd\":{\"node\":"
                 "\"n1\",\"methods\":[\"Get\",\"Put\"],\"zone\":\"eu-1a\",\"weight\":5,"
                 "\"version\":\"2.1.0-canary\",\"labels\":{\"team\":\"core\","
                 "\"app.kubernetes.io/tier\":\"gold\"}}}");
    reg_value_t v;
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK(v.form == REG_VALUE_FORM_MESHD);
    CHECK_STR(v.inst.addr, "10.0.0.1:9091");
    CHECK_STR(v.inst.node, "n1");
    CHECK_STR(v.inst.zone, "eu-1a");
    CHECK_STR(v.inst.version, "2.1.0-canary");
    CHECK(v.inst.schema == NULL);
    CHECK_EQ(v.inst.weight, 5);
    CHECK_EQ(v.inst.n_methods, 2);
    CHECK_STR(v.inst.methods[0], "Get");
    CHECK_STR(v.inst.methods[1], "Put");
    CHECK_EQ(v.inst.n_labels, 2);
    CHECK_STR(v.inst.labels[0].key, "team");
    CHECK_STR(v.inst.labels[0].value, "core");
    CHECK_STR(v.inst.labels[1].key, "app.kubernetes.io/tier");
    CHECK_STR(v.inst.labels[1].value, "gold");
    reg_value_release(&v);
    free(s);

    /* A schema hash is its own field, never the version. */
    in = (reg_instance_t){.addr = "h:1", .schema = "sha256:ab12", .version = "7"};
    s = reg_value_format(&in);
    CHECK_STR(s, "{\"Op\":0,\"Addr\":\"h:1\",\"Metadata\":null,\"meshd\":{\"weight\":1,"
                 "\"version\":\"7\",\"schema\":\"sha256:ab12\"}}");
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK_STR(v.inst.schema, "sha256:ab12");
    CHECK_STR(v.inst.version, "7");
    CHECK(v.inst.methods == NULL && v.inst.n_labels == 0 && v.inst.labels == NULL);
    reg_value_release(&v);
    free(s);

    /* An empty list stays a list (serves nothing), unlike no list (serves any). */
    const char *none[] = {NULL};
    in = (reg_instance_t){.addr = "h:1", .methods = none, .n_methods = 0};
    s = reg_value_format(&in);
    CHECK_STR(s, "{\"Op\":0,\"Addr\":\"h:1\",\"Metadata\":null,\"meshd\":{\"methods\":[],"
                 "\"weight\":1}}");
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK(v.inst.methods != NULL && v.inst.n_methods == 0);
    reg_value_release(&v);
    free(s);
}

/* Records other tools write: an instance of unknown methods, weight 1, no meshd data. */
static void test_plain_forms(void)
{
    const char *plain[] = {
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\"}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":null}", /* endpoints.AddEndpoint */
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":{}}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":\"a string of a grpc-go user\"}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":42}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":[\"x\"]}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":true}",
        "{\"Addr\":\"127.0.0.1:50051\"}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":null,\"meshd\":null}",
        /* a "meshd" object wins over Metadata, even when it is empty */
        "{\"Op\":0,\"Addr\":\"127.0.0.1:50051\",\"Metadata\":{\"methods\":[\"X\"]},\"meshd\":{}}",
    };
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        reg_value_t v;
        CHECK(reg_value_parse(plain[i], strlen(plain[i]), &v) == REG_VALUE_OK);
        CHECK_STR(v.inst.addr, "127.0.0.1:50051");
        CHECK(v.inst.methods == NULL && v.inst.n_methods == 0);
        CHECK(v.inst.node == NULL && v.inst.zone == NULL && v.inst.version == NULL);
        CHECK(v.inst.n_labels == 0 && v.inst.weight == 1);
        reg_value_release(&v);
    }
}

/* meshd's former records (data inside Metadata) are still read; "meshd" wins when both exist. */
static void test_legacy_form(void)
{
    const char *old = "{\"Op\":0,\"Addr\":\"1.2.3.4:80\",\"Metadata\":{\"node\":\"n9\","
                      "\"methods\":[\"A\",\"B\"],\"zone\":\"z\",\"weight\":4,\"version\":\"1.0\"}}";
    reg_value_t v;
    CHECK(reg_value_parse(old, strlen(old), &v) == REG_VALUE_OK);
    CHECK(v.form == REG_VALUE_FORM_METADATA);
    CHECK_STR(v.inst.node, "n9");
    CHECK_STR(v.inst.zone, "z");
    CHECK_STR(v.inst.version, "1.0");
    CHECK(v.inst.weight == 4 && v.inst.n_methods == 2 && strcmp(v.inst.methods[1], "B") == 0);
    /* Written back, it takes the new form. */
    char *s = reg_value_format(&v.inst);
    CHECK_STR(s, "{\"Op\":0,\"Addr\":\"1.2.3.4:80\",\"Metadata\":null,\"meshd\":{\"node\":\"n9\","
                 "\"methods\":[\"A\",\"B\"],\"zone\":\"z\",\"weight\":4,\"version\":\"1.0\"}}");
    free(s);
    reg_value_release(&v);

    const char *both = "{\"Addr\":\"h:1\",\"Metadata\":{\"node\":\"old\",\"methods\":[\"A\"]},"
                       "\"meshd\":{\"node\":\"new\",\"methods\":[\"B\"]}}";
    CHECK(reg_value_parse(both, strlen(both), &v) == REG_VALUE_OK);
    CHECK(v.form == REG_VALUE_FORM_MESHD);
    CHECK_STR(v.inst.node, "new");
    CHECK(v.inst.n_methods == 1 && strcmp(v.inst.methods[0], "B") == 0);
    reg_value_release(&v);
    /* A malformed Metadata object does not matter when the record has a meshd object. */
    const char *md_ignored = "{\"Addr\":\"h:1\",\"Metadata\":{\"weight\":\"x\"},\"meshd\":{}}";
    CHECK(reg_value_parse(md_ignored, strlen(md_ignored), &v) == REG_VALUE_OK);
    reg_value_release(&v);
}

static void test_malformed(void)
{
    const char *bad[] = {
        "{\"Addr\":\"a:1\",\"meshd\":\"x\"}",
        "{\"Addr\":\"a:1\",\"meshd\":[]}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"weight\":-1}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"weight\":1000001}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"weight\":1.5}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"methods\":\"Get\"}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"methods\":[\"a b\"]}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"methods\":[\"\"]}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"labels\":[\"a=b\"]}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"labels\":{\"a\":1}}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"labels\":{\"\":\"x\"}}}",
        "{\"Addr\":\"a:1\",\"meshd\":{\"labels\":{\"a\":\"1\",\"a\":\"2\"}}}",
        "{\"Addr\":\"a:1\",\"Metadata\":{\"methods\":[1]}}",
        "{\"Addr\":\"a:1\",\"Metadata\":null,\"Metadata\":null}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reg_value_t v;
        if (reg_value_parse(bad[i], strlen(bad[i]), &v) != REG_VALUE_INVALID) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            CHECK(0);
        }
    }
}

/* No silent cap on methods: every listed method is kept (a record past the limit is refused). */
static void test_many_methods(void)
{
    size_t n = 300;
    const char **ms = calloc(REG_MAX_METHODS + 1, sizeof(*ms));
    char *names = calloc(REG_MAX_METHODS + 1, 8);
    CHECK(ms && names);
    for (size_t i = 0; i <= REG_MAX_METHODS; i++) {
        snprintf(names + i * 8, 8, "M%zu", i);
        ms[i] = names + i * 8;
    }
    reg_instance_t in = {.addr = "h:1", .methods = ms, .n_methods = n};
    char *s = reg_value_format(&in);
    reg_value_t v;
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK_EQ(v.inst.n_methods, n);
    CHECK_STR(v.inst.methods[n - 1], "M299");
    reg_value_release(&v);
    free(s);
    in.n_methods = REG_MAX_METHODS + 1;
    s = reg_value_format(&in);
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_INVALID);
    free(s);
    free(ms);
    free(names);
}

/* ---- routing ------------------------------------------------------------------------------ */

static int put(reg_table_t *t, const char *key, const char *val, int64_t rev)
{
    return reg_table_put(t, key, strlen(key), val, strlen(val), rev, 0);
}

static const mesh_route_instance_t *inst_of(const mesh_route_service_t *s, const char *addr)
{
    for (size_t i = 0; i < s->n_instances; i++)
        if (strcmp(s->instances[i].addr, addr) == 0)
            return &s->instances[i];
    return NULL;
}

static int serves(const mesh_route_service_t *s, const char *addr, const char *method)
{
    const mesh_route_instance_t *in = inst_of(s, addr);
    return in && mesh_route_instance_serves(in, method, strlen(method));
}

static mesh_route_status_t look(const mesh_routes_t *rt, const char *path,
                                const mesh_route_service_t **s)
{
    return mesh_routes_lookup(rt, path, strlen(path), s);
}

/* The bug: a record without meshd data used to become an instance that serves no method. */
static void test_routes_plain_only(void)
{
    const char *forms[] = {
        "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\"}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"Metadata\":{}}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"Metadata\":null}",
        "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"Metadata\":\"opaque\"}",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        reg_table_t t;
        CHECK(reg_table_init(&t, P) == 0);
        CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7001", forms[i], 2) == REG_TABLE_CHANGED);
        const reg_entry_t *e =
            reg_table_find(&t, P "/pkg.Echo/127.0.0.1:7001", strlen(P "/pkg.Echo/127.0.0.1:7001"));
        CHECK(e && e->valid && e->methods == NULL && e->n_methods == 0);
        mesh_routes_t *rt = reg_table_build_routes(&t);
        const mesh_route_service_t *s = NULL;
        CHECK(look(rt, "/pkg.Echo/Unary", &s) == MESH_ROUTE_FOUND);
        CHECK(s->methods == NULL);
        CHECK(serves(s, "127.0.0.1:7001", "Unary"));
        CHECK(serves(s, "127.0.0.1:7001", "Anything"));
        mesh_routes_unref(rt);
        reg_table_destroy(&t);
    }
}

/* Mixed with instances that list their methods: the plain one serves every method, listed or
   not; the listing ones only theirs. */
static void test_routes_mixed(void)
{
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7001",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"Metadata\":null,\"meshd\":{\"methods\":"
              "[\"Unary\",\"Stats\"]}}",
              2) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7002",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7002\",\"Metadata\":{\"methods\":[\"Unary\"]}}",
              3) == REG_TABLE_CHANGED);
    mesh_routes_t *rt = reg_table_build_routes(&t);
    const mesh_route_service_t *s = NULL;
    /* Every instance lists its methods: a method nobody lists has no route. */
    CHECK(look(rt, "/pkg.Echo/Unary", &s) == MESH_ROUTE_FOUND);
    CHECK(s->methods && s->n_methods == 2);
    CHECK(look(rt, "/pkg.Echo/ServerStream", NULL) == MESH_ROUTE_NO_METHOD);
    CHECK(!serves(s, "127.0.0.1:7002", "Stats"));
    mesh_routes_unref(rt);

    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7003", "{\"Op\":0,\"Addr\":\"127.0.0.1:7003\"}", 4) ==
          REG_TABLE_CHANGED);
    rt = reg_table_build_routes(&t);
    CHECK(look(rt, "/pkg.Echo/Unary", &s) == MESH_ROUTE_FOUND);
    CHECK(s->methods == NULL && s->n_instances == 3);
    CHECK(serves(s, "127.0.0.1:7001", "Unary") && serves(s, "127.0.0.1:7002", "Unary") &&
          serves(s, "127.0.0.1:7003", "Unary"));
    CHECK(serves(s, "127.0.0.1:7001", "Stats") && !serves(s, "127.0.0.1:7002", "Stats") &&
          serves(s, "127.0.0.1:7003", "Stats"));
    /* A method no instance lists now reaches the one that may serve it, and only that one. */
    CHECK(look(rt, "/pkg.Echo/ServerStream", &s) == MESH_ROUTE_FOUND);
    CHECK(!serves(s, "127.0.0.1:7001", "ServerStream") &&
          !serves(s, "127.0.0.1:7002", "ServerStream") &&
          serves(s, "127.0.0.1:7003", "ServerStream"));
    mesh_routes_unref(rt);

    /* Not listed -> an empty list is a change (serves any -> serves nothing), and back. */
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7003",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7003\",\"Metadata\":null,\"meshd\":{\"methods\":[]}}",
              5) == REG_TABLE_CHANGED);
    rt = reg_table_build_routes(&t);
    CHECK(look(rt, "/pkg.Echo/ServerStream", &s) == MESH_ROUTE_NO_METHOD);
    CHECK(look(rt, "/pkg.Echo/Unary", &s) == MESH_ROUTE_FOUND);
    CHECK(!serves(s, "127.0.0.1:7003", "Unary"));
    mesh_routes_unref(rt);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7003",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7003\",\"Metadata\":null}", 6) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7003", "{\"Op\":0,\"Addr\":\"127.0.0.1:7003\"}", 7) ==
          REG_TABLE_UNCHANGED); /* same meaning */

    /* The snapshot file keeps "not listed" apart from "lists none". */
    char path[] = "/tmp/meshd-test-instance-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(reg_table_save(&t, path, 7) == 0);
    reg_table_t t2;
    int64_t rev = 0;
    CHECK(reg_table_init(&t2, P) == 0);
    CHECK(reg_table_load(&t2, path, &rev) == 3 && rev == 7);
    const char *k3 = P "/pkg.Echo/127.0.0.1:7003", *k1 = P "/pkg.Echo/127.0.0.1:7001";
    const reg_entry_t *e3 = reg_table_find(&t2, k3, strlen(k3));
    const reg_entry_t *e1 = reg_table_find(&t2, k1, strlen(k1));
    CHECK(e3 && e3->valid && e3->methods == NULL);
    CHECK(e1 && e1->methods && e1->n_methods == 2);
    unlink(path);
    char tmp[sizeof(path) + 4];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    reg_table_destroy(&t2);
    reg_table_destroy(&t);
}

/* "tls":"mtls" says a meshd mesh port serves TLS; absent or any other value: h2c. */
static void test_tls(void)
{
    reg_instance_t in = {.addr = "10.0.0.1:9091", .node = "n1", .mesh_tls = 1};
    char *s = reg_value_format(&in);
    CHECK_CONTAINS(s, "\"tls\":\"mtls\"");
    reg_value_t v;
    CHECK(reg_value_parse(s, strlen(s), &v) == REG_VALUE_OK);
    CHECK(v.inst.mesh_tls == 1);
    reg_value_release(&v);
    free(s);
    in.mesh_tls = 0;
    s = reg_value_format(&in);
    CHECK(strstr(s, "tls") == NULL);
    free(s);
    const char *other = "{\"Op\":0,\"Addr\":\"a:1\",\"meshd\":{\"tls\":\"quic\"}}";
    CHECK(reg_value_parse(other, strlen(other), &v) == REG_VALUE_OK);
    CHECK(v.inst.mesh_tls == 0);
    reg_value_release(&v);
    const char *etcdctl = "{\"Op\":0,\"Addr\":\"a:1\",\"Metadata\":null}";
    CHECK(reg_value_parse(etcdctl, strlen(etcdctl), &v) == REG_VALUE_OK);
    CHECK(v.inst.mesh_tls == 0);
    reg_value_release(&v);
    /* The flag reaches the routing table's instance, and a change of it is a change. */
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7001",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"meshd\":{\"tls\":\"mtls\"}}",
              2) == REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7001", "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\"}", 3) ==
          REG_TABLE_CHANGED);
    CHECK(put(&t, P "/pkg.Echo/127.0.0.1:7001",
              "{\"Op\":0,\"Addr\":\"127.0.0.1:7001\",\"meshd\":{\"tls\":\"mtls\"}}",
              4) == REG_TABLE_CHANGED);
    mesh_routes_t *rt = reg_table_build_routes(&t);
    const mesh_route_service_t *svc = NULL;
    CHECK(look(rt, "/pkg.Echo/Unary", &svc) == MESH_ROUTE_FOUND);
    CHECK(svc->n_instances == 1 && svc->instances[0].mesh_tls == 1);
    mesh_routes_unref(rt);
    reg_table_destroy(&t);
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    RUN(test_format);
    RUN(test_tls);
    RUN(test_plain_forms);
    RUN(test_legacy_form);
    RUN(test_malformed);
    RUN(test_many_methods);
    RUN(test_routes_plain_only);
    RUN(test_routes_mixed);
    fprintf(stderr, "ok\n");
    return 0;
}
