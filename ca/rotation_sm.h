/*
 * ca/rotation_sm.h: when a node asks the mesh CA for a certificate, sans-I/O.
 *
 * Events and the wall-clock time (ms) in, effects out: "send a CSR now", "wake me at T". The
 * binding (node/identity_client.c) sends the request, writes the files and arms one timer;
 * the unit tests drive the same machine on a virtual clock.
 *
 * - start: ask at once.
 * - issued (the request was sent at t0, the certificate expires at not_after): the next
 *   request is due at t0 + renew_fraction x (not_after - t0) - jitter, with jitter uniform in
 *   [0, jitter_fraction x lifetime): two thirds of the lifetime by default, so a fleet started
 *   together does not renew in one burst. The old certificate keeps serving meanwhile: the
 *   files are replaced only when a new certificate arrives.
 * - failed: retry after a backoff that starts at retry_min_ms and doubles up to retry_max_ms,
 *   each delay jittered down by up to a fifth; a success resets it. A retry is never scheduled
 *   after the current certificate's expiry while that is still ahead (the last try lands
 *   just before it).
 * - timer: when the due time has come, ask. When the current certificate has expired and no
 *   new one came, the effect says so once (the binding logs it and counts it).
 */
#ifndef CA_ROTATION_SM_H
#define CA_ROTATION_SM_H

#include <stdint.h>

/** Tunables; zeros take the defaults. */
typedef struct ca_rot_config {
    uint64_t retry_min_ms;  /* default 1000 */
    uint64_t retry_max_ms;  /* default 30000 */
    double renew_fraction;  /* default 2/3 */
    double jitter_fraction; /* default 0.1 */
} ca_rot_config_t;

/** What the binding must do after an event. */
typedef struct ca_rot_effects {
    int send_request; /* start a CSR request now (the SM counts it as in flight) */
    int64_t timer_at; /* arm the timer for this wall-clock ms (0: leave it unarmed) */
    int expired;      /* the current certificate just expired with no successor */
} ca_rot_effects_t;

typedef enum { CA_ROT_IDLE, CA_ROT_REQUESTING, CA_ROT_WAITING } ca_rot_state_t;

/** The machine (plain data: copy-free, no allocation). */
typedef struct ca_rot {
    ca_rot_config_t cfg;
    ca_rot_state_t state;
    int64_t due;       /* when the next request is due (WAITING) */
    int64_t sent_at;   /* when the request in flight was sent (REQUESTING) */
    int64_t not_after; /* the current certificate's expiry, 0 without one */
    uint64_t backoff;  /* the next retry delay */
    unsigned failures; /* consecutive */
    unsigned issued;   /* certificates obtained */
    int expired_told;
    uint64_t rng;
} ca_rot_t;

/** Initializes r with cfg (NULL: defaults) and a PRNG seed for the jitter. */
void ca_rot_init(ca_rot_t *r, const ca_rot_config_t *cfg, uint64_t seed);

/** The node starts: ask now. */
void ca_rot_start(ca_rot_t *r, int64_t now, ca_rot_effects_t *e);

/** The timer fired (or any wake-up): asks when due; reports an expiry once. */
void ca_rot_timer(ca_rot_t *r, int64_t now, ca_rot_effects_t *e);

/** The request in flight succeeded with a certificate expiring at not_after (ms). */
void ca_rot_issued(ca_rot_t *r, int64_t now, int64_t not_after, ca_rot_effects_t *e);

/** The request in flight failed (no answer, an error status, a bad certificate). */
void ca_rot_failed(ca_rot_t *r, int64_t now, ca_rot_effects_t *e);

#endif
