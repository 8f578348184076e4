/*
 * registry/lease_sm.h: the lease/registration state machine, without I/O.
 *
 * It keeps an instance's keys alive under a lease: grant a lease (TTL), put the keys with it,
 * send a keepalive every TTL/3. A keepalive answering TTL 0 or "lease not found" means the
 * lease is lost (etcd expired it, e.g. after a long partition): grant a new lease and put the
 * keys again. A keepalive that cannot reach etcd is retried; once no keepalive succeeded for a
 * whole TTL the lease is presumed lost too. Stopping deletes the keys and revokes the lease.
 *
 *   IDLE -start-> GRANTING -ok-> PUTTING -ok-> ACTIVE -timer-> KEEPALIVE -ok-> ACTIVE
 *   KEEPALIVE -ttl 0 / not found / silent for a TTL-> GRANTING (lost)
 *   GRANTING/PUTTING -failed-> BACKOFF -timer-> GRANTING
 *   PUTTING -denied (etcd RBAC: no write permission)-> BACKOFF for REG_LEASE_DENIED_RETRY_MS
 *     (the first denial of a streak emits DENIED; a retry that is denied again says nothing)
 *   any -stop-> REVOKING (delete + revoke) -done-> DONE
 *
 * One request is in flight at a time; the adapter reports its outcome with the matching event.
 */
#ifndef REG_LEASE_SM_H
#define REG_LEASE_SM_H

#include <stdint.h>

/** States. */
typedef enum {
    REG_LEASE_IDLE = 0,
    REG_LEASE_GRANTING = 1,
    REG_LEASE_PUTTING = 2,
    REG_LEASE_ACTIVE = 3,    /* registered; waiting for the keepalive timer */
    REG_LEASE_KEEPALIVE = 4, /* keepalive in flight */
    REG_LEASE_BACKOFF = 5,
    REG_LEASE_REVOKING = 6,
    REG_LEASE_DONE = 7,
} reg_lease_state_t;

/** How long a registration etcd refused (permission denied) waits before trying again: an
 *  operator has to change etcd's roles first, so a quick retry would only load etcd. */
#define REG_LEASE_DENIED_RETRY_MS 30000

/** Effects for the adapter. */
typedef enum {
    REG_LFX_GRANT = 0,      /* grant a lease of arg seconds */
    REG_LFX_PUT = 1,        /* put every key with lease arg */
    REG_LFX_KEEPALIVE = 2,  /* keepalive lease arg */
    REG_LFX_REVOKE = 3,     /* delete the keys, revoke lease arg (0: no lease, delete only) */
    REG_LFX_TIMER = 4,      /* arm the timer for arg ms */
    REG_LFX_REGISTERED = 5, /* the keys are in etcd under lease arg */
    REG_LFX_LOST = 6,       /* lease arg was lost; re-registering */
    REG_LFX_DONE = 7,       /* deregistered */
    REG_LFX_DENIED = 8,     /* etcd refused the put (permission denied) under lease arg: the
                               first of a streak; retried every REG_LEASE_DENIED_RETRY_MS */
} reg_lfx_kind_t;

/** One effect. */
typedef struct reg_lfx {
    reg_lfx_kind_t kind;
    int64_t arg;
} reg_lfx_t;

/** Most effects one event produces: put_ok with a stop pending (REGISTERED, REVOKE), a lost
 *  lease (LOST, then GRANT or REVOKE) (tests/unit/registry/test_lease_sm.c drives them). */
#define REG_LFX_PER_EVENT 2

/** Capacity of an effect list: room for three events. */
#define REG_LFX_MAX 6

/** Effects of one event (or a few): each event appends at most REG_LFX_PER_EVENT. An effect
 *  that would not fit is never dropped: the machine logs the bug and aborts. */
typedef struct reg_lfxs {
    reg_lfx_t v[REG_LFX_MAX];
    int n;
} reg_lfxs_t;

/** The machine. */
typedef struct reg_lease_sm {
    reg_lease_state_t state;
    int64_t ttl_s;         /* requested TTL */
    int64_t granted_ttl_s; /* TTL etcd granted */
    int64_t lease;         /* current lease, 0 when none */
    uint64_t last_ok_ms;   /* last time etcd confirmed the lease */
    uint32_t failures;
    int stop_requested;
    uint64_t regrants; /* leases granted after a loss */
    uint64_t denials;  /* puts etcd refused (permission denied) */
    int denied;        /* the last put was refused (cleared by a put that succeeds) */
} reg_lease_sm_t;

/** Initializes with the TTL in seconds (default 10 when 0). */
void reg_lease_sm_init(reg_lease_sm_t *sm, int64_t ttl_s);

/** Starts registering. */
void reg_lease_sm_start(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** The grant answered lease id with ttl seconds. */
void reg_lease_sm_grant_ok(reg_lease_sm_t *sm, int64_t id, int64_t ttl_s, uint64_t now_ms,
                           reg_lfxs_t *fx);

/** The grant failed. */
void reg_lease_sm_grant_failed(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** The put succeeded. */
void reg_lease_sm_put_ok(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** The put failed; lease_gone when etcd said the lease does not exist. */
void reg_lease_sm_put_failed(reg_lease_sm_t *sm, int lease_gone, uint64_t now_ms, reg_lfxs_t *fx);

/** etcd refused the put: the user may not write these keys (RBAC). Retried after
 *  REG_LEASE_DENIED_RETRY_MS; REG_LFX_DENIED only for the first refusal of a streak. */
void reg_lease_sm_put_denied(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** A keepalive answered with ttl seconds (<= 0: the lease is gone). */
void reg_lease_sm_keepalive_ok(reg_lease_sm_t *sm, int64_t ttl_s, uint64_t now_ms, reg_lfxs_t *fx);

/** A keepalive failed; lease_gone when etcd said "lease not found". */
void reg_lease_sm_keepalive_failed(reg_lease_sm_t *sm, int lease_gone, uint64_t now_ms,
                                   reg_lfxs_t *fx);

/** The timer fired. */
void reg_lease_sm_timer(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** Deregisters: delete + revoke once no request is in flight. */
void reg_lease_sm_stop(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** The delete + revoke finished (successfully or not). */
void reg_lease_sm_revoke_done(reg_lease_sm_t *sm, uint64_t now_ms, reg_lfxs_t *fx);

/** Name of a state, for logs. */
const char *reg_lease_state_name(reg_lease_state_t s);

#endif
