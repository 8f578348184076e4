/*
 * node/reflect_local.c: the reflection streams a worker answers itself (node/reflect_local.h).
 *
 * Per worker: the current index and the list of open reflection calls. Per call: a FIFO of the
 * request messages not answered yet (copied: the engine's bytes live only during on_message)
 * and, when its head is held, the time the hold ends. The head is answered again whenever the
 * index or the routing table changes and on every worker tick (250 ms), so a hold ends within
 * hold_ms plus one tick. A reflection stream lives as long as the client keeps it; GOAWAY or a
 * drain ends the idle ones so the drain does not wait for them.
 */
#include "node/reflect_local.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "grpc/reflect_server.h"
#include "grpc/reflection.h"
#include "transport/grpc_status.h"
#include "transport/proxy_local.h"

#define ACTOR           "reflect"
#define DEFAULT_HOLD_MS 3000
#define MAX_QUEUED      64 /* requests of one stream waiting behind a held one */

typedef struct rl_msg {
    struct rl_msg *next;
    size_t len;
    uint8_t data[];
} rl_msg_t;

typedef struct rl_worker rl_worker_t;

typedef struct rl_call {
    struct rl_call *next, *prev;
    rl_worker_t *w;
    mesh_local_call_t *c;
    rl_msg_t *head, *tail;
    size_t n_queued;
    uint64_t hold_until; /* ms; 0: the head is not held */
    int ended;           /* the client half-closed */
    int no_hold;         /* draining: answer what is known now */
    int finished;
} rl_call_t;

struct rl_worker {
    const node_reflect_cfg_t *cfg;
    int index;
    mesh_rsrv_index_t *ix;
    rl_call_t calls; /* list head */
    /* scratch of the answers, reused */
    const char **names, **pending;
    size_t cap_names;
};

static uint64_t hold_ms(const rl_worker_t *w)
{
    return w->cfg ? w->cfg->hold_ms : DEFAULT_HOLD_MS;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void call_finish(rl_call_t *rc, int status, const char *msg)
{
    if (rc->finished)
        return;
    rc->finished = 1;
    mesh_local_call_finish(rc->c, status, msg);
}

/* The routed services and those of them the index lacks, into the worker's scratch. */
static int names_of(rl_worker_t *w, const mesh_routes_t *t, size_t *n, size_t *n_pending)
{
    size_t count = t ? mesh_routes_count(t) : 0;
    if (count > w->cap_names) {
        const char **a = realloc(w->names, count * sizeof(*a));
        const char **b = a ? realloc(w->pending, count * sizeof(*b)) : NULL;
        if (a)
            w->names = a;
        if (!b)
            return -1;
        w->pending = b;
        w->cap_names = count;
    }
    *n = *n_pending = 0;
    for (size_t i = 0; i < count; i++) {
        const char *name = mesh_routes_at(t, i)->name;
        w->names[(*n)++] = name;
        if (!mesh_reflect_is_infra_service(name) && !mesh_rsrv_index_has_service(w->ix, name))
            w->pending[(*n_pending)++] = name;
    }
    return 0;
}

/* Answers the call's queued requests in order until one is held. Returns 1 when the call was
 * finished or is going away (rc must not be touched again: its on_close may have run), else 0. */
static int pump(rl_call_t *rc)
{
    rl_worker_t *w = rc->w;
    while (rc->head && !rc->finished) {
        size_t n, n_pending;
        if (names_of(w, mesh_local_call_routes(rc->c), &n, &n_pending) != 0) {
            call_finish(rc, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
            return 1;
        }
        uint64_t now = now_ms();
        int may_hold = !rc->no_hold && hold_ms(w) && (rc->hold_until == 0 || now < rc->hold_until);
        uint8_t *out;
        size_t out_len;
        char err[160];
        mesh_rsrv_result_t r =
            mesh_rsrv_answer(w->ix, w->names, n, w->pending, n_pending, may_hold, rc->head->data,
                             rc->head->len, &out, &out_len, err, sizeof(err));
        if (r == MESH_RSRV_HOLD) {
            if (!rc->hold_until)
                rc->hold_until = now + hold_ms(w);
            return 0;
        }
        if (r == MESH_RSRV_BAD) {
            call_finish(rc, MESH_GRPC_INVALID_ARGUMENT, err);
            return 1;
        }
        rl_msg_t *m = rc->head;
        rc->head = m->next;
        if (!rc->head)
            rc->tail = NULL;
        rc->n_queued--;
        free(m);
        rc->hold_until = 0;
        int s = mesh_local_call_send(rc->c, out, out_len);
        free(out);
        if (s < 0)
            return 1; /* the call is going away: on_close follows */
    }
    if (rc->finished)
        return 1;
    if (!rc->head && rc->ended) {
        call_finish(rc, MESH_GRPC_OK, NULL);
        return 1;
    }
    return 0;
}

static void pump_all(rl_worker_t *w)
{
    for (rl_call_t *rc = w->calls.next; rc != &w->calls;) {
        rl_call_t *next = rc->next; /* rc may be closed (freed) by the time pump returns */
        (void)pump(rc);
        rc = next;
    }
}

/* ---- the local service ---------------------------------------------------------------- */

static int on_open(void *ctx, mesh_local_call_t *c, const char *path, size_t path_len, void **state)
{
    rl_worker_t *w = ctx;
    rl_call_t *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return -1;
    rc->w = w;
    rc->c = c;
    size_t pl = strlen(MESH_REFLECT_V1_PATH), al = strlen(MESH_REFLECT_V1ALPHA_PATH);
    if (!(path_len == pl && memcmp(path, MESH_REFLECT_V1_PATH, pl) == 0) &&
        !(path_len == al && memcmp(path, MESH_REFLECT_V1ALPHA_PATH, al) == 0)) {
        /* another method of the reflection services: there is none */
        rc->finished = 1;
        mesh_local_call_finish(c, MESH_GRPC_UNIMPLEMENTED,
                               "meshd: the reflection service has only ServerReflectionInfo");
    }
    rc->next = w->calls.next;
    rc->prev = &w->calls;
    w->calls.next->prev = rc;
    w->calls.next = rc;
    *state = rc;
    return 0;
}

static void on_message(void *ctx, void *state, mesh_local_call_t *c, const uint8_t *msg, size_t len)
{
    (void)ctx, (void)c;
    rl_call_t *rc = state;
    if (rc->finished)
        return;
    if (rc->n_queued >= MAX_QUEUED) {
        call_finish(rc, MESH_GRPC_RESOURCE_EXHAUSTED,
                    "meshd: too many reflection requests waiting on one stream");
        return;
    }
    rl_msg_t *m = malloc(sizeof(*m) + len);
    if (!m) {
        call_finish(rc, MESH_GRPC_RESOURCE_EXHAUSTED, "meshd: out of memory");
        return;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->data, msg, len);
    if (rc->tail)
        rc->tail->next = m;
    else
        rc->head = m;
    rc->tail = m;
    rc->n_queued++;
    if (rc->head == m)
        (void)pump(rc);
}

static void on_end(void *ctx, void *state, mesh_local_call_t *c)
{
    (void)ctx, (void)c;
    rl_call_t *rc = state;
    rc->ended = 1;
    if (!rc->head)
        call_finish(rc, MESH_GRPC_OK, NULL);
}

static void on_wake(void *ctx, void *state, mesh_local_call_t *c, mesh_local_wake_t why)
{
    (void)ctx, (void)c;
    rl_call_t *rc = state;
    if (why == MESH_LOCAL_WAKE_ROUTES) {
        (void)pump(rc);
        return;
    }
    /* draining: what is queued is answered as it stands now (no more holding), then the
     * stream ends so the drain does not wait for it */
    rc->no_hold = 1;
    if (!pump(rc))
        call_finish(rc, MESH_GRPC_UNAVAILABLE, "meshd: the proxy is shutting down; reconnect");
}

static void on_close(void *ctx, void *state)
{
    (void)ctx;
    rl_call_t *rc = state;
    rc->prev->next = rc->next;
    rc->next->prev = rc->prev;
    while (rc->head) {
        rl_msg_t *m = rc->head;
        rc->head = m->next;
        free(m);
    }
    free(rc);
}

static const mesh_local_ops_t reflect_ops = {
    .on_open = on_open,
    .on_message = on_message,
    .on_end = on_end,
    .on_wake = on_wake,
    .on_close = on_close,
};

/* ---- the node extension ------------------------------------------------------------------ */

static void *ext_create(void *arg, int worker, struct mesh_proxy_worker *engine)
{
    rl_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = arg;
    w->index = worker;
    w->ix = mesh_rsrv_index_new(NULL, 0); /* gRPC's own services, until the first snapshot */
    w->calls.next = w->calls.prev = &w->calls;
    static const char *const paths[] = {"/grpc.reflection.v1.ServerReflection/",
                                        "/grpc.reflection.v1alpha.ServerReflection/"};
    static const char *const methods[] = {"ServerReflectionInfo"}; /* the call metrics' column */
    for (int i = 0; i < 2; i++) {
        mesh_local_service_t s = {
            .path = paths[i], .methods = methods, .n_methods = 1, .ops = &reflect_ops, .ctx = w};
        if (mesh_proxy_worker_add_local(engine, &s) != 0) {
            mesh_error(ACTOR, "worker %d: cannot serve %s", worker, paths[i]);
            free(w);
            return NULL;
        }
    }
    return w;
}

static void ext_update(void *ext, void *payload)
{
    rl_worker_t *w = ext;
    mesh_rsrv_index_unref(w->ix);
    w->ix = payload;
    pump_all(w);
}

static void ext_tick(void *ext, uint64_t now)
{
    (void)now;
    rl_worker_t *w = ext;
    for (rl_call_t *rc = w->calls.next; rc != &w->calls; rc = rc->next)
        if (rc->hold_until) {
            pump_all(w);
            break;
        }
}

static void ext_destroy(void *ext)
{
    rl_worker_t *w = ext;
    mesh_rsrv_index_unref(w->ix);
    free(w->names);
    free(w->pending);
    free(w);
}

static void payload_unref(void *p)
{
    mesh_rsrv_index_unref(p);
}

void *node_reflect_index_ref(void *ix)
{
    return mesh_rsrv_index_ref(ix);
}

const mesh_node_ext_t node_reflect_ext = {
    .create = ext_create,
    .update = ext_update,
    .tick = ext_tick,
    .destroy = ext_destroy,
    .payload_unref = payload_unref,
};
