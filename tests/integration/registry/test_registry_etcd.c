/*
 * tests/integration/registry/test_registry_etcd.c: the registry view, registration and
 * `registry list` against real etcd.
 *
 * Single node: a registration appears in a watching view (propagation time printed);
 * interoperability with a key written by etcdctl in the naming-resolver format; malformed
 * values skipped with one warning; a registering process killed with SIGKILL disappears when
 * its 2 s lease expires; deregistration removes; compaction while the view is cut off ->
 * recovered with the right table; etcd killed -> the view keeps its instances; a view started
 * while etcd is down loads the snapshot; etcd restarted on its data dir -> resync.
 * Three members: the leader is killed while updates are written -> the view fails over to
 * another member and misses no update.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/etcd_codec.h"
#include "registry/list_cmd.h"
#include "registry/registration.h"
#include "registry/view.h"
#include "tests/integration/registry/etcd_harness.h"
#include "tests/check.h"

#define P "meshd/services"

static uv_loop_t *loop;

/* ---- what the view reported --------------------------------------------------------------- */

typedef struct seen {
    int publishes;
    int degraded_reports;
    size_t last_services;
} seen_t;

static void on_view(void *ud, mesh_routes_t *routes, const reg_table_t *t, int64_t rev)
{
    seen_t *s = ud;
    s->publishes++;
    if (routes) {
        s->last_services = mesh_routes_count(routes);
        mesh_routes_unref(routes);
    }
}

static void on_link(void *ud, reg_link_t link, int64_t rev)
{
    if (link == REG_LINK_DEGRADED)
        ((seen_t *)ud)->degraded_reports++;
}

typedef struct cond {
    reg_view_t *view;
    const char *key;
    int want; /* 1 present, 0 absent */
    reg_link_t link;
    size_t n;
} cond_t;

static int key_is(void *ud)
{
    cond_t *c = ud;
    reg_entry_t *e = reg_table_find(reg_view_table(c->view), c->key, strlen(c->key));
    return (e && e->valid) == c->want;
}

static int link_is(void *ud)
{
    cond_t *c = ud;
    return reg_view_link(c->view) == c->link;
}

static int count_is(void *ud)
{
    cond_t *c = ud;
    return reg_view_table(c->view)->n_valid == c->n;
}

static int wait_key(reg_view_t *v, const char *key, int want, uint64_t ms)
{
    cond_t c = {.view = v, .key = key, .want = want};
    return h_wait(loop, key_is, &c, ms);
}

static int wait_link(reg_view_t *v, reg_link_t l, uint64_t ms)
{
    cond_t c = {.view = v, .link = l};
    return h_wait(loop, link_is, &c, ms);
}

static int wait_count(reg_view_t *v, size_t n, uint64_t ms)
{
    cond_t c = {.view = v, .n = n};
    return h_wait(loop, count_is, &c, ms);
}

/* ---- unary calls --------------------------------------------------------------------------- */

typedef struct answer {
    int done;
    int err;
    char body[2048];
} answer_t;

static void on_answer(void *ud, int err, const char *body, size_t len)
{
    answer_t *a = ud;
    a->done = 1;
    a->err = err;
    snprintf(a->body, sizeof(a->body), "%.*s", (int)len, body);
}

static int answered(void *ud)
{
    return ((answer_t *)ud)->done;
}

/* ---- registrations ------------------------------------------------------------------------ */

typedef struct regstate {
    int registered;
    int deregistered;
    int lost;
} regstate_t;

static void on_reg(void *ud, reg_registration_event_t ev, int64_t lease)
{
    regstate_t *s = ud;
    if (ev == REG_REGISTERED)
        s->registered++;
    else if (ev == REG_DEREGISTERED)
        s->deregistered = 1;
    else
        s->lost++;
}

static int is_registered(void *ud)
{
    return ((regstate_t *)ud)->registered > 0;
}

static int is_deregistered(void *ud)
{
    return ((regstate_t *)ud)->deregistered;
}

static const char *const greeter_methods[] = {"SayHello", "SayBye"};

static reg_registration_t *register_one(etcd_client_t *c, const char *service, const char *addr,
                                        int64_t ttl, regstate_t *st)
{
    reg_service_t svc = {service, greeter_methods, 2};
    reg_registration_cfg_t cfg = {.client = c,
                                  .addr = addr,
                                  .node = "node-1",
                                  .zone = "z1",
                                  .version = "1.0",
                                  .ttl_s = ttl,
                                  .services = &svc,
                                  .n_services = 1};
    reg_registration_t *r = reg_registration_new(loop, &cfg, on_reg, st);
    CHECK(r && reg_registration_start(r) == 0);
    return r;
}

/* `test_registry_etcd --register ENDPOINTS ADDR TTL`: a registering process to SIGKILL. */
static int registrar_main(const char *endpoints, const char *addr, int ttl)
{
    uv_loop_t l;
    uv_loop_init(&l);
    loop = &l;
    etcd_client_cfg_t cc = {.endpoints = endpoints};
    etcd_client_t *c = etcd_client_new(&l, &cc);
    regstate_t st = {0};
    register_one(c, "pkg.Doomed", addr, ttl, &st);
    uv_run(&l, UV_RUN_DEFAULT); /* until killed */
    return 0;
}

static pid_t spawn_registrar(const char *endpoints, const char *addr, int ttl)
{
    char t[16];
    snprintf(t, sizeof(t), "%d", ttl);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_registry_etcd", "--register", endpoints, addr, t,
              (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    h_track_pid(pid);
    return pid;
}

static reg_view_t *view_new(etcd_client_t *c, const char *snapshot, seen_t *seen)
{
    reg_view_cfg_t cfg = {.client = c,
                          .snapshot_path = snapshot,
                          .snapshot_min_gap_ms = 50,
                          .watch = {.backoff_min_ms = 50, .backoff_max_ms = 400, .seed = 1},
                          .on_link = on_link};
    reg_view_t *v = reg_view_new(loop, &cfg, on_view, seen);
    CHECK(v && reg_view_start(v) == 0);
    return v;
}

/* ---- single node -------------------------------------------------------------------------- */

static void single_node(void)
{
    etcd_cluster_t ec;
    double t0 = h_now_ms();
    CHECK(h_cluster_start(&ec, 1) == 0);
    printf("single node: etcd healthy after %.0f ms\n", h_now_ms() - t0);
    const char *dir = h_tmpdir("meshd-reg-it");
    char snapshot[512];
    snprintf(snapshot, sizeof(snapshot), "%s/view.snapshot", dir);

    /* The view talks to etcd through a proxy the test can cut. */
    h_proxy_t *proxy = h_proxy_start(loop, ec.m[0].client_port);
    CHECK(proxy);
    char via_proxy[64];
    snprintf(via_proxy, sizeof(via_proxy), "http://127.0.0.1:%d", h_proxy_port(proxy));
    etcd_client_cfg_t vcc = {
        .endpoints = via_proxy, .request_timeout_ms = 1000, .connect_timeout_ms = 300};
    etcd_client_t *vc = etcd_client_new(loop, &vcc);
    etcd_client_cfg_t rcc = {.endpoints = ec.endpoints};
    etcd_client_t *rc = etcd_client_new(loop, &rcc);
    CHECK(vc && rc);
    seen_t seen = {0};
    reg_view_t *v = view_new(vc, snapshot, &seen);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));

    /* 1. A registration appears in the watching view. */
    regstate_t st = {0};
    reg_registration_t *r = register_one(rc, "pkg.Greeter", "127.0.0.1:7001", 10, &st);
    CHECK(h_wait(loop, is_registered, &st, 5000));
    double put_ok = h_now_ms();
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 1, 5000));
    printf("registration visible in the view %.2f ms after the put was acknowledged\n",
           h_now_ms() - put_ok);
    reg_entry_t *e = reg_table_find(reg_view_table(v), P "/pkg.Greeter/127.0.0.1:7001",
                                    strlen(P "/pkg.Greeter/127.0.0.1:7001"));
    CHECK(e && e->n_methods == 2 && strcmp(e->node, "node-1") == 0 && e->lease != 0);
    {
        /* The lease is alive with a TTL of at most 10 s (timetolive). */
        answer_t a = {0};
        char *body = etcd_req_lease_id(e->lease);
        CHECK(etcd_client_post(rc, "/v3/lease/timetolive", body, on_answer, &a));
        free(body);
        CHECK(h_wait(loop, answered, &a, 5000) && a.err == ETCD_OK);
        etcd_lease_info_t li;
        CHECK(etcd_decode_lease(a.body, strlen(a.body), &li) == 0);
        CHECK(li.id == e->lease && li.ttl > 0 && li.ttl <= 10);
    }
    CHECK(h_etcdctl(ec.endpoints, "get", P "/pkg.Greeter/127.0.0.1:7001", NULL) == 0);

    /* 2. Interoperability: the naming-resolver format written by etcdctl. */
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Other/127.0.0.1:7100",
                    "{\"Op\":0,\"Addr\":\"127.0.0.1:7100\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Other/127.0.0.1:7100", 1, 5000));

    /* 3. Malformed values are skipped, one warning per key. */
    size_t warned = reg_view_table(v)->n_warned;
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:1", "not json", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:1", "still not json", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:2", "{\"Op\":0}", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Other/127.0.0.1:7101",
                    "{\"Op\":0,\"Addr\":\"127.0.0.1:7101\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Other/127.0.0.1:7101", 1, 5000));
    CHECK(reg_view_table(v)->n_warned == warned + 2);
    CHECK(reg_view_table(v)->n_valid == 3);

    /* 4. A registering process killed with SIGKILL vanishes when its lease expires. */
    pid_t child = spawn_registrar(ec.endpoints, "127.0.0.1:7200", 2);
    CHECK(wait_key(v, P "/pkg.Doomed/127.0.0.1:7200", 1, 5000));
    h_kill_pid(child);
    double killed = h_now_ms();
    CHECK(wait_key(v, P "/pkg.Doomed/127.0.0.1:7200", 0, 8000));
    printf("SIGKILLed registrar (TTL 2 s) gone from the view after %.0f ms\n", h_now_ms() - killed);

    /* 5. Deregistration removes the instance. */
    reg_registration_stop(r);
    CHECK(h_wait(loop, is_deregistered, &st, 5000));
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 0, 5000));
    reg_registration_free(r);

    /* 6. Compaction while the view is cut off: it reconnects, its watch is canceled as
          compacted, it ranges, diffs (removal included) and watches again. */
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Keep/127.0.0.1:1", "{\"Addr\":\"127.0.0.1:1\"}",
                    NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Gone/127.0.0.1:2", "{\"Addr\":\"127.0.0.1:2\"}",
                    NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Gone/127.0.0.1:2", 1, 5000));
    h_proxy_cut(proxy);
    CHECK(wait_link(v, REG_LINK_DEGRADED, 5000));
    CHECK(h_etcdctl(ec.endpoints, "del", P "/pkg.Gone/127.0.0.1:2", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.New/127.0.0.1:3", "{\"Addr\":\"127.0.0.1:3\"}",
                    NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Filler/127.0.0.1:4", "{\"Addr\":\"127.0.0.1:4\"}",
                    NULL) == 0);
    /* compact at the latest revision (etcdctl prints it in `endpoint status`; take it from a
       put's header via get -w json is overkill: compact to the current revision by asking). */
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd),
                 "ETCDCTL_API=3 etcdctl --endpoints=%s compact $(ETCDCTL_API=3 etcdctl "
                 "--endpoints=%s get x -w json | sed 's/.*\"revision\":\\([0-9]*\\).*/\\1/') "
                 ">/dev/null",
                 ec.endpoints, ec.endpoints);
        CHECK(system(cmd) == 0);
    }
    uint64_t compacted_before = reg_view_sm(v)->compacted;
    CHECK(h_proxy_restore(proxy) == 0);
    CHECK(wait_key(v, P "/pkg.New/127.0.0.1:3", 1, 8000));
    CHECK(wait_key(v, P "/pkg.Gone/127.0.0.1:2", 0, 5000));
    CHECK(wait_key(v, P "/pkg.Keep/127.0.0.1:1", 1, 100));
    CHECK(reg_view_sm(v)->compacted == compacted_before + 1);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    printf("compaction during the watch: recovered by range + diff (%" PRIu64 " resyncs)\n",
           reg_view_sm(v)->resyncs);

    /* 7. `meshd registry list` (table and JSON). */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        etcd_client_cfg_t lc = {.endpoints = ec.endpoints};
        CHECK(reg_list_run(&lc, NULL, 1, f, stderr) == 0);
        fclose(f);
        CHECK(strstr(buf, "\"pkg.New\"") && strstr(buf, "\"127.0.0.1:3\"") &&
              !strstr(buf, "pkg.Bad"));
        free(buf);
        f = open_memstream(&buf, &len);
        CHECK(reg_list_run(&lc, NULL, 0, f, stderr) == 0);
        fclose(f);
        CHECK(strstr(buf, "pkg.Other") && strstr(buf, "127.0.0.1:7101"));
        free(buf);
    }

    /* 8. etcd killed: the view keeps its instances (degraded). */
    regstate_t st2 = {0};
    reg_registration_t *r2 = register_one(rc, "pkg.Greeter", "127.0.0.1:7002", 10, &st2);
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7002", 1, 5000));
    size_t before = reg_view_table(v)->n_valid;
    h_member_kill(&ec, 0);
    CHECK(wait_link(v, REG_LINK_DEGRADED, 5000));
    h_run_for(loop, 300);
    CHECK(reg_view_table(v)->n_valid == before);
    CHECK(seen.degraded_reports >= 1);

    /* 9. A view started while etcd is down loads the snapshot (a node restarted mid-outage). */
    reg_view_free(v);
    h_run_for(loop, 20);
    seen_t seen2 = {0};
    reg_view_t *v2 = view_new(vc, snapshot, &seen2);
    CHECK(reg_view_table(v2)->n_valid == before && seen2.publishes == 1);
    CHECK(seen2.last_services >= 4);
    CHECK(reg_view_link(v2) == REG_LINK_DEGRADED);
    h_run_for(loop, 200);
    CHECK(reg_view_table(v2)->n_valid == before);

    /* 10. etcd restarted on its data dir: resync, nothing that still exists is dropped, and
           changes flow again. */
    CHECK(h_member_start(&ec, 0) == 0);
    CHECK(wait_link(v2, REG_LINK_CONNECTED, 10000));
    CHECK(reg_view_table(v2)->n_valid == before);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.After/127.0.0.1:9", "{\"Addr\":\"127.0.0.1:9\"}",
                    NULL) == 0);
    CHECK(wait_key(v2, P "/pkg.After/127.0.0.1:9", 1, 5000));
    CHECK(wait_key(v2, P "/pkg.Greeter/127.0.0.1:7002", 1, 100));
    printf("etcd restart: view resynced with %zu instances\n", reg_view_table(v2)->n_valid);

    reg_registration_free(r2);
    reg_view_free(v2);
    etcd_client_free(vc);
    etcd_client_free(rc);
    h_proxy_cut(proxy);
    h_run_for(loop, 20);
    free(proxy);
    h_member_kill(&ec, 0);
}

/* ---- three members ------------------------------------------------------------------------ */

static void three_members(void)
{
    etcd_cluster_t ec;
    double t0 = h_now_ms();
    CHECK(h_cluster_start(&ec, 3) == 0);
    int leader = -1;
    for (double dl = h_now_ms() + 5000; leader < 0 && h_now_ms() < dl; usleep(50000))
        leader = h_cluster_leader(&ec);
    CHECK(leader >= 0);
    printf("3 members: healthy after %.0f ms, leader e%d\n", h_now_ms() - t0, leader);
    /* The view starts on the leader, so killing it forces a failover. */
    char eps[300];
    int others[2], k = 0;
    for (int i = 0; i < 3; i++)
        if (i != leader)
            others[k++] = i;
    snprintf(eps, sizeof(eps), "%s,%s,%s", ec.m[leader].url, ec.m[others[0]].url,
             ec.m[others[1]].url);
    char survivors[200];
    snprintf(survivors, sizeof(survivors), "%s,%s", ec.m[others[0]].url, ec.m[others[1]].url);
    etcd_client_cfg_t cc = {
        .endpoints = eps, .request_timeout_ms = 1000, .connect_timeout_ms = 300};
    etcd_client_t *c = etcd_client_new(loop, &cc);
    seen_t seen = {0};
    reg_view_t *v = view_new(c, NULL, &seen);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    for (int i = 0; i < 5; i++) {
        char key[128], val[128];
        snprintf(key, sizeof(key), P "/pkg.Ha/127.0.0.1:%d", 8000 + i);
        snprintf(val, sizeof(val), "{\"Op\":0,\"Addr\":\"127.0.0.1:%d\"}", 8000 + i);
        CHECK(h_etcdctl(ec.endpoints, "put", key, val, NULL) == 0);
    }
    CHECK(wait_count(v, 5, 5000));
    h_member_kill(&ec, leader);
    double killed = h_now_ms();
    /* Updates written during the failover (etcdctl retries until a new leader is elected). */
    for (int i = 5; i < 15; i++) {
        char key[128], val[128];
        snprintf(key, sizeof(key), P "/pkg.Ha/127.0.0.1:%d", 8000 + i);
        snprintf(val, sizeof(val), "{\"Op\":0,\"Addr\":\"127.0.0.1:%d\"}", 8000 + i);
        /* A put proposed just as the leader died may time out: retry like any writer. */
        int ok = 0;
        for (int tries = 0; tries < 4 && !ok; tries++) {
            ok = h_etcdctl(survivors, "put", key, val, NULL) == 0;
            h_run_for(loop, 5);
        }
        CHECK(ok);
    }
    CHECK(h_etcdctl(survivors, "del", P "/pkg.Ha/127.0.0.1:8000", NULL) == 0);
    CHECK(wait_count(v, 14, 10000));
    CHECK(wait_key(v, P "/pkg.Ha/127.0.0.1:8000", 0, 100));
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    printf("leader killed: view on %s with all 14 instances %.0f ms after the kill\n",
           etcd_client_endpoint(c), h_now_ms() - killed);
    /* Quorum lost (a second member killed): the last member has no leader and cancels the
       watch ("hasleader"); the view goes degraded and keeps every instance. */
    h_member_kill(&ec, others[0]);
    double q = h_now_ms();
    while (h_member_healthy(ec.m[others[1]].url) && h_now_ms() - q < 10000)
        h_run_for(loop, 50);
    CHECK(!h_member_healthy(ec.m[others[1]].url));
    CHECK(wait_link(v, REG_LINK_DEGRADED, 15000));
    printf("quorum lost: view degraded %.0f ms after the second kill\n", h_now_ms() - q);
    CHECK(!wait_link(v, REG_LINK_CONNECTED, 1500)); /* and it stays so */
    CHECK(reg_view_table(v)->n_valid == 14);
    reg_view_free(v);
    etcd_client_free(c);
    h_run_for(loop, 20);
    for (int i = 0; i < 3; i++)
        h_member_kill(&ec, i);
}

/* ---- token authentication ----------------------------------------------------------------- */

static void with_auth(void)
{
    etcd_cluster_t ec;
    CHECK(h_cluster_start(&ec, 1) == 0);
    CHECK(h_etcdctl(ec.endpoints, "user", "add", "root:secret", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "user", "grant-role", "root", "root", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "auth", "enable", NULL) == 0);
    etcd_client_cfg_t cc = {.endpoints = ec.endpoints,
                            .username = "root",
                            .password = "secret",
                            .request_timeout_ms = 1000,
                            .connect_timeout_ms = 300};
    etcd_client_t *c = etcd_client_new(loop, &cc);
    seen_t seen = {0};
    reg_view_t *v = view_new(c, NULL, &seen);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    regstate_t st = {0};
    reg_registration_t *r = register_one(c, "pkg.Secure", "127.0.0.1:7301", 10, &st);
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7301", 1, 5000));
    /* A wrong password is reported, not retried forever. */
    etcd_client_cfg_t bad = {.endpoints = ec.endpoints, .username = "root", .password = "nope"};
    FILE *devnull = fopen("/dev/null", "w");
    CHECK(reg_list_run(&bad, NULL, 0, devnull, devnull) == -1);
    etcd_client_cfg_t none = {.endpoints = ec.endpoints};
    CHECK(reg_list_run(&none, NULL, 0, devnull, devnull) == -1);
    fclose(devnull);
    /* Restart etcd: its simple tokens are gone, the client authenticates again. */
    h_member_kill(&ec, 0);
    CHECK(wait_link(v, REG_LINK_DEGRADED, 5000));
    CHECK(h_member_start(&ec, 0) == 0);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 10000));
    CHECK(h_etcdctl(ec.endpoints, "--user=root:secret", "put", P "/pkg.Secure/127.0.0.1:7302",
                    "{\"Addr\":\"127.0.0.1:7302\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7302", 1, 5000));
    reg_registration_stop(r);
    CHECK(h_wait(loop, is_deregistered, &st, 5000));
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7301", 0, 5000));
    printf("token auth: registration, watch and re-authentication after an etcd restart ok\n");
    reg_registration_free(r);
    reg_view_free(v);
    etcd_client_free(c);
    h_run_for(loop, 20);
    h_member_kill(&ec, 0);
}

/* ---- TLS with client certificates --------------------------------------------------------- */

static void with_tls(void)
{
    const char *dir = h_tls_make();
    CHECK(dir);
    etcd_cluster_t ec;
    CHECK(h_cluster_start_tls(&ec, 1, dir) == 0);
    char ca[300], cert[300], key[300];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(cert, sizeof(cert), "%s/client.crt", dir);
    snprintf(key, sizeof(key), "%s/client.key", dir);
    etcd_client_cfg_t cc = {
        .endpoints = ec.endpoints, .ca_file = ca, .cert_file = cert, .key_file = key};
    etcd_client_t *c = etcd_client_new(loop, &cc);
    seen_t seen = {0};
    reg_view_t *v = view_new(c, NULL, &seen);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    regstate_t st = {0};
    reg_registration_t *r = register_one(c, "pkg.Tls", "127.0.0.1:7401", 10, &st);
    CHECK(wait_key(v, P "/pkg.Tls/127.0.0.1:7401", 1, 5000));
    /* Without the client certificate etcd refuses the handshake. */
    etcd_client_cfg_t nocert = {.endpoints = ec.endpoints, .ca_file = ca};
    FILE *devnull = fopen("/dev/null", "w");
    CHECK(reg_list_run(&nocert, NULL, 0, devnull, devnull) == -1);
    CHECK(reg_list_run(&cc, NULL, 0, devnull, devnull) == 0);
    fclose(devnull);
    printf("TLS with client certificates: registration and watch ok\n");
    reg_registration_free(r);
    reg_view_free(v);
    etcd_client_free(c);
    h_run_for(loop, 20);
    h_member_kill(&ec, 0);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--register") == 0)
        return registrar_main(argv[2], argv[3], atoi(argv[4]));
    setvbuf(stdout, NULL, _IOLBF, 0);
    mesh_log_init("test", getenv("MESHD_TEST_LOG") ? MESH_LOG_DEBUG : MESH_LOG_WARN,
                  MESH_LOG_FORMAT_TEXT);
    uv_loop_t l;
    uv_loop_init(&l);
    loop = &l;
    double t0 = h_now_ms();
    single_node();
    printf("single node part: %.1f s\n", (h_now_ms() - t0) / 1000);
    t0 = h_now_ms();
    three_members();
    printf("three member part: %.1f s\n", (h_now_ms() - t0) / 1000);
    t0 = h_now_ms();
    with_auth();
    printf("auth part: %.1f s\n", (h_now_ms() - t0) / 1000);
    t0 = h_now_ms();
    with_tls();
    printf("tls part: %.1f s\n", (h_now_ms() - t0) / 1000);
    uv_run(&l, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&l) == 0);
    printf("ok\n");
    return 0;
}
