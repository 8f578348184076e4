/*
 * tests/unit/transport/test_lb.c: the balancer core (transport/lb.h) under a fake clock and a
 * seeded PRNG: settings parsing; weighted round robin shares and weight 0; P2C moving traffic
 * away from a slow instance while keeping weighted shares among equal ones; the EWMA decaying
 * with time; header subsets with their fallback; zone preference with its fallbacks (local
 * instances down, local instances overloaded); the options (--lb, --route-subset, --zone) as
 * the node turns them into settings.
 */
#include "transport/lb.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tests/check.h"
#include "transport/lb_options.h"

#define MS 1000000ull

/* A service of up to 8 instances as the balancer's caller sees it. */
typedef struct {
    mesh_route_instance_t in[8];
    const mesh_route_instance_t *pin[8];
    mesh_lb_ep_t load[8];
    int up[8];
    int exclude;
    size_t n;
} svc_t;

static int eligible(void *ud, size_t k)
{
    svc_t *s = ud;
    return s->up[k] && (int)k != s->exclude;
}
static int healthy(void *ud, size_t k)
{
    svc_t *s = ud;
    return s->up[k];
}
static mesh_lb_ep_t *load(void *ud, size_t k)
{
    svc_t *s = ud;
    return &s->load[k];
}
static const mesh_lb_ops_t ops = {eligible, healthy, load};

static void svc_add(svc_t *s, const char *zone, const char *version, uint32_t weight)
{
    size_t k = s->n++;
    s->in[k] = (mesh_route_instance_t){
        .addr = "x", .zone = zone, .version = version, .weight = weight, .index = (uint32_t)k};
    s->pin[k] = &s->in[k];
    s->up[k] = 1;
    s->exclude = -1;
}

static void test_parse(void)
{
    mesh_lb_policy_t p;
    CHECK(mesh_lb_policy_parse("p2c", &p) == 0 && p == MESH_LB_P2C);
    CHECK(mesh_lb_policy_parse("round-robin", &p) == 0 && p == MESH_LB_ROUND_ROBIN);
    CHECK(mesh_lb_policy_parse("random", &p) == -1);
    mesh_lb_subset_t r;
    char err[200];
    CHECK(mesh_lb_subset_parse("X-Canary=1:version=v2", &r, err, sizeof(err)) == 0);
    CHECK_STR(r.header, "x-canary");
    CHECK_STR(r.value, "1");
    CHECK(r.by == MESH_LB_BY_VERSION);
    CHECK_STR(r.want, "v2");
    mesh_lb_subset_destroy(&r);
    CHECK(mesh_lb_subset_parse("x-zone=eu:zone=eu-1", &r, err, sizeof(err)) == 0);
    CHECK(r.by == MESH_LB_BY_ZONE);
    mesh_lb_subset_destroy(&r);
    CHECK(mesh_lb_subset_parse("x-canary=1", &r, err, sizeof(err)) == -1);
    CHECK(strstr(err, "HEADER=VALUE:version=V"));
    CHECK(mesh_lb_subset_parse("x-canary=1:colour=red", &r, err, sizeof(err)) == -1);
    CHECK(strstr(err, "version or zone"));
    CHECK(mesh_lb_subset_parse("x canary=1:version=v2", &r, err, sizeof(err)) == -1);
    CHECK(mesh_lb_subset_parse("x-canary=1:version=", &r, err, sizeof(err)) == -1);
    CHECK(strstr(err, "empty"));
    mesh_lb_cfg_t cfg = {0};
    mesh_lb_cfg_fix(&cfg);
    CHECK_EQ(cfg.decay_ms, MESH_LB_DECAY_MS);
    CHECK(cfg.p2c_margin == MESH_LB_P2C_MARGIN);
    mesh_lb_cfg_destroy(&cfg);
}

static void test_plan_needed(void)
{
    svc_t s = {0};
    svc_add(&s, "", "", 1);
    svc_add(&s, "", "", 1);
    mesh_lb_cfg_t cfg = {0};
    mesh_lb_cfg_fix(&cfg);
    CHECK(!mesh_lb_plan_needed(NULL, s.pin, s.n));
    CHECK(!mesh_lb_plan_needed(&cfg, s.pin, s.n)); /* plain round robin: balancer.h does it */
    s.in[1].weight = 3;
    CHECK(mesh_lb_plan_needed(&cfg, s.pin, s.n));
    s.in[1].weight = 1;
    cfg.policy = MESH_LB_P2C;
    CHECK(mesh_lb_plan_needed(&cfg, s.pin, s.n));
    /* one instance: P2C has nothing to choose, round robin picks it (unless its weight is 0) */
    CHECK(!mesh_lb_plan_needed(&cfg, s.pin, 1));
    s.in[0].weight = 0;
    CHECK(mesh_lb_plan_needed(&cfg, s.pin, 1));
}

/* Weighted round robin: shares exactly by weight, interleaved; weight 0 only as a last resort. */
static void test_weighted_rr(void)
{
    svc_t s = {0};
    svc_add(&s, "", "v1", 3);
    svc_add(&s, "", "v1", 1);
    svc_add(&s, "", "v1", 0);
    mesh_lb_cfg_t cfg = {0};
    mesh_lb_cfg_fix(&cfg);
    mesh_lb_rng_t rng;
    mesh_lb_rng_seed(&rng, 1);
    mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
    CHECK(p);
    int count[3] = {0}, run = 0, longest = 0;
    ptrdiff_t last = -1;
    for (int i = 0; i < 4000; i++) {
        ptrdiff_t k = mesh_lb_pick(p, &cfg, &rng, -1, 0, &ops, &s, NULL);
        CHECK(k >= 0 && k < 3);
        count[k]++;
        run = k == last ? run + 1 : 1;
        longest = run > longest ? run : longest;
        last = k;
    }
    CHECK_EQ(count[0], 3000);
    CHECK_EQ(count[1], 1000);
    CHECK_EQ(count[2], 0);
    CHECK(longest <= 3); /* interleaved, not 3000 then 1000 */
    /* the weighted ones down: the weight-0 instance takes the calls rather than none */
    s.up[0] = s.up[1] = 0;
    CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, -1, 0, &ops, &s, NULL), 2);
    s.up[2] = 0;
    CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, -1, 0, &ops, &s, NULL), -1);
    /* one down: the other takes every call */
    s.up[1] = 1;
    for (int i = 0; i < 10; i++)
        CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, -1, 0, &ops, &s, NULL), 1);
    mesh_lb_plan_free(p);
}

/* The EWMA weighs a sample by its age in time and decays while idle. */
static void test_ewma(void)
{
    mesh_lb_cfg_t cfg = {0};
    mesh_lb_cfg_fix(&cfg); /* decay 10 s */
    mesh_lb_ep_t e = {0};
    CHECK(mesh_lb_ep_estimate(&e, &cfg, 0) == 0); /* no sample: no estimate */
    mesh_lb_ep_start(&e);
    CHECK_EQ(e.outstanding, 1);
    mesh_lb_ep_done(&e, &cfg, 990 * MS, 1000 * MS, 0, 1);
    CHECK_EQ(e.outstanding, 0);
    CHECK(fabs(mesh_lb_ep_estimate(&e, &cfg, 1000 * MS) - 10e6) < 1);
    /* a 100 ms sample 1 ms later: the two weigh the same; 10 s later the old one weighs 1/e */
    mesh_lb_ep_t a = e, b = e;
    mesh_lb_ep_start(&a);
    mesh_lb_ep_done(&a, &cfg, 901 * MS, 1001 * MS, 0, 1);
    mesh_lb_ep_start(&b);
    mesh_lb_ep_done(&b, &cfg, 10900 * MS, 11000 * MS, 0, 1);
    CHECK(fabs(mesh_lb_ep_estimate(&a, &cfg, 1001 * MS) - 55e6) < 1e4);
    double eb = mesh_lb_ep_estimate(&b, &cfg, 11000 * MS);
    CHECK(fabs(eb - (10e6 / M_E + 100e6) / (1 / M_E + 1)) < 1e3);
    /* idle for 10 s: the estimate decays by 1/e, so a slow instance is tried again later */
    CHECK(fabs(mesh_lb_ep_estimate(&b, &cfg, 21000 * MS) - eb / M_E) < 1e3);
    /* a failed call counts at least the failure penalty; a cancelled one adds no sample */
    mesh_lb_ep_t f = {0};
    mesh_lb_ep_start(&f);
    mesh_lb_ep_done(&f, &cfg, 0, 1 * MS, 1, 1);
    CHECK(mesh_lb_ep_estimate(&f, &cfg, 1 * MS) >= 1000e6);
    mesh_lb_ep_t c = {0};
    mesh_lb_ep_start(&c);
    mesh_lb_ep_done(&c, &cfg, 0, 1 * MS, 0, 0);
    CHECK(c.n == 0 && c.outstanding == 0);
}

/* A discrete-event run: a call every `gap_ns`, each finishing after lat(k, i); returns each
 * instance's calls. Up to 256 calls in flight. */
typedef uint64_t (*lat_fn)(size_t k, int i);

static void run_calls(svc_t *s, mesh_lb_plan_t *p, const mesh_lb_cfg_t *cfg, int calls,
                      uint64_t gap_ns, lat_fn lat, int *count)
{
    struct {
        uint64_t start, end;
        ptrdiff_t k;
    } fl[256];
    size_t nfl = 0;
    mesh_lb_rng_t rng;
    mesh_lb_rng_seed(&rng, 42);
    uint64_t now = 1000 * MS;
    for (int i = 0; i < calls; i++) {
        now += gap_ns;
        for (size_t j = 0; j < nfl;) { /* calls that finished by now */
            if (fl[j].end <= now) {
                mesh_lb_ep_done(&s->load[fl[j].k], cfg, fl[j].start, fl[j].end, 0, 1);
                fl[j] = fl[--nfl];
            } else {
                j++;
            }
        }
        ptrdiff_t k = mesh_lb_pick(p, cfg, &rng, -1, now, &ops, s, NULL);
        CHECK(k >= 0);
        count[k]++;
        mesh_lb_ep_start(&s->load[k]);
        CHECK(nfl < 256);
        fl[nfl].start = now;
        fl[nfl].end = now + lat((size_t)k, i);
        fl[nfl++].k = k;
    }
}

/* A hash of the call's number: patterns without a period the balancer could fall in step with. */
static uint64_t mix(int i)
{
    uint64_t h = (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* Instance 2 sleeps 500 ms on a third of its calls; the others answer in 2 ms. */
static uint64_t lat_slow2(size_t k, int i)
{
    return k == 2 && mix(i) % 3 == 0 ? 500 * MS : 2 * MS;
}

/* 2 to 4 ms, the same for every instance, with no pattern in the call order. */
static uint64_t lat_equal(size_t k, int i)
{
    (void)k;
    return 2 * MS + (mix(i) % 2000) * 1000;
}

static void test_p2c_slow(void)
{
    svc_t s = {0};
    for (int i = 0; i < 3; i++)
        svc_add(&s, "", "", 1);
    mesh_lb_cfg_t cfg = {.policy = MESH_LB_P2C};
    mesh_lb_cfg_fix(&cfg);
    mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
    int count[3] = {0};
    run_calls(&s, p, &cfg, 10000, 5 * MS, lat_slow2, count); /* 200 calls/s for 50 s */
    printf("p2c, slow instance 2: %d %d %d\n", count[0], count[1], count[2]);
    CHECK(count[2] < 10000 / 10); /* round robin would send it a third */
    mesh_lb_plan_free(p);

    /* the same under round robin: a third each, whatever the latency */
    svc_t r = {0};
    for (int i = 0; i < 3; i++)
        svc_add(&r, "", "", 1);
    mesh_lb_cfg_t rcfg = {.policy = MESH_LB_ROUND_ROBIN, .zone = "z"}; /* zone: forces a plan */
    mesh_lb_cfg_fix(&rcfg);
    p = mesh_lb_plan_new(&rcfg, r.pin, r.n, 0);
    int rc[3] = {0};
    run_calls(&r, p, &rcfg, 3000, 5 * MS, lat_slow2, rc);
    CHECK(rc[0] == 1000 && rc[1] == 1000 && rc[2] == 1000);
    mesh_lb_plan_free(p);
}

/* P2C keeps weighted shares among instances that cost the same: sequential calls (no load) and
 * concurrent ones (a call every 1 ms lasting 2-4 ms). */
static void test_p2c_weights(void)
{
    for (int conc = 0; conc < 2; conc++) {
        svc_t s = {0};
        svc_add(&s, "", "v1", 9);
        svc_add(&s, "", "v2", 1);
        mesh_lb_cfg_t cfg = {.policy = MESH_LB_P2C};
        mesh_lb_cfg_fix(&cfg);
        mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
        int count[2] = {0};
        run_calls(&s, p, &cfg, 10000, conc ? 1 * MS : 10 * MS, lat_equal, count);
        printf("p2c, weights 9:1 (%s): %d %d\n", conc ? "concurrent" : "sequential", count[0],
               count[1]);
        CHECK(count[1] >= 950 && count[1] <= 1050); /* 10 % within 5 % of it */
        mesh_lb_plan_free(p);
    }
}

/* A slow instance with no call in flight and no sample for probe_ms takes its turn (one probe);
 * while the probe is in flight, or once its sample is fresh, it loses again. */
static void test_p2c_probe(void)
{
    svc_t s = {0};
    svc_add(&s, "", "", 1);
    svc_add(&s, "", "", 1);
    mesh_lb_cfg_t cfg = {.policy = MESH_LB_P2C};
    mesh_lb_cfg_fix(&cfg); /* probe after 1 s */
    mesh_lb_ep_start(&s.load[0]);
    mesh_lb_ep_done(&s.load[0], &cfg, 1000 * MS, 1500 * MS, 0, 1); /* 500 ms */
    mesh_lb_ep_start(&s.load[1]);
    mesh_lb_ep_done(&s.load[1], &cfg, 1499 * MS, 1500 * MS, 0, 1); /* 1 ms */
    mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
    mesh_lb_rng_t rng;
    mesh_lb_rng_seed(&rng, 9);
    int to0 = 0;
    for (int i = 0; i < 100; i++) /* 0.1 s later: 0 is never picked */
        to0 += mesh_lb_pick(p, &cfg, &rng, -1, 1600 * MS, &ops, &s, NULL) == 0;
    CHECK_EQ(to0, 0);
    /* 1.2 s after its sample: its next turn is a probe; while it runs, no other call */
    to0 = 0;
    for (int i = 0; i < 100; i++) {
        ptrdiff_t k = mesh_lb_pick(p, &cfg, &rng, -1, 2700 * MS, &ops, &s, NULL);
        if (k == 0) {
            to0++;
            mesh_lb_ep_start(&s.load[0]);
        }
    }
    CHECK_EQ(to0, 1);
    /* the probe answers: no other probe before another second has passed */
    mesh_lb_ep_done(&s.load[0], &cfg, 2700 * MS, 2701 * MS, 0, 1);
    for (int i = 0; i < 100; i++)
        CHECK(mesh_lb_pick(p, &cfg, &rng, -1, 3600 * MS, &ops, &s, NULL) == 1);
    CHECK(mesh_lb_pick(p, &cfg, &rng, -1, 3702 * MS, &ops, &s, NULL) == 0 ||
          mesh_lb_pick(p, &cfg, &rng, -1, 3702 * MS, &ops, &s, NULL) == 0);
    mesh_lb_plan_free(p);
}

/* A fresh endpoint (no sample) is compared by load alone: neither flooded nor starved. */
static void test_p2c_fresh(void)
{
    svc_t s = {0};
    svc_add(&s, "", "", 1);
    svc_add(&s, "", "", 1);
    mesh_lb_cfg_t cfg = {.policy = MESH_LB_P2C};
    mesh_lb_cfg_fix(&cfg);
    mesh_lb_ep_start(&s.load[0]); /* known, 50 ms */
    mesh_lb_ep_done(&s.load[0], &cfg, 950 * MS, 1000 * MS, 0, 1);
    mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
    mesh_lb_rng_t rng;
    mesh_lb_rng_seed(&rng, 7);
    int count[2] = {0};
    for (int i = 0; i < 1000; i++)
        count[mesh_lb_pick(p, &cfg, &rng, -1, 1000 * MS, &ops, &s, NULL)]++;
    CHECK(count[1] > 350 && count[1] < 650);
    /* with 4 calls outstanding on the fresh one, the known idle one wins */
    s.load[1].outstanding = 4;
    for (int i = 0; i < 100; i++)
        CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, -1, 1000 * MS, &ops, &s, NULL), 0);
    mesh_lb_plan_free(p);
}

static const char *hdr_value;
static const char *get_hdr(void *ud, const char *name, size_t *len)
{
    (void)ud;
    if (!hdr_value || strcmp(name, "x-canary") != 0)
        return NULL;
    *len = strlen(hdr_value);
    return hdr_value;
}

static void test_subsets(void)
{
    for (int pol = 0; pol < 2; pol++) {
        svc_t s = {0};
        svc_add(&s, "", "v1", 1);
        svc_add(&s, "", "v1", 1);
        svc_add(&s, "", "v2", 1);
        mesh_lb_cfg_t cfg = {.policy = pol ? MESH_LB_P2C : MESH_LB_ROUND_ROBIN};
        char err[200];
        mesh_lb_subset_t r;
        CHECK(mesh_lb_subset_parse("x-canary=1:version=v2", &r, err, sizeof(err)) == 0);
        CHECK(mesh_lb_cfg_add_subset(&cfg, &r) == 0);
        CHECK(mesh_lb_subset_parse("x-canary=3:version=v3", &r, err, sizeof(err)) == 0);
        CHECK(mesh_lb_cfg_add_subset(&cfg, &r) == 0);
        mesh_lb_cfg_fix(&cfg);
        mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
        mesh_lb_rng_t rng;
        mesh_lb_rng_seed(&rng, 3);
        hdr_value = "1";
        int sub = mesh_lb_subset_match(&cfg, get_hdr, NULL);
        CHECK_EQ(sub, 0);
        mesh_lb_pick_info_t info;
        for (int i = 0; i < 50; i++) {
            CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, sub, 0, &ops, &s, &info), 2);
            CHECK(!info.subset_fallback);
        }
        /* no header, another value: every instance */
        hdr_value = "2";
        CHECK_EQ(mesh_lb_subset_match(&cfg, get_hdr, NULL), -1);
        hdr_value = NULL;
        CHECK_EQ(mesh_lb_subset_match(&cfg, get_hdr, NULL), -1);
        int seen[3] = {0};
        for (int i = 0; i < 300; i++)
            seen[mesh_lb_pick(p, &cfg, &rng, -1, 0, &ops, &s, NULL)]++;
        CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
        /* a subset with no instance (v3), or whose instances are down: any instance, said so */
        hdr_value = "3";
        sub = mesh_lb_subset_match(&cfg, get_hdr, NULL);
        CHECK_EQ(sub, 1);
        CHECK(mesh_lb_pick(p, &cfg, &rng, sub, 0, &ops, &s, &info) >= 0);
        CHECK(info.subset_fallback);
        s.up[2] = 0;
        CHECK(mesh_lb_pick(p, &cfg, &rng, 0, 0, &ops, &s, &info) < 2);
        CHECK(info.subset_fallback);
        mesh_lb_plan_free(p);
        mesh_lb_cfg_destroy(&cfg);
    }
}

static void test_zone(void)
{
    for (int pol = 0; pol < 2; pol++) {
        svc_t s = {0};
        svc_add(&s, "a", "", 1);
        svc_add(&s, "a", "", 1);
        svc_add(&s, "b", "", 1);
        svc_add(&s, "b", "", 1);
        svc_add(&s, "", "", 1); /* no zone metadata: another zone */
        char zone[] = "a";
        mesh_lb_cfg_t cfg = {.policy = pol ? MESH_LB_P2C : MESH_LB_ROUND_ROBIN, .zone = zone};
        mesh_lb_cfg_fix(&cfg);
        mesh_lb_plan_t *p = mesh_lb_plan_new(&cfg, s.pin, s.n, 0);
        mesh_lb_rng_t rng;
        mesh_lb_rng_seed(&rng, 5);
        mesh_lb_pick_info_t info;
        uint64_t now = 0;
        int seen[5] = {0};
        for (int i = 0; i < 200; i++) {
            ptrdiff_t k = mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, &info);
            CHECK(k == 0 || k == 1);
            CHECK(info.zone_local);
            seen[k]++;
        }
        CHECK(seen[0] > 50 && seen[1] > 50);
        /* one of two local instances down: 50 % is enough, the other takes them */
        s.up[0] = 0;
        for (int i = 0; i < 20; i++)
            CHECK_EQ(mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, NULL), 1);
        /* a retry excluding the last local one goes to another zone */
        s.exclude = 1;
        CHECK(mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, NULL) >= 2);
        s.exclude = -1;
        /* both local down: every zone */
        s.up[1] = 0;
        memset(seen, 0, sizeof(seen));
        for (int i = 0; i < 300; i++) {
            ptrdiff_t k = mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, &info);
            CHECK(k >= 2);
            CHECK(!info.zone_local);
            seen[k]++;
        }
        CHECK(seen[2] > 0 && seen[3] > 0 && seen[4] > 0);
        /* back up, but overloaded: 10 calls outstanding each against 1 elsewhere spills */
        s.up[0] = s.up[1] = 1;
        for (int k = 0; k < 5; k++)
            s.load[k].outstanding = k < 2 ? 10 : 1;
        int remote = 0;
        for (int i = 0; i < 100; i++)
            remote += mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, NULL) >= 2;
        CHECK(remote > 30);
        /* 3 each against 1: within 4 times, local again */
        s.load[0].outstanding = s.load[1].outstanding = 3;
        for (int i = 0; i < 100; i++)
            CHECK(mesh_lb_pick(p, &cfg, &rng, -1, now += MS, &ops, &s, NULL) < 2);
        mesh_lb_plan_free(p);
    }
}

/* The flags as meshd reads them, into the settings the engines get. */
static void test_options(void)
{
    CHECK(mesh_config_add_section(&mesh_lb_options_section) == 0);
    char err[300];
    mesh_config_t cfg;
    mesh_config_init(&cfg);
    char *env[] = {NULL};
    char *ok[] = {
        "--zone",          "eu-1", "--route-subset", "x-canary=1:version=v2", "--route-subset",
        "x-zone=b:zone=b", NULL};
    CHECK(mesh_config_load(&cfg, 6, ok, env, MESH_ROLE_PROXY, NULL, err, sizeof(err)) == 0);
    mesh_lb_cfg_t lb;
    CHECK(mesh_lb_options_load(&cfg, &lb, err, sizeof(err)) == 0);
    CHECK(lb.policy == MESH_LB_P2C); /* the default */
    CHECK_STR(lb.zone, "eu-1");
    CHECK_EQ(lb.n_subsets, 2);
    CHECK_STR(lb.subsets[1].want, "b");
    CHECK(lb.subsets[1].by == MESH_LB_BY_ZONE);
    CHECK_EQ(lb.decay_ms, MESH_LB_DECAY_MS);
    mesh_lb_cfg_destroy(&lb);
    mesh_config_destroy(&cfg);

    mesh_config_init(&cfg);
    char *rr[] = {"--lb", "round-robin", NULL};
    CHECK(mesh_config_load(&cfg, 2, rr, env, MESH_ROLE_PROXY, NULL, err, sizeof(err)) == 0);
    CHECK(mesh_lb_options_load(&cfg, &lb, err, sizeof(err)) == 0);
    CHECK(lb.policy == MESH_LB_ROUND_ROBIN && !lb.zone && lb.n_subsets == 0);
    mesh_lb_cfg_destroy(&lb);
    mesh_config_destroy(&cfg);

    /* bad values: clear errors naming the flag */
    mesh_config_init(&cfg);
    char *bad[] = {"--route-subset", "x-canary=1:label=v2", NULL};
    CHECK(mesh_config_load(&cfg, 2, bad, env, MESH_ROLE_PROXY, NULL, err, sizeof(err)) != 0);
    CHECK(strstr(err, "--route-subset") && strstr(err, "version or zone"));
    mesh_config_destroy(&cfg);
    mesh_config_init(&cfg);
    char *badp[] = {"--lb", "random", NULL};
    CHECK(mesh_config_load(&cfg, 2, badp, env, MESH_ROLE_PROXY, NULL, err, sizeof(err)) != 0);
    CHECK(strstr(err, "--lb"));
    mesh_config_destroy(&cfg);
}

int main(void)
{
    test_parse();
    test_plan_needed();
    test_weighted_rr();
    test_ewma();
    test_p2c_slow();
    test_p2c_weights();
    test_p2c_fresh();
    test_p2c_probe();
    test_subsets();
    test_zone();
    test_options();
    printf("ok\n");
    return 0;
}
