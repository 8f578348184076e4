/*
 * simulations/sim_watcher.c: a simulated node's registry view: reg_watch_sm carried out by an
 * actor over the simulated network to the simulated etcd (see sim_watcher.h).
 */
#include "simulations/sim_watcher.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "actors/msg.h"

#define MS 1000000ull

/* Packet kinds; those going to the node are also its message types. */
enum {
    P_RANGE_REQ = 1, /* node -> etcd */
    P_WATCH_REQ,     /* node -> etcd */
    P_WATCH_CANCEL,  /* node -> etcd */
    P_RANGE_OK,      /* etcd -> node */
    P_RANGE_FAIL,    /* etcd -> node */
    P_LINE,          /* etcd -> node: a watch line or the end of the stream */
    T_RETRY,         /* timers */
    T_FLUSH,
};

/* One watch stream (one HTTP request of the real client). Owned by the node until it is
 * freed, as packets in flight point at it. */
typedef struct stream {
    sim_watcher_t *w;
    uint64_t seq;
    int64_t start;
    int64_t etcd_id;       /* 0 until etcd opened it */
    uint64_t up_last_at;   /* FIFO of the client's packets */
    uint64_t down_last_at; /* FIFO of etcd's lines */
    uint64_t cut_at;       /* nonzero: lines arriving after it were lost in a reset */
} stream_t;

typedef struct pkt {
    struct pkt *prev, *next; /* the node's packets in flight, freed with it if never delivered */
    sim_watcher_t *w;
    stream_t *st;
    int kind;
    uint64_t id; /* range id */
    uint64_t at;
    sim_range_t *range;
    sim_watch_line_t *line;
} pkt_t;

struct sim_watcher {
    mesh_exec_t *sim;
    sim_etcd_t *etcd;
    uint32_t index;
    char *prefix;
    sim_link_cfg_t link;
    sim_watcher_hooks_t hooks;
    reg_table_t table;
    reg_watch_sm_t sm;
    mesh_actor_id_t actor;
    uint64_t next_id;
    uint64_t cur_range; /* id of the range in flight, 0 when none */
    stream_t *cur;      /* the current watch stream, NULL when none */
    stream_t **streams;
    size_t n_streams;
    uint64_t retry_timer, flush_timer;
    uint64_t publishes;
    uint32_t range_epoch;
    pkt_t *in_flight;
};

static void wlog(sim_watcher_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void wlog(sim_watcher_t *w, const char *fmt, ...)
{
    if (!w->hooks.log)
        return;
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%8.3f n%u ", (double)mesh_sim_now(w->sim) / 1e9 - 1.0,
                     w->index);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    w->hooks.log(w->hooks.ud, buf);
}

static void fold(sim_watcher_t *w, uint64_t v)
{
    if (w->hooks.fold)
        w->hooks.fold(w->hooks.ud, v);
}

static uint64_t draw(sim_watcher_t *w, uint64_t min, uint64_t jitter)
{
    return min + (jitter ? mesh_sim_random(w->sim) % (jitter + 1) : 0);
}

static void pkt_free(void *p)
{
    pkt_t *k = p;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->w->in_flight = k->next;
    if (k->next)
        k->next->prev = k->prev;
    sim_etcd_range_free(k->range);
    sim_etcd_line_free(k->line);
    free(k);
}

static pkt_t *pkt_new(sim_watcher_t *w, stream_t *st, int kind)
{
    pkt_t *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    k->w = w;
    k->st = st;
    k->kind = kind;
    k->next = w->in_flight;
    if (k->next)
        k->next->prev = k;
    w->in_flight = k;
    return k;
}

/* ---- etcd side: requests arriving, lines leaving ---- */

static void to_node(void *arg);

static void send_to_node(sim_watcher_t *w, pkt_t *k, uint64_t at)
{
    k->at = at;
    mesh_sim_call_at(w->sim, at, to_node, k);
}

/* A line of stream st leaves etcd now. */
static void stream_sink(void *ctx, sim_watch_line_t *line)
{
    stream_t *st = ctx;
    sim_watcher_t *w = st->w;
    uint64_t now = mesh_sim_now(w->sim);
    uint64_t at = now + draw(w, w->link.latency_min_ns, w->link.latency_jitter_ns);
    if (line->closed && draw(w, 0, 99) < w->link.reset_pct) {
        st->cut_at = at; /* a reset: the close overtakes what is still in flight */
    } else if (at < st->down_last_at) {
        at = st->down_last_at;
    }
    st->down_last_at = at;
    pkt_t *k = pkt_new(w, st, P_LINE);
    k->line = line;
    send_to_node(w, k, at);
}

static void at_etcd(void *arg)
{
    pkt_t *k = arg;
    sim_watcher_t *w = k->w;
    uint64_t now = mesh_sim_now(w->sim);
    switch (k->kind) {
    case P_RANGE_REQ: {
        sim_range_t *r = sim_etcd_range(w->etcd, w->index, w->prefix);
        pkt_t *a = pkt_new(w, NULL, r ? P_RANGE_OK : P_RANGE_FAIL);
        a->id = k->id;
        a->range = r;
        send_to_node(w, a,
                     now + (r ? draw(w, w->link.latency_min_ns, w->link.latency_jitter_ns)
                              : draw(w, w->link.fail_min_ns, w->link.fail_jitter_ns)));
        break;
    }
    case P_WATCH_REQ: {
        int64_t id = sim_etcd_watch(w->etcd, w->index, w->prefix, k->st->start, stream_sink, k->st);
        if (id < 0) {
            sim_watch_line_t *l = calloc(1, sizeof(*l));
            if (!l)
                abort();
            l->closed = 1;
            pkt_t *a = pkt_new(w, k->st, P_LINE);
            a->line = l;
            uint64_t at = now + draw(w, w->link.fail_min_ns, w->link.fail_jitter_ns);
            if (at < k->st->down_last_at)
                at = k->st->down_last_at;
            k->st->down_last_at = at;
            send_to_node(w, a, at);
        } else {
            k->st->etcd_id = id;
        }
        break;
    }
    case P_WATCH_CANCEL:
        if (k->st->etcd_id > 0)
            sim_etcd_watch_cancel(w->etcd, k->st->etcd_id);
        break;
    }
    pkt_free(k);
}

static void send_to_etcd(sim_watcher_t *w, stream_t *st, int kind, uint64_t id)
{
    pkt_t *k = pkt_new(w, st, kind);
    k->id = id;
    uint64_t at = mesh_sim_now(w->sim) + draw(w, w->link.latency_min_ns, w->link.latency_jitter_ns);
    if (st) {
        if (at < st->up_last_at)
            at = st->up_last_at;
        st->up_last_at = at;
    }
    k->at = at;
    mesh_sim_call_at(w->sim, at, at_etcd, k);
}

/* A packet reaches the node's host: hand it to the actor (or lose it after a reset). */
static void to_node(void *arg)
{
    pkt_t *k = arg;
    sim_watcher_t *w = k->w;
    if (k->kind == P_LINE && k->st->cut_at && k->at > k->st->cut_at) {
        fold(w, 0x105e);
        pkt_free(k); /* lost with the connection */
        return;
    }
    if (mesh_exec_send_ptr(w->sim, w->actor, (uint32_t)k->kind, k, pkt_free) < 0)
        pkt_free(k);
}

/* ---- the adapter: effects of the machine ---- */

static void run(mesh_actor_t *self, sim_watcher_t *w, reg_wfxs_t *fx);

static void restart_timer(mesh_actor_t *self, uint64_t *id, uint64_t ms, uint32_t type)
{
    if (*id)
        mesh_timer_stop(self, *id);
    *id = 0;
    if (mesh_timer_start(self, ms * MS, 0, type, id) < 0)
        abort();
}

static void cancel_stream(sim_watcher_t *w)
{
    if (!w->cur)
        return;
    send_to_etcd(w, w->cur, P_WATCH_CANCEL, 0);
    w->cur = NULL;
}

static void run(mesh_actor_t *self, sim_watcher_t *w, reg_wfxs_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        const reg_wfx_t *e = &fx->v[i];
        fold(w, ((uint64_t)e->kind << 56) ^ (uint64_t)e->arg ^ ((uint64_t)w->index << 48));
        switch (e->kind) {
        case REG_WFX_RANGE:
            w->cur_range = ++w->next_id; /* a range still in flight is forgotten */
            wlog(w, "RANGE");
            send_to_etcd(w, NULL, P_RANGE_REQ, w->cur_range);
            break;
        case REG_WFX_WATCH: {
            cancel_stream(w);
            stream_t *st = calloc(1, sizeof(*st));
            stream_t **ss = realloc(w->streams, (w->n_streams + 1) * sizeof(*ss));
            if (!st || !ss)
                abort();
            w->streams = ss;
            w->streams[w->n_streams++] = st;
            st->w = w;
            st->seq = ++w->next_id;
            st->start = e->arg;
            w->cur = st;
            wlog(w, "WATCH from %lld (stream %llu)", (long long)e->arg,
                 (unsigned long long)st->seq);
            send_to_etcd(w, st, P_WATCH_REQ, 0);
            break;
        }
        case REG_WFX_CANCEL_WATCH:
            wlog(w, "CANCEL_WATCH");
            cancel_stream(w);
            break;
        case REG_WFX_RETRY_TIMER:
            wlog(w, "RETRY_TIMER %lld ms", (long long)e->arg);
            restart_timer(self, &w->retry_timer, (uint64_t)e->arg, T_RETRY);
            break;
        case REG_WFX_FLUSH_TIMER:
            restart_timer(self, &w->flush_timer, (uint64_t)e->arg, T_FLUSH);
            break;
        case REG_WFX_PUBLISH:
            w->publishes++;
            wlog(w, "PUBLISH revision %lld, %zu instances, %zu entries", (long long)w->sm.revision,
                 w->table.n_valid, w->table.n_entries);
            if (w->hooks.on_publish)
                w->hooks.on_publish(w->hooks.ud, w);
            break;
        case REG_WFX_LINK:
            wlog(w, "LINK %s", reg_link_name((reg_link_t)e->arg));
            break;
        }
    }
}

static void on_line(mesh_actor_t *self, sim_watcher_t *w, const sim_watch_line_t *l,
                    uint64_t now_ms)
{
    reg_wfxs_t fx = {.n = 0};
    if (l->closed) {
        wlog(w, "stream %llu closed", (unsigned long long)w->cur->seq);
        w->cur = NULL;
        reg_watch_sm_watch_closed(&w->sm, now_ms, &fx);
        run(self, w, &fx);
        return;
    }
    if (l->error) {
        wlog(w, "stream %llu: error line", (unsigned long long)w->cur->seq);
        fx.v[fx.n++] = (reg_wfx_t){REG_WFX_CANCEL_WATCH, 0};
        reg_watch_sm_watch_closed(&w->sm, now_ms, &fx);
        run(self, w, &fx);
        return;
    }
    for (size_t i = 0; i < l->n_events; i++) {
        const sim_event_t *ev = &l->events[i];
        const char *val = ev->is_delete ? "" : ev->kv.value;
        reg_watch_sm_event(&w->sm, ev->is_delete, ev->kv.key, strlen(ev->kv.key), val, strlen(val),
                           ev->kv.mod_revision, ev->kv.lease);
    }
    reg_watch_line_t wl = {
        .header_revision = l->header_revision,
        .created = l->created,
        .progress = !l->created && !l->canceled && l->n_events == 0,
        .canceled = l->canceled,
        .compact_revision = l->compact_revision,
    };
    int64_t before = w->sm.revision;
    reg_watch_sm_watch_line(&w->sm, &wl, now_ms, &fx);
    wlog(w,
         "line%s%s%s header %lld, %zu events (revisions %lld..%lld), compact %lld: revision "
         "%lld -> %lld",
         l->created ? " created" : "", l->canceled ? " canceled" : "",
         wl.progress ? " progress" : "", (long long)l->header_revision, l->n_events,
         l->n_events ? (long long)l->events[0].kv.mod_revision : 0ll,
         l->n_events ? (long long)l->events[l->n_events - 1].kv.mod_revision : 0ll,
         (long long)l->compact_revision, (long long)before, (long long)w->sm.revision);
    run(self, w, &fx);
}

static int node_start(mesh_actor_t *self, void *arg)
{
    sim_watcher_t *w = arg;
    reg_wfxs_t fx = {.n = 0};
    reg_watch_sm_start(&w->sm, mesh_now(self) / MS, &fx);
    run(self, w, &fx);
    return 0;
}

static int node_message(mesh_actor_t *self, mesh_msg_t *m)
{
    sim_watcher_t *w = mesh_arg(self);
    uint64_t now_ms = mesh_now(self) / MS;
    reg_wfxs_t fx = {.n = 0};
    fold(w, ((uint64_t)m->type << 32) ^ w->index ^ mesh_now(self));
    if (m->flags & MESH_MSG_F_TIMER) {
        if (m->type == T_RETRY && m->corr == w->retry_timer) {
            w->retry_timer = 0;
            reg_watch_sm_retry_timer(&w->sm, now_ms, &fx);
        } else if (m->type == T_FLUSH && m->corr == w->flush_timer) {
            w->flush_timer = 0;
            reg_watch_sm_flush_timer(&w->sm, now_ms, &fx);
        }
        run(self, w, &fx);
        return 0;
    }
    pkt_t *k = m->ptr;
    if (!k)
        return 0;
    switch (m->type) {
    case P_RANGE_OK:
        if (k->id != w->cur_range)
            break; /* canceled */
        w->cur_range = 0;
        w->range_epoch = k->range->epoch;
        reg_watch_sm_range_begin(&w->sm);
        for (size_t i = 0; i < k->range->n; i++) {
            const sim_kv_t *kv = &k->range->kvs[i];
            reg_watch_sm_range_kv(&w->sm, kv->key, strlen(kv->key), kv->value, strlen(kv->value),
                                  kv->mod_revision, kv->lease);
        }
        wlog(w, "range: %zu keys at revision %lld", k->range->n, (long long)k->range->revision);
        reg_watch_sm_range_done(&w->sm, k->range->revision, now_ms, &fx);
        run(self, w, &fx);
        break;
    case P_RANGE_FAIL:
        if (k->id != w->cur_range)
            break;
        w->cur_range = 0;
        wlog(w, "range failed: etcd unreachable");
        reg_watch_sm_range_failed(&w->sm, now_ms, &fx);
        run(self, w, &fx);
        break;
    case P_LINE:
        if (k->st != w->cur)
            break; /* a stream the node closed: its lines are never seen */
        on_line(self, w, k->line, now_ms);
        break;
    }
    if (w->hooks.on_step)
        w->hooks.on_step(w->hooks.ud, w);
    return 0;
}

static const mesh_actor_ops_t node_ops = {
    .name = "sim_watcher",
    .state_size = sizeof(uint64_t),
    .on_start = node_start,
    .on_message = node_message,
};

sim_watcher_t *sim_watcher_new(mesh_exec_t *sim, sim_etcd_t *etcd, uint32_t index,
                               const char *prefix, const reg_watch_cfg_t *wcfg,
                               const sim_link_cfg_t *link, const sim_watcher_hooks_t *hooks)
{
    sim_watcher_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->sim = sim;
    w->etcd = etcd;
    w->index = index;
    w->link = *link;
    if (hooks)
        w->hooks = *hooks;
    w->prefix = strdup(prefix);
    if (!w->prefix || reg_table_init(&w->table, prefix) < 0) {
        free(w->prefix);
        free(w);
        return NULL;
    }
    reg_watch_sm_init(&w->sm, &w->table, 0, wcfg);
    if (mesh_exec_spawn(sim, &node_ops, w, NULL, &w->actor) < 0) {
        reg_table_destroy(&w->table);
        free(w->prefix);
        free(w);
        return NULL;
    }
    return w;
}

void sim_watcher_free(sim_watcher_t *w)
{
    if (!w)
        return;
    while (w->in_flight)
        pkt_free(w->in_flight);
    for (size_t i = 0; i < w->n_streams; i++)
        free(w->streams[i]);
    free(w->streams);
    reg_table_destroy(&w->table);
    free(w->prefix);
    free(w);
}

uint32_t sim_watcher_index(const sim_watcher_t *w)
{
    return w->index;
}

const reg_table_t *sim_watcher_table(const sim_watcher_t *w)
{
    return &w->table;
}

const reg_watch_sm_t *sim_watcher_sm(const sim_watcher_t *w)
{
    return &w->sm;
}

uint64_t sim_watcher_publishes(const sim_watcher_t *w)
{
    return w->publishes;
}

uint32_t sim_watcher_range_epoch(const sim_watcher_t *w)
{
    return w->range_epoch;
}

uint64_t sim_watcher_fingerprint(const sim_watcher_t *w)
{
    uint64_t fp = 0;
    for (size_t i = 0; i < w->table.n_buckets; i++)
        for (const reg_entry_t *e = w->table.buckets[i]; e; e = e->next)
            fp += sim_kv_fp(e->key, e->mod_revision);
    return fp;
}
