/*
 * tests/unit/registry/test_lease_sm.c: the lease/registration state machine under a fake
 * clock: grant -> put -> keepalive every TTL/3; TTL 0 / lease not found -> new lease + put;
 * etcd silent for a whole TTL -> lease presumed lost; stop -> delete + revoke. The longest
 * effect lists one event produces are driven and checked against REG_LFX_PER_EVENT, and an
 * effect list that would overflow stops the process loudly instead of dropping an effect.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry/lease_sm.h"
#include "tests/check.h"

static int has(const reg_lfxs_t *fx, reg_lfx_kind_t k, int64_t *arg)
{
    for (int i = 0; i < fx->n; i++)
        if (fx->v[i].kind == k) {
            if (arg)
                *arg = fx->v[i].arg;
            return 1;
        }
    return 0;
}

/* Checks fx holds exactly kinds a, b (the longest lists are two effects long). */
static void expect_two(const reg_lfxs_t *fx, reg_lfx_kind_t a, reg_lfx_kind_t b)
{
    CHECK_EQ(fx->n, REG_LFX_PER_EVENT);
    CHECK_EQ(fx->v[0].kind, a);
    CHECK_EQ(fx->v[1].kind, b);
}

static void test_longest_effect_lists(void)
{
    reg_lease_sm_t sm;
    reg_lfxs_t fx = {.n = 0};
    /* put_ok while a stop is pending: registered, then revoke. */
    reg_lease_sm_init(&sm, 10);
    reg_lease_sm_start(&sm, 0, &fx);
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 5, 10, 0, &fx);
    fx.n = 0;
    reg_lease_sm_stop(&sm, 0, &fx);
    CHECK_EQ(fx.n, 0);
    reg_lease_sm_put_ok(&sm, 0, &fx);
    expect_two(&fx, REG_LFX_REGISTERED, REG_LFX_REVOKE);
    /* A lost lease: lost, then a new grant ... */
    reg_lease_sm_init(&sm, 10);
    fx.n = 0;
    reg_lease_sm_start(&sm, 0, &fx);
    reg_lease_sm_grant_ok(&sm, 6, 10, 0, &fx);
    reg_lease_sm_put_ok(&sm, 0, &fx);
    fx.n = 0;
    reg_lease_sm_timer(&sm, 3333, &fx);
    fx.n = 0;
    reg_lease_sm_keepalive_ok(&sm, 0, 3333, &fx);
    expect_two(&fx, REG_LFX_LOST, REG_LFX_GRANT);
    /* ... or, with a stop pending, lost then revoke. */
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 7, 10, 3333, &fx);
    fx.n = 0;
    reg_lease_sm_put_failed(&sm, 0, 3333, &fx); /* backoff */
    fx.n = 0;
    reg_lease_sm_timer(&sm, 3400, &fx); /* put again under the same lease */
    CHECK(sm.state == REG_LEASE_PUTTING);
    fx.n = 0;
    reg_lease_sm_stop(&sm, 3400, &fx);
    reg_lease_sm_put_failed(&sm, 1, 3400, &fx);
    expect_two(&fx, REG_LFX_LOST, REG_LFX_REVOKE);
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
        reg_lease_sm_t sm;
        reg_lease_sm_init(&sm, 10);
        reg_lfxs_t fx = {.n = REG_LFX_MAX};
        reg_lease_sm_start(&sm, 0, &fx);
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
    CHECK_CONTAINS(buf, "lease machine: effect list full (6)");
}

/* etcd's RBAC refuses the put: DENIED once per streak, a long backoff, a new lease later. */
static void test_put_denied(void)
{
    reg_lease_sm_t sm;
    reg_lfxs_t fx = {.n = 0};
    int64_t arg;
    reg_lease_sm_init(&sm, 10);
    reg_lease_sm_start(&sm, 0, &fx);
    reg_lease_sm_grant_ok(&sm, 9, 10, 0, &fx);
    fx.n = 0;
    reg_lease_sm_put_denied(&sm, 0, &fx);
    expect_two(&fx, REG_LFX_DENIED, REG_LFX_TIMER);
    CHECK(has(&fx, REG_LFX_DENIED, &arg) && arg == 9);
    CHECK(has(&fx, REG_LFX_TIMER, &arg) && arg == REG_LEASE_DENIED_RETRY_MS);
    /* the retry comes after the lease expired: a new lease, a put, refused again, silently */
    fx.n = 0;
    reg_lease_sm_timer(&sm, REG_LEASE_DENIED_RETRY_MS, &fx);
    CHECK(has(&fx, REG_LFX_GRANT, NULL));
    reg_lease_sm_grant_ok(&sm, 10, 10, REG_LEASE_DENIED_RETRY_MS, &fx);
    fx.n = 0;
    reg_lease_sm_put_denied(&sm, REG_LEASE_DENIED_RETRY_MS, &fx);
    CHECK(!has(&fx, REG_LFX_DENIED, NULL) && has(&fx, REG_LFX_TIMER, &arg));
    CHECK_EQ(sm.denials, 2);
    /* the operator granted the role: registered, and a later refusal is news again */
    fx.n = 0;
    reg_lease_sm_timer(&sm, 2 * REG_LEASE_DENIED_RETRY_MS, &fx);
    reg_lease_sm_grant_ok(&sm, 11, 10, 2 * REG_LEASE_DENIED_RETRY_MS, &fx);
    reg_lease_sm_put_ok(&sm, 2 * REG_LEASE_DENIED_RETRY_MS, &fx);
    CHECK(has(&fx, REG_LFX_REGISTERED, NULL) && !sm.denied);
    /* a stop while refused: no put in flight, the revoke goes at once */
    reg_lease_sm_init(&sm, 10);
    fx.n = 0;
    reg_lease_sm_start(&sm, 0, &fx);
    reg_lease_sm_grant_ok(&sm, 12, 10, 0, &fx);
    reg_lease_sm_put_denied(&sm, 0, &fx);
    fx.n = 0;
    reg_lease_sm_stop(&sm, 1, &fx);
    CHECK(has(&fx, REG_LFX_REVOKE, &arg) && arg == 12);
}

int main(void)
{
    test_put_denied();
    test_longest_effect_lists();
    test_overflow_is_loud();
    reg_lease_sm_t sm;
    reg_lfxs_t fx = {.n = 0};
    int64_t arg;
    uint64_t now = 1000;
    reg_lease_sm_init(&sm, 0);
    CHECK(sm.ttl_s == 10);

    reg_lease_sm_start(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_GRANT, &arg) && arg == 10 && sm.state == REG_LEASE_GRANTING);
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 77, 10, now, &fx);
    CHECK(has(&fx, REG_LFX_PUT, &arg) && arg == 77);
    fx.n = 0;
    reg_lease_sm_put_ok(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_REGISTERED, &arg) && arg == 77);
    CHECK(has(&fx, REG_LFX_TIMER, &arg) && arg == 3333); /* TTL/3 */
    CHECK(sm.state == REG_LEASE_ACTIVE);

    /* Keepalives keep it going. */
    for (int i = 0; i < 3; i++) {
        fx.n = 0;
        now += 3333;
        reg_lease_sm_timer(&sm, now, &fx);
        CHECK(has(&fx, REG_LFX_KEEPALIVE, &arg) && arg == 77);
        fx.n = 0;
        reg_lease_sm_keepalive_ok(&sm, 10, now, &fx);
        CHECK(has(&fx, REG_LFX_TIMER, &arg) && arg == 3333);
    }

    /* Keepalive answers TTL 0: lost -> grant a new lease, put again. */
    fx.n = 0;
    now += 3333;
    reg_lease_sm_timer(&sm, now, &fx);
    fx.n = 0;
    reg_lease_sm_keepalive_ok(&sm, 0, now, &fx);
    CHECK(has(&fx, REG_LFX_LOST, &arg) && arg == 77);
    CHECK(has(&fx, REG_LFX_GRANT, NULL) && sm.state == REG_LEASE_GRANTING && sm.lease == 0);
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 78, 10, now, &fx);
    CHECK(has(&fx, REG_LFX_PUT, &arg) && arg == 78);
    fx.n = 0;
    reg_lease_sm_put_ok(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_REGISTERED, &arg) && arg == 78 && sm.regrants == 1);

    /* "lease not found" on keepalive: same. */
    fx.n = 0;
    now += 3333;
    reg_lease_sm_timer(&sm, now, &fx);
    fx.n = 0;
    reg_lease_sm_keepalive_failed(&sm, 1, now, &fx);
    CHECK(has(&fx, REG_LFX_LOST, &arg) && arg == 78 && has(&fx, REG_LFX_GRANT, NULL));
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 79, 10, now, &fx);
    fx.n = 0;
    reg_lease_sm_put_ok(&sm, now, &fx);

    /* etcd unreachable: keepalives retried; after a whole TTL without answer -> lost. */
    uint64_t last_ok = now;
    int lost = 0;
    for (int i = 0; i < 40 && !lost; i++) {
        fx.n = 0;
        reg_lease_sm_timer(&sm, now, &fx);
        CHECK(has(&fx, REG_LFX_KEEPALIVE, NULL));
        fx.n = 0;
        reg_lease_sm_keepalive_failed(&sm, 0, now, &fx);
        if (has(&fx, REG_LFX_LOST, NULL)) {
            lost = 1;
            CHECK(now - last_ok >= 10000);
            CHECK(has(&fx, REG_LFX_GRANT, NULL));
        } else {
            CHECK(has(&fx, REG_LFX_TIMER, &arg) && arg >= 100 && arg < 3333);
            now += (uint64_t)arg;
        }
    }
    CHECK(lost);

    /* Grant fails: backoff, then grant again. */
    fx.n = 0;
    reg_lease_sm_grant_failed(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_TIMER, &arg) && sm.state == REG_LEASE_BACKOFF);
    fx.n = 0;
    now += (uint64_t)arg;
    reg_lease_sm_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_GRANT, NULL));
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 80, 10, now, &fx);
    /* The put fails transiently: retried under the same lease. */
    fx.n = 0;
    reg_lease_sm_put_failed(&sm, 0, now, &fx);
    CHECK(has(&fx, REG_LFX_TIMER, &arg));
    fx.n = 0;
    now += (uint64_t)arg;
    reg_lease_sm_timer(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_PUT, &arg) && arg == 80);
    /* The put says the lease is gone: new lease. */
    fx.n = 0;
    reg_lease_sm_put_failed(&sm, 1, now, &fx);
    CHECK(has(&fx, REG_LFX_LOST, NULL) && has(&fx, REG_LFX_GRANT, NULL));
    fx.n = 0;
    reg_lease_sm_grant_ok(&sm, 81, 10, now, &fx);
    fx.n = 0;
    reg_lease_sm_put_ok(&sm, now, &fx);

    /* Stop while active: delete + revoke right away. */
    fx.n = 0;
    reg_lease_sm_stop(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_REVOKE, &arg) && arg == 81 && sm.state == REG_LEASE_REVOKING);
    fx.n = 0;
    reg_lease_sm_revoke_done(&sm, now, &fx);
    CHECK(has(&fx, REG_LFX_DONE, NULL) && sm.state == REG_LEASE_DONE);

    /* Stop while a keepalive is in flight: the revoke waits for its answer. */
    reg_lease_sm_init(&sm, 2);
    fx.n = 0;
    reg_lease_sm_start(&sm, now, &fx);
    reg_lease_sm_grant_ok(&sm, 90, 2, now, &fx);
    reg_lease_sm_put_ok(&sm, now, &fx);
    fx.n = 0;
    reg_lease_sm_timer(&sm, now + 666, &fx);
    CHECK(has(&fx, REG_LFX_KEEPALIVE, NULL));
    fx.n = 0;
    reg_lease_sm_stop(&sm, now, &fx);
    CHECK(fx.n == 0);
    reg_lease_sm_keepalive_ok(&sm, 2, now, &fx);
    CHECK(has(&fx, REG_LFX_REVOKE, &arg) && arg == 90);
    printf("ok\n");
    return 0;
}
