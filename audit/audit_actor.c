/*
 * audit/audit_actor.c: the audit actor (see audit/audit_actor.h).
 *
 * Sending, in Kafka mode (pump): while nothing is paused and the in-flight bounds leave room,
 * take the spool's next record (audit_spool_next: in order, replayed records first), split it
 * (audit/audit_api.h), hand it to the sink. The spool's pointer is valid until its next call:
 * the sink copies. audit_spool_next returns 0 both when nothing is left and while a read error
 * is being retried, so the pump also runs from the slow tick.
 *
 * Failures: a record the sink refuses at once rewinds the spool to it and pauses; a failed
 * delivery is remembered (the lowest one) and acted on once nothing is in flight any more: the
 * spool rewinds there and sending resumes after the backoff. Records between the failed one and
 * the end that were acknowledged meanwhile are not sent again (the spool skips them).
 *
 * The spool's driver contract (audit/spool.h): after every call take the due sync (one at a
 * time) and arm the timer for audit_spool_deadline(); a sync runs on libuv's thread pool and
 * comes back as AUDIT_MSG_SYNCED carrying the job's number. The job belongs to the actor while
 * it runs; at stop the actor waits for it (the pool thread sets done) before closing the spool.
 */
#include "audit/audit_actor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "common/log.h"

#define TICK_MS        200
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define REPORT_MIN_MS  1000 /* audit_dropped at most once a second */
#define ERROR_RELOG_MS 30000

enum { LINK_CONNECTING = 0, LINK_CONNECTED = 1, LINK_SPOOLING = 2 };

struct audit_args {
    audit_actor_cfg_t cfg;
    char *spool_dir, *brokers, *topic, *file_path;
    struct audit_actor *live; /* the running start, for the status (control loop only) */
    /* across restarts */
    uint64_t starts;
    uint64_t drops_before;   /* drops counted by earlier starts */
    uint64_t drops_reported; /* drops reported in audit_dropped events */
    uint64_t reports;        /* audit_dropped events made */
    uint64_t replayed_total, corrupt_bytes_total;
};

/* A spool sync run off the loop. */
typedef struct sync_job {
    uint64_t id;
    audit_spool_t *sp;
    audit_spool_sync_t req;
    int rc;
    _Atomic int done;     /* the pool thread finished the sync */
    _Atomic int orphaned; /* the actor stopped: after_work frees the job */
    int after_ran;        /* after_work ran (its message may be lost with the actor) */
    mesh_actor_t *self;
    uv_work_t work;
} sync_job_t;

typedef struct audit_actor {
    audit_args_t *a;
    mesh_actor_t *self;
    audit_mode_t mode;
    /* Kafka mode */
    audit_sink_t *sink;
    audit_spool_fs_t fs;
    int fs_open;
    audit_spool_t *sp;
    sync_job_t *job;
    uint64_t next_job;
    uint64_t spool_timer, spool_timer_at; /* armed one-shot for audit_spool_deadline (ms) */
    uint32_t in_flight;
    uint64_t in_flight_bytes;
    uint64_t rewind_at; /* lowest failed seq, acted on when nothing is in flight (0: none) */
    int paused;
    uint64_t resume_timer;
    uint64_t backoff_ms;
    int wake_pending;
    int link;
    uint64_t down_since_ms;
    int failing;  /* in a streak of failed deliveries (logged once) */
    int dropping; /* in a streak of drops (logged once) */
    uint64_t last_report_ms;
    char last_error[1200];
    time_t last_error_at;
    uint64_t last_error_logged_ms;
    /* counters of this start */
    uint64_t accepted, sent, acked, failures, rewinds, unreadable;
    uint64_t report_drops; /* our audit_dropped records the spool refused (retried later) */
    /* File mode */
    audit_jsonl_t file;
    int file_open;
    uint64_t file_lost_closed; /* records lost while the file could not be opened at all */
    uint64_t tick_timer;
    uint8_t buf[AUDIT_REC_MAX];
} audit_actor_t;

static void pump(audit_actor_t *st);

static uint64_t now_ms(const audit_actor_t *st)
{
    return mesh_now(st->self) / 1000000ull;
}

/* ---- arguments ------------------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

audit_args_t *audit_args_new(const audit_actor_cfg_t *cfg)
{
    audit_args_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = *cfg;
    a->spool_dir = dup_or_null(cfg->spool_dir);
    a->brokers = dup_or_null(cfg->brokers);
    a->topic = dup_or_null(cfg->topic);
    a->file_path = dup_or_null(cfg->file.path);
    if ((cfg->spool_dir && !a->spool_dir) || (cfg->brokers && !a->brokers) ||
        (cfg->topic && !a->topic) || (cfg->file.path && !a->file_path)) {
        audit_args_free(a);
        return NULL;
    }
    a->cfg.spool_dir = a->spool_dir;
    a->cfg.brokers = a->brokers;
    a->cfg.topic = a->topic;
    a->cfg.file.path = a->file_path;
    audit_spool_cfg_t d;
    audit_spool_cfg_default(&d);
    audit_spool_cfg_t *sc = &a->cfg.spool;
    if (!sc->max_bytes)
        sc->max_bytes = d.max_bytes;
    if (!sc->segment_bytes)
        sc->segment_bytes = d.segment_bytes;
    if (!sc->max_record)
        sc->max_record = AUDIT_REC_MAX; /* no record is longer */
    if (!a->cfg.max_in_flight)
        a->cfg.max_in_flight = 10000;
    if (!a->cfg.max_in_flight_bytes)
        a->cfg.max_in_flight_bytes = 16u << 20;
    if (!a->cfg.stop_flush_ms)
        a->cfg.stop_flush_ms = 1000;
    return a;
}

void audit_args_free(audit_args_t *a)
{
    if (!a)
        return;
    free(a->spool_dir);
    free(a->brokers);
    free(a->topic);
    free(a->file_path);
    free(a);
}

/* ---- errors, the link, drops -------------------------------------------------------------------
 */

/* The kind of an error: its text up to the first ':' ("_TRANSPORT", "delivery to ..."). */
static size_t kind_len(const char *s)
{
    const char *c = strchr(s, ':');
    return c ? (size_t)(c - s) : strlen(s);
}

/* Remembers an error for the status; logs it when its kind is new or was last logged long
 * ago (librdkafka's texts differ in counts and timings from one retry to the next). */
static void note_error(audit_actor_t *st, const char *what, int log)
{
    uint64_t now = now_ms(st);
    size_t k = kind_len(what);
    int same = kind_len(st->last_error) == k && strncmp(st->last_error, what, k) == 0;
    snprintf(st->last_error, sizeof(st->last_error), "%s", what);
    st->last_error_at = time(NULL);
    if (log && (!same || now - st->last_error_logged_ms >= ERROR_RELOG_MS)) {
        st->last_error_logged_ms = now;
        mesh_warn("audit", "%s", what);
    }
}

static uint64_t spool_drops(const audit_actor_t *st)
{
    if (!st->sp)
        return 0;
    const audit_spool_stats_t *s = audit_spool_stats(st->sp);
    return s->dropped_full + s->dropped_oldest + s->dropped_size + s->dropped_io + s->lost_corrupt +
           st->unreadable;
}

/* Drops of other records than our own reports that did not fit (those are retried, not
 * counted: the count is of events lost). */
static uint64_t drops_total(const audit_actor_t *st)
{
    const audit_api_t *api = st->a->cfg.api;
    uint64_t refused = api ? atomic_load_explicit(&api->refused, memory_order_relaxed) : 0;
    return st->a->drops_before + spool_drops(st) - st->report_drops + refused;
}

static void set_link(audit_actor_t *st, int link, const char *why)
{
    if (st->link == link)
        return;
    int was = st->link;
    st->link = link;
    if (link == LINK_SPOOLING) {
        st->down_since_ms = now_ms(st);
        mesh_warn("audit", "Kafka does not take records: %s; they are kept in the spool %s", why,
                  st->a->cfg.spool_dir ? st->a->cfg.spool_dir : "");
    } else if (link == LINK_CONNECTED && was == LINK_SPOOLING) {
        const audit_spool_stats_t *s = audit_spool_stats(st->sp);
        mesh_info("audit", "Kafka acknowledges again after %.1f s: sending %llu spooled records",
                  (double)(now_ms(st) - st->down_since_ms) / 1e3, (unsigned long long)s->pending);
    } else if (link == LINK_CONNECTED) {
        mesh_info("audit", "Kafka acknowledges: topic %s at %s", st->a->cfg.topic,
                  st->a->cfg.brokers);
    }
}

/* The spool dropped a record (append refused): logged once per streak. */
static void note_drop(audit_actor_t *st, audit_spool_result_t r)
{
    if (st->dropping)
        return;
    st->dropping = 1;
    const audit_spool_stats_t *s = audit_spool_stats(st->sp);
    mesh_warn("audit",
              "audit spool %s: record dropped (%s; %llu bytes spooled, %llu records pending); "
              "drops are counted and reported as an audit_dropped event once Kafka is back",
              st->a->cfg.spool_dir ? st->a->cfg.spool_dir : "", audit_spool_result_name(r),
              (unsigned long long)s->bytes, (unsigned long long)s->pending);
}

/* ---- taking records ------------------------------------------------------------------------- */

/* One record (header, key, JSON) accepted: spooled, or written to the file. */
static void take(audit_actor_t *st, const uint8_t *data, size_t len)
{
    st->accepted++;
    if (st->mode == AUDIT_MODE_KAFKA && st->sp) {
        uint64_t seq;
        audit_spool_result_t r = audit_spool_append(st->sp, data, len, now_ms(st), &seq);
        if (r != AUDIT_SPOOL_OK)
            note_drop(st, r);
        else
            st->dropping = 0;
        return;
    }
    if (st->mode == AUDIT_MODE_FILE) {
        audit_rec_view_t v;
        if (audit_rec_parse(data, len, &v) != 0)
            return;
        if (!st->file_open) {
            st->file_lost_closed++;
            return;
        }
        audit_jsonl_write(&st->file, v.json, v.json_len, (int64_t)now_ms(st));
    }
}

/* Makes a record of ev (given a sequence and the context) in st->buf and accepts it. */
static int accept_event(audit_actor_t *st, audit_event_t *ev)
{
    audit_api_t *api = st->a->cfg.api;
    if (!api)
        return -1;
    ev->seq = audit_ctx_next_seq(&api->ctx);
    ssize_t n = audit_rec_encode(&api->ctx, ev, st->buf, sizeof(st->buf));
    if (n < 0) {
        mesh_error("audit", "a %s event not recorded: %s", audit_type_name(ev->type),
                   audit_event_problem(ev) ? audit_event_problem(ev) : "too long");
        return -1;
    }
    take(st, st->buf, (size_t)n);
    return 0;
}

/* A call the policy chain refused becomes its denial record. */
static void on_policy_event(audit_actor_t *st, const mesh_event_t *e)
{
    static const audit_type_t types[] = {
        [MESH_EV_POLICY_AUTHN] = AUDIT_AUTHN_FAILURE,
        [MESH_EV_POLICY_SIGNATURE] = AUDIT_SIGNATURE_INVALID,
        [MESH_EV_POLICY_ACL] = AUDIT_ACL_DENIED,
        [MESH_EV_POLICY_RATELIMIT] = AUDIT_RATE_LIMITED,
    };
    const mesh_ev_policy_t *p = &e->policy;
    if (p->kind < MESH_EV_POLICY_AUTHN || p->kind > MESH_EV_POLICY_RATELIMIT)
        return;
    char reason[sizeof(p->reason) + 64];
    if (e->a)
        snprintf(reason, sizeof(reason), "%.*s (and %llu more refusals not recorded one by one)",
                 (int)sizeof(p->reason), p->reason, (unsigned long long)e->a);
    else
        snprintf(reason, sizeof(reason), "%.*s", (int)sizeof(p->reason), p->reason);
    /* (each field is NUL-terminated by the producer; the copies guard against one that is not) */
    char peer[sizeof(p->peer) + 1], trace[sizeof(p->trace_id) + 1], svc[sizeof(p->service) + 1],
        method[sizeof(p->method) + 1], who[sizeof(p->identity) + 1];
    snprintf(peer, sizeof(peer), "%.*s", (int)sizeof(p->peer), p->peer);
    snprintf(trace, sizeof(trace), "%.*s", (int)sizeof(p->trace_id), p->trace_id);
    snprintf(svc, sizeof(svc), "%.*s", (int)sizeof(p->service), p->service);
    snprintf(method, sizeof(method), "%.*s", (int)sizeof(p->method), p->method);
    snprintf(who, sizeof(who), "%.*s", (int)sizeof(p->identity), p->identity);
    audit_event_t ev = {
        .type = types[p->kind],
        .ts_us = e->c ? (int64_t)e->c : audit_now_us(),
        .reason = reason,
        .service = svc[0] ? svc : NULL,
        .method = method[0] ? method : NULL,
        .peer_address = peer[0] ? peer : NULL,
        .peer_identity = who[0] ? who : NULL,
        .trace_id = trace[0] ? trace : NULL,
        .has_status = true,
        .status = p->status,
    };
    accept_event(st, &ev);
}

/* A proxy's outlier ejection or return (held-back ejections are logged and counted only). */
static void on_outlier_event(audit_actor_t *st, const mesh_event_t *e)
{
    const mesh_ev_outlier_t *o = &e->outlier;
    if (o->effect != MESH_EV_OUTLIER_EJECTED && o->effect != MESH_EV_OUTLIER_RETURNED)
        return;
    char inst[sizeof(o->instance) + 1], svc[sizeof(o->service) + 1], why[sizeof(o->reason) + 1];
    snprintf(inst, sizeof(inst), "%.*s", (int)sizeof(o->instance), o->instance);
    snprintf(svc, sizeof(svc), "%.*s", (int)sizeof(o->service), o->service);
    snprintf(why, sizeof(why), "%.*s", (int)sizeof(o->reason), o->reason);
    audit_event_t ev = {
        .type =
            o->effect == MESH_EV_OUTLIER_EJECTED ? AUDIT_OUTLIER_EJECTED : AUDIT_OUTLIER_RETURNED,
        .ts_us = e->c ? (int64_t)e->c : audit_now_us(),
        .reason = why,
        .instance = inst,
        .service = svc[0] ? svc : NULL,
    };
    accept_event(st, &ev);
}

/* Worker events: breaker transitions become breaker_* records, the policy chain's refusals
 * their denial records. */
static void on_batch(audit_actor_t *st, const audit_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const mesh_event_t *e = &b->ev[i];
        if (e->type == MESH_EV_POLICY) {
            on_policy_event(st, e);
            continue;
        }
        if (e->type == MESH_EV_OUTLIER) {
            on_outlier_event(st, e);
            continue;
        }
        if (e->type != MESH_EV_BREAKER)
            continue;
        audit_event_t ev = {
            .ts_us = (int64_t)e->c, .reason = e->breaker.reason, .instance = e->breaker.instance};
        switch (e->breaker.to) {
        case MESH_EV_BREAKER_OPEN:
            ev.type = AUDIT_BREAKER_OPEN;
            break;
        case MESH_EV_BREAKER_HALF_OPEN:
            ev.type = AUDIT_BREAKER_HALF_OPEN;
            break;
        default:
            ev.type = AUDIT_BREAKER_CLOSED;
            break;
        }
        if (!ev.ts_us)
            ev.ts_us = audit_now_us();
        accept_event(st, &ev);
    }
}

/* Reports drops as an audit_dropped event: once Kafka acknowledges, at most once a second. */
static void report_drops(audit_actor_t *st)
{
    audit_args_t *a = st->a;
    uint64_t total = drops_total(st);
    if (st->mode != AUDIT_MODE_KAFKA || st->link != LINK_CONNECTED || total <= a->drops_reported ||
        (st->last_report_ms && now_ms(st) - st->last_report_ms < REPORT_MIN_MS))
        return;
    st->last_report_ms = now_ms(st);
    const audit_spool_stats_t *s = audit_spool_stats(st->sp);
    uint64_t n = total - a->drops_reported;
    char reason[400];
    snprintf(
        reason, sizeof(reason),
        "%llu audit records dropped (spool full %llu, oldest deleted %llu, too long %llu, "
        "disk errors %llu, unreadable %llu, not taken by the audit actor %llu, counted by earlier "
        "starts %llu)",
        (unsigned long long)n, (unsigned long long)(s->dropped_full - st->report_drops),
        (unsigned long long)s->dropped_oldest, (unsigned long long)s->dropped_size,
        (unsigned long long)s->dropped_io, (unsigned long long)(s->lost_corrupt + st->unreadable),
        (unsigned long long)(a->cfg.api ? atomic_load(&a->cfg.api->refused) : 0),
        (unsigned long long)a->drops_before);
    audit_event_t ev = {
        .type = AUDIT_AUDIT_DROPPED, .reason = reason, .dropped = n, .ts_us = audit_now_us()};
    uint64_t before = spool_drops(st);
    if (accept_event(st, &ev) != 0)
        return;
    if (spool_drops(st) != before) { /* no room yet: tried again later, not counted */
        st->report_drops += spool_drops(st) - before;
        return;
    }
    a->drops_reported = total;
    a->reports++;
    mesh_warn("audit", "%s: reported as an audit_dropped event", reason);
}

/* ---- the spool's driver --------------------------------------------------------------------- */

static void sync_work(uv_work_t *w)
{
    sync_job_t *j = w->data;
    j->rc = audit_spool_sync_run(j->sp, &j->req);
    atomic_store_explicit(&j->done, 1, memory_order_release);
}

static void sync_after(uv_work_t *w, int status)
{
    (void)status;
    sync_job_t *j = w->data;
    j->after_ran = 1;
    if (atomic_load_explicit(&j->orphaned, memory_order_acquire)) {
        free(j);
        return;
    }
    uint64_t id = j->id;
    if (mesh_send(j->self, mesh_self(j->self), AUDIT_MSG_SYNCED, &id, sizeof(id)) != 0)
        mesh_error("audit", "a spool sync's end was refused by the mailbox");
}

static void sync_start(audit_actor_t *st, const audit_spool_sync_t *req)
{
    sync_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        audit_spool_synced(st->sp, req, -12 /* -ENOMEM */, now_ms(st));
        return;
    }
    j->id = ++st->next_job;
    j->sp = st->sp;
    j->req = *req;
    j->self = st->self;
    j->work.data = j;
    atomic_init(&j->done, 0);
    atomic_init(&j->orphaned, 0);
    st->job = j;
    uv_loop_t *loop = mesh_uv_loop(st->self);
    if (loop && uv_queue_work(loop, &j->work, sync_work, sync_after) == 0)
        return;
    /* No libuv loop (the simulator): run it now, finish it as a message like the pool would. */
    sync_work(&j->work);
    j->after_ran = 1;
    uint64_t id = j->id;
    if (mesh_send(st->self, mesh_self(st->self), AUDIT_MSG_SYNCED, &id, sizeof(id)) != 0)
        mesh_error("audit", "a spool sync's end was refused by the mailbox");
}

static void on_synced(audit_actor_t *st, uint64_t id)
{
    sync_job_t *j = st->job;
    if (!j || j->id != id)
        return;
    st->job = NULL;
    audit_spool_synced(st->sp, &j->req, j->rc, now_ms(st));
    free(j);
}

/* After every spool call: the next sync, the timer. */
static void drive(audit_actor_t *st)
{
    if (!st->sp)
        return;
    audit_spool_sync_t req;
    if (!st->job && audit_spool_take_sync(st->sp, &req))
        sync_start(st, &req);
    uint64_t at = audit_spool_deadline(st->sp);
    if (at == UINT64_MAX || (st->spool_timer && st->spool_timer_at <= at))
        return;
    if (st->spool_timer)
        mesh_timer_stop(st->self, st->spool_timer);
    st->spool_timer = 0;
    uint64_t now = now_ms(st);
    uint64_t delay = at > now ? at - now : 0;
    if (mesh_timer_start(st->self, delay * 1000000ull, 0, AUDIT_MSG_SPOOL_TIMER,
                         &st->spool_timer) == 0)
        st->spool_timer_at = at;
}

/* ---- sending -------------------------------------------------------------------------------- */

static void pause_sending(audit_actor_t *st)
{
    if (st->paused)
        return;
    st->backoff_ms = st->backoff_ms ? st->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (st->backoff_ms > BACKOFF_MAX_MS)
        st->backoff_ms = BACKOFF_MAX_MS;
    st->paused = 1;
    if (mesh_timer_start(st->self, st->backoff_ms * 1000000ull, 0, AUDIT_MSG_RESUME,
                         &st->resume_timer) != 0)
        st->paused = 0;
}

/* A failure waits until nothing is in flight; then the spool rewinds to it. */
static void settle_failures(audit_actor_t *st)
{
    if (!st->rewind_at || st->in_flight)
        return;
    audit_spool_rewind(st->sp, st->rewind_at);
    st->rewinds++;
    st->rewind_at = 0;
    pause_sending(st);
}

static void pump(audit_actor_t *st)
{
    if (st->mode != AUDIT_MODE_KAFKA || !st->sp)
        return;
    while (st->sink && !st->paused && !st->rewind_at && st->in_flight < st->a->cfg.max_in_flight &&
           st->in_flight_bytes < st->a->cfg.max_in_flight_bytes) {
        audit_spool_rec_t rec;
        if (!audit_spool_next(st->sp, &rec))
            break;
        audit_rec_view_t v;
        if (audit_rec_parse(rec.data, rec.len, &v) != 0) {
            /* Not a record this version writes (a spool from another version): settled as
             * dropped, and reported. */
            st->unreadable++;
            audit_spool_ack(st->sp, rec.seq);
            continue;
        }
        audit_sink_rec_t r = {.seq = rec.seq,
                              .key = v.key,
                              .key_len = v.key_len,
                              .ts_ms = v.ts_us / 1000,
                              .value = v.json,
                              .len = v.json_len};
        char err[256];
        if (st->sink->ops->produce(st->sink, &r, err, sizeof(err)) != 0) {
            char what[400];
            snprintf(what, sizeof(what), "Kafka producer refused a record: %s; retrying", err);
            note_error(st, what, 1);
            set_link(st, LINK_SPOOLING, what);
            audit_spool_rewind(st->sp, rec.seq);
            st->rewinds++;
            pause_sending(st);
            break;
        }
        st->in_flight++;
        st->in_flight_bytes += v.json_len;
        st->sent++;
    }
    drive(st);
}

/* The sink's callbacks (from serve, inside this actor's message handler). */
static void sink_delivered(void *ud, uint64_t seq, size_t len, int err, const char *why)
{
    audit_actor_t *st = ud;
    if (st->in_flight)
        st->in_flight--;
    st->in_flight_bytes = st->in_flight_bytes > len ? st->in_flight_bytes - len : 0;
    if (!err) {
        audit_spool_ack(st->sp, seq);
        st->acked++;
        st->backoff_ms = 0;
        if (st->failing && !st->rewind_at) { /* a resent record went through */
            st->failing = 0;
            mesh_info("audit", "Kafka deliveries succeed again");
        }
        set_link(st, LINK_CONNECTED, "");
        return;
    }
    st->failures++;
    if (!st->rewind_at || seq < st->rewind_at)
        st->rewind_at = seq;
    char what[600];
    snprintf(what, sizeof(what),
             "delivery to Kafka topic %s failed: %s; the records stay in the spool and are sent "
             "again, in order",
             st->a->cfg.topic, why);
    note_error(st, what, !st->failing);
    st->failing = 1;
    set_link(st, LINK_SPOOLING, what);
}

static void sink_link(void *ud, int down, const char *why)
{
    audit_actor_t *st = ud;
    if (down == 1) {
        /* librdkafka says why a broker failed just before it says all are down: keep both */
        char both[1100];
        if (!strncmp(st->last_error, "Kafka (", 7))
            snprintf(both, sizeof(both), "%s; last error: %s", why, st->last_error);
        else
            snprintf(both, sizeof(both), "%s", why);
        note_error(st, both, 0);
        set_link(st, LINK_SPOOLING, both);
    } else if (down == -1) {
        note_error(st, why, st->link != LINK_SPOOLING); /* while down: said once already */
    }
}

static void sink_lost(void *ud)
{
    audit_actor_t *st = ud;
    st->in_flight = 0;
    st->in_flight_bytes = 0;
    uint64_t from = audit_spool_settled_below(st->sp);
    if (!st->rewind_at || from < st->rewind_at)
        st->rewind_at = from;
}

static void sink_wake(void *ud)
{
    audit_actor_t *st = ud;
    if (st->wake_pending)
        return;
    if (mesh_send(st->self, mesh_self(st->self), AUDIT_MSG_SINK, NULL, 0) == 0)
        st->wake_pending = 1;
}

static const audit_sink_cbs_t sink_cbs = {
    .delivered = sink_delivered,
    .link = sink_link,
    .lost = sink_lost,
    .wake = sink_wake,
};

static void serve_sink(audit_actor_t *st)
{
    if (!st->sink)
        return;
    st->sink->ops->serve(st->sink);
    settle_failures(st);
    report_drops(st);
    pump(st);
}

/* ---- the actor ------------------------------------------------------------------------------ */

static int start_kafka(audit_actor_t *st)
{
    audit_args_t *a = st->a;
    char err[512];
    if (a->cfg.fs.open(st->self, a->cfg.fs_arg, &st->fs, err, sizeof(err)) != 0) {
        mesh_error("audit", "cannot open the audit spool: %s", err);
        return -1;
    }
    st->fs_open = 1;
    st->sp = audit_spool_open(&a->cfg.spool, &st->fs, now_ms(st), err, sizeof(err));
    if (!st->sp) {
        mesh_error("audit", "cannot open the audit spool %s: %s", a->cfg.spool_dir, err);
        return -1;
    }
    const audit_spool_stats_t *s = audit_spool_stats(st->sp);
    a->replayed_total += s->replayed;
    a->corrupt_bytes_total += s->corrupt_bytes;
    if (s->replayed || s->corrupt_bytes)
        mesh_info("audit",
                  "audit spool %s: %llu records to send from an earlier run, %llu bytes "
                  "cut (torn or corrupt)",
                  a->cfg.spool_dir, (unsigned long long)s->replayed,
                  (unsigned long long)s->corrupt_bytes);
    st->sink = a->cfg.sink_new(st->self, &sink_cbs, st, a->cfg.sink_arg, err, sizeof(err));
    if (!st->sink) {
        mesh_error("audit", "cannot start the Kafka producer: %s", err);
        return -1;
    }
    mesh_info("audit",
              "sending audit records to Kafka topic %s at %s (spool %s, at most %llu "
              "bytes)",
              a->cfg.topic, a->cfg.brokers, a->cfg.spool_dir,
              (unsigned long long)a->cfg.spool.max_bytes);
    pump(st);
    return 0;
}

static int start_file(audit_actor_t *st)
{
    char err[512];
    if (audit_jsonl_open(&st->file, &st->a->cfg.file, err, sizeof(err)) != 0) {
        /* Checked at start-up already: a file that cannot be opened now is counted, not fatal. */
        mesh_error("audit", "cannot open the audit file: %s; records are lost until a restart",
                   err);
        return 0;
    }
    st->file_open = 1;
    mesh_info("audit", "writing audit records to %s", st->a->cfg.file.path);
    return 0;
}

static int au_start(mesh_actor_t *self, void *arg)
{
    audit_args_t *a = arg;
    audit_actor_t *st = mesh_state(self);
    st->a = a;
    st->self = self;
    st->mode = a->cfg.mode;
    a->live = st;
    a->starts++;
    if (mesh_timer_start(self, TICK_MS * 1000000ull, TICK_MS * 1000000ull, AUDIT_MSG_TICK,
                         &st->tick_timer) != 0)
        return -1;
    if (st->mode == AUDIT_MODE_KAFKA)
        return start_kafka(st);
    if (st->mode == AUDIT_MODE_FILE)
        return start_file(st);
    return 0;
}

static int au_message(mesh_actor_t *self, mesh_msg_t *m)
{
    audit_actor_t *st = mesh_state(self);
    switch (m->type) {
    case AUDIT_MSG_RECORD: {
        const audit_rec_t *r = m->ptr;
        if (st->a->cfg.api)
            audit_api_taken(st->a->cfg.api, 1);
        if (r) {
            take(st, r->data, r->len);
            pump(st);
        }
        return 0;
    }
    case AUDIT_MSG_BATCH:
        if (m->ptr && st->a->cfg.api)
            audit_api_taken(st->a->cfg.api, ((const audit_batch_t *)m->ptr)->n);
        if (m->ptr) {
            on_batch(st, m->ptr);
            pump(st);
        }
        return 0;
    case AUDIT_MSG_SYNCED: {
        const uint64_t *id = mesh_msg_as(m, uint64_t);
        if (id && st->sp) {
            on_synced(st, *id);
            pump(st);
        }
        return 0;
    }
    case AUDIT_MSG_SINK:
        st->wake_pending = 0;
        serve_sink(st);
        return 0;
    case AUDIT_MSG_SPOOL_TIMER:
        if (m->corr != st->spool_timer)
            return 0;
        st->spool_timer = 0;
        if (st->sp)
            audit_spool_tick(st->sp, now_ms(st));
        pump(st);
        return 0;
    case AUDIT_MSG_RESUME:
        if (m->corr != st->resume_timer)
            return 0;
        st->resume_timer = 0;
        st->paused = 0;
        pump(st);
        return 0;
    case AUDIT_MSG_TICK:
        if (st->mode == AUDIT_MODE_KAFKA)
            serve_sink(st); /* the slow path: a lost wake-up, a read error being retried */
        return 0;
    default:
        return 0;
    }
}

/* Waits for the sync job in flight (at stop) and hands its result to the spool. */
static void finish_job(audit_actor_t *st)
{
    sync_job_t *j = st->job;
    if (!j)
        return;
    st->job = NULL;
    for (int i = 0; !atomic_load_explicit(&j->done, memory_order_acquire); i++) {
        if (i == 30000) { /* 30 s: the disk hangs; leave the spool open rather than race it */
            mesh_error("audit", "a spool sync does not finish; leaving the spool as it is");
            atomic_store_explicit(&j->orphaned, 1, memory_order_release);
            st->sp = NULL; /* not closed: the pool thread may still use it */
            return;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    audit_spool_synced(st->sp, &j->req, j->rc, now_ms(st));
    if (j->after_ran)
        free(j);
    else
        atomic_store_explicit(&j->orphaned, 1, memory_order_release); /* after_work frees it */
}

static void au_stop(mesh_actor_t *self, int reason)
{
    (void)reason;
    audit_actor_t *st = mesh_state(self);
    audit_args_t *a = st->a;
    if (!a)
        return;
    if (st->sink) {
        if (st->in_flight)
            st->sink->ops->flush(st->sink, a->cfg.stop_flush_ms);
        st->sink->ops->free(st->sink);
        st->sink = NULL;
    }
    int hung = 0;
    if (st->sp) {
        finish_job(st);
        hung = !st->sp;
    }
    if (st->sp) {
        audit_spool_flush(st->sp, now_ms(st));
        audit_spool_sync_t req;
        while (audit_spool_take_sync(st->sp, &req)) /* at stop: inline */
            audit_spool_synced(st->sp, &req, audit_spool_sync_run(st->sp, &req), now_ms(st));
        const audit_spool_stats_t *s = audit_spool_stats(st->sp);
        if (s->pending)
            mesh_info("audit",
                      "audit spool %s: %llu records not acknowledged yet: sent at the "
                      "next start",
                      a->cfg.spool_dir, (unsigned long long)s->pending);
        a->drops_before += spool_drops(st) - st->report_drops;
        audit_spool_close(st->sp);
        st->sp = NULL;
    }
    if (st->fs_open && a->cfg.fs.close && !hung)
        a->cfg.fs.close(a->cfg.fs_arg, &st->fs);
    st->fs_open = 0;
    if (st->file_open)
        audit_jsonl_close(&st->file);
    st->file_open = 0;
    if (a->live == st)
        a->live = NULL;
}

const mesh_actor_ops_t audit_actor_ops = {
    .name = "audit",
    .state_size = sizeof(audit_actor_t),
    .on_start = au_start,
    .on_message = au_message,
    .on_stop = au_stop,
};

/* ---- status --------------------------------------------------------------------------------- */

static const char *mode_name(audit_mode_t m)
{
    return m == AUDIT_MODE_KAFKA ? "kafka" : m == AUDIT_MODE_FILE ? "file" : "off";
}

void audit_actor_get_stats(const audit_args_t *a, audit_actor_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    const audit_actor_t *st = a->live;
    if (a->cfg.api)
        out->off_dropped = atomic_load(&a->cfg.api->off);
    out->dropped_reported = a->drops_reported;
    out->reports = a->reports;
    if (!st)
        return;
    out->link = st->link;
    out->accepted = st->accepted;
    out->sent = st->sent;
    out->acked = st->acked;
    out->failures = st->failures;
    out->rewinds = st->rewinds;
    out->in_flight = st->in_flight;
    out->dropped_total = drops_total(st);
    out->file_records = st->file_open ? st->file.stats.records : 0;
    out->file_lost = (st->file_open ? st->file.stats.lost : 0) + st->file_lost_closed;
    if (st->sp) {
        const audit_spool_stats_t *s = audit_spool_stats(st->sp);
        out->spool_pending = s->pending;
        out->spool_bytes_written = s->bytes_written;
        out->spool_payload = s->payload_bytes;
        out->spool_fsyncs = s->fsyncs;
        out->spool_writes = s->writes;
    }
}

const char *audit_actor_sink_name(const audit_args_t *a)
{
    return mode_name(a->cfg.mode);
}

json_t *audit_actor_status(const audit_args_t *a)
{
    const audit_actor_t *st = a->live;
    audit_mode_t mode = a->cfg.mode;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "sink", json_string(mode_name(mode)));
    if (a->cfg.api) {
        json_object_set_new(o, "boot_id", json_string(a->cfg.api->ctx.boot_hex));
        json_object_set_new(o, "emitted",
                            json_integer((json_int_t)atomic_load(&a->cfg.api->emitted)));
        json_object_set_new(o, "refused",
                            json_integer((json_int_t)atomic_load(&a->cfg.api->refused)));
    }
    if (mode == AUDIT_MODE_OFF || !st) {
        json_object_set_new(o, "state", json_string(mode == AUDIT_MODE_OFF ? "off" : "starting"));
        return o;
    }
    json_object_set_new(o, "accepted", json_integer((json_int_t)st->accepted));
    json_object_set_new(o, "last_error",
                        st->last_error[0] ? json_string(st->last_error) : json_null());
    if (st->last_error[0]) {
        char when[32];
        struct tm tm;
        gmtime_r(&st->last_error_at, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(o, "last_error_at", json_string(when));
    } else {
        json_object_set_new(o, "last_error_at", json_null());
    }
    if (mode == AUDIT_MODE_FILE) {
        const audit_jsonl_stats_t *f = &st->file.stats;
        json_object_set_new(o, "state",
                            json_string(!st->file_open     ? "failing"
                                        : st->file.failing ? "failing"
                                                           : "writing"));
        json_object_set_new(o, "file", json_string(a->cfg.file.path ? a->cfg.file.path : ""));
        json_object_set_new(o, "written",
                            json_integer((json_int_t)(st->file_open ? f->records : 0)));
        json_object_set_new(o, "bytes", json_integer((json_int_t)(st->file_open ? f->bytes : 0)));
        json_object_set_new(o, "rotations",
                            json_integer((json_int_t)(st->file_open ? f->rotations : 0)));
        json_object_set_new(
            o, "dropped",
            json_pack("{s:I}", "write_errors",
                      (json_int_t)((st->file_open ? f->lost : 0) + st->file_lost_closed)));
        if (st->file_open && st->file.last_error[0])
            json_object_set(o, "last_error", json_string(st->file.last_error));
        return o;
    }
    static const char *const links[] = {"connecting", "connected", "spooling"};
    json_object_set_new(o, "state", json_string(links[st->link]));
    json_object_set_new(o, "brokers", json_string(a->cfg.brokers ? a->cfg.brokers : ""));
    json_object_set_new(o, "topic", json_string(a->cfg.topic ? a->cfg.topic : ""));
    json_object_set_new(o, "sent", json_integer((json_int_t)st->sent));
    json_object_set_new(o, "acknowledged", json_integer((json_int_t)st->acked));
    json_object_set_new(o, "in_flight", json_integer((json_int_t)st->in_flight));
    json_object_set_new(o, "delivery_failures", json_integer((json_int_t)st->failures));
    json_object_set_new(o, "rewinds", json_integer((json_int_t)st->rewinds));
    if (st->sp) {
        const audit_spool_stats_t *s = audit_spool_stats(st->sp);
        json_object_set_new(
            o, "spool",
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "dir",
                      a->cfg.spool_dir ? a->cfg.spool_dir : "", "bytes", (json_int_t)s->bytes,
                      "max_bytes", (json_int_t)a->cfg.spool.max_bytes, "records",
                      (json_int_t)s->pending, "segments", (json_int_t)s->segments, "durable",
                      (json_int_t)s->durable, "fsyncs", (json_int_t)s->fsyncs, "write_errors",
                      (json_int_t)s->write_errors, "sync_errors", (json_int_t)s->sync_errors));
        json_object_set_new(
            o, "dropped",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "not_taken",
                      (json_int_t)(a->cfg.api ? atomic_load(&a->cfg.api->refused) : 0),
                      "spool_full", (json_int_t)(s->dropped_full - st->report_drops),
                      "oldest_deleted", (json_int_t)s->dropped_oldest, "too_long",
                      (json_int_t)s->dropped_size, "disk_errors", (json_int_t)s->dropped_io,
                      "unreadable", (json_int_t)(s->lost_corrupt + st->unreadable),
                      "earlier_starts", (json_int_t)a->drops_before, "reported",
                      (json_int_t)a->drops_reported));
        json_object_set_new(o, "replayed_at_start", json_integer((json_int_t)s->replayed));
        json_object_set_new(o, "corrupt_bytes_truncated",
                            json_integer((json_int_t)s->corrupt_bytes));
    }
    json_object_set_new(o, "dropped_reports", json_integer((json_int_t)a->reports));
    return o;
}
