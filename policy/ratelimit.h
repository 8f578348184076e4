/*
 * policy/ratelimit.h: token-bucket rate limits keyed by a string (peer, identity or
 * service/method), shared by every worker thread without a lock.
 *
 * Model: each key has a bucket of `burst` tokens refilled at `rate` tokens per second; a call
 * takes one token or is limited. Implemented as GCRA (the generic cell rate algorithm, which is
 * a token bucket written as one number): per key a single 64-bit "theoretical arrival time"
 * (TAT). With T = 1/rate and tau = burst * T, a call at time now is allowed when
 * max(TAT, now) + T - now <= tau, and then TAT becomes max(TAT, now) + T, in one compare-and-swap.
 * Over any interval of length D a key is allowed at most burst + rate * D calls, exactly, and
 * however many threads call at once (they only race on the CAS; the loser retries with the
 * winner's TAT). A limited call learns when the next token comes (retry_after_ns).
 *
 * Keys: the caller passes any byte string ("peer:10.1.2.3", "id:alice", "/pkg.Svc/M"; one
 * limiter per rule, so keys of different rules never meet). A key is hashed (64-bit, seeded)
 * into a fixed-size table allocated once; it lives in one of `probe` consecutive slots after its
 * home slot. A slot holds the 64-bit hash and the TAT; two keys with the same 64-bit hash share
 * a bucket (probability about keys^2 / 2^65). A key not in the table takes an empty slot of its
 * window, or else an idle one: a slot whose TAT is not after now has a full bucket, which is
 * exactly what an absent key has, so reusing it forgets nothing. When every slot of the window
 * belongs to a key with tokens in use, the new key is "overflowed": it shares the limiter's one
 * fallback bucket (same rate and burst) with every other overflowed key until a slot frees up.
 * A full table therefore limits harder, never lets calls through unlimited; size it above the
 * number of keys active within burst/rate seconds (stats tell how often the fallback is used).
 *
 * Time: the caller passes a monotonic time in ns (the same clock for all threads; any origin
 * >= 0). The limiter reads no clock and does no I/O, so tests drive it with a fake clock.
 *
 * Cost per call: one hash, a scan of at most `probe` slots (usually the first), one CAS;
 * nothing allocated, no lock, no message to another thread.
 */
#ifndef POL_RATELIMIT_H
#define POL_RATELIMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/cidr.h"

/** Longest probe window a configuration may ask for. */
#define POL_RATELIMIT_PROBE_MAX 64

/** Tuning of one limiter; pol_ratelimit_config_default() gives sane values. */
typedef struct {
    /** Tokens added per second per key, 1e-6 .. 1e9. */
    double rate;
    /** Bucket size: calls allowed at once after an idle period; >= 1. */
    uint32_t burst;
    /** Slots of the key table, a power of two >= probe (default 16384: 256 KiB). */
    uint32_t slots;
    /** Slots a key may live in after its home slot, 1..POL_RATELIMIT_PROBE_MAX (default 8). */
    uint32_t probe;
    /** Hash seed; 0 picks a random one (keys an attacker picks cannot aim at one window). */
    uint64_t seed;
} pol_ratelimit_config_t;

/** Fills cfg with defaults: rate 100/s, burst 100, 16384 slots, probe 8, random seed. */
void pol_ratelimit_config_default(pol_ratelimit_config_t *cfg);

/** Checks cfg; on a problem writes it to err ("rate: 0 is not in 1e-06..1e+09 per second")
 * and returns -1. */
int pol_ratelimit_config_check(const pol_ratelimit_config_t *cfg, char *err, size_t errlen);

/** A limiter (opaque). */
typedef struct pol_ratelimit pol_ratelimit_t;

/** Creates a limiter (allocates its table). NULL with err filled on a bad config or no memory. */
pol_ratelimit_t *pol_ratelimit_new(const pol_ratelimit_config_t *cfg, char *err, size_t errlen);

/** Frees a limiter (NULL is fine); no thread may use it any more. */
void pol_ratelimit_free(pol_ratelimit_t *rl);

/** What pol_ratelimit_check() decided. */
typedef enum {
    POL_RATELIMIT_ALLOWED = 0,
    /** Over the limit: answer RESOURCE_EXHAUSTED with the retry-after value. */
    POL_RATELIMIT_LIMITED = 1,
} pol_ratelimit_verdict_t;

/** Details of a decision. */
typedef struct {
    /** Limited: ns until the key's next token (> 0); allowed: 0. */
    uint64_t retry_after_ns;
    /** Allowed: tokens left after this call; limited: 0. */
    uint32_t remaining;
    /** Nonzero when the key had no slot and used the fallback bucket. */
    uint8_t fallback;
} pol_ratelimit_result_t;

/** Takes one token of key[0..len) at now_ns. res may be NULL. Allocates nothing; any thread. */
pol_ratelimit_verdict_t pol_ratelimit_check(pol_ratelimit_t *rl, const void *key, size_t len,
                                            uint64_t now_ns, pol_ratelimit_result_t *res);

/** Takes one token of the key "client address ip" at now_ns, without formatting it: the same
 * as pol_ratelimit_check() on the 17 bytes {0x01, ip's 16 bytes, big-endian}, so it never meets
 * a printable string key. For rules keyed by peer. res may be NULL. */
pol_ratelimit_verdict_t pol_ratelimit_check_ip(pol_ratelimit_t *rl, const pol_ip_t *ip,
                                               uint64_t now_ns, pol_ratelimit_result_t *res);

/** Counters since creation (relaxed reads; rare events only, so calls stay uncontended). */
typedef struct {
    uint64_t claimed;  /* keys that took an empty slot */
    uint64_t evicted;  /* idle keys whose slot was given to another key */
    uint64_t fallback; /* calls that used the fallback bucket (table window full) */
} pol_ratelimit_stats_t;
void pol_ratelimit_stats(const pol_ratelimit_t *rl, pol_ratelimit_stats_t *out);

/** The limiter's configuration (as given, with defaults resolved and the seed chosen). */
const pol_ratelimit_config_t *pol_ratelimit_config(const pol_ratelimit_t *rl);

/** retry_after_ns as whole milliseconds, rounded up (a client that waits that long finds a
 * token): the value for a `retry-after-ms`-style metadata entry. */
uint64_t pol_ratelimit_retry_after_ms(const pol_ratelimit_result_t *res);

/** retry_after_ns as whole seconds, rounded up (HTTP Retry-After). */
uint64_t pol_ratelimit_retry_after_s(const pol_ratelimit_result_t *res);

/** Writes the grpc-message for a limited call: "meshd: ratelimit: over 100/s (burst 20) for
 * <what>; retry after 120 ms". what describes the key for a human ("peer 10.1.2.3"); it is
 * copied with bytes outside printable ASCII as '?' and cut at 64. Returns the length, or -1 when
 * it did not fit. */
int pol_ratelimit_reject_message(const pol_ratelimit_t *rl, const char *what,
                                 const pol_ratelimit_result_t *res, char *buf, size_t cap);

#endif
