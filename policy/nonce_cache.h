/*
 * policy/nonce_cache.h: the nonces of signed requests seen recently, shared by every worker
 * thread of a node, so a signed request cannot be replayed within its timestamp window.
 *
 * An entry is (client, nonce) with an expiry (the request's timestamp + the window): until
 * then the same pair is a replay; after it the request would be refused as expired anyway, so
 * the entry can go. The cache keeps a 128-bit keyed hash of the pair (random keys per cache),
 * not the strings: slots have a fixed size, and since only requests whose signature verified
 * are inserted, nobody can aim collisions at it (a false "replayed" is about n * 2^-128).
 *
 * Layout: POL_NONCE_SHARDS shards, picked by the hash, each a mutex and an open-addressing
 * table (linear probing, twice as many slots as entries, deletion by backward shift, so no
 * tombstones). Every slot is allocated when the cache is made: an insert allocates nothing.
 * Expired entries met on a probe are removed on the way; a shard at its capacity first sweeps
 * out all its expired entries (at most once per second of `now`). When it is still full of
 * unexpired entries the insert is REFUSED (POL_NONCE_FULL): the call must be rejected ("replay
 * cache full"), because forgetting a live nonce would let its request be replayed.
 *
 * The capacity is split evenly over the shards, so with nonces spread by a random hash the
 * cache refuses a little before `capacity` entries (when the fullest shard fills).
 */
#ifndef POL_NONCE_CACHE_H
#define POL_NONCE_CACHE_H

#include <stddef.h>
#include <stdint.h>

/** Shards of a cache (a power of two). */
#define POL_NONCE_SHARDS 64
/** Default capacity (entries), about 6 MiB of slots. */
#define POL_NONCE_CAPACITY_DEFAULT 131072
/** Largest capacity accepted. */
#define POL_NONCE_CAPACITY_MAX (64u * 1024 * 1024)

/** A nonce cache (opaque; one per node, shared by its threads). */
typedef struct pol_nonce_cache pol_nonce_cache_t;

/** What pol_nonce_cache_insert() found. */
typedef enum {
    POL_NONCE_FRESH = 0,    /* not seen: recorded until its expiry */
    POL_NONCE_REPLAYED = 1, /* seen and not yet expired */
    POL_NONCE_FULL = 2,     /* not seen, but no room without forgetting a live nonce */
} pol_nonce_result_t;

/** A cache for capacity entries (POL_NONCE_SHARDS..POL_NONCE_CAPACITY_MAX), or NULL with err
 *  set. */
pol_nonce_cache_t *pol_nonce_cache_new(size_t capacity, char *err, size_t errlen);

/** Frees a cache (no thread may be using it). NULL is fine. */
void pol_nonce_cache_delete(pol_nonce_cache_t *c);

/**
 * Records (client, nonce) until expires (unix seconds) unless it is already there and not
 * expired at now. Entries with expiry < now count as absent. Thread-safe, allocation-free.
 */
pol_nonce_result_t pol_nonce_cache_insert(pol_nonce_cache_t *c, const char *client,
                                          size_t client_len, const char *nonce, size_t nonce_len,
                                          int64_t expires, int64_t now);

/** Entries held (expired ones not yet removed included). Takes each shard's lock in turn. */
size_t pol_nonce_cache_count(pol_nonce_cache_t *c);

/** The capacity given at creation. */
size_t pol_nonce_cache_capacity(const pol_nonce_cache_t *c);

#endif
