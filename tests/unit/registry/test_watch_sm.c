/*
 * tests/unit/registry/test_watch_sm.c: the view's watch/resync state machine under a fake
 * clock: initial range then watch from revision+1, coalesced publishing, compaction -> range,
 * diff (removals included) -> watch again, broken stream -> degraded, backoff with jitter ->
 * resync that keeps instances which still exist. The longest effect list one event produces
 * is driven and checked against REG_WFX_PER_EVENT, and an effect list that would overflow
 * stops the process loudly instead of dropping an effect.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "registry/instance.h"
#include "registry/watch_sm.h"
#include "tests/check.h"

#define P "meshd/services"

static uint64_t now;

static int has(const reg_wfxs_t *fx, reg_wfx_kind_t k, int64_t *arg)
{
    for (int i = 0; i < fx->n; i++)
        if (fx->v[i].kind == k) {
            if (arg)
                *arg = fx->v[i].arg;
            return 1;
        }
    return 0;
}

static char *val(const char *addr)
{
    reg_instance_t in = {.addr = addr, .weight = 1};
    return reg_value_format(&in);
}

static void kv(reg_watch_sm_t *sm, const char *addr, int64_t rev)
{
    char key[128];
    snprintf(key, sizeof(key), P "/pkg.S/%s", addr);
    char *v = val(addr);
    reg_watch_sm_range_kv(sm, key, strlen(key), v, strlen(v), rev, 0);
    free(v);
}

static void ev(reg_watch_sm_t *sm, int del, const char *addr, int64_t rev)
{
    char key[128];
    snprintf(key, sizeof(key), P "/pkg.S/%s", addr);
    char *v = val(addr);
    reg_watch_sm_event(sm, del, key, strlen(key), del ? "" : v, del ? 0 : strlen(v), rev, 0);
    free(v);
}

static void line(reg_watch_sm_t *sm, int64_t rev, int created, int progress, int canceled,
                 int64_t compact, reg_wfxs_t *fx)
{
    reg_watch_line_t l = {rev, created, progress, canceled, compact};
    reg_watch_sm_watch_line(sm, &l, now, fx);
}

static int present(reg_table_t *t, const char *addr)
{
    char key[128];
    snprintf(key, sizeof(key), P "/pkg.S/%s", addr);
    reg_entry_t *e = reg_table_find(t, key, strlen(key));
    return e && e->valid;
}

/* The longest list: after a broken stream the machine resumes its watch (link degraded); an
 * event changes the view (no flush armed); then the line creating the watch reports a store
 * older than the view (etcd lost its data): flush timer, link up, cancel, range. */
static void test_longest_effect_list(void)
{
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    reg_watch_sm_t sm;
    reg_watch_sm_init(&sm, &t, 0, NULL);
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_start(&sm, now, &fx);
    fx.n = 0;
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "a:1", 5);
    reg_watch_sm_range_done(&sm, 10, now, &fx);
    fx.n = 0;
    reg_watch_sm_flush_timer(&sm, now, &fx);
    fx.n = 0;
    reg_watch_sm_watch_closed(&sm, now, &fx);
    fx.n = 0;
    reg_watch_sm_retry_timer(&sm, now, &fx);
    CHECK(sm.state == REG_WATCH_WATCHING && sm.link == REG_LINK_DEGRADED);
    ev(&sm, 0, "b:1", 12);
    fx.n = 0;
    line(&sm, 5, 1, 0, 0, 0, &fx);
    CHECK_EQ(fx.n, REG_WFX_PER_EVENT);
    static const reg_wfx_kind_t want[] = {REG_WFX_FLUSH_TIMER, REG_WFX_LINK, REG_WFX_CANCEL_WATCH,
                                          REG_WFX_RANGE};
    for (int i = 0; i < REG_WFX_PER_EVENT; i++)
        CHECK_EQ(fx.v[i].kind, want[i]);
    reg_table_destroy(&t);
}

/* A list with no room left: the machine logs the bug and aborts (checked in a child). */
static void test_overflow_is_loud(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        signal(SIGABRT, SIG_DFL);
        reg_table_t t;
        reg_table_init(&t, P);
        reg_watch_sm_t sm;
        reg_watch_sm_init(&sm, &t, 0, NULL);
        reg_wfxs_t fx = {.n = REG_WFX_MAX};
        reg_watch_sm_start(&sm, 0, &fx);
        _exit(0); /* not reached */
    }
    close(p[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(buf) - 1 && (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK_CONTAINS(buf, "watch machine: effect list full (8)");
}

int main(void)
{
    mesh_log_init("test", MESH_LOG_ERROR, MESH_LOG_FORMAT_TEXT);
    test_longest_effect_list();
    test_overflow_is_loud();
    reg_table_t t;
    CHECK(reg_table_init(&t, P) == 0);
    reg_watch_sm_t sm;
    reg_watch_cfg_t cfg = {
        .coalesce_ms = 5, .backoff_min_ms = 100, .backoff_max_ms = 1600, .seed = 7};
    reg_watch_sm_init(&sm, &t, 0, &cfg);
    reg_wfxs_t fx = {.n = 0};
    int64_t arg = 0;

    /* Start: range, then watch from revision + 1. */
    reg_watch_sm_start(&sm, now, &fx);
    CHECK(fx.n == 1 && fx.v[0].kind == REG_WFX_RANGE && sm.state == REG_WATCH_RANGING);
    fx.n = 0;
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "a:1", 2);
    kv(&sm, "b:1", 3);
    reg_watch_sm_range_done(&sm, 10, now, &fx);
    CHECK(has(&fx, REG_WFX_WATCH, &arg) && arg == 11);
    CHECK(has(&fx, REG_WFX_LINK, &arg) && arg == REG_LINK_CONNECTED);
    CHECK(has(&fx, REG_WFX_FLUSH_TIMER, &arg) && arg == 5);
    CHECK(sm.state == REG_WATCH_WATCHING && sm.revision == 10 && t.n_valid == 2);

    /* Events before the flush are batched into one publish. */
    fx.n = 0;
    ev(&sm, 0, "c:1", 11);
    line(&sm, 11, 0, 0, 0, 0, &fx);
    ev(&sm, 1, "a:1", 12);
    line(&sm, 12, 0, 0, 0, 0, &fx);
    CHECK(fx.n == 0); /* the flush timer is already armed */
    now += 5;
    reg_watch_sm_flush_timer(&sm, now, &fx);
    CHECK(fx.n == 1 && fx.v[0].kind == REG_WFX_PUBLISH && fx.v[0].arg == 12);
    CHECK(!present(&t, "a:1") && present(&t, "b:1") && present(&t, "c:1"));
    fx.n = 0;
    ev(&sm, 0, "c:1", 12); /* stale: already at 12 */
    reg_watch_sm_flush_timer(&sm, now, &fx);
    CHECK(fx.n == 0);

    /* Progress notification moves the revision. */
    line(&sm, 20, 0, 1, 0, 0, &fx);
    CHECK(sm.revision == 20 && fx.n == 0);

    /* Compaction: cancel, range again, diff against the view (removals too), watch again. */
    line(&sm, 0, 0, 0, 1, 18, &fx);
    CHECK(fx.n == 2 && fx.v[0].kind == REG_WFX_CANCEL_WATCH && fx.v[1].kind == REG_WFX_RANGE);
    CHECK(sm.compacted == 1);
    fx.n = 0;
    ev(&sm, 0, "late:1", 30); /* events of the old stream are ignored while ranging */
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "b:1", 3);                          /* unchanged */
    kv(&sm, "d:1", 25);                         /* new */
    reg_watch_sm_range_done(&sm, 40, now, &fx); /* c:1 is gone */
    CHECK(has(&fx, REG_WFX_WATCH, &arg) && arg == 41);
    CHECK(has(&fx, REG_WFX_FLUSH_TIMER, NULL));
    CHECK(!present(&t, "c:1") && present(&t, "b:1") && present(&t, "d:1"));
    CHECK(!present(&t, "late:1") && t.n_valid == 2);
    fx.n = 0;
    now += 5;
    reg_watch_sm_flush_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_PUBLISH, &arg) && arg == 40);

    /* The stream breaks: degraded, the view is kept, backoff grows with jitter. */
    fx.n = 0;
    reg_watch_sm_watch_closed(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_LINK, &arg) && arg == REG_LINK_DEGRADED);
    CHECK(has(&fx, REG_WFX_RETRY_TIMER, &arg) && arg >= 50 && arg <= 100);
    CHECK(sm.state == REG_WATCH_BACKOFF && t.n_valid == 2);
    int64_t prev_max = 100;
    for (int i = 0; i < 6; i++) {
        /* Reconnect by watching from revision + 1; the connection fails again. */
        fx.n = 0;
        now += 2000;
        reg_watch_sm_retry_timer(&sm, now, &fx);
        CHECK(fx.n == 1 && fx.v[0].kind == REG_WFX_WATCH && fx.v[0].arg == 41);
        fx.n = 0;
        reg_watch_sm_watch_closed(&sm, now, &fx);
        CHECK(has(&fx, REG_WFX_RETRY_TIMER, &arg));
        int64_t max = prev_max * 2 > 1600 ? 1600 : prev_max * 2;
        CHECK(arg >= max / 2 && arg <= max);
        prev_max = max;
        CHECK(t.n_valid == 2); /* nothing dropped while etcd is away */
    }
    /* etcd answers again, but the history since 40 was compacted meanwhile: range and diff.
       b:1 still exists (kept, never removed), d:1 went, e:1 is new. */
    fx.n = 0;
    now += 2000;
    reg_watch_sm_retry_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_WATCH, &arg) && arg == 41);
    fx.n = 0;
    line(&sm, 60, 1, 0, 0, 0, &fx);
    CHECK(has(&fx, REG_WFX_LINK, &arg) && arg == REG_LINK_CONNECTED && sm.failures == 0);
    fx.n = 0;
    line(&sm, 0, 0, 0, 1, 50, &fx);
    CHECK(has(&fx, REG_WFX_RANGE, NULL) && sm.compacted == 2);
    fx.n = 0;
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "b:1", 3);
    kv(&sm, "e:1", 50);
    reg_watch_sm_range_done(&sm, 55, now, &fx);
    CHECK(has(&fx, REG_WFX_WATCH, &arg) && arg == 56);
    CHECK(present(&t, "b:1") && present(&t, "e:1") && !present(&t, "d:1"));
    CHECK(sm.failures == 0 && sm.resyncs == 3);
    /* A store whose revision went backwards (data lost) forces a range. */
    fx.n = 0;
    line(&sm, 3, 1, 0, 0, 0, &fx);
    CHECK(has(&fx, REG_WFX_CANCEL_WATCH, NULL) && has(&fx, REG_WFX_RANGE, NULL));
    fx.n = 0;
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "b:1", 3);
    kv(&sm, "e:1", 50);
    reg_watch_sm_range_done(&sm, 3, now, &fx);
    CHECK(has(&fx, REG_WFX_WATCH, &arg) && arg == 4);
    /* A failed range is retried by a range, not a watch. */
    fx.n = 0;
    reg_watch_sm_watch_closed(&sm, now, &fx);
    fx.n = 0;
    reg_watch_sm_retry_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_WATCH, NULL));
    fx.n = 0;
    line(&sm, 0, 0, 0, 1, 0, &fx); /* canceled (e.g. no leader) */
    CHECK(has(&fx, REG_WFX_RANGE, NULL));
    fx.n = 0;
    reg_watch_sm_range_failed(&sm, now, &fx);
    fx.n = 0;
    reg_watch_sm_retry_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_RANGE, NULL));
    reg_watch_sm_range_begin(&sm);
    kv(&sm, "b:1", 3);
    kv(&sm, "e:1", 50);
    fx.n = 0;
    reg_watch_sm_range_done(&sm, 5, now, &fx);
    CHECK(t.n_valid == 2);

    /* Stop: the watch is closed, later events ignored. */
    fx.n = 0;
    reg_watch_sm_stop(&sm, now, &fx);
    CHECK(has(&fx, REG_WFX_CANCEL_WATCH, NULL) && sm.state == REG_WATCH_STOPPED);
    ev(&sm, 0, "f:1", 60);
    CHECK(!present(&t, "f:1"));

    /* Same seed, same delays: the machine is deterministic. */
    reg_watch_sm_t s1, s2;
    reg_table_t t1, t2;
    reg_table_init(&t1, P);
    reg_table_init(&t2, P);
    reg_watch_sm_init(&s1, &t1, 0, &cfg);
    reg_watch_sm_init(&s2, &t2, 0, &cfg);
    for (int i = 0; i < 5; i++) {
        reg_wfxs_t f1 = {.n = 0}, f2 = {.n = 0};
        if (i == 0) {
            reg_watch_sm_start(&s1, 0, &f1);
            reg_watch_sm_start(&s2, 0, &f2);
        } else {
            reg_watch_sm_retry_timer(&s1, 0, &f1);
            reg_watch_sm_retry_timer(&s2, 0, &f2);
        }
        f1.n = f2.n = 0;
        reg_watch_sm_range_failed(&s1, 0, &f1);
        reg_watch_sm_range_failed(&s2, 0, &f2);
        CHECK(f1.v[f1.n - 1].arg == f2.v[f2.n - 1].arg);
    }
    reg_table_destroy(&t1);
    reg_table_destroy(&t2);
    reg_table_destroy(&t);
    printf("ok\n");
    return 0;
}
