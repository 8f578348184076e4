/*
 * tests/integration/registry/test_registry_etcd.c: the production registry actor (its view,
 * its registrations) and `registry list` against real etcd.
 *
 * Single node: a registration appears in a watching view (propagation time printed);
 * interoperability with a key written by etcdctl in the naming-resolver format; malformed
 * values skipped with one warning; a registering process killed with SIGKILL disappears when
 * its 2 s lease expires; deregistration removes, and never removes a key that another owner's
 * lease took over; compaction while the view is cut off -> recovered with the right table;
 * etcd killed -> the view keeps its instances; a view started while etcd is down loads the
 * snapshot; etcd restarted on its data dir -> resync. Three members: the leader is killed while
 * updates are written -> the view fails over to another member and misses no update.
 * Authentication and TLS.
 *
 * The actors run on a real executor on its own thread (registry_rig.h); the test observes
 * them through the registry actor's hook.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/etcd_codec.h"
#include "registry/list_cmd.h"
#include "tests/check.h"
#include "tests/integration/registry/etcd_harness.h"
#include "tests/integration/registry/registry_rig.h"

#define P "meshd/services"

static uv_loop_t *loop;
static rig_t rig;

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

static etcd_api_curl_cfg_t direct(const char *const *eps)
{
    return (etcd_api_curl_cfg_t){.endpoints = eps, .n_endpoints = 1};
}

/* An optional string as one argv word ("-": NULL) and back. */
#define OPT_ARG(s) ((s) ? (s) : "-")
#define ARG_OPT(a) (strcmp((a), "-") ? (a) : NULL)

/* `test_registry_etcd --list JSON ENDPOINTS USER PASSWORD CA CERT KEY`: `registry list` alone in
 * a fresh process (list_run). */
static int list_main(char **a)
{
    etcd_client_cfg_t lc = {.endpoints = a[1],
                            .username = ARG_OPT(a[2]),
                            .password = ARG_OPT(a[3]),
                            .ca_file = ARG_OPT(a[4]),
                            .cert_file = ARG_OPT(a[5]),
                            .key_file = ARG_OPT(a[6])};
    FILE *devnull = fopen("/dev/null", "w");
    int rc = reg_list_run(&lc, NULL, atoi(a[0]), stdout, devnull);
    fclose(devnull);
    return rc == 0 ? 0 : 1;
}

/*
 * Runs `registry list` (reg_list_run, with its own loop and etcd client) in a child process and
 * returns its output (malloc'd) and result: the registry actors keep running on the rig's
 * thread meanwhile, and the one-shot command's sockets and loop stay out of their process. The
 * child execs this binary afresh (--list): a child that only forked would inherit the locks
 * other threads held at the fork (malloc's, libcurl's) and could hang on them.
 */
static int list_run(const etcd_client_cfg_t *lc, int json, char **out)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        close(fds[1]);
        execl("/proc/self/exe", "test_registry_etcd", "--list", json ? "1" : "0", lc->endpoints,
              OPT_ARG(lc->username), OPT_ARG(lc->password), OPT_ARG(lc->ca_file),
              OPT_ARG(lc->cert_file), OPT_ARG(lc->key_file), (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    CHECK(buf);
    ssize_t n;
    while ((n = read(fds[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            CHECK(buf);
        }
    }
    close(fds[0]);
    buf[len] = '\0';
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* `test_registry_etcd --register ENDPOINT ADDR TTL`: a registering process to SIGKILL. */
static int registrar_main(const char *endpoint, const char *addr, int ttl)
{
    uv_loop_t l;
    uv_loop_init(&l);
    loop = &l;
    rig_start(&rig, &l);
    const char *eps[] = {endpoint};
    etcd_api_curl_cfg_t cfg = direct(eps);
    registrar_t *g = registrar_start(&rig, &cfg);
    registrar_register(g, "pkg.Doomed", addr, ttl);
    for (;;)
        pause(); /* until killed */
    return 0;
}

static pid_t spawn_registrar(const char *endpoint, const char *addr, int ttl)
{
    char t[16];
    snprintf(t, sizeof(t), "%d", ttl);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_registry_etcd", "--register", endpoint, addr, t,
              (char *)NULL);
        _exit(127);
    }
    CHECK(pid > 0);
    h_track_pid(pid);
    return pid;
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
    const char *eps[] = {ec.endpoints};
    etcd_api_curl_cfg_t dc = direct(eps);
    etcd_client_cfg_t rcc = {.endpoints = ec.endpoints};
    etcd_client_t *rc = etcd_client_new(loop, &rcc);
    CHECK(rc);
    viewer_t *v = viewer_start(&rig, via_proxy, snapshot, 1000, 300);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    registrar_t *g = registrar_start(&rig, &dc);

    /* 1. A registration appears in the watching view. */
    registrar_register(g, "pkg.Greeter", "127.0.0.1:7001", 10);
    CHECK(wait_registered(g, 5000));
    double put_ok = h_now_ms();
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 1, 5000));
    printf("registration visible in the view %.2f ms after the put was acknowledged\n",
           h_now_ms() - put_ok);
    rig_key_t e;
    CHECK(viewer_key(v, P "/pkg.Greeter/127.0.0.1:7001", &e) == 0);
    CHECK(e.n_methods == 2 && strcmp(e.node, "node-1") == 0 && e.lease != 0);
    {
        /* The lease is alive with a TTL of at most 10 s (timetolive). */
        answer_t a = {0};
        char *body = etcd_req_lease_id(e.lease);
        CHECK(etcd_client_post(rc, "/v3/lease/timetolive", body, on_answer, &a));
        free(body);
        CHECK(h_wait(loop, answered, &a, 5000) && a.err == ETCD_OK);
        etcd_lease_info_t li;
        CHECK(etcd_decode_lease(a.body, strlen(a.body), &li) == 0);
        CHECK(li.id == e.lease && li.ttl > 0 && li.ttl <= 10);
    }
    CHECK(h_etcdctl(ec.endpoints, "get", P "/pkg.Greeter/127.0.0.1:7001", NULL) == 0);

    /* 1b. A key deleted while its lease lives (an operator, etcd data loss) is put back after
     *     the next keepalive (TTL/3); an eviction marker naming the lease keeps it out until
     *     the marker is removed. */
    CHECK(h_etcdctl(ec.endpoints, "del", P "/pkg.Greeter/127.0.0.1:7001", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 0, 2000));
    double deleted = h_now_ms();
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 1, 8000));
    printf("deleted key put back %.0f ms after the delete\n", h_now_ms() - deleted);
    {
        char marker[128];
        snprintf(marker, sizeof(marker), "{\"lease\":\"%lld\",\"reason\":\"test\"}",
                 (long long)e.lease);
        CHECK(h_etcdctl(ec.endpoints, "put", "meshd/evicted/pkg.Greeter/127.0.0.1:7001", marker,
                        NULL) == 0);
        CHECK(h_etcdctl(ec.endpoints, "del", P "/pkg.Greeter/127.0.0.1:7001", NULL) == 0);
        CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 0, 2000));
        CHECK(!wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 1, 5000)); /* two keepalives */
        CHECK(h_etcdctl(ec.endpoints, "del", "meshd/evicted/pkg.Greeter/127.0.0.1:7001", NULL) ==
              0);
        CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 1, 8000));
        printf("eviction marker kept the key out; put back once the marker was removed\n");
    }

    /* 2. Interoperability: the naming-resolver format written by etcdctl. */
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Other/127.0.0.1:7100",
                    "{\"Op\":0,\"Addr\":\"127.0.0.1:7100\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Other/127.0.0.1:7100", 1, 5000));

    /* 3. Malformed values are skipped, one warning per key. */
    size_t warned = viewer_warned(v);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:1", "not json", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:1", "still not json", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Bad/127.0.0.1:2", "{\"Op\":0}", NULL) == 0);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.Other/127.0.0.1:7101",
                    "{\"Op\":0,\"Addr\":\"127.0.0.1:7101\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Other/127.0.0.1:7101", 1, 5000));
    CHECK(viewer_warned(v) == warned + 2);
    CHECK(viewer_valid(v) == 3);

    /* 4. A registering process killed with SIGKILL vanishes when its lease expires. */
    pid_t child = spawn_registrar(ec.endpoints, "127.0.0.1:7200", 2);
    CHECK(wait_key(v, P "/pkg.Doomed/127.0.0.1:7200", 1, 5000));
    h_kill_pid(child);
    double killed = h_now_ms();
    CHECK(wait_key(v, P "/pkg.Doomed/127.0.0.1:7200", 0, 8000));
    printf("SIGKILLed registrar (TTL 2 s) gone from the view after %.0f ms\n", h_now_ms() - killed);

    /* 5. Deregistration removes the instance. */
    registrar_deregister(g);
    CHECK(wait_deregistered(g, 5000));
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7001", 0, 5000));

    /* 5b. Deregistration never deletes a key another owner took over: a new pod on the same
     *     address re-put the key under its own lease (here etcdctl's, with a lease of its
     *     own); the old registration's deregistration leaves it in place. */
    registrar_register(g, "pkg.Moved", "127.0.0.1:7050", 10);
    CHECK(wait_registered(g, 5000));
    CHECK(wait_key(v, P "/pkg.Moved/127.0.0.1:7050", 1, 5000));
    {
        char cmd[768];
        snprintf(cmd, sizeof(cmd),
                 "ETCDCTL_API=3 etcdctl --endpoints=%s put --lease=$(ETCDCTL_API=3 etcdctl "
                 "--endpoints=%s lease grant 30 | sed 's/lease \\([0-9a-f]*\\) .*/\\1/') "
                 "%s '{\"Op\":0,\"Addr\":\"127.0.0.1:7050\"}' >/dev/null",
                 ec.endpoints, ec.endpoints, P "/pkg.Moved/127.0.0.1:7050");
        CHECK(system(cmd) == 0);
    }
    registrar_deregister(g);
    CHECK(wait_deregistered(g, 5000));
    h_run_for(loop, 300);
    CHECK(viewer_has(v, P "/pkg.Moved/127.0.0.1:7050"));
    CHECK(h_etcdctl(ec.endpoints, "del", P "/pkg.Moved/127.0.0.1:7050", NULL) == 0);

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
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd),
                 "ETCDCTL_API=3 etcdctl --endpoints=%s compact $(ETCDCTL_API=3 etcdctl "
                 "--endpoints=%s get x -w json | sed 's/.*\"revision\":\\([0-9]*\\).*/\\1/') "
                 ">/dev/null",
                 ec.endpoints, ec.endpoints);
        CHECK(system(cmd) == 0);
    }
    uint64_t compacted_before = viewer_compacted(v);
    CHECK(h_proxy_restore(proxy) == 0);
    CHECK(wait_key(v, P "/pkg.New/127.0.0.1:3", 1, 8000));
    CHECK(wait_key(v, P "/pkg.Gone/127.0.0.1:2", 0, 5000));
    CHECK(wait_key(v, P "/pkg.Keep/127.0.0.1:1", 1, 100));
    CHECK(viewer_compacted(v) == compacted_before + 1);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    printf("compaction during the watch: recovered by range + diff (%" PRIu64 " resyncs)\n",
           viewer_resyncs(v));

    /* 7. `meshd registry list` (table and JSON). */
    {
        char *buf = NULL;
        etcd_client_cfg_t lc = {.endpoints = ec.endpoints};
        CHECK(list_run(&lc, 1, &buf) == 0);
        CHECK(strstr(buf, "\"pkg.New\"") && strstr(buf, "\"127.0.0.1:3\"") &&
              !strstr(buf, "pkg.Bad"));
        free(buf);
        CHECK(list_run(&lc, 0, &buf) == 0);
        CHECK(strstr(buf, "pkg.Other") && strstr(buf, "127.0.0.1:7101"));
        free(buf);
    }

    /* 8. etcd killed: the view keeps its instances (degraded). */
    registrar_register(g, "pkg.Greeter", "127.0.0.1:7002", 10);
    CHECK(wait_key(v, P "/pkg.Greeter/127.0.0.1:7002", 1, 5000));
    size_t before = viewer_valid(v);
    h_member_kill(&ec, 0);
    CHECK(wait_link(v, REG_LINK_DEGRADED, 5000));
    h_run_for(loop, 300);
    CHECK(viewer_valid(v) == before);

    /* 9. A view started while etcd is down loads the snapshot (a node restarted mid-outage). */
    viewer_stop(v);
    viewer_t *v2 = viewer_start(&rig, via_proxy, snapshot, 1000, 300);
    CHECK(wait_count(v2, before, 2000));
    CHECK(viewer_publishes(v2) >= 1 && viewer_services(v2) >= 4);
    CHECK(viewer_link(v2) == REG_LINK_DEGRADED);
    h_run_for(loop, 200);
    CHECK(viewer_valid(v2) == before);

    /* 10. etcd restarted on its data dir: resync, nothing that still exists is dropped, and
           changes flow again. */
    CHECK(h_member_start(&ec, 0) == 0);
    CHECK(wait_link(v2, REG_LINK_CONNECTED, 10000));
    CHECK(viewer_valid(v2) == before);
    CHECK(h_etcdctl(ec.endpoints, "put", P "/pkg.After/127.0.0.1:9", "{\"Addr\":\"127.0.0.1:9\"}",
                    NULL) == 0);
    CHECK(wait_key(v2, P "/pkg.After/127.0.0.1:9", 1, 5000));
    CHECK(wait_key(v2, P "/pkg.Greeter/127.0.0.1:7002", 1, 100));
    printf("etcd restart: view resynced with %zu instances\n", viewer_valid(v2));

    viewer_stop(v2);
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
    int others[2], k = 0;
    for (int i = 0; i < 3; i++)
        if (i != leader)
            others[k++] = i;
    const char *eps[] = {ec.m[leader].url, ec.m[others[0]].url, ec.m[others[1]].url};
    char survivors[200];
    snprintf(survivors, sizeof(survivors), "%s,%s", ec.m[others[0]].url, ec.m[others[1]].url);
    etcd_api_curl_cfg_t cc = {
        .endpoints = eps, .n_endpoints = 3, .request_timeout_ms = 1000, .connect_timeout_ms = 300};
    viewer_t *v = viewer_start_cfg(&rig, &cc, NULL);
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
    printf("leader killed: view with all 14 instances %.0f ms after the kill\n",
           h_now_ms() - killed);
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
    CHECK(viewer_valid(v) == 14);
    viewer_stop(v);
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
    const char *eps[] = {ec.endpoints};
    etcd_api_curl_cfg_t cc = {.endpoints = eps,
                              .n_endpoints = 1,
                              .username = "root",
                              .password = "secret",
                              .request_timeout_ms = 1000,
                              .connect_timeout_ms = 300};
    viewer_t *v = viewer_start_cfg(&rig, &cc, NULL);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    registrar_t *g = registrar_start(&rig, &cc);
    registrar_register(g, "pkg.Secure", "127.0.0.1:7301", 10);
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7301", 1, 5000));
    /* A wrong password is reported, not retried forever. */
    etcd_client_cfg_t bad = {.endpoints = ec.endpoints, .username = "root", .password = "nope"};
    CHECK(list_run(&bad, 0, NULL) == -1);
    etcd_client_cfg_t none = {.endpoints = ec.endpoints};
    CHECK(list_run(&none, 0, NULL) == -1);
    /* Restart etcd: its simple tokens are gone, the client authenticates again. */
    h_member_kill(&ec, 0);
    CHECK(wait_link(v, REG_LINK_DEGRADED, 5000));
    CHECK(h_member_start(&ec, 0) == 0);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 10000));
    CHECK(h_etcdctl(ec.endpoints, "--user=root:secret", "put", P "/pkg.Secure/127.0.0.1:7302",
                    "{\"Addr\":\"127.0.0.1:7302\"}", NULL) == 0);
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7302", 1, 5000));
    registrar_deregister(g);
    CHECK(wait_deregistered(g, 5000));
    CHECK(wait_key(v, P "/pkg.Secure/127.0.0.1:7301", 0, 5000));
    printf("token auth: registration, watch and re-authentication after an etcd restart ok\n");
    viewer_stop(v);
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
    const char *eps[] = {ec.endpoints};
    etcd_api_curl_cfg_t cc = {
        .endpoints = eps, .n_endpoints = 1, .ca_file = ca, .cert_file = cert, .key_file = key};
    viewer_t *v = viewer_start_cfg(&rig, &cc, NULL);
    CHECK(wait_link(v, REG_LINK_CONNECTED, 5000));
    registrar_t *g = registrar_start(&rig, &cc);
    registrar_register(g, "pkg.Tls", "127.0.0.1:7401", 10);
    CHECK(wait_key(v, P "/pkg.Tls/127.0.0.1:7401", 1, 5000));
    /* Without the client certificate etcd refuses the handshake. */
    etcd_client_cfg_t nocert = {.endpoints = ec.endpoints, .ca_file = ca};
    etcd_client_cfg_t withcert = {
        .endpoints = ec.endpoints, .ca_file = ca, .cert_file = cert, .key_file = key};
    CHECK(list_run(&nocert, 0, NULL) == -1);
    CHECK(list_run(&withcert, 0, NULL) == 0);
    printf("TLS with client certificates: registration and watch ok\n");
    viewer_stop(v);
    h_member_kill(&ec, 0);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--register") == 0)
        return registrar_main(argv[2], argv[3], atoi(argv[4]));
    if (argc == 9 && strcmp(argv[1], "--list") == 0)
        return list_main(argv + 2);
    setvbuf(stdout, NULL, _IOLBF, 0);
    mesh_log_init("test", getenv("MESHD_TEST_LOG") ? MESH_LOG_DEBUG : MESH_LOG_WARN,
                  MESH_LOG_FORMAT_TEXT);
    uv_loop_t l;
    uv_loop_init(&l);
    loop = &l;
    rig_start(&rig, loop);
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
    rig_stop(&rig);
    rig_free_all();
    uv_run(&l, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&l) == 0);
    printf("ok\n");
    return 0;
}
