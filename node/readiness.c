/*
 * node/readiness.c: the readiness counter behind node/readiness.h.
 *
 * The reason string is rewritten only when something changes (never per successful check
 * while ready), so feeding a result costs a few comparisons.
 */
#include "node/readiness.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void mesh_readiness_init(mesh_readiness_t *r, uint32_t threshold)
{
    memset(r, 0, sizeof(*r));
    r->threshold = threshold ? threshold : MESH_READINESS_DEFAULT_THRESHOLD;
    snprintf(r->reason, sizeof(r->reason), "waiting for the first health check");
}

const char *mesh_check_result_name(mesh_check_result_t result)
{
    switch (result) {
    case MESH_CHECK_SERVING:
        return "serving";
    case MESH_CHECK_NOT_SERVING:
        return "not_serving";
    case MESH_CHECK_FAILED:
        return "failed";
    case MESH_CHECK_TIMEOUT:
        return "timeout";
    case MESH_CHECK_CONN_CLOSED:
        return "conn_closed";
    }
    return "unknown";
}

static void set_reason_failed(mesh_readiness_t *r)
{
    const char *what = r->ready ? "failed health check(s), still ready" : "failed health check(s)";
    if (r->detail[0])
        snprintf(r->reason, sizeof(r->reason), "%u consecutive %s (last: %s: %s)",
                 r->consecutive_failures, what, mesh_check_result_name(r->last_result), r->detail);
    else
        snprintf(r->reason, sizeof(r->reason), "%u consecutive %s (last: %s)",
                 r->consecutive_failures, what, mesh_check_result_name(r->last_result));
}

int mesh_readiness_on_check(mesh_readiness_t *r, mesh_check_result_t result, const char *detail,
                            uint64_t now_ns)
{
    int fx = 0;
    r->checks++;
    r->last_check_ns = now_ns;
    r->last_result = result;
    r->has_result = 1;
    if (r->shutting_down)
        return 0;
    if (result == MESH_CHECK_SERVING) {
        int changed = !r->ready || r->consecutive_failures != 0;
        r->consecutive_failures = 0;
        r->detail[0] = '\0';
        if (!r->ready) {
            r->ready = 1;
            r->since_ns = now_ns;
            fx |= MESH_READINESS_BECAME_READY;
        }
        if (!r->registered) {
            r->registered = 1;
            fx |= MESH_READINESS_REGISTER;
        }
        if (changed)
            snprintf(r->reason, sizeof(r->reason), "serving (last health check succeeded)");
        return fx;
    }
    if (r->consecutive_failures < UINT32_MAX)
        r->consecutive_failures++;
    snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
    if (r->ready && r->consecutive_failures >= r->threshold) {
        r->ready = 0;
        r->since_ns = now_ns;
        fx |= MESH_READINESS_BECAME_NOT_READY;
        if (r->registered) {
            r->registered = 0;
            fx |= MESH_READINESS_DEREGISTER;
        }
    }
    set_reason_failed(r);
    return fx;
}

int mesh_readiness_shutdown(mesh_readiness_t *r, uint64_t now_ns)
{
    int fx = 0;
    if (r->shutting_down)
        return 0;
    r->shutting_down = 1;
    if (r->ready) {
        r->ready = 0;
        r->since_ns = now_ns;
        fx |= MESH_READINESS_BECAME_NOT_READY;
    }
    if (r->registered) {
        r->registered = 0;
        fx |= MESH_READINESS_DEREGISTER;
    }
    snprintf(r->reason, sizeof(r->reason), "shutting down: instances deregistered");
    return fx;
}

int mesh_readiness_is_ready(const mesh_readiness_t *r)
{
    return r->ready;
}

int mesh_readiness_is_registered(const mesh_readiness_t *r)
{
    return r->registered;
}

uint32_t mesh_readiness_failures(const mesh_readiness_t *r)
{
    return r->consecutive_failures;
}

const char *mesh_readiness_reason(const mesh_readiness_t *r)
{
    return r->reason;
}

json_t *mesh_readiness_to_json(const mesh_readiness_t *r)
{
    return json_pack("{s:b,s:s,s:I,s:I,s:s?}", "ready", r->ready, "reason", r->reason,
                     "consecutive_failures", (json_int_t)r->consecutive_failures, "threshold",
                     (json_int_t)r->threshold, "last_check",
                     r->has_result ? mesh_check_result_name(r->last_result) : NULL);
}

int mesh_readiness_json(const mesh_readiness_t *r, char *buf, size_t cap)
{
    json_t *o = mesh_readiness_to_json(r);
    if (!o)
        return -1;
    size_t n = json_dumpb(o, buf, cap, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n >= cap)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

int mesh_readiness_probe(void *ud, const h1_req_t *req, h1_body_t *b)
{
    const mesh_readiness_t *r = ud;
    json_t *o = mesh_readiness_to_json(r);
    int rc = o ? h1_body_json(b, o) : -1;
    json_decref(o);
    return rc != 0 ? 500 : r->ready ? 200 : 503;
}
