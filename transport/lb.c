/*
 * transport/lb.c: the balancer's plans and picks (see transport/lb.h): subset and zone groups
 * with cumulative weights, weighted round robin, P2C over a time-decayed EWMA, and the
 * settings' parsing. Sans-I/O: the time and the predicates are arguments.
 */
#include "transport/lb.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Draws tried before a pick falls back to scanning the group for an eligible candidate. */
#define DRAWS 4

/* The candidates of one subset (or of the whole service): entries in the caller's zone with a
 * weight first, then the other zones' with a weight, then those of weight 0 (any zone). */
typedef struct group {
    uint32_t *idx;      /* candidate indexes, n entries */
    uint64_t *cum;      /* cum[i]: sum of the weights of entries 0..i (n_pos entries) */
    uint32_t n;         /* entries */
    uint32_t n_pos;     /* entries with a weight above 0 */
    uint32_t n_local;   /* of those, in the caller's zone (the first n_local) */
    uint64_t uw;        /* every positive weight is this one (0: they differ): a weighted
                           position's entry is position / uw, no search (1: the position) */
    uint32_t rr;        /* round robin position */
    uint64_t stride[2]; /* weighted round robin over all, over the local entries: co-prime to
                           their total weight, spreads the turns */
    uint64_t pos[2];    /* the next weighted position of each */
    uint64_t zone_ms;   /* when the zone decision below was taken (ms + 1; 0: never) */
    int zone_local;     /* prefer the caller's zone */
} group_t;

struct mesh_lb_plan {
    group_t all;
    group_t *subsets; /* one per rule of the cfg the plan was made with */
    size_t n_subsets;
};

/* ---- settings ------------------------------------------------------------------------------ */

void mesh_lb_cfg_fix(mesh_lb_cfg_t *cfg)
{
    if (!cfg->decay_ms)
        cfg->decay_ms = MESH_LB_DECAY_MS;
    if (cfg->p2c_margin < 1.0)
        cfg->p2c_margin = MESH_LB_P2C_MARGIN;
    if (!cfg->fail_penalty_ms)
        cfg->fail_penalty_ms = MESH_LB_FAIL_PENALTY_MS;
    if (!cfg->floor_us)
        cfg->floor_us = MESH_LB_FLOOR_US;
    if (!cfg->probe_ms)
        cfg->probe_ms = MESH_LB_PROBE_MS;
    if (!cfg->zone_min_healthy)
        cfg->zone_min_healthy = MESH_LB_ZONE_MIN_HEALTHY;
    if (cfg->zone_overload <= 0)
        cfg->zone_overload = MESH_LB_ZONE_OVERLOAD;
}

void mesh_lb_subset_destroy(mesh_lb_subset_t *s)
{
    free(s->header);
    free(s->value);
    free(s->want);
    memset(s, 0, sizeof(*s));
}

void mesh_lb_cfg_destroy(mesh_lb_cfg_t *cfg)
{
    for (size_t i = 0; i < cfg->n_subsets; i++)
        mesh_lb_subset_destroy(&cfg->subsets[i]);
    free(cfg->subsets);
    free(cfg->zone);
    memset(cfg, 0, sizeof(*cfg));
}

int mesh_lb_policy_parse(const char *s, mesh_lb_policy_t *out)
{
    if (strcmp(s, "round-robin") == 0)
        *out = MESH_LB_ROUND_ROBIN;
    else if (strcmp(s, "p2c") == 0)
        *out = MESH_LB_P2C;
    else
        return -1;
    return 0;
}

const char *mesh_lb_policy_name(mesh_lb_policy_t p)
{
    return p == MESH_LB_P2C ? "p2c" : "round-robin";
}

/* A header name as gRPC metadata allows it: 0-9 a-z _ - . (upper case folded). */
static int header_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == ':')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tolower((unsigned char)s[i]);
        if (!(isdigit(c) || (c >= 'a' && c <= 'z') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int mesh_lb_subset_parse(const char *s, mesh_lb_subset_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const char *eq = strchr(s, '=');
    const char *colon = eq ? strchr(eq + 1, ':') : NULL;
    const char *eq2 = colon ? strchr(colon + 1, '=') : NULL;
    if (!eq || !colon || !eq2) {
        snprintf(err, errlen, "'%s' is not HEADER=VALUE:version=V (or :zone=Z)", s);
        return -1;
    }
    size_t hl = (size_t)(eq - s), kl = (size_t)(eq2 - colon - 1);
    if (!header_ok(s, hl)) {
        snprintf(err, errlen, "'%.*s' is not a metadata key (0-9 a-z _ - .)", (int)hl, s);
        return -1;
    }
    if (kl == 7 && strncmp(colon + 1, "version", 7) == 0)
        out->by = MESH_LB_BY_VERSION;
    else if (kl == 4 && strncmp(colon + 1, "zone", 4) == 0)
        out->by = MESH_LB_BY_ZONE;
    else {
        snprintf(err, errlen, "'%.*s': instances are selected by version or zone", (int)kl,
                 colon + 1);
        return -1;
    }
    if (!eq2[1]) {
        snprintf(err, errlen, "'%s': the %s to select is empty", s,
                 out->by == MESH_LB_BY_VERSION ? "version" : "zone");
        return -1;
    }
    out->header = strndup(s, hl);
    out->value = strndup(eq + 1, (size_t)(colon - eq - 1));
    out->want = strdup(eq2 + 1);
    if (!out->header || !out->value || !out->want) {
        mesh_lb_subset_destroy(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (char *c = out->header; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

int mesh_lb_cfg_add_subset(mesh_lb_cfg_t *cfg, mesh_lb_subset_t *s)
{
    mesh_lb_subset_t *a = realloc(cfg->subsets, (cfg->n_subsets + 1) * sizeof(*a));
    if (!a)
        return -1;
    a[cfg->n_subsets++] = *s;
    cfg->subsets = a;
    memset(s, 0, sizeof(*s));
    return 0;
}

int mesh_lb_subset_match(const mesh_lb_cfg_t *cfg, mesh_lb_header_fn get, void *ud)
{
    for (size_t i = 0; i < cfg->n_subsets; i++) {
        const mesh_lb_subset_t *r = &cfg->subsets[i];
        size_t len;
        const char *v = get(ud, r->header, &len);
        if (v && len == strlen(r->value) && memcmp(v, r->value, len) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- per endpoint -------------------------------------------------------------------------- */

/* exp(-dt / decay). Asked for the same few small dt again and again (a busy endpoint's last
 * sample is 0 to a few ms old: 0 needs no exp), so each thread keeps the last factors it
 * computed, by dt: a hit is the very value exp gave, for a fraction of its cost. */
#define DECAY_MEMO 16

static double decay_factor(const mesh_lb_cfg_t *cfg, int64_t dt_ms)
{
    static _Thread_local struct {
        int64_t dt; /* 0: empty (dt 0 never asks) */
        uint64_t decay_ms;
        double f;
    } memo[DECAY_MEMO];
    if (dt_ms <= 0)
        return 1.0;
    unsigned i = (unsigned)dt_ms & (DECAY_MEMO - 1);
    if (memo[i].dt == dt_ms && memo[i].decay_ms == cfg->decay_ms)
        return memo[i].f;
    double f = exp(-(double)dt_ms / (double)cfg->decay_ms);
    memo[i].dt = dt_ms;
    memo[i].decay_ms = cfg->decay_ms;
    memo[i].f = f;
    return f;
}

/* Milliseconds from the endpoint's last sample to now (negative: now is before it). */
static int64_t since_ms(const mesh_lb_ep_t *e, uint64_t now_ns)
{
    return (int32_t)((uint32_t)(now_ns / 1000000) - e->at_ms);
}

void mesh_lb_ep_done(mesh_lb_ep_t *e, const mesh_lb_cfg_t *cfg, uint64_t start_ns, uint64_t now_ns,
                     int failed, int sample)
{
    if (e->outstanding)
        e->outstanding--;
    if (!sample)
        return;
    double rtt_us = now_ns > start_ns ? (double)(now_ns - start_ns) / 1e3 : 0.001;
    if (failed && rtt_us < (double)cfg->fail_penalty_ms * 1e3)
        rtt_us = (double)cfg->fail_penalty_ms * 1e3;
    int64_t dt = e->n > 0 ? since_ms(e, now_ns) : 1;
    if (e->n > 0 && dt > 0) {
        double d = decay_factor(cfg, dt);
        e->sum_us = (float)(e->sum_us * d);
        e->n = (float)(e->n * d);
    }
    e->sum_us += (float)rtt_us;
    e->n += 1.0f;
    if (dt > 0)
        e->at_ms = (uint32_t)(now_ns / 1000000);
}

double mesh_lb_ep_estimate(const mesh_lb_ep_t *e, const mesh_lb_cfg_t *cfg, uint64_t now_ns)
{
    if (e->n <= 0)
        return 0;
    return (double)e->sum_us / (double)e->n * 1e3 * decay_factor(cfg, since_ms(e, now_ns));
}

/* ---- plans --------------------------------------------------------------------------------- */

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A step co-prime to total, so (turn * step) mod total visits every position once a cycle. */
static uint64_t stride_for(uint64_t total)
{
    if (total <= 1)
        return 1;
    uint64_t s = 2654435761u % total;
    while (s == 0 || gcd64(s, total) != 1)
        s++;
    return s;
}

static int in_zone(const mesh_lb_cfg_t *cfg, const mesh_route_instance_t *in)
{
    return cfg->zone && cfg->zone[0] && in->zone && strcmp(in->zone, cfg->zone) == 0;
}

static int in_subset(const mesh_lb_subset_t *r, const mesh_route_instance_t *in)
{
    const char *have = r->by == MESH_LB_BY_VERSION ? in->version : in->zone;
    return have && strcmp(have, r->want) == 0;
}

/* Fills g with the candidates rule r selects (NULL: all). */
static int group_build(group_t *g, const mesh_lb_cfg_t *cfg, const mesh_lb_subset_t *r,
                       const mesh_route_instance_t *const *insts, size_t n, uint32_t start)
{
    memset(g, 0, sizeof(*g));
    g->rr = start;
    g->idx = malloc((n ? n : 1) * sizeof(*g->idx));
    g->cum = malloc((n ? n : 1) * sizeof(*g->cum));
    if (!g->idx || !g->cum)
        return -1;
    /* three passes keep the order: local weighted, other weighted, weight 0 */
    for (int pass = 0; pass < 3; pass++)
        for (size_t k = 0; k < n; k++) {
            const mesh_route_instance_t *in = insts[k];
            if (r && !in_subset(r, in))
                continue;
            int w = in->weight > 0, local = in_zone(cfg, in);
            if ((pass == 0 && w && local) || (pass == 1 && w && !local) || (pass == 2 && !w))
                g->idx[g->n++] = (uint32_t)k;
            if (pass == 0 && w && local)
                g->n_local++;
            if (pass < 2 && w && (pass == 0) == local)
                g->n_pos++;
        }
    uint64_t sum = 0, local = 0;
    g->uw = g->n_pos ? insts[g->idx[0]]->weight : 0;
    for (uint32_t i = 0; i < g->n_pos; i++) {
        uint32_t w = insts[g->idx[i]]->weight;
        if (w != insts[g->idx[0]]->weight)
            g->uw = 0;
        sum += w;
        g->cum[i] = sum;
        if (i < g->n_local)
            local = sum;
    }
    /* weighted round robin visits position (turn * stride) mod total: a stride co-prime to the
       total visits every position once per cycle, interleaving the instances */
    g->stride[0] = stride_for(sum);
    g->stride[1] = stride_for(local);
    /* each worker starts at its own place */
    g->pos[0] = sum ? (uint64_t)start * g->stride[0] % sum : 0;
    g->pos[1] = local ? (uint64_t)start * g->stride[1] % local : 0;
    return 0;
}

static void group_free(group_t *g)
{
    free(g->idx);
    free(g->cum);
}

int mesh_lb_plan_needed(const mesh_lb_cfg_t *cfg, const mesh_route_instance_t *const *insts,
                        size_t n)
{
    if (!cfg)
        return 0;
    if (cfg->n_subsets || (cfg->zone && cfg->zone[0]))
        return 1;
    /* P2C has a choice to make only among two or more (one instance: it is every turn, and
       its latency samples are still taken) */
    if (cfg->policy != MESH_LB_ROUND_ROBIN && n > 1)
        return 1;
    for (size_t k = 0; k < n; k++)
        if (insts[k]->weight != insts[0]->weight || insts[k]->weight == 0)
            return 1;
    return 0;
}

mesh_lb_plan_t *mesh_lb_plan_new(const mesh_lb_cfg_t *cfg,
                                 const mesh_route_instance_t *const *insts, size_t n,
                                 uint32_t start)
{
    mesh_lb_plan_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (group_build(&p->all, cfg, NULL, insts, n, start) != 0)
        goto fail;
    if (cfg->n_subsets) {
        p->subsets = calloc(cfg->n_subsets, sizeof(*p->subsets));
        if (!p->subsets)
            goto fail;
        p->n_subsets = cfg->n_subsets;
        for (size_t i = 0; i < cfg->n_subsets; i++)
            if (group_build(&p->subsets[i], cfg, &cfg->subsets[i], insts, n, start) != 0)
                goto fail;
    }
    return p;
fail:
    mesh_lb_plan_free(p);
    return NULL;
}

void mesh_lb_plan_free(mesh_lb_plan_t *p)
{
    if (!p)
        return;
    group_free(&p->all);
    for (size_t i = 0; i < p->n_subsets; i++)
        group_free(&p->subsets[i]);
    free(p->subsets);
    free(p);
}

/* ---- picks --------------------------------------------------------------------------------- */

/* A pick runs on every call: its common path (no subset, no zone, weights above 0) is one
 * function, its rare branches are calls out of line. */
#define HOT  static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline))

/* The entry at weighted position pos (0 <= pos < cum[m-1]) among the first m entries. */
static uint32_t entry_at(const group_t *g, uint32_t m, uint64_t pos)
{
    if (g->uw == 1)
        return (uint32_t)pos; /* every weight 1 (the default): the position is the entry */
    if (g->uw)
        return (uint32_t)(pos / g->uw);
    uint32_t lo = 0, hi = m - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->cum[mid] > pos)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* A random number below n (> 0) from the PRNG's high bits (xorshift64*'s low bits are its
 * weakest), by multiplication rather than a division. */
static uint64_t below(mesh_lb_rng_t *rng, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)mesh_lb_rand(rng) * n) >> 64);
}

/* A weighted random entry among the first m (m > 0). Equal weights w: below(m x w) / w is
 * below(m) (the same number from the same draw), so no division. */
static uint32_t draw(const group_t *g, uint32_t m, mesh_lb_rng_t *rng)
{
    if (g->uw)
        return (uint32_t)below(rng, m);
    return entry_at(g, m, below(rng, g->cum[m - 1]));
}

/* The first eligible entry among the first m from entry `from` on (cyclic), or -1. */
COLD ptrdiff_t scan(const group_t *g, uint32_t from, uint32_t m, const mesh_lb_ops_t *ops, void *ud)
{
    for (uint32_t i = 0; i < m; i++) {
        uint32_t e = (from + i) % m;
        if (ops->eligible(ud, g->idx[e]))
            return e;
    }
    return -1;
}

/* Weighted round robin among the first m entries: turns at stride through the weighted
 * positions; an ineligible entry is passed over, the turn counted. */
HOT ptrdiff_t pick_rr(group_t *g, uint32_t m, const mesh_lb_ops_t *ops, void *ud)
{
    if (m == 1) { /* every turn is entry 0 (the positions do not matter): DRAWS turns, then
                     the scan, all ask entry 0 */
        g->rr++;
        if (ops->eligible(ud, g->idx[0]))
            return 0;
        g->rr += DRAWS - 1;
        return -1;
    }
    uint64_t total = g->cum[m - 1];
    int r = m == g->n_pos ? 0 : 1;
    for (uint32_t t = 0; t < DRAWS; t++) {
        uint32_t e = entry_at(g, m, g->pos[r]);
        g->pos[r] += g->stride[r];
        if (g->pos[r] >= total)
            g->pos[r] -= total;
        g->rr++;
        if (ops->eligible(ud, g->idx[e]))
            return e;
    }
    return scan(g, g->rr % m, m, ops, ud);
}

/* The weight of positive entry i, from the cumulative sums. */
static uint64_t entry_weight(const group_t *g, uint32_t i)
{
    return i ? g->cum[i] - g->cum[i - 1] : g->cum[0];
}

/* The cost of candidate x against y: its latency estimate times its load relative to what its
 * weight asks of the two candidates' calls ((o + 1) / (expected o + 1), so the cost does not
 * depend on the scale of the weights and candidates carrying their weighted share cost the
 * same). */
static double cost(const mesh_lb_ep_t *x, double est, uint64_t wx, const mesh_lb_ep_t *y,
                   uint64_t wy)
{
    double both = (double)x->outstanding + (double)y->outstanding;
    /* equal weights: both x w / (2 w) is exactly both / 2, without the division */
    double expect = wx == wy ? both * 0.5 : both * (double)wx / ((double)wx + (double)wy);
    return est * ((double)x->outstanding + 1.0) / (expect + 1.0);
}

/* P2C among the first m entries: the weighted round robin's turn, a weighted random draw, the
 * second only when clearly cheaper (see transport/lb.h). */
HOT ptrdiff_t pick_p2c(group_t *g, uint32_t m, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng,
                       uint64_t now_ns, const mesh_lb_ops_t *ops, void *ud)
{
    ptrdiff_t a = pick_rr(g, m, ops, ud), b = -1;
    if (a < 0 || m == 1)
        return a;
    const mesh_lb_ep_t *la = ops->load(ud, g->idx[a]);
    if (la->outstanding == 0 && la->n > 0 && since_ms(la, now_ns) >= (int64_t)cfg->probe_ms)
        return a; /* a stale estimate: this turn is its probe */
    for (int t = 0; t < DRAWS && b < 0; t++) {
        uint32_t e = draw(g, m, rng);
        if (e != (uint32_t)a && ops->eligible(ud, g->idx[e]))
            b = e;
    }
    for (uint32_t i = 1; i < m && b < 0; i++) { /* the draws kept hitting a: the next one */
        uint32_t e = ((uint32_t)a + i) % m;
        if (ops->eligible(ud, g->idx[e]))
            b = e;
    }
    if (b < 0)
        return a;
    const mesh_lb_ep_t *lb = ops->load(ud, g->idx[b]);
    double ea = mesh_lb_ep_estimate(la, cfg, now_ns);
    double eb = ea > 0 ? mesh_lb_ep_estimate(lb, cfg, now_ns) : 0;
    if (ea <= 0 || eb <= 0)
        ea = eb = 0; /* a fresh endpoint: neutral, compare the load alone */
    ea += (double)cfg->floor_us * 1e3;
    eb += (double)cfg->floor_us * 1e3;
    uint64_t wa = entry_weight(g, (uint32_t)a), wb = entry_weight(g, (uint32_t)b);
    double ca = cost(la, ea, wa, lb, wb), cb = cost(lb, eb, wb, la, wa);
    return cb * cfg->p2c_margin < ca ? b : a;
}

/* Whether g's calls go to the caller's zone now: enough of its instances are up and they are
 * not overloaded against the others. Decided at most once per millisecond. */
COLD int zone_local(group_t *g, const mesh_lb_cfg_t *cfg, uint64_t now_ns, const mesh_lb_ops_t *ops,
                    void *ud)
{
    uint64_t ms = now_ns / 1000000 + 1;
    if (g->zone_ms == ms)
        return g->zone_local;
    g->zone_ms = ms;
    uint32_t up_l = 0, up_r = 0;
    double out_l = 0, out_r = 0;
    for (uint32_t i = 0; i < g->n_pos; i++) {
        if (!ops->healthy(ud, g->idx[i]))
            continue;
        double o = ops->load(ud, g->idx[i])->outstanding;
        if (i < g->n_local) {
            up_l++;
            out_l += o;
        } else {
            up_r++;
            out_r += o;
        }
    }
    int ok = up_l > 0 && (uint64_t)up_l * 100 >= (uint64_t)g->n_local * cfg->zone_min_healthy;
    if (ok && up_r > 0) {
        double mean_l = out_l / up_l, mean_r = out_r / up_r;
        double lim = cfg->zone_overload * (mean_r > 1.0 ? mean_r : 1.0);
        ok = mean_l <= lim;
    }
    g->zone_local = ok;
    return ok;
}

/* A pick by cfg's policy among the first m entries of g (m > 0), or -1. */
HOT ptrdiff_t pick_in(group_t *g, uint32_t m, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng,
                      uint64_t now_ns, const mesh_lb_ops_t *ops, void *ud)
{
    if (cfg->policy == MESH_LB_P2C)
        return pick_p2c(g, m, cfg, rng, now_ns, ops, ud);
    return pick_rr(g, m, ops, ud);
}

/* With weight 0 only: the next eligible one of them, in turn, or -1. */
COLD ptrdiff_t pick_zero(group_t *g, const mesh_lb_ops_t *ops, void *ud)
{
    ptrdiff_t z = -1;
    for (uint32_t i = 0; i < g->n - g->n_pos && z < 0; i++) {
        uint32_t k = g->n_pos + (g->rr + i) % (g->n - g->n_pos);
        if (ops->eligible(ud, g->idx[k]))
            z = k;
    }
    g->rr++;
    return z;
}

/* In the caller's zone when it is preferred now (g has local entries), or -1. */
COLD ptrdiff_t pick_local(group_t *g, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng, uint64_t now_ns,
                          const mesh_lb_ops_t *ops, void *ud, mesh_lb_pick_info_t *info)
{
    if (!zone_local(g, cfg, now_ns, ops, ud))
        return -1;
    ptrdiff_t e = pick_in(g, g->n_local, cfg, rng, now_ns, ops, ud);
    if (e >= 0 && info)
        info->zone_local = 1;
    return e;
}

/* A pick within group g, or -1: in the caller's zone when it is preferred, else among all
 * the weighted entries, else (weight 0: only when nothing else can take it) the others. */
HOT ptrdiff_t pick_group(group_t *g, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng, uint64_t now_ns,
                         const mesh_lb_ops_t *ops, void *ud, mesh_lb_pick_info_t *info)
{
    ptrdiff_t e = -1;
    if (g->n_local)
        e = pick_local(g, cfg, rng, now_ns, ops, ud, info);
    if (e < 0 && g->n_pos)
        e = pick_in(g, g->n_pos, cfg, rng, now_ns, ops, ud); /* info->zone_local stays 0 */
    if (e < 0 && g->n > g->n_pos)
        e = pick_zero(g, ops, ud);
    return e < 0 ? -1 : (ptrdiff_t)g->idx[e];
}

/* A pick within a subset's group, or -1. */
COLD ptrdiff_t pick_subset(group_t *g, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng,
                           uint64_t now_ns, const mesh_lb_ops_t *ops, void *ud,
                           mesh_lb_pick_info_t *info)
{
    return pick_group(g, cfg, rng, now_ns, ops, ud, info);
}

ptrdiff_t mesh_lb_pick(mesh_lb_plan_t *p, const mesh_lb_cfg_t *cfg, mesh_lb_rng_t *rng, int subset,
                       uint64_t now_ns, const mesh_lb_ops_t *ops, void *ud,
                       mesh_lb_pick_info_t *info)
{
    if (info)
        *info = (mesh_lb_pick_info_t){0};
    if (subset >= 0 && (size_t)subset < p->n_subsets) {
        ptrdiff_t k = pick_subset(&p->subsets[subset], cfg, rng, now_ns, ops, ud, info);
        if (k >= 0)
            return k;
        if (info)
            info->subset_fallback = 1;
    }
    return pick_group(&p->all, cfg, rng, now_ns, ops, ud, info);
}
