/*
 * audit/audit_load.c: the synthetic audit event source (see audit/audit_load.h).
 */
#include "audit/audit_load.h"

#include <stdio.h>

#include "common/log.h"

#define LOAD_TICK    0x41550020u
#define TICK_NS      10000000ull
#define MAX_PER_TICK 100000u /* catch-up bound after a long stall */

typedef struct load {
    audit_load_args_t *a;
    uint64_t t0;   /* when this start began */
    uint64_t base; /* a->emitted at t0 */
} load_t;

static int lo_start(mesh_actor_t *self, void *arg)
{
    load_t *l = mesh_state(self);
    l->a = arg;
    l->t0 = mesh_now(self);
    l->base = l->a->emitted;
    mesh_warn("audit",
              "--audit-test-rate: emitting %u synthetic config_rejected events per "
              "second (tests and benchmarks only)",
              l->a->rate);
    return mesh_timer_start(self, TICK_NS, TICK_NS, LOAD_TICK, NULL) == 0 ? 0 : -1;
}

static int lo_message(mesh_actor_t *self, mesh_msg_t *m)
{
    load_t *l = mesh_state(self);
    if (m->type != LOAD_TICK)
        return 0;
    uint64_t due = l->base + (mesh_now(self) - l->t0) / 1000 * l->a->rate / 1000000;
    uint32_t n = 0;
    while (l->a->emitted < due && n++ < MAX_PER_TICK) {
        uint64_t k = ++l->a->emitted;
        char svc[16], reason[96];
        snprintf(svc, sizeof(svc), "test.Load%u", (unsigned)(k % 16));
        snprintf(reason, sizeof(reason),
                 "synthetic test event %llu of --audit-test-rate (not a real event)",
                 (unsigned long long)k);
        audit_event_t ev = {.type = AUDIT_CONFIG_REJECTED, .service = svc, .reason = reason};
        audit_emit(self, l->a->api, &ev);
    }
    return 0;
}

const mesh_actor_ops_t audit_load_ops = {
    .name = "audit-load",
    .state_size = sizeof(load_t),
    .on_start = lo_start,
    .on_message = lo_message,
};
