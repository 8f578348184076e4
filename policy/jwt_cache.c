/*
 * policy/jwt_cache.c: the per-worker verified-token cache (see policy/jwt_cache.h).
 *
 * Layout: a fixed array of entries (allocated once) indexed by a power-of-two table of bucket
 * heads with chains through the entries (int32 indices). Each entry owns one heap block holding
 * its claims (the fixed part plus the used bytes of the string buffer) followed by the token
 * copy; the block is reused by later tokens that fit, so a steady state allocates nothing even
 * on inserts. Lookups never allocate.
 */
#include "policy/jwt_cache.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define CLAIMS_HEAD offsetof(pol_jwt_claims_t, buf)

typedef struct {
    uint64_t hash;
    uint64_t ks_gen, rules_gen;
    int64_t deadline; /* valid while now < deadline */
    int32_t next;     /* next entry in the bucket chain, -1 at the end */
    uint8_t live;
    uint8_t ref; /* CLOCK reference bit */
    uint32_t tok_len;
    size_t block_cap;
    unsigned char *block; /* claims head | claims buf[used] | token */
} entry_t;

struct pol_jwt_cache {
    size_t capacity, count;
    int64_t max_ttl_s;
    uint64_t seed[2];
    size_t mask; /* buckets - 1 */
    int32_t *buckets;
    entry_t *entries;
    size_t hand;       /* CLOCK hand */
    size_t fresh;      /* entries never used yet: [fresh, capacity) */
    int32_t free_head; /* dropped entries, chained through next */
    pol_jwt_cache_stats_t stats;
};

/* ---- hashing --------------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t m = (__uint128_t)a * b;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A keyed 64-bit hash (multiply-fold over 16-byte blocks). Tokens are only stored after they
 * verified, so nobody can flood a chain with chosen tokens; the key still keeps chains random. */
static uint64_t token_hash(const pol_jwt_cache_t *c, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = c->seed[0] ^ mix(n ^ 0x9E3779B97F4A7C15ull, c->seed[1]);
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        h = mix(rd64(p + i) ^ c->seed[1] ^ 0xA0761D6478BD642Full, rd64(p + i + 8) ^ h);
    unsigned char tail[16] = {0};
    memcpy(tail, p + i, n - i);
    h = mix(rd64(tail) ^ c->seed[1] ^ 0xE7037ED1A0B428DBull, rd64(tail + 8) ^ h);
    return mix(h ^ 0x8EBC6AF09C88C6E3ull, n ^ c->seed[0]);
}

/* ---- life ------------------------------------------------------------------------------ */

pol_jwt_cache_t *pol_jwt_cache_new(size_t capacity, int64_t max_ttl_s)
{
    if (capacity == 0 || capacity > (1u << 20) || max_ttl_s <= 0)
        return NULL;
    pol_jwt_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    size_t nb = 1;
    while (nb < capacity * 2)
        nb <<= 1;
    c->capacity = capacity;
    c->max_ttl_s = max_ttl_s;
    c->mask = nb - 1;
    c->buckets = malloc(nb * sizeof(int32_t));
    c->entries = calloc(capacity, sizeof(entry_t));
    if (!c->buckets || !c->entries) {
        pol_jwt_cache_delete(c);
        return NULL;
    }
    memset(c->buckets, 0xFF, nb * sizeof(int32_t));
    c->free_head = -1;
    if (getrandom(c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        c->seed[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uintptr_t)c;
        c->seed[1] = (uint64_t)ts.tv_sec ^ (uintptr_t)&ts;
    }
    return c;
}

void pol_jwt_cache_delete(pol_jwt_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->entries && i < c->capacity; i++)
        free(c->entries[i].block);
    free(c->entries);
    free(c->buckets);
    free(c);
}

/* Unlinks live entry idx from its chain. */
static void unlink_entry(pol_jwt_cache_t *c, int32_t idx)
{
    entry_t *e = &c->entries[idx];
    int32_t *link = &c->buckets[e->hash & c->mask];
    while (*link != idx)
        link = &c->entries[*link].next;
    *link = e->next;
    e->live = 0;
    c->count--;
}

/* Puts the unlinked entry idx on the free list. */
static void release(pol_jwt_cache_t *c, int32_t idx)
{
    c->entries[idx].next = c->free_head;
    c->free_head = idx;
}

void pol_jwt_cache_clear(pol_jwt_cache_t *c)
{
    memset(c->buckets, 0xFF, (c->mask + 1) * sizeof(int32_t));
    c->free_head = -1;
    for (size_t i = 0; i < c->fresh; i++) {
        c->entries[i].live = 0;
        release(c, (int32_t)i);
    }
    c->count = 0;
}

size_t pol_jwt_cache_size(const pol_jwt_cache_t *c)
{
    return c->count;
}

pol_jwt_cache_stats_t pol_jwt_cache_stats(const pol_jwt_cache_t *c)
{
    return c->stats;
}

/* ---- lookup ---------------------------------------------------------------------------- */

static inline const pol_jwt_claims_t *entry_claims(const entry_t *e)
{
    return (const pol_jwt_claims_t *)(const void *)e->block;
}

static inline const char *entry_token(const entry_t *e)
{
    return (const char *)e->block + CLAIMS_HEAD + entry_claims(e)->used;
}

/* The live entry holding token, or -1. */
static int32_t find(const pol_jwt_cache_t *c, const char *token, size_t len, uint64_t h)
{
    for (int32_t i = c->buckets[h & c->mask]; i >= 0; i = c->entries[i].next) {
        const entry_t *e = &c->entries[i];
        if (e->hash == h && e->tok_len == len && memcmp(entry_token(e), token, len) == 0)
            return i;
    }
    return -1;
}

const pol_jwt_claims_t *pol_jwt_cache_get(pol_jwt_cache_t *c, const char *token, size_t len,
                                          uint64_t ks_gen, uint64_t rules_gen, int64_t now_s)
{
    uint64_t h = token_hash(c, token, len);
    int32_t i = find(c, token, len, h);
    if (i < 0) {
        c->stats.misses++;
        return NULL;
    }
    entry_t *e = &c->entries[i];
    if (e->ks_gen != ks_gen || e->rules_gen != rules_gen || now_s >= e->deadline) {
        unlink_entry(c, i);
        release(c, i);
        c->stats.expirations++;
        c->stats.misses++;
        return NULL;
    }
    e->ref = 1;
    c->stats.hits++;
    return entry_claims(e);
}

/* ---- insertion ------------------------------------------------------------------------- */

/* A free entry index: a dropped one, a never-used one, else one CLOCK evicts. */
static int32_t take_slot(pol_jwt_cache_t *c)
{
    if (c->free_head >= 0) {
        int32_t idx = c->free_head;
        c->free_head = c->entries[idx].next;
        return idx;
    }
    if (c->fresh < c->capacity)
        return (int32_t)c->fresh++;
    for (;;) { /* terminates: a pass clears every reference bit */
        entry_t *e = &c->entries[c->hand];
        int32_t idx = (int32_t)c->hand;
        c->hand = (c->hand + 1) % c->capacity;
        if (!e->live) /* not expected (dropped entries are on the free list); harmless */
            return idx;
        if (e->ref) {
            e->ref = 0;
            continue;
        }
        unlink_entry(c, idx);
        c->stats.evictions++;
        return idx;
    }
}

int pol_jwt_cache_put(pol_jwt_cache_t *c, const char *token, size_t len, uint64_t ks_gen,
                      uint64_t rules_gen, const pol_jwt_claims_t *claims, int64_t expires_s,
                      int64_t now_s)
{
    if (expires_s <= now_s || len > UINT32_MAX || claims->used > POL_JWT_CLAIMS_BUF)
        return -1;
    int64_t deadline = now_s + c->max_ttl_s < expires_s ? now_s + c->max_ttl_s : expires_s;
    uint64_t h = token_hash(c, token, len);
    int32_t i = find(c, token, len, h);
    if (i >= 0)
        unlink_entry(c, i);
    else
        i = take_slot(c);
    entry_t *e = &c->entries[i];
    size_t need = CLAIMS_HEAD + claims->used + len;
    if (e->block_cap < need) {
        unsigned char *b = realloc(e->block, need);
        if (!b) {
            release(c, i);
            return -1;
        }
        e->block = b;
        e->block_cap = need;
    }
    memcpy(e->block, claims, CLAIMS_HEAD);
    memcpy(e->block + CLAIMS_HEAD, claims->buf, claims->used);
    memcpy(e->block + CLAIMS_HEAD + claims->used, token, len);
    e->hash = h;
    e->tok_len = (uint32_t)len;
    e->ks_gen = ks_gen;
    e->rules_gen = rules_gen;
    e->deadline = deadline;
    e->ref = 0;
    e->live = 1;
    int32_t *head = &c->buckets[h & c->mask];
    e->next = *head;
    *head = i;
    c->count++;
    c->stats.inserts++;
    return 0;
}

/* ---- verification through the cache ---------------------------------------------------- */

int pol_jwt_verify_cached(pol_jwt_cache_t *c, const pol_keyset_t *ks, const char *token, size_t len,
                          const pol_jwt_rules_t *rules, int64_t now_s, pol_jwt_claims_t *out,
                          int *hit, char *reason, size_t rlen)
{
    if (hit)
        *hit = 0;
    if (!c || !ks || !rules)
        return pol_jwt_verify(ks, token, len, rules, now_s, out, reason, rlen);
    size_t max = rules->max_len ? rules->max_len : POL_JWT_TOKEN_MAX;
    if (len <= max && token) {
        const pol_jwt_claims_t *cl =
            pol_jwt_cache_get(c, token, len, pol_keyset_generation(ks), rules->generation, now_s);
        if (cl) {
            if (out) {
                memcpy(out, cl, CLAIMS_HEAD);
                memcpy(out->buf, cl->buf, cl->used);
            }
            if (hit)
                *hit = 1;
            if (reason && rlen)
                reason[0] = 0, strncat(reason, pol_jwt_reason(POL_JWT_OK), rlen - 1);
            return POL_JWT_OK;
        }
    }
    pol_jwt_claims_t local, *cl = out ? out : &local;
    int rc = pol_jwt_verify(ks, token, len, rules, now_s, cl, reason, rlen);
    if (rc == POL_JWT_OK) {
        int64_t expires = INT64_MAX;
        if (cl->has_exp && cl->exp < INT64_MAX - rules->skew_s)
            expires = cl->exp + rules->skew_s;
        pol_jwt_cache_put(c, token, len, pol_keyset_generation(ks), rules->generation, cl, expires,
                          now_s);
    }
    return rc;
}
