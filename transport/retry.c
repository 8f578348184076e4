/*
 * transport/retry.c: retry decisions, backoff and the retry budget (see transport/retry.h).
 */
#include "transport/retry.h"

mesh_retry_verdict_t mesh_retry_decide(const mesh_retry_policy_t *p, const mesh_retry_attempt_t *a)
{
    if (!p || p->max_attempts <= 1)
        return MESH_RETRY_NO_POLICY;
    if (a->attempts >= p->max_attempts)
        return MESH_RETRY_NO_ATTEMPTS;
    if (a->resp_forwarded)
        return MESH_RETRY_NO_COMMITTED;
    if (!a->replayable)
        return MESH_RETRY_NO_TOO_LARGE;
    if (a->never_sent)
        return MESH_RETRY_YES; /* no app saw it: any status, any method */
    if (!p->idempotent)
        return MESH_RETRY_NO_UNSAFE;
    if (a->timed_out)
        return MESH_RETRY_YES;
    if (a->status < 0 || a->status > 31 || !(p->retryable & (1u << a->status)))
        return MESH_RETRY_NO_STATUS;
    return MESH_RETRY_YES;
}

const char *mesh_retry_verdict_name(mesh_retry_verdict_t v)
{
    switch (v) {
    case MESH_RETRY_YES:
        return "retry";
    case MESH_RETRY_NO_POLICY:
        return "no retry policy";
    case MESH_RETRY_NO_ATTEMPTS:
        return "max-attempts reached";
    case MESH_RETRY_NO_STATUS:
        return "status not retryable";
    case MESH_RETRY_NO_UNSAFE:
        return "method not idempotent";
    case MESH_RETRY_NO_COMMITTED:
        return "response already forwarded";
    case MESH_RETRY_NO_TOO_LARGE:
        return "request larger than the replay buffer";
    }
    return "?";
}

uint64_t mesh_retry_backoff_ms(const mesh_retry_policy_t *p, uint32_t n, uint64_t rnd)
{
    double cap = (double)p->max_backoff_ms;
    double d = (double)p->initial_backoff_ms;
    double mul = p->backoff_multiplier >= 1 ? p->backoff_multiplier : 1;
    for (uint32_t i = 1; i < n && d < cap; i++)
        d *= mul;
    if (d > cap)
        d = cap;
    uint64_t hi = (uint64_t)d;
    return hi ? rnd % (hi + 1) : 0;
}

/* Moves the window to now's second, clearing the slots of the seconds passed. */
static void advance(mesh_retry_budget_t *b, uint64_t now_ms)
{
    uint64_t s = now_ms / 1000;
    if (s <= b->slot_s) {
        if (!b->next_ms) { /* zero-initialised: the fast path's fields */
            b->next_ms = (b->slot_s + 1) * 1000;
            b->k = (uint32_t)(b->slot_s % MESH_RETRY_BUDGET_SLOTS);
        }
        return;
    }
    uint64_t gap = s - b->slot_s;
    if (gap > MESH_RETRY_BUDGET_SLOTS)
        gap = MESH_RETRY_BUDGET_SLOTS;
    for (uint64_t i = 1; i <= gap; i++) {
        size_t k = (size_t)((b->slot_s + i) % MESH_RETRY_BUDGET_SLOTS);
        b->calls[k] = b->retries[k] = 0;
    }
    b->slot_s = s;
    b->next_ms = (s + 1) * 1000;
    b->k = (uint32_t)(s % MESH_RETRY_BUDGET_SLOTS);
}

void mesh_retry_budget_call_slow(mesh_retry_budget_t *b, uint64_t now_ms)
{
    advance(b, now_ms);
    if (b->calls[b->k] < UINT32_MAX)
        b->calls[b->k]++;
}

int mesh_retry_budget_take(mesh_retry_budget_t *b, const mesh_retry_budget_cfg_t *cfg,
                           uint64_t now_ms)
{
    advance(b, now_ms);
    double calls = 0, retries = 0;
    for (size_t i = 0; i < MESH_RETRY_BUDGET_SLOTS; i++) {
        calls += b->calls[i];
        retries += b->retries[i];
    }
    double allowed = cfg->ratio * calls + cfg->min_per_s * MESH_RETRY_BUDGET_SLOTS;
    if (retries + 1 > allowed) {
        b->exhausted++;
        return 0;
    }
    if (b->retries[b->k] < UINT32_MAX)
        b->retries[b->k]++;
    return 1;
}
