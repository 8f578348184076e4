/*
 * tests/unit/transport/test_balancer.c: the proxy's balancer (transport/balancer.h) under a
 * fake clock: round robin order and fairness, skipping ineligible instances without shifting
 * the others, no pick when nothing is eligible, the connect backoff doubling to its cap and
 * starting over after a successful connect or a new address, and the configuration defaults.
 */
#include "transport/balancer.h"

#include <stdio.h>

#include "tests/check.h"

/* The candidates of one pick: a backoff each, a retry's excluded index, and what was asked. */
typedef struct {
    mesh_bal_backoff_t bo[8];
    int serves[8];
    ptrdiff_t exclude;
    uint64_t now_ms;
    int asked;
} cands_t;

static int eligible(void *ud, size_t k)
{
    cands_t *c = ud;
    c->asked++;
    return (ptrdiff_t)k != c->exclude && c->serves[k] && mesh_bal_backoff_up(&c->bo[k], c->now_ms);
}

static void cands_init(cands_t *c, const mesh_bal_backoff_cfg_t *cfg)
{
    *c = (cands_t){.exclude = -1};
    for (int k = 0; k < 8; k++) {
        mesh_bal_backoff_init(&c->bo[k], cfg);
        c->serves[k] = 1;
    }
}

static void test_round_robin_order_and_start(void)
{
    mesh_bal_backoff_cfg_t cfg = {0};
    mesh_bal_backoff_cfg_fix(&cfg);
    cands_t c;
    cands_init(&c, &cfg);
    mesh_bal_rr_t rr;
    mesh_bal_rr_init(&rr, 2); /* worker 2 starts at the third instance */
    int seen[4] = {0};
    for (int i = 0; i < 12; i++) {
        ptrdiff_t k = mesh_bal_rr_pick(&rr, 4, eligible, &c);
        CHECK_EQ(k, (i + 2) % 4);
        seen[k]++;
    }
    for (int k = 0; k < 4; k++)
        CHECK_EQ(seen[k], 3);
    CHECK_EQ(mesh_bal_rr_pick(&rr, 0, eligible, &c), -1); /* no instance */
}

/* The counter's candidate is counter % n whatever happens between picks: the service grows or
 * shrinks (the next pick starts at counter % new n), candidates are skipped, the counter wraps
 * past 2^32 - 1 (0 % n comes next, as the modulo says). */
static void test_position_follows_the_counter(void)
{
    mesh_bal_backoff_cfg_t cfg = {0};
    mesh_bal_backoff_cfg_fix(&cfg);
    cands_t c;
    cands_init(&c, &cfg);
    mesh_bal_rr_t rr;
    uint32_t counter = UINT32_MAX - 20;
    mesh_bal_rr_init(&rr, counter);
    static const size_t sizes[] = {3, 3, 5, 5, 1, 4, 4, 7, 3, 2, 6, 6, 6, 5};
    for (int i = 0; i < 400; i++) {
        size_t n = sizes[i % 14];
        c.serves[(i / 3) % n] = i % 4 != 0; /* now and then one is skipped */
        c.asked = 0;
        ptrdiff_t k = mesh_bal_rr_pick(&rr, n, eligible, &c);
        ptrdiff_t want = -1;
        uint32_t tried = 0;
        for (size_t t = 0; t < n && want < 0; t++) {
            uint32_t cand = (uint32_t)((uint32_t)(counter + tried) % n);
            tried++;
            if (c.serves[cand])
                want = cand;
        }
        counter += tried;
        CHECK_EQ(k, want);
        CHECK_EQ((uint32_t)c.asked, tried);
        for (int j = 0; j < 8; j++)
            c.serves[j] = 1;
    }
}

static void test_skips_keep_the_others_share(void)
{
    mesh_bal_backoff_cfg_t cfg = {0};
    mesh_bal_backoff_cfg_fix(&cfg);
    cands_t c;
    cands_init(&c, &cfg);
    c.serves[1] = 0; /* an instance that does not serve the method */
    mesh_bal_rr_t rr;
    mesh_bal_rr_init(&rr, 0);
    int seen[4] = {0};
    for (int i = 0; i < 300; i++)
        seen[mesh_bal_rr_pick(&rr, 4, eligible, &c)]++;
    CHECK_EQ(seen[1], 0);
    CHECK_EQ(seen[0], 100);
    CHECK_EQ(seen[2], 100);
    CHECK_EQ(seen[3], 100);
    /* a retry excludes the instance that refused it: the next one takes the call */
    mesh_bal_rr_init(&rr, 0);
    c.exclude = 0;
    CHECK_EQ(mesh_bal_rr_pick(&rr, 4, eligible, &c), 2);
    /* nothing eligible: -1 after asking each instance once */
    c.serves[0] = c.serves[2] = c.serves[3] = 0;
    c.asked = 0;
    CHECK_EQ(mesh_bal_rr_pick(&rr, 4, eligible, &c), -1);
    CHECK_EQ(c.asked, 4);
}

static void test_backoff_doubles_to_cap_and_resets(void)
{
    mesh_bal_backoff_cfg_t cfg = {.initial_ms = 200, .max_ms = 1000};
    mesh_bal_backoff_cfg_fix(&cfg);
    cands_t c;
    cands_init(&c, &cfg);
    mesh_bal_rr_t rr;
    mesh_bal_rr_init(&rr, 0);
    uint64_t now = 5000;
    /* instance 0's connects fail: out 200, 400, 800, then 1000 (the cap), 1000 */
    const uint64_t want[] = {200, 400, 800, 1000, 1000};
    for (int i = 0; i < 5; i++) {
        CHECK(mesh_bal_backoff_up(&c.bo[0], now));
        CHECK_EQ(mesh_bal_backoff_failed(&c.bo[0], &cfg, now), want[i]);
        CHECK(!mesh_bal_backoff_up(&c.bo[0], now + want[i] - 1));
        /* meanwhile round robin sends everything to the others */
        c.now_ms = now + want[i] - 1;
        for (int j = 0; j < 6; j++)
            CHECK(mesh_bal_rr_pick(&rr, 3, eligible, &c) != 0);
        now += want[i];
        CHECK(mesh_bal_backoff_up(&c.bo[0], now));
    }
    /* a connect that succeeds: the next failure starts from the first interval again */
    mesh_bal_backoff_connected(&c.bo[0], &cfg);
    CHECK_EQ(mesh_bal_backoff_failed(&c.bo[0], &cfg, now), 200);
    /* a new address forgets the history at once: eligible now, first interval next */
    CHECK_EQ(mesh_bal_backoff_failed(&c.bo[0], &cfg, now + 200), 400);
    CHECK(!mesh_bal_backoff_up(&c.bo[0], now + 300));
    mesh_bal_backoff_reset(&c.bo[0], &cfg);
    CHECK(mesh_bal_backoff_up(&c.bo[0], now + 300));
    CHECK_EQ(mesh_bal_backoff_failed(&c.bo[0], &cfg, now + 300), 200);
    /* everything backing off: no pick (the proxy answers "no live instance") */
    for (int k = 0; k < 3; k++)
        mesh_bal_backoff_failed(&c.bo[k], &cfg, now + 400);
    c.now_ms = now + 401;
    CHECK_EQ(mesh_bal_rr_pick(&rr, 3, eligible, &c), -1);
}

static void test_config_defaults(void)
{
    mesh_bal_backoff_cfg_t cfg = {0};
    mesh_bal_backoff_cfg_fix(&cfg);
    CHECK_EQ(cfg.initial_ms, MESH_BAL_BACKOFF_INITIAL_MS);
    CHECK_EQ(cfg.max_ms, MESH_BAL_BACKOFF_MAX_MS);
    cfg = (mesh_bal_backoff_cfg_t){.initial_ms = 500, .max_ms = 100};
    mesh_bal_backoff_cfg_fix(&cfg);
    CHECK_EQ(cfg.max_ms, 500); /* a cap below the first interval is raised to it */
    mesh_bal_backoff_t b;
    mesh_bal_backoff_init(&b, &cfg);
    CHECK_EQ(mesh_bal_backoff_failed(&b, &cfg, 0), 500);
    CHECK_EQ(mesh_bal_backoff_failed(&b, &cfg, 500), 500);
    /* no overflow near the top of the range */
    cfg = (mesh_bal_backoff_cfg_t){.initial_ms = UINT64_MAX / 2 + 1, .max_ms = UINT64_MAX};
    mesh_bal_backoff_init(&b, &cfg);
    mesh_bal_backoff_failed(&b, &cfg, 0);
    CHECK(b.next_ms == UINT64_MAX);
}

int main(void)
{
    RUN(test_round_robin_order_and_start);
    RUN(test_position_follows_the_counter);
    RUN(test_skips_keep_the_others_share);
    RUN(test_backoff_doubles_to_cap_and_resets);
    RUN(test_config_defaults);
    printf("test_balancer: ok\n");
    return 0;
}
