/*
 * gossip/check.c: the asking side of the indirect check (see gossip/check.h).
 */
#include "gossip/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gsp_checker_init(gsp_checker_t *c)
{
    memset(c, 0, sizeof(*c));
}

void gsp_checker_destroy(gsp_checker_t *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

uint32_t gsp_checker_begin(gsp_checker_t *c, uint64_t now_ns, uint64_t asker, uint64_t tag,
                           uint32_t asked, uint32_t timeout_ms)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        gsp_check_ask_t *v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return 0;
        c->v = v;
        c->cap = cap;
    }
    if (++c->next_seq == 0)
        c->next_seq = 1;
    if (timeout_ms > GSP_CHECK_TIMEOUT_MAX_MS)
        timeout_ms = GSP_CHECK_TIMEOUT_MAX_MS;
    gsp_check_ask_t *a = &c->v[c->n++];
    memset(a, 0, sizeof(*a));
    a->seq = c->next_seq;
    a->deadline_ns =
        asked ? now_ns + ((uint64_t)timeout_ms + GSP_CHECK_SLACK_MS) * 1000000ull : now_ns;
    a->d.asker = asker;
    a->d.tag = tag;
    a->d.asked = asked;
    return a->seq;
}

static void take(gsp_checker_t *c, size_t i, gsp_check_done_t *done)
{
    *done = c->v[i].d;
    c->v[i] = c->v[--c->n];
}

int gsp_checker_on_ack(gsp_checker_t *c, const gsp_check_ack_t *ack, gsp_check_done_t *done)
{
    for (size_t i = 0; i < c->n; i++) {
        gsp_check_ask_t *a = &c->v[i];
        if (a->seq != ack->seq)
            continue;
        if (a->d.answered >= a->d.asked)
            return 0; /* more answers than asks: a duplicate datagram */
        a->d.answered++;
        if (ack->reached) {
            a->d.reached++;
            snprintf(a->d.by, sizeof(a->d.by), "%.*s", (int)ack->from.n,
                     ack->from.p ? ack->from.p : "");
        }
        if (a->d.reached || a->d.answered >= a->d.asked) {
            take(c, i, done);
            return 1;
        }
        return 0;
    }
    return 0;
}

int gsp_checker_expire(gsp_checker_t *c, uint64_t now_ns, gsp_check_done_t *done)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].deadline_ns <= now_ns) {
            take(c, i, done);
            return 1;
        }
    return 0;
}

uint64_t gsp_checker_next_deadline(const gsp_checker_t *c)
{
    uint64_t d = UINT64_MAX;
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].deadline_ns < d)
            d = c->v[i].deadline_ns;
    return d;
}
