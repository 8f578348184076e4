/*
 * ca/rotation_sm.c: the certificate renewal schedule (see ca/rotation_sm.h).
 */
#include "ca/rotation_sm.h"

#include <string.h>

/* xorshift64*: a uniform double in [0, 1). */
static double rnd(ca_rot_t *r)
{
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return (double)((x * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

void ca_rot_init(ca_rot_t *r, const ca_rot_config_t *cfg, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.retry_min_ms)
        r->cfg.retry_min_ms = 1000;
    if (!r->cfg.retry_max_ms)
        r->cfg.retry_max_ms = 30000;
    if (r->cfg.retry_max_ms < r->cfg.retry_min_ms)
        r->cfg.retry_max_ms = r->cfg.retry_min_ms;
    if (!(r->cfg.renew_fraction > 0 && r->cfg.renew_fraction < 1))
        r->cfg.renew_fraction = 2.0 / 3.0;
    if (!(r->cfg.jitter_fraction >= 0 && r->cfg.jitter_fraction < r->cfg.renew_fraction))
        r->cfg.jitter_fraction = 0.1;
    r->backoff = r->cfg.retry_min_ms;
    r->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

static void ask(ca_rot_t *r, int64_t now, ca_rot_effects_t *e)
{
    r->state = CA_ROT_REQUESTING;
    r->sent_at = now;
    e->send_request = 1;
}

void ca_rot_start(ca_rot_t *r, int64_t now, ca_rot_effects_t *e)
{
    memset(e, 0, sizeof(*e));
    if (r->state == CA_ROT_REQUESTING)
        return;
    ask(r, now, e);
}

void ca_rot_timer(ca_rot_t *r, int64_t now, ca_rot_effects_t *e)
{
    memset(e, 0, sizeof(*e));
    if (r->not_after && now >= r->not_after && !r->expired_told) {
        r->expired_told = 1;
        e->expired = 1;
    }
    if (r->state != CA_ROT_WAITING)
        return;
    if (now >= r->due)
        ask(r, now, e);
    else
        e->timer_at = r->due;
}

void ca_rot_issued(ca_rot_t *r, int64_t now, int64_t not_after, ca_rot_effects_t *e)
{
    memset(e, 0, sizeof(*e));
    int64_t start = r->state == CA_ROT_REQUESTING ? r->sent_at : now;
    int64_t life = not_after - start;
    if (life < 1)
        life = 1;
    r->not_after = not_after;
    r->expired_told = 0;
    r->failures = 0;
    r->issued++;
    r->backoff = r->cfg.retry_min_ms;
    double jitter = r->cfg.jitter_fraction * (double)life * rnd(r);
    int64_t due = start + (int64_t)(r->cfg.renew_fraction * (double)life - jitter);
    if (due <= now)
        due = now + 1;
    r->due = due;
    r->state = CA_ROT_WAITING;
    e->timer_at = due;
}

void ca_rot_failed(ca_rot_t *r, int64_t now, ca_rot_effects_t *e)
{
    memset(e, 0, sizeof(*e));
    r->failures++;
    uint64_t d = r->backoff;
    d -= (uint64_t)((double)d * 0.2 * rnd(r));
    if (d < 1)
        d = 1;
    r->backoff = r->backoff * 2 > r->cfg.retry_max_ms ? r->cfg.retry_max_ms : r->backoff * 2;
    int64_t due = now + (int64_t)d;
    /* With a certificate still valid, the last retry lands before it expires. */
    if (r->not_after && now < r->not_after - 1 && due >= r->not_after)
        due = now + (r->not_after - now) / 2 > now ? now + (r->not_after - now) / 2 : now + 1;
    r->due = due;
    r->state = CA_ROT_WAITING;
    e->timer_at = due;
}
