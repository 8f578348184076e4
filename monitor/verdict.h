/*
 * monitor/verdict.h: what the leading monitor knows about each instance and what it concludes,
 * without I/O: the instance table, the consecutive failure / success counts of its health
 * checks, and the growing re-admission delay (hysteresis).
 *
 * An instance is one (service, address): the key `<prefix>/<service>/<addr>` while it is
 * registered, and the eviction marker `<root>/evicted/<service>/<addr>` while it is evicted.
 * Each probing round the table is synced with one listing of both prefixes (begin, one call per
 * key, end); instances in neither are forgotten. A check result moves the counts:
 *
 *   registered: `fail_threshold` consecutive failures -> eviction candidate (the valves in
 *               monitor/valve.h decide whether it goes now);
 *   evicted:    `ok_threshold` consecutive successes and the re-admission delay passed ->
 *               re-admission candidate. The delay is `readmit_delay` doubled for each eviction
 *               of the same instance after the first (capped at `readmit_max`): a flapping
 *               instance stays out longer each time. The count survives a monitor failover in
 *               the marker's value.
 *
 * A registration whose lease differs from the lease its marker names is a fresh pod on the
 * same address: it counts as registered (the marker does not apply to it) and starts clean.
 * Times are milliseconds.
 */
#ifndef MON_VERDICT_H
#define MON_VERDICT_H

#include <stddef.h>
#include <stdint.h>

/** Where an instance stands. */
typedef enum {
    MON_INST_REGISTERED = 0, /* its key is in etcd (the marker, if any, is not for its lease) */
    MON_INST_EVICTED = 1,    /* its marker names its registration's lease; probed to re-admit */
} mon_inst_state_t;

/** One instance. Strings are owned by the table. */
typedef struct mon_inst {
    char *id;      /* "<service>/<addr>" */
    char *service; /* "pkg.Svc" */
    char *addr;    /* "host:port" */
    char *zone;    /* "" when none */
    mon_inst_state_t state;
    /* registration (valid when registered) */
    int64_t mod_revision;
    int64_t lease;
    /* marker (valid when has_marker) */
    int has_marker;
    int64_t marker_lease; /* the lease the marker names */
    int64_t marker_mod_revision;
    /* verdict */
    uint32_t fails, oks;
    uint32_t evictions;     /* evictions of this instance so far */
    uint64_t readmit_after; /* evicted: not re-admitted before this time */
    uint64_t last_check;    /* when the last result came */
    int busy;               /* an eviction or re-admission txn is in flight */
    int reg_seen;           /* its key was listed in the current sync */
    int marker_seen;        /* its marker was listed in the current sync */
    char last_error[160];   /* the last failed check, for logs and audit */
    int unreached;          /* the last failed check got no answer at all (connection failed,
                               deadline): only then may the monitor be the one cut off */
    void *user;             /* the adapter's (its connection); see mon_table_t.on_forget */
} mon_inst_t;

/** Thresholds and delays. */
typedef struct mon_verdict_cfg {
    uint32_t fail_threshold; /* default 3 */
    uint32_t ok_threshold;   /* default 2 */
    uint64_t readmit_delay;  /* default 10000 */
    uint64_t readmit_max;    /* default 600000 */
} mon_verdict_cfg_t;

/** The table. */
typedef struct mon_table {
    mon_verdict_cfg_t cfg;
    mon_inst_t **v; /* n of them, in no particular order */
    size_t n, cap;
    size_t *slots; /* open addressing on id: index + 1, 0 = empty */
    size_t n_slots;
    /** Called before an instance is forgotten (its user data freed there); may be NULL. */
    void (*on_forget)(void *ud, mon_inst_t *inst);
    void *forget_ud;
} mon_table_t;

/** Initializes an empty table (zeroed cfg fields take the defaults). */
void mon_table_init(mon_table_t *t, const mon_verdict_cfg_t *cfg);

/** Frees everything. */
void mon_table_destroy(mon_table_t *t);

/** Starts a sync: every instance is unseen until listed again. */
void mon_table_begin_sync(mon_table_t *t);

/** A registration listed: service/addr with zone (NULL: none), its key's mod revision and
 *  lease. Returns the instance, or NULL on out of memory. */
mon_inst_t *mon_table_put_registration(mon_table_t *t, const char *service, const char *addr,
                                       const char *zone, int64_t mod_revision, int64_t lease);

/** A marker listed, naming lease (0: any), with its mod revision, the eviction count and the
 *  zone it records (NULL or "": none; taken when the instance has no zone yet, as after a
 *  takeover, its registration gone). Returns the instance, or NULL on out of memory. */
mon_inst_t *mon_table_put_marker(mon_table_t *t, const char *service, const char *addr,
                                 int64_t lease, int64_t mod_revision, uint32_t evictions,
                                 const char *zone, uint64_t now);

/** Ends a sync: decides each instance's state and forgets those listed nowhere (except those
 *  with a txn in flight). */
void mon_table_end_sync(mon_table_t *t, uint64_t now);

/** An instance by id, or NULL. */
mon_inst_t *mon_table_find(const mon_table_t *t, const char *id);

/** A check of inst answered SERVING (ok) or not (error says how, may be NULL). */
void mon_verdict_result(mon_table_t *t, mon_inst_t *inst, int ok, const char *error, uint64_t now);

/** Whether inst should be evicted (registered, failed fail_threshold times in a row). */
int mon_verdict_should_evict(const mon_table_t *t, const mon_inst_t *inst);

/** Whether inst should be re-admitted (evicted, answered ok_threshold times, delay passed). */
int mon_verdict_should_readmit(const mon_table_t *t, const mon_inst_t *inst, uint64_t now);

/** Records that inst was evicted now (its eviction count grows, its delay doubles). */
void mon_verdict_evicted(mon_table_t *t, mon_inst_t *inst, uint64_t now);

/** The re-admission delay after the n-th eviction (n >= 1). */
uint64_t mon_verdict_readmit_delay(const mon_table_t *t, uint32_t n);

/** Counts: registered instances, evicted ones, and registered ones failing now. */
void mon_table_counts(const mon_table_t *t, size_t *registered, size_t *evicted, size_t *failing);

#endif
