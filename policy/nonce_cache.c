/*
 * policy/nonce_cache.c: the sharded, preallocated replay cache (see policy/nonce_cache.h).
 */
#include "policy/nonce_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* One entry: the pair's two 64-bit hashes (h1 is never 0 in a used slot) and its expiry. */
typedef struct slot {
    uint64_t h1, h2;
    int64_t expires;
} slot_t;

typedef struct shard {
    pthread_mutex_t mu;
    slot_t *slots;
    uint32_t mask;       /* slots - 1 (a power of two) */
    uint32_t count, cap; /* entries held, most allowed */
    int64_t last_sweep;  /* `now` of the last full sweep */
} __attribute__((aligned(64))) shard_t;

struct pol_nonce_cache {
    shard_t shards[POL_NONCE_SHARDS];
    uint64_t key[4]; /* two SipHash keys */
    size_t capacity;
    slot_t *mem;
};

/* ---- SipHash-2-4 over pieces (keyed: the cache's random keys) ------------------------------- */

typedef struct sip {
    uint64_t v0, v1, v2, v3;
    uint64_t tail; /* bytes not yet in a full word */
    size_t len;    /* bytes fed */
} sip_t;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static inline void sipround(sip_t *s)
{
    s->v0 += s->v1;
    s->v1 = ROTL(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = ROTL(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = ROTL(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = ROTL(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = ROTL(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = ROTL(s->v2, 32);
}

static void sip_init(sip_t *s, uint64_t k0, uint64_t k1)
{
    s->v0 = 0x736f6d6570736575ull ^ k0;
    s->v1 = 0x646f72616e646f6dull ^ k1;
    s->v2 = 0x6c7967656e657261ull ^ k0;
    s->v3 = 0x7465646279746573ull ^ k1;
    s->tail = 0;
    s->len = 0;
}

static inline void sip_word(sip_t *s, uint64_t m)
{
    s->v3 ^= m;
    sipround(s);
    sipround(s);
    s->v0 ^= m;
}

static void sip_update(sip_t *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        s->tail |= (uint64_t)p[i] << (8 * (s->len & 7));
        s->len++;
        if ((s->len & 7) == 0) {
            sip_word(s, s->tail);
            s->tail = 0;
        }
    }
}

static uint64_t sip_final(sip_t *s)
{
    sip_word(s, s->tail | (uint64_t)(s->len & 0xff) << 56);
    s->v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sipround(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* One keyed hash of (client, nonce): the client's length first, so the split is unambiguous. */
static uint64_t pair_hash(uint64_t k0, uint64_t k1, const char *client, size_t cn,
                          const char *nonce, size_t nn)
{
    sip_t s;
    sip_init(&s, k0, k1);
    uint64_t len = cn;
    uint8_t lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)(len >> (8 * i));
    sip_update(&s, lb, 8);
    sip_update(&s, client, cn);
    sip_update(&s, nonce, nn);
    return sip_final(&s);
}

/* ---- the cache ------------------------------------------------------------------------------- */

pol_nonce_cache_t *pol_nonce_cache_new(size_t capacity, char *err, size_t errlen)
{
    if (capacity < POL_NONCE_SHARDS || capacity > POL_NONCE_CAPACITY_MAX) {
        snprintf(err, errlen, "nonce cache capacity %zu: expected %d..%u", capacity,
                 POL_NONCE_SHARDS, (unsigned)POL_NONCE_CAPACITY_MAX);
        return NULL;
    }
    uint32_t per = (uint32_t)((capacity + POL_NONCE_SHARDS - 1) / POL_NONCE_SHARDS);
    uint32_t slots = 8;
    while (slots < 2 * per)
        slots *= 2;
    pol_nonce_cache_t *c = aligned_alloc(64, sizeof(*c));
    slot_t *mem = calloc((size_t)slots * POL_NONCE_SHARDS, sizeof(slot_t));
    if (!c || !mem) {
        free(c);
        free(mem);
        snprintf(err, errlen, "nonce cache: out of memory for %zu entries", capacity);
        return NULL;
    }
    memset(c, 0, sizeof(*c));
    if (getrandom(c->key, sizeof(c->key), 0) != (ssize_t)sizeof(c->key)) {
        /* Keys only spread entries over slots and shards; a weaker seed costs balance, not
         * correctness (a full hash match is still needed for "replayed"). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        c->key[0] ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
        c->key[1] ^= (uint64_t)(uintptr_t)c;
        c->key[2] ^= (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull;
        c->key[3] ^= (uint64_t)(uintptr_t)mem;
    }
    c->capacity = capacity;
    c->mem = mem;
    size_t left = capacity;
    for (int i = 0; i < POL_NONCE_SHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->slots = mem + (size_t)i * slots;
        s->mask = slots - 1;
        /* Split exactly: the shards' caps add up to the capacity. */
        s->cap = (uint32_t)(left / (size_t)(POL_NONCE_SHARDS - i));
        left -= s->cap;
        s->last_sweep = INT64_MIN;
    }
    return c;
}

void pol_nonce_cache_delete(pol_nonce_cache_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < POL_NONCE_SHARDS; i++)
        pthread_mutex_destroy(&c->shards[i].mu);
    free(c->mem);
    free(c);
}

/* The home slot of an entry in its shard (h1's lowest bit is the "used" mark; h2 picks the
 * shard). */
static inline uint32_t home(const shard_t *s, uint64_t h1)
{
    return (uint32_t)(h1 >> 1) & s->mask;
}

/* Empties slot i and shifts later entries of its probe run back (no tombstones). */
static void remove_at(shard_t *s, uint32_t i)
{
    uint32_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        slot_t *e = &s->slots[j];
        if (!e->h1)
            break;
        uint32_t h = home(s, e->h1);
        /* e may move into the hole unless its home lies cyclically in (hole, j]. */
        int stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            s->slots[hole] = *e;
            hole = j;
        }
    }
    s->slots[hole].h1 = 0;
    s->slots[hole].h2 = 0;
    s->slots[hole].expires = 0;
    s->count--;
}

/* Removes every expired entry of the shard. */
static void sweep(shard_t *s, int64_t now)
{
    for (uint32_t i = 0; i <= s->mask; i++) {
        /* remove_at may pull a later entry into i: look at i again until it is empty or live. */
        while (s->slots[i].h1 && s->slots[i].expires < now)
            remove_at(s, i);
    }
    s->last_sweep = now;
}

pol_nonce_result_t pol_nonce_cache_insert(pol_nonce_cache_t *c, const char *client,
                                          size_t client_len, const char *nonce, size_t nonce_len,
                                          int64_t expires, int64_t now)
{
    uint64_t h1 = pair_hash(c->key[0], c->key[1], client, client_len, nonce, nonce_len) | 1;
    uint64_t h2 = pair_hash(c->key[2], c->key[3], client, client_len, nonce, nonce_len);
    shard_t *s = &c->shards[h2 >> 58 & (POL_NONCE_SHARDS - 1)];
    pol_nonce_result_t r = POL_NONCE_FRESH;
    pthread_mutex_lock(&s->mu);
    uint32_t i = home(s, h1);
    for (;;) {
        slot_t *e = &s->slots[i];
        if (!e->h1)
            break;
        if (e->expires < now) {
            remove_at(s, i); /* slot i now holds a later entry of the run, or nothing */
            continue;
        }
        if (e->h1 == h1 && e->h2 == h2) {
            r = POL_NONCE_REPLAYED;
            goto out;
        }
        i = (i + 1) & s->mask;
    }
    if (s->count >= s->cap) {
        if (s->last_sweep == now) {
            r = POL_NONCE_FULL;
            goto out;
        }
        sweep(s, now);
        if (s->count >= s->cap) {
            r = POL_NONCE_FULL;
            goto out;
        }
        /* The sweep moved entries: find the end of the run again. */
        i = home(s, h1);
        while (s->slots[i].h1)
            i = (i + 1) & s->mask;
    }
    s->slots[i].h1 = h1;
    s->slots[i].h2 = h2;
    s->slots[i].expires = expires;
    s->count++;
out:
    pthread_mutex_unlock(&s->mu);
    return r;
}

size_t pol_nonce_cache_count(pol_nonce_cache_t *c)
{
    size_t n = 0;
    for (int i = 0; i < POL_NONCE_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        n += c->shards[i].count;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return n;
}

size_t pol_nonce_cache_capacity(const pol_nonce_cache_t *c)
{
    return c->capacity;
}
