/*
 * simulations/sim_etcd.h: an in-memory model of etcd v3's MVCC store as a watching client sees
 * it, for the deterministic simulations.
 *
 * What is modelled: one revision counter (every committed txn that changes something takes one
 * revision; all its events carry it), the live key set with mod_revision / create_revision /
 * lease, the event history, compaction (events below the compact revision are gone: a watch
 * starting below it gets a created line, then a canceled line with compact_revision set, as
 * etcd does), range of a prefix at the current revision (sorted by key), and watch streams
 * (history replayed from the start revision, in order, several revisions per line at times,
 * then live events; progress notifications on demand).
 *
 * Faults: a client's streams can be dropped (connection lost), closed with an error line, or
 * canceled by etcd (no leader); a client can be partitioned (its requests fail, its streams
 * break); etcd can be down for everyone; and etcd can lose its data (restored from a backup:
 * the revision goes back and later revisions are reused with other content).
 *
 * Nothing here knows about time or latency: calls answer at once and watch lines are handed to
 * a sink synchronously; the caller (simulations/sim_watcher.c) adds the network.
 *
 * For the checkers the model keeps a fingerprint of the watched view after every revision
 * (sum of sim_kv_fp(key, mod_revision) over the live keys under the view prefix, except values
 * tagged SIM_TAG_HIDDEN), for the current store and for the stores lost to data loss, so that
 * "this view existed at revision r" is one lookup.
 */
#ifndef SIM_ETCD_H
#define SIM_ETCD_H

#include <stddef.h>
#include <stdint.h>

/** Tag bit of a value the view does not keep at all (a naming-resolver Delete record). */
#define SIM_TAG_HIDDEN 0x1u

/** One key-value pair (strings owned by whoever holds the pair). */
typedef struct sim_kv {
    char *key;
    char *value; /* NULL for a delete event */
    int64_t mod_revision;
    int64_t create_revision;
    int64_t lease;
    int64_t version; /* puts since the key was created (1 at creation) */
    uint32_t tag;    /* the writer's own annotation (SIM_TAG_* and free bits) */
} sim_kv_t;

/** One watch event; kv.mod_revision is the event's revision (deletes included). */
typedef struct sim_event {
    int is_delete;
    sim_kv_t kv;
} sim_event_t;

/** One line of a watch stream; the sink owns it (free with sim_etcd_line_free). */
typedef struct sim_watch_line {
    int closed; /* the stream ended without a line (connection dropped); nothing else is set */
    int error;  /* an error line ({"error":..}): the stream ends after it */
    int created;
    int canceled;
    int progress;
    int64_t header_revision;
    int64_t compact_revision;
    size_t n_events;
    sim_event_t *events;
} sim_watch_line_t;

/** Receives the lines of one watch; takes ownership of line. */
typedef void (*sim_watch_sink)(void *ctx, sim_watch_line_t *line);

/** A range answer; free with sim_etcd_range_free. */
typedef struct sim_range {
    int64_t revision; /* header revision: the store's revision when it was served */
    uint32_t epoch;   /* sim_etcd_epoch() when it was served (for the checkers) */
    size_t n;
    sim_kv_t *kvs; /* sorted by key */
} sim_range_t;

/** How sim_etcd_break_watches ends a client's streams. */
typedef enum {
    SIM_BREAK_CLOSE = 0,  /* the connection drops */
    SIM_BREAK_ERROR = 1,  /* an error line, then the end of the stream */
    SIM_BREAK_CANCEL = 2, /* etcd cancels the watch (e.g. the member lost its leader) */
} sim_break_t;

typedef struct sim_etcd sim_etcd_t;

/** Creates an empty store (revision 1, as a fresh etcd); view_prefix (e.g. "meshd/services/")
 *  scopes the fingerprints; seed drives how history is batched into lines. */
sim_etcd_t *sim_etcd_new(const char *view_prefix, uint64_t seed);

/** Frees the store; open watches are dropped without lines. */
void sim_etcd_free(sim_etcd_t *e);

/** The current revision. */
int64_t sim_etcd_revision(const sim_etcd_t *e);

/** The compact revision (0 when never compacted). */
int64_t sim_etcd_compact_revision(const sim_etcd_t *e);

/** How many times the store lost its data (restores). */
uint32_t sim_etcd_epoch(const sim_etcd_t *e);

/** Starts a txn; the following sim_etcd_txn_put / sim_etcd_txn_delete join it. */
void sim_etcd_txn_begin(sim_etcd_t *e);

/** Adds a put to the open txn (one put per key per txn, as etcd requires). */
void sim_etcd_txn_put(sim_etcd_t *e, const char *key, const char *value, int64_t lease,
                      uint32_t tag);

/** Adds a delete to the open txn (a missing key is a no-op). */
void sim_etcd_txn_delete(sim_etcd_t *e, const char *key);

/** Commits the txn: when it changes anything it takes the next revision, which is returned,
 *  and its events go to the watches; otherwise returns 0. */
int64_t sim_etcd_txn_commit(sim_etcd_t *e);

/** Revokes a lease (its keys are deleted in one revision); returns the revision or 0. */
int64_t sim_etcd_revoke(sim_etcd_t *e, int64_t lease);

/** Compacts the history below rev (clamped to the current revision); returns 0, or -1 when
 *  rev is not above the compact revision. */
int sim_etcd_compact(sim_etcd_t *e, int64_t rev);

/** Takes a backup of the whole store (replacing the previous one). */
void sim_etcd_backup(sim_etcd_t *e);

/** Data loss: every stream is dropped and the store goes back to the backup (revision
 *  included). Returns 0, or -1 without a backup or when the backup is the current state. */
int sim_etcd_restore(sim_etcd_t *e);

/** etcd down (1) or up (0) for every client; going down drops every stream. */
void sim_etcd_set_down(sim_etcd_t *e, int down);

/** Partitions client from etcd (1) or heals it (0); partitioning drops its streams. */
void sim_etcd_set_partitioned(sim_etcd_t *e, uint32_t client, int partitioned);

/** Whether client can reach etcd now. */
int sim_etcd_reachable(const sim_etcd_t *e, uint32_t client);

/** Ends every open watch of client the given way; returns how many. */
int sim_etcd_break_watches(sim_etcd_t *e, uint32_t client, sim_break_t how);

/** Ranges every live key under prefix; NULL when client cannot reach etcd. */
sim_range_t *sim_etcd_range(sim_etcd_t *e, uint32_t client, const char *prefix);

/**
 * Opens a watch of prefix from start_revision for client: the created line, then the history
 * (or a compaction cancel), then live events go to sink(ctx, ..). Returns the watch id (> 0),
 * or -1 when client cannot reach etcd (no line is sent).
 */
int64_t sim_etcd_watch(sim_etcd_t *e, uint32_t client, const char *prefix, int64_t start_revision,
                       sim_watch_sink sink, void *ctx);

/** The client closed its watch; no more lines (unknown ids are ignored). */
void sim_etcd_watch_cancel(sim_etcd_t *e, int64_t id);

/** Sends a progress notification (header = current revision) on every open watch. */
void sim_etcd_progress(sim_etcd_t *e);

/* ---- leases (what a registering client uses; writers of the scenarios may also put keys
 * under made-up lease ids, which the store accepts as is) ---- */

/** Grants a lease of ttl_s seconds at virtual time now_ns; returns its id, or -1 when client
 *  cannot reach etcd. Ids are deterministic. */
int64_t sim_etcd_lease_grant(sim_etcd_t *e, uint32_t client, int64_t ttl_s, uint64_t now_ns);

/** Renews a lease; returns its TTL in seconds, 0 when the lease does not exist (expired or
 *  revoked), or -1 when client cannot reach etcd. */
int64_t sim_etcd_lease_keepalive(sim_etcd_t *e, uint32_t client, int64_t id, uint64_t now_ns);

/** Whether a granted lease exists now. */
int sim_etcd_lease_exists(const sim_etcd_t *e, int64_t id);

/** Forgets a lease and deletes its keys (sim_etcd_revoke); returns the revision or 0. */
int64_t sim_etcd_lease_revoke(sim_etcd_t *e, int64_t id);

/** Revokes every granted lease whose TTL ran out by now_ns (as etcd's lessor does); returns
 *  how many. */
int sim_etcd_expire_leases(sim_etcd_t *e, uint64_t now_ns);

/** Evaluates one txn comparison against the current store: target is 0 version, 1 create,
 *  2 mod, 3 lease (etcd_cmp_target_t), result 0 =, 1 >, 2 <, 3 != (etcd_cmp_result_t). */
int sim_etcd_compare(const sim_etcd_t *e, const char *key, int target, int result, int64_t value);

/** Number of open watches. */
size_t sim_etcd_open_watches(const sim_etcd_t *e);

/** Live keys (all prefixes), in no particular order; valid until the next change. */
size_t sim_etcd_live_count(const sim_etcd_t *e);
/** The i-th live key (i < sim_etcd_live_count). */
const sim_kv_t *sim_etcd_live_at(const sim_etcd_t *e, size_t i);
/** A live key by name, or NULL. */
const sim_kv_t *sim_etcd_get(const sim_etcd_t *e, const char *key);

/** Whether key was ever put (in any epoch). */
int sim_etcd_ever_written(const sim_etcd_t *e, const char *key);

/** The fingerprint term of one key version. */
uint64_t sim_kv_fp(const char *key, int64_t mod_revision);

/** The view fingerprint at the current revision. */
uint64_t sim_etcd_fingerprint(const sim_etcd_t *e);

/** Whether the view with fingerprint fp existed at revision rev (current store or a lost
 *  one). */
int sim_etcd_fp_existed(const sim_etcd_t *e, int64_t rev, uint64_t fp);

/** Frees a watch line. */
void sim_etcd_line_free(sim_watch_line_t *line);

/** Frees a range answer. */
void sim_etcd_range_free(sim_range_t *r);

#endif
