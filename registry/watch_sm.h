/*
 * registry/watch_sm.h: the watch/resync state machine of the registry view, without I/O.
 *
 * It is fed with what etcd answered (range results, watch lines, stream closes) and timer
 * expiries, always with the current time, and answers with effects for its adapter to carry out
 * (issue a range, open or close a watch, arm a timer, publish the view, report the link state).
 * The same code runs on libuv (registry/view.c) and under a fake clock in tests/simulations.
 *
 *   IDLE --start--> RANGING --range ok--> WATCHING (from revision+1)
 *   RANGING --range failed--> BACKOFF --timer--> RANGING
 *   WATCHING --canceled / compacted--> RANGING (range, diff, watch again; no backoff)
 *   WATCHING --stream closed / error--> BACKOFF --timer--> WATCHING (from revision+1: the
 *       history since the last revision is replayed; when it was compacted meanwhile etcd
 *       cancels the watch and the machine ranges and diffs; when the store's revision went
 *       backwards (etcd data lost) it ranges too)
 *
 * Every change to the view arms one coalescing timer (at most coalesce_ms); when it fires the
 * adapter is told to publish once for the whole batch. The link is CONNECTED after a range
 * succeeded and until the stream or a range fails; then DEGRADED (the view is kept).
 */
#ifndef REG_WATCH_SM_H
#define REG_WATCH_SM_H

#include <stdint.h>

#include "registry/view_table.h"

/** States of the machine. */
typedef enum {
    REG_WATCH_IDLE = 0,
    REG_WATCH_RANGING = 1,
    REG_WATCH_WATCHING = 2,
    REG_WATCH_BACKOFF = 3,
    REG_WATCH_STOPPED = 4,
} reg_watch_state_t;

/** Whether etcd is answering. */
typedef enum {
    REG_LINK_DEGRADED = 0,
    REG_LINK_CONNECTED = 1,
} reg_link_t;

/** Effects the adapter must carry out, in order. */
typedef enum {
    REG_WFX_RANGE = 0,        /* range the whole prefix, then call range_begin/kv/done */
    REG_WFX_WATCH = 1,        /* open a watch of the prefix from revision arg */
    REG_WFX_CANCEL_WATCH = 2, /* close the current watch stream (no close event expected) */
    REG_WFX_RETRY_TIMER = 3,  /* arm the retry timer for arg ms */
    REG_WFX_FLUSH_TIMER = 4,  /* arm the coalescing timer for arg ms */
    REG_WFX_PUBLISH = 5,      /* the view changed: publish it (and write the snapshot) */
    REG_WFX_LINK = 6,         /* the link state changed to arg (reg_link_t) */
} reg_wfx_kind_t;

/** One effect. */
typedef struct reg_wfx {
    reg_wfx_kind_t kind;
    int64_t arg;
} reg_wfx_t;

/** Most effects one event produces: reg_watch_sm_watch_line() on a line that creates the
 *  watch after a broken stream, from a store older than the view, with changes pending:
 *  FLUSH_TIMER, LINK, CANCEL_WATCH, RANGE (tests/unit/registry/test_watch_sm.c drives it). */
#define REG_WFX_PER_EVENT 4

/** Capacity of an effect list: room for two events. */
#define REG_WFX_MAX 8

/** The effects of one event (or two): each event appends at most REG_WFX_PER_EVENT. An
 *  effect that would not fit is never dropped: the machine logs the bug and aborts. */
typedef struct reg_wfxs {
    reg_wfx_t v[REG_WFX_MAX];
    int n;
} reg_wfxs_t;

/** Tunables; zeros take the defaults. */
typedef struct reg_watch_cfg {
    uint32_t coalesce_ms;    /* default 5 */
    uint32_t backoff_min_ms; /* default 100 */
    uint32_t backoff_max_ms; /* default 5000 */
    uint64_t seed;           /* jitter PRNG seed (any value) */
} reg_watch_cfg_t;

/** The machine. */
typedef struct reg_watch_sm {
    reg_watch_cfg_t cfg;
    reg_table_t *table;
    reg_watch_state_t state;
    reg_link_t link;
    int64_t revision;         /* every change up to here is in the table */
    int64_t pending_revision; /* highest event revision of the line being applied */
    uint32_t failures;        /* consecutive failures, for the backoff */
    int flush_pending;
    int dirty;
    uint64_t rng;
    uint64_t resyncs;   /* completed ranges */
    uint64_t compacted; /* watches lost to compaction */
    int synced;         /* a range succeeded once */
    int resume_watch;   /* after a broken stream: reconnect by watching from revision+1 */
} reg_watch_sm_t;

/** Initializes the machine over table (which may hold a loaded snapshot at revision). */
void reg_watch_sm_init(reg_watch_sm_t *sm, reg_table_t *table, int64_t revision,
                       const reg_watch_cfg_t *cfg);

/** Starts: range first. */
void reg_watch_sm_start(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** Stops: closes the watch; later events are ignored. */
void reg_watch_sm_stop(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** A range answer starts arriving (call before the first reg_watch_sm_range_kv). */
void reg_watch_sm_range_begin(reg_watch_sm_t *sm);

/** One key-value pair of the range answer. */
void reg_watch_sm_range_kv(reg_watch_sm_t *sm, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t mod_revision, int64_t lease);

/** The range answer is complete, served at revision: removes what it lacked, then watch. */
void reg_watch_sm_range_done(reg_watch_sm_t *sm, int64_t revision, uint64_t now_ms, reg_wfxs_t *fx);

/** The range failed (etcd unreachable or an error): keep the view, retry with backoff. */
void reg_watch_sm_range_failed(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** A watch event (put with value, or delete). */
void reg_watch_sm_event(reg_watch_sm_t *sm, int is_delete, const char *key, size_t klen,
                        const char *val, size_t vlen, int64_t mod_revision, int64_t lease);

/** What a watch line said besides its events. */
typedef struct reg_watch_line {
    int64_t header_revision;
    int created;  /* the watch was set up: etcd is answering */
    int progress; /* a progress notification: no events, neither created nor canceled */
    int canceled;
    int64_t compact_revision;
} reg_watch_line_t;

/** The rest of a watch line, after its events. */
void reg_watch_sm_watch_line(reg_watch_sm_t *sm, const reg_watch_line_t *line, uint64_t now_ms,
                             reg_wfxs_t *fx);

/** The watch stream closed or failed. */
void reg_watch_sm_watch_closed(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** The retry timer fired. */
void reg_watch_sm_retry_timer(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** The coalescing timer fired. */
void reg_watch_sm_flush_timer(reg_watch_sm_t *sm, uint64_t now_ms, reg_wfxs_t *fx);

/** Names of states and links, for logs. */
const char *reg_watch_state_name(reg_watch_state_t s);
const char *reg_link_name(reg_link_t l);

#endif
