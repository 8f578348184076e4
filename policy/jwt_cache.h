/*
 * policy/jwt_cache.h: a bounded cache of verified tokens, one per worker thread.
 *
 * A repeated bearer token should cost a lookup, not a signature check. The cache maps the
 * exact token bytes to the claims its verification produced. A lookup hashes the token with a
 * per-cache keyed 64-bit hash, walks one bucket chain and compares the stored copy of the token
 * in full (so a hash collision can never return another token's identity); it allocates nothing.
 *
 * An entry is valid only for the key set generation (pol_keyset_generation()) and rules
 * generation (pol_jwt_rules_t.generation) it was verified under: after a key rotation or a
 * policy reload the old entries are misses (and dropped when met). An entry expires when the
 * token would stop verifying (exp + skew) and at the latest max_ttl_s after it was stored.
 * Rejections are never cached. When the cache is full, the CLOCK algorithm evicts an entry
 * not used since the hand last passed it.
 *
 * Not thread-safe by design: each worker owns its cache (no locks, no shared cache lines).
 */
#ifndef POL_JWT_CACHE_H
#define POL_JWT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/jwt.h"

/** A per-worker verified-token cache. */
typedef struct pol_jwt_cache pol_jwt_cache_t;

/** Counters since creation. */
typedef struct {
    uint64_t hits;
    uint64_t misses; /* includes stale and expired entries met */
    uint64_t inserts;
    uint64_t evictions;   /* removed by CLOCK because the cache was full */
    uint64_t expirations; /* found expired or of an old generation */
} pol_jwt_cache_stats_t;

/** A cache of at most capacity tokens (1..1048576), each kept at most max_ttl_s seconds
 *  (> 0). Returns NULL on bad arguments or out of memory. */
pol_jwt_cache_t *pol_jwt_cache_new(size_t capacity, int64_t max_ttl_s);

/** Frees the cache (NULL is ignored). */
void pol_jwt_cache_delete(pol_jwt_cache_t *c);

/**
 * The claims cached for token under (ks_gen, rules_gen) at now_s, or NULL. The pointer is
 * valid until the next call on this cache. Allocates nothing.
 */
const pol_jwt_claims_t *pol_jwt_cache_get(pol_jwt_cache_t *c, const char *token, size_t len,
                                          uint64_t ks_gen, uint64_t rules_gen, int64_t now_s);

/**
 * Stores claims for token (replacing an entry for the same token), valid while
 * now < expires_s and for at most max_ttl_s from now_s. Returns 0, or -1 when expires_s is not
 * after now_s or memory ran out (nothing is stored then).
 */
int pol_jwt_cache_put(pol_jwt_cache_t *c, const char *token, size_t len, uint64_t ks_gen,
                      uint64_t rules_gen, const pol_jwt_claims_t *claims, int64_t expires_s,
                      int64_t now_s);

/** Drops every entry. */
void pol_jwt_cache_clear(pol_jwt_cache_t *c);

/** Entries currently stored (some may be expired and not yet met). */
size_t pol_jwt_cache_size(const pol_jwt_cache_t *c);

/** The counters. */
pol_jwt_cache_stats_t pol_jwt_cache_stats(const pol_jwt_cache_t *c);

/**
 * pol_jwt_verify() through the cache: a hit copies the cached claims to out (may be NULL) and
 * returns POL_JWT_OK without touching the signature; a miss verifies and, when the token is
 * good, stores it (until exp + skew, or max_ttl_s when it has no exp). Same results and reasons
 * as pol_jwt_verify(). *hit (may be NULL) says whether the cache answered.
 */
int pol_jwt_verify_cached(pol_jwt_cache_t *c, const pol_keyset_t *ks, const char *token, size_t len,
                          const pol_jwt_rules_t *rules, int64_t now_s, pol_jwt_claims_t *out,
                          int *hit, char *reason, size_t rlen);

#endif
