/*
 * audit/audit_api.c: emitting audit events to the audit actor, and the record format the actor
 * spools and sends (see audit/audit_api.h).
 */
#include "audit/audit_api.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int audit_api_init(audit_api_t *api, const char *node, const char *role, char *err, size_t errlen)
{
    memset(api, 0, sizeof(*api));
    atomic_init(&api->emitted, 0);
    atomic_init(&api->off, 0);
    atomic_init(&api->refused, 0);
    atomic_init(&api->backlog, 0);
    return audit_ctx_init(&api->ctx, node, role, err, errlen);
}

int audit_api_reserve(audit_api_t *api, uint64_t n)
{
    uint64_t was = atomic_fetch_add_explicit(&api->backlog, n, memory_order_relaxed);
    if (was + n <= AUDIT_BACKLOG_MAX)
        return 1;
    atomic_fetch_sub_explicit(&api->backlog, n, memory_order_relaxed);
    uint64_t r = atomic_fetch_add_explicit(&api->refused, n, memory_order_relaxed) + n;
    if (((r - n) ^ r) > (r - n)) /* the count crossed a power of two: not once per event */
        mesh_warn("audit",
                  "the audit actor is behind (%u events waiting): %llu events dropped "
                  "so far, reported as audit_dropped",
                  (unsigned)AUDIT_BACKLOG_MAX, (unsigned long long)r);
    return 0;
}

void audit_api_taken(audit_api_t *api, uint64_t n)
{
    atomic_fetch_sub_explicit(&api->backlog, n, memory_order_relaxed);
}

int audit_api_on(const audit_api_t *api)
{
    return api && api->actor != 0;
}

ssize_t audit_rec_encode(const audit_ctx_t *ctx, const audit_event_t *ev, uint8_t *out, size_t cap)
{
    size_t klen = ev->service ? strlen(ev->service) : 0;
    if (klen > AUDIT_MAX_SERVICE) /* the key follows the record's cap on service */
        klen = AUDIT_MAX_SERVICE;
    if (cap < AUDIT_REC_HDR + klen)
        return AUDIT_E2BIG;
    ssize_t n =
        audit_event_encode(ctx, ev, (char *)out + AUDIT_REC_HDR + klen, cap - AUDIT_REC_HDR - klen);
    if (n < 0)
        return n;
    out[0] = AUDIT_REC_VERSION;
    out[1] = ev->service ? 0 : AUDIT_REC_F_NULL_KEY;
    put_u16(out + 2, (uint16_t)klen);
    put_u64(out + 4, (uint64_t)ev->ts_us);
    if (klen)
        memcpy(out + AUDIT_REC_HDR, ev->service, klen);
    return (ssize_t)(AUDIT_REC_HDR + klen) + n;
}

int audit_rec_parse(const void *data, size_t len, audit_rec_view_t *out)
{
    const uint8_t *p = data;
    if (len < AUDIT_REC_HDR || p[0] != AUDIT_REC_VERSION)
        return -1;
    size_t klen = (size_t)p[2] | (size_t)p[3] << 8;
    if (AUDIT_REC_HDR + klen > len)
        return -1;
    out->key = (p[1] & AUDIT_REC_F_NULL_KEY) ? NULL : (const char *)p + AUDIT_REC_HDR;
    out->key_len = klen;
    out->ts_us = (int64_t)get_u64(p + 4);
    out->json = (const char *)p + AUDIT_REC_HDR + klen;
    out->json_len = len - AUDIT_REC_HDR - klen;
    return 0;
}

int audit_emit(mesh_actor_t *self, audit_api_t *api, audit_event_t *ev)
{
    if (!audit_api_on(api)) {
        if (api)
            atomic_fetch_add_explicit(&api->off, 1, memory_order_relaxed);
        return -1;
    }
    if (!ev->ts_us)
        ev->ts_us = audit_now_us();
    ev->seq = audit_ctx_next_seq(&api->ctx);
    const char *problem = audit_event_problem(ev);
    if (problem) { /* a bug of the emitter: loud */
        atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed);
        mesh_error("audit", "a %s event not emitted: %s",
                   audit_type_name(ev->type) ? audit_type_name(ev->type) : "(bad type)", problem);
        return -1;
    }
    uint8_t buf[AUDIT_REC_MAX];
    ssize_t n = audit_rec_encode(&api->ctx, ev, buf, sizeof(buf));
    audit_rec_t *r = n > 0 ? malloc(sizeof(*r) + (size_t)n) : NULL;
    if (!r) {
        atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed);
        mesh_error("audit", "a %s event not emitted: %s", audit_type_name(ev->type),
                   n > 0 ? "out of memory" : "its record does not fit");
        return -1;
    }
    r->len = (uint32_t)n;
    memcpy(r->data, buf, (size_t)n);
    if (!audit_api_reserve(api, 1)) {
        free(r);
        return -1;
    }
    int rc = mesh_send_ptr(self, api->actor, AUDIT_MSG_RECORD, r, free);
    if (rc != 0) {
        audit_api_taken(api, 1);
        free(r);
        uint64_t n = atomic_fetch_add_explicit(&api->refused, 1, memory_order_relaxed) + 1;
        if ((n & (n - 1)) == 0) /* the 1st, 2nd, 4th, 8th ...: a restarting actor is not spam */
            mesh_warn("audit", "a %s event was not taken by the audit actor: %s (%llu so far)",
                      audit_type_name(ev->type), mesh_strerror(rc), (unsigned long long)n);
        return -1;
    }
    atomic_fetch_add_explicit(&api->emitted, 1, memory_order_relaxed);
    return 0;
}
