/*
 * monitor/election.h: the monitors' leader election on etcd, without I/O.
 *
 * etcd's own concurrency election, reduced to one key: every monitor holds a lease and
 * campaigns with one txn "if the election key does not exist, put it under my lease, else
 * read it". The winner's key create revision is the fence: every eviction txn compares the
 * election key's create revision with it (monitor/evict_txn.h), so a deposed leader's txn
 * fails in etcd whatever it believes. A loser watches the key from the txn's revision + 1 and
 * campaigns again when it is deleted (its holder's lease expired or was revoked); a broken
 * watch campaigns again after a short delay (the txn re-reads).
 *
 * The lease is kept alive every TTL/3 in every state. A leader that got no keepalive answer
 * for TTL minus a guard, counted from when the last successful keepalive was SENT (etcd
 * renewed the lease no earlier than that), steps down before etcd could expire its lease and
 * let a standby win: so two monitors never both believe they lead, on top of the fence.
 *
 *   IDLE -start-> GRANTING -ok-> CAMPAIGNING -won-> LEADER
 *                                CAMPAIGNING -lost-> FOLLOWER -key deleted / watch broken->
 *                                CAMPAIGNING
 *   LEADER -lease lost / silent for TTL - guard-> (STEP_DOWN, REVOKE) GRANTING
 *   GRANTING / CAMPAIGNING -failed-> BACKOFF -tick-> GRANTING / CAMPAIGNING
 *
 * Time is milliseconds from any origin; the adapter calls mon_elect_tick often (every few
 * hundred ms) and carries out the effects with the etcd seam (monitor/monitor_actor.c).
 */
#ifndef MON_ELECTION_H
#define MON_ELECTION_H

#include <stdint.h>

/** States. */
typedef enum {
    MON_ELECT_IDLE = 0,
    MON_ELECT_GRANTING = 1,
    MON_ELECT_CAMPAIGNING = 2,
    MON_ELECT_LEADER = 3,
    MON_ELECT_FOLLOWER = 4,
    MON_ELECT_BACKOFF = 5,
    MON_ELECT_STOPPED = 6,
} mon_elect_state_t;

/** Effects for the adapter. */
typedef enum {
    MON_EFX_GRANT = 0,     /* grant a lease of arg seconds */
    MON_EFX_CAMPAIGN = 1,  /* txn: version(key) == 0 ? put key under lease arg : range key */
    MON_EFX_KEEPALIVE = 2, /* keepalive lease arg */
    MON_EFX_WATCH = 3,     /* watch the key from revision arg (cancels any earlier watch) */
    MON_EFX_LEADER = 4,    /* this monitor leads now; arg = the fence (key create revision) */
    MON_EFX_STEP_DOWN = 5, /* this monitor no longer leads: stop evicting at once */
    MON_EFX_REVOKE = 6,    /* revoke lease arg (best effort: deletes our key if etcd hears) */
} mon_efx_kind_t;

/** One effect. */
typedef struct mon_efx {
    mon_efx_kind_t kind;
    int64_t arg;
} mon_efx_t;

/** Capacity of an effect list; an effect that would not fit aborts loudly (a bug). */
#define MON_EFX_MAX 6

/** The effects of one event. */
typedef struct mon_efxs {
    mon_efx_t v[MON_EFX_MAX];
    int n;
} mon_efxs_t;

/** The machine. */
typedef struct mon_elect {
    mon_elect_state_t state;
    int64_t ttl_s;         /* requested lease TTL */
    int64_t granted_ttl_s; /* what etcd granted */
    uint64_t guard_ms;     /* a leader steps down this long before its lease could expire */
    int64_t lease;         /* our lease, 0 when none */
    int64_t fence;         /* LEADER: the key's create revision */
    int64_t leader_lease;  /* FOLLOWER: the holder's lease (0 unknown) */
    uint64_t last_ok_sent; /* when the last keepalive etcd answered was sent */
    uint64_t next_keepalive;
    int keepalive_in_flight;
    uint64_t keepalive_sent;
    int request_in_flight; /* a grant or campaign */
    uint64_t retry_at;     /* BACKOFF: when to retry */
    uint32_t failures;
    uint64_t terms;      /* times this monitor became leader */
    uint64_t step_downs; /* times it stepped down */
} mon_elect_t;

/** Initializes with the lease TTL (s, default 10 when 0); guard = TTL/5, at least 500 ms. */
void mon_elect_init(mon_elect_t *e, int64_t ttl_s);

/** Starts campaigning. */
void mon_elect_start(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** The grant answered lease id with ttl seconds. */
void mon_elect_grant_ok(mon_elect_t *e, int64_t lease, int64_t ttl_s, uint64_t now, mon_efxs_t *fx);

/** A grant or campaign txn failed (etcd unreachable, an error). */
void mon_elect_request_failed(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/**
 * The campaign txn answered: succeeded when our put happened (then header_rev is the key's
 * create revision); otherwise holder_lease / holder_create_rev describe the key as read
 * (holder_create_rev 0: the key vanished in between) and header_rev is the txn's revision.
 */
void mon_elect_campaign_done(mon_elect_t *e, int succeeded, int64_t header_rev,
                             int64_t holder_lease, int64_t holder_create_rev, uint64_t now,
                             mon_efxs_t *fx);

/** The watch saw the key deleted (or it was never there when the watch started). */
void mon_elect_key_deleted(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** The watch ended without a delete (etcd broke it): campaign again after a short delay. */
void mon_elect_watch_broken(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** A keepalive answered with ttl seconds (<= 0: the lease is gone). */
void mon_elect_keepalive_ok(mon_elect_t *e, int64_t ttl_s, uint64_t now, mon_efxs_t *fx);

/** A keepalive failed; lease_gone when etcd said the lease does not exist. */
void mon_elect_keepalive_failed(mon_elect_t *e, int lease_gone, uint64_t now, mon_efxs_t *fx);

/** A fenced txn of ours failed because someone else's key holds the election (we were
 *  deposed without noticing): step down and start over. */
void mon_elect_fenced(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** The clock moved: keepalives due, the leader's deadline, the end of a backoff. */
void mon_elect_tick(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** Stops: a leader steps down and the lease is revoked (standbys take over at once). */
void mon_elect_stop(mon_elect_t *e, uint64_t now, mon_efxs_t *fx);

/** Whether this monitor leads now (and may evict, fenced by e->fence). */
static inline int mon_elect_leading(const mon_elect_t *e)
{
    return e->state == MON_ELECT_LEADER;
}

/** Name of a state ("leader", "standby", ...), for logs and the admin API. */
const char *mon_elect_state_name(mon_elect_state_t s);

#endif
