/*
 * policy/ratelimit.c: the lock-free GCRA limiter behind policy/ratelimit.h.
 *
 * The table. slots[] is an array of {key, tat} pairs of 64-bit atomics; key 0 means the slot
 * was never used (a slot never goes back to 0: reuse re-keys it directly). A key's hash h
 * (never 0) has its home slot at h & mask and may live in the `probe` slots from there, wrapping.
 * Lookup scans the window and takes the first slot whose key is h, so when a key happens to sit
 * in two slots (see below) every thread agrees on the lower one.
 *
 * Claiming a slot for a new key: the first empty slot of the window, else the first idle one
 * (tat <= now: a full bucket, the same as no bucket); CAS its key from what was seen to h; on
 * success look again below it for h (another thread may have claimed an earlier slot for the
 * same key meanwhile: use that one). A lost CAS rescans (twice), then the call uses the fallback
 * bucket. Two races are accepted, each bounded to one call's worth of tokens and needing two
 * threads to meet on a key's first call or on an eviction instant: (1) two threads claim two
 * slots for one new key at the same moment; the call charged to the higher one is the only one
 * ever charged there. (2) A key evicted in the instant it becomes busy again: its in-flight call
 * may land on the new key's bucket, and the old key comes back with a full bucket, which it
 * nearly had anyway (it was idle, i.e. full, when judged evictable).
 *
 * The bucket. T = round(1e9 / rate) ns per token, tau = burst * T. A call at now: base =
 * max(tat, now); if base + T - now > tau it is limited, and the next token comes at
 * base + T - tau; else CAS tat from the value read to base + T (retry with the new value on a
 * lost CAS). Rounding T to whole ns makes the effective rate differ from the configured one by
 * at most 0.5 ns per token (0.05 % at 1e6/s).
 */
#include "policy/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct {
    _Atomic uint64_t key;
    _Atomic uint64_t tat;
} slot_t;

struct pol_ratelimit {
    pol_ratelimit_config_t cfg;
    uint64_t t_ns;   /* ns per token */
    uint64_t tau_ns; /* burst * t_ns */
    uint64_t mask;
    slot_t *slots;
    _Alignas(64) _Atomic uint64_t fallback_tat;
    _Alignas(64) _Atomic uint64_t claimed;
    _Atomic uint64_t evicted;
    _Atomic uint64_t fallback;
};

void pol_ratelimit_config_default(pol_ratelimit_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->rate = 100;
    cfg->burst = 100;
    cfg->slots = 16384;
    cfg->probe = 8;
}

int pol_ratelimit_config_check(const pol_ratelimit_config_t *cfg, char *err, size_t errlen)
{
    if (!(cfg->rate >= 1e-6 && cfg->rate <= 1e9)) {
        snprintf(err, errlen, "rate: %g is not in 1e-06..1e+09 per second", cfg->rate);
        return -1;
    }
    if (cfg->burst < 1) {
        snprintf(err, errlen, "burst: must be at least 1");
        return -1;
    }
    double tau = (double)cfg->burst * (double)(uint64_t)(1e9 / cfg->rate + 0.5);
    if (tau > 4e18) {
        snprintf(err, errlen, "burst: %u at %g/s is a bucket of over a century", cfg->burst,
                 cfg->rate);
        return -1;
    }
    if (cfg->probe < 1 || cfg->probe > POL_RATELIMIT_PROBE_MAX) {
        snprintf(err, errlen, "probe: %u is not in 1..%u", cfg->probe, POL_RATELIMIT_PROBE_MAX);
        return -1;
    }
    if (cfg->slots < cfg->probe || (cfg->slots & (cfg->slots - 1)) || cfg->slots > (1u << 30)) {
        snprintf(err, errlen, "slots: %u is not a power of two in %u..%u", cfg->slots, cfg->probe,
                 1u << 30);
        return -1;
    }
    return 0;
}

pol_ratelimit_t *pol_ratelimit_new(const pol_ratelimit_config_t *cfg, char *err, size_t errlen)
{
    if (pol_ratelimit_config_check(cfg, err, errlen) != 0)
        return NULL;
    pol_ratelimit_t *rl = aligned_alloc(64, sizeof(*rl));
    size_t bytes = ((size_t)cfg->slots * sizeof(slot_t) + 63) & ~(size_t)63;
    slot_t *slots = aligned_alloc(64, bytes);
    if (!rl || !slots) {
        free(rl);
        free(slots);
        snprintf(err, errlen, "out of memory for %u slots", cfg->slots);
        return NULL;
    }
    memset(rl, 0, sizeof(*rl));
    rl->cfg = *cfg;
    while (rl->cfg.seed == 0) {
        if (getrandom(&rl->cfg.seed, sizeof(rl->cfg.seed), 0) != sizeof(rl->cfg.seed))
            rl->cfg.seed = 0x6d65736864ull ^ (uint64_t)(uintptr_t)rl;
    }
    rl->t_ns = (uint64_t)(1e9 / cfg->rate + 0.5);
    if (rl->t_ns == 0)
        rl->t_ns = 1;
    rl->tau_ns = rl->t_ns * cfg->burst;
    rl->mask = cfg->slots - 1;
    rl->slots = slots;
    for (uint32_t i = 0; i < cfg->slots; i++) {
        atomic_init(&slots[i].key, 0);
        atomic_init(&slots[i].tat, 0);
    }
    atomic_init(&rl->fallback_tat, 0);
    atomic_init(&rl->claimed, 0);
    atomic_init(&rl->evicted, 0);
    atomic_init(&rl->fallback, 0);
    return rl;
}

void pol_ratelimit_free(pol_ratelimit_t *rl)
{
    if (!rl)
        return;
    free(rl->slots);
    free(rl);
}

const pol_ratelimit_config_t *pol_ratelimit_config(const pol_ratelimit_t *rl)
{
    return &rl->cfg;
}

/* ---- hashing -------------------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

/* A seeded 64-bit hash of key[0..len): 8 bytes at a time through a multiply-xorshift mixer. */
static uint64_t key_hash(uint64_t seed, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = mix64(seed ^ (len * 0x9e3779b97f4a7c15ull));
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = mix64(h ^ w ^ seed);
    return h ? h : 1;
}

/* ---- the table ------------------------------------------------------------------------------ */

/* The TAT word for key hash h, or NULL when the window has no room (use the fallback). */
static _Atomic uint64_t *find_slot(pol_ratelimit_t *rl, uint64_t h, uint64_t now)
{
    uint32_t probe = rl->cfg.probe;
    for (int attempt = 0; attempt < 3; attempt++) {
        int pick = -1;
        uint64_t seen = 0;
        int pick_empty = 0;
        for (uint32_t i = 0; i < probe; i++) {
            slot_t *s = &rl->slots[(h + i) & rl->mask];
            uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
            if (k == h)
                return &s->tat;
            if (k == 0) {
                if (!pick_empty) {
                    pick = (int)i;
                    seen = 0;
                    pick_empty = 1;
                }
            } else if (pick < 0 && atomic_load_explicit(&s->tat, memory_order_relaxed) <= now) {
                pick = (int)i;
                seen = k;
            }
        }
        if (pick < 0)
            return NULL;
        slot_t *s = &rl->slots[(h + (uint32_t)pick) & rl->mask];
        if (!pick_empty && atomic_load_explicit(&s->tat, memory_order_relaxed) > now)
            continue; /* became busy since the scan */
        if (!atomic_compare_exchange_strong_explicit(&s->key, &seen, h, memory_order_acq_rel,
                                                     memory_order_acquire))
            continue;
        atomic_fetch_add_explicit(pick_empty ? &rl->claimed : &rl->evicted, 1,
                                  memory_order_relaxed);
        /* Lowest slot wins: someone may have claimed an earlier one for h meanwhile. */
        for (uint32_t i = 0; i < (uint32_t)pick; i++) {
            slot_t *e = &rl->slots[(h + i) & rl->mask];
            if (atomic_load_explicit(&e->key, memory_order_acquire) == h)
                return &e->tat;
        }
        return &s->tat;
    }
    return NULL;
}

/* One GCRA step on a TAT word. */
static pol_ratelimit_verdict_t gcra(const pol_ratelimit_t *rl, _Atomic uint64_t *tatp, uint64_t now,
                                    pol_ratelimit_result_t *res)
{
    uint64_t tat = atomic_load_explicit(tatp, memory_order_relaxed);
    for (;;) {
        uint64_t base = tat > now ? tat : now;
        uint64_t next = base + rl->t_ns;
        uint64_t used = next - now; /* the bucket after this call, in ns of tokens */
        if (used > rl->tau_ns) {
            if (res) {
                res->retry_after_ns = used - rl->tau_ns;
                res->remaining = 0;
            }
            return POL_RATELIMIT_LIMITED;
        }
        if (atomic_compare_exchange_weak_explicit(tatp, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            if (res) {
                res->retry_after_ns = 0;
                res->remaining = (uint32_t)((rl->tau_ns - used) / rl->t_ns);
            }
            return POL_RATELIMIT_ALLOWED;
        }
    }
}

pol_ratelimit_verdict_t pol_ratelimit_check(pol_ratelimit_t *rl, const void *key, size_t len,
                                            uint64_t now_ns, pol_ratelimit_result_t *res)
{
    uint64_t h = key_hash(rl->cfg.seed, key, len);
    _Atomic uint64_t *tat = find_slot(rl, h, now_ns);
    if (res)
        res->fallback = tat == NULL;
    if (!tat) {
        atomic_fetch_add_explicit(&rl->fallback, 1, memory_order_relaxed);
        tat = &rl->fallback_tat;
    }
    return gcra(rl, tat, now_ns, res);
}

pol_ratelimit_verdict_t pol_ratelimit_check_ip(pol_ratelimit_t *rl, const pol_ip_t *ip,
                                               uint64_t now_ns, pol_ratelimit_result_t *res)
{
    unsigned char k[17];
    k[0] = 0x01;
    for (int i = 0; i < 8; i++) {
        k[1 + i] = (unsigned char)(ip->hi >> (56 - 8 * i));
        k[9 + i] = (unsigned char)(ip->lo >> (56 - 8 * i));
    }
    return pol_ratelimit_check(rl, k, sizeof(k), now_ns, res);
}

void pol_ratelimit_stats(const pol_ratelimit_t *rl, pol_ratelimit_stats_t *out)
{
    out->claimed = atomic_load_explicit(&rl->claimed, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&rl->evicted, memory_order_relaxed);
    out->fallback = atomic_load_explicit(&rl->fallback, memory_order_relaxed);
}

uint64_t pol_ratelimit_retry_after_ms(const pol_ratelimit_result_t *res)
{
    return (res->retry_after_ns + 999999) / 1000000;
}

uint64_t pol_ratelimit_retry_after_s(const pol_ratelimit_result_t *res)
{
    return (res->retry_after_ns + 999999999) / 1000000000;
}

int pol_ratelimit_reject_message(const pol_ratelimit_t *rl, const char *what,
                                 const pol_ratelimit_result_t *res, char *buf, size_t cap)
{
    char w[68];
    size_t k = 0;
    for (const char *p = what ? what : ""; *p && k < 64; p++) {
        unsigned char c = (unsigned char)*p;
        w[k++] = c >= 0x20 && c <= 0x7E ? (char)c : '?';
    }
    w[k] = '\0';
    int n = snprintf(buf, cap, "meshd: ratelimit: over %g/s (burst %u) for %s; retry after %llu ms",
                     rl->cfg.rate, rl->cfg.burst, w,
                     (unsigned long long)pol_ratelimit_retry_after_ms(res));
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
