/*
 * simulations/sim_etcd_link.c: the simulated etcd seam of one node (see sim_etcd_link.h).
 *
 * Every request becomes a packet scheduled on the simulator for its arrival at etcd (on the
 * etcd host's logical process, or on the serial queue), where it is applied to the simulated
 * store; the answer becomes a packet scheduled for its arrival back at the node (on the node
 * host's logical process), where it is handed to the actor's deliver callback as an
 * etcd_result_t, exactly as registry/etcd_api_curl.c hands over what libcurl received.
 * Packets of an earlier incarnation (an actor that crashed or stopped) and answers to
 * cancelled requests are dropped when they arrive.
 *
 * The two ends may run at once on two threads (actors/sim_lp.c), so each field has one side:
 * the node's (the incarnation, the requests awaiting an answer, a stream's cancel flag and
 * upstream order) or etcd's (a stream's watch id and downstream order). What one side learns
 * from the other travels in packets. A packet stays on the list of the side that made it
 * until the receiver has marked it done (a release store, after which it never touches it);
 * the maker frees done packets when it makes its next one, and the rest with the link.
 */
#include "simulations/sim_etcd_link.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One watch stream (one HTTP request of the real client). */
typedef struct stream {
    struct stream *next;
    sim_etcd_link_t *l;
    uint64_t tag;
    uint32_t gen;
    char *prefix;
    int64_t start;
    int64_t etcd_id;       /* etcd's side: 0 until etcd opened it */
    uint64_t down_last_at; /* etcd's side: FIFO of etcd's lines */
    int canceled;          /* the node's side: it closed the stream, its lines are never seen */
    uint64_t up_last_at;   /* the node's side: FIFO of the client's packets */
} stream_t;

typedef struct sim_etcd_link sim_etcd_link_t;

/* A request as it travels (a deep copy of what the actor submitted). */
typedef struct sreq {
    etcd_call_t call;
    char *key;
    int prefix;
    int64_t lease, ttl_s;
    etcd_cmp_t *cmps;
    size_t n_cmps;
    etcd_op_t *ops; /* success, then failure */
    size_t n_success, n_failure;
} sreq_t;

enum { P_REQ, P_WATCH_REQ, P_WATCH_CANCEL, P_ANSWER, P_LINE };

typedef struct pkt {
    struct pkt *next; /* on its maker's list until the receiver is done with it */
    _Atomic int done; /* the receiver has finished with it (release) */
    sim_etcd_link_t *l;
    int kind;
    uint32_t gen;
    uint64_t tag;
    uint64_t rid; /* P_REQ, P_ANSWER: the request's number on the node's side */
    uint64_t at;
    stream_t *st;
    sreq_t *req;
    etcd_result_t *res;
    sim_watch_line_t *line;
} pkt_t;

/* A request awaiting its answer (the node's side): cancelling its tag forgets it. */
typedef struct pending {
    uint64_t rid, tag;
} pending_t;

typedef struct link_api {
    etcd_api_t super;
    sim_etcd_link_t *l;
} link_api_t;

struct sim_etcd_link {
    mesh_exec_t *sim;
    sim_etcd_t *etcd;
    uint32_t client;
    sim_link_cfg_t cfg;
    sim_link_hooks_t hooks;
    /* the node's side */
    uint32_t gen;    /* current incarnation; 0: none */
    link_api_t *api; /* of the current incarnation */
    stream_t *streams;
    pending_t *pending; /* requests of this incarnation awaiting an answer */
    size_t n_pending, cap_pending;
    uint64_t next_rid;
    pkt_t *node_pkts; /* made on the node's side */
    /* etcd's side */
    pkt_t *etcd_pkts; /* made on etcd's side */
};

/* ---- helpers -------------------------------------------------------------------------------- */

static void llog(sim_etcd_link_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void llog(sim_etcd_link_t *l, const char *fmt, ...)
{
    if (!l->hooks.log)
        return;
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%8.3f n%u ", (double)mesh_sim_now(l->sim) / 1e9 - 1.0,
                     l->client);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    l->hooks.log(l->hooks.ud, buf);
}

static void fold(sim_etcd_link_t *l, uint64_t v)
{
    if (l->hooks.fold)
        l->hooks.fold(l->hooks.ud, v);
}

static uint64_t draw(sim_etcd_link_t *l, uint64_t min, uint64_t jitter)
{
    return min + (jitter ? mesh_sim_random(l->sim) % (jitter + 1) : 0);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        abort();
    return d;
}

static void sreq_free(sreq_t *r)
{
    if (!r)
        return;
    free(r->key);
    for (size_t i = 0; i < r->n_cmps; i++)
        free((char *)r->cmps[i].key);
    for (size_t i = 0; i < r->n_success + r->n_failure; i++) {
        free((char *)r->ops[i].key);
        free((char *)r->ops[i].value);
    }
    free(r->cmps);
    free(r->ops);
    free(r);
}

static sreq_t *sreq_copy(const etcd_request_t *q)
{
    sreq_t *r = xcalloc(1, sizeof(*r));
    r->call = q->call;
    r->key = xstrdup(q->key);
    r->prefix = q->prefix;
    r->lease = q->lease;
    r->ttl_s = q->ttl_s;
    r->n_cmps = q->n_cmps;
    r->cmps = xcalloc(q->n_cmps, sizeof(*r->cmps));
    for (size_t i = 0; i < q->n_cmps; i++) {
        r->cmps[i] = q->cmps[i];
        r->cmps[i].key = xstrdup(q->cmps[i].key);
    }
    r->n_success = q->n_success;
    r->n_failure = q->n_failure;
    r->ops = xcalloc(q->n_success + q->n_failure, sizeof(*r->ops));
    for (size_t i = 0; i < q->n_success + q->n_failure; i++) {
        const etcd_op_t *o = i < q->n_success ? &q->success[i] : &q->failure[i - q->n_success];
        r->ops[i] = *o;
        r->ops[i].key = xstrdup(o->key);
        char *v = xcalloc(o->value_len + 1, 1);
        if (o->value_len)
            memcpy(v, o->value, o->value_len);
        r->ops[i].value = v;
    }
    return r;
}

static void pkt_free(pkt_t *k)
{
    sreq_free(k->req);
    etcd_result_free(k->res);
    sim_etcd_line_free(k->line);
    free(k);
}

/* The receiver is done with k: it never touches it again, its maker frees it. */
static void pkt_done(pkt_t *k)
{
    atomic_store_explicit(&k->done, 1, memory_order_release);
}

/* A new packet of incarnation gen on the list *list of the side making it; frees that side's
 * done ones first. */
static pkt_t *pkt_new(sim_etcd_link_t *l, pkt_t **list, int kind, uint32_t gen, uint64_t tag,
                      stream_t *st)
{
    for (pkt_t **p = list; *p;) {
        pkt_t *d = *p;
        if (atomic_load_explicit(&d->done, memory_order_acquire)) {
            *p = d->next;
            pkt_free(d);
        } else {
            p = &d->next;
        }
    }
    pkt_t *k = xcalloc(1, sizeof(*k));
    k->l = l;
    k->kind = kind;
    k->gen = gen;
    k->tag = tag;
    k->st = st;
    k->next = *list;
    *list = k;
    return k;
}

/* ---- etcd's side ---------------------------------------------------------------------------- */

static void to_node(void *arg);

static void send_to_node(sim_etcd_link_t *l, pkt_t *k, uint64_t at)
{
    k->at = at;
    /* on the node host's process: at least the link's least latency away, so it crosses
     * processes like any packet (actors/sim_lp.c) */
    int rc = l->cfg.node_host ? mesh_sim_call_at_host(l->sim, l->cfg.node_host, at, to_node, k)
                              : mesh_sim_call_at(l->sim, at, to_node, k);
    if (rc < 0)
        abort();
}

static void answer(sim_etcd_link_t *l, pkt_t *req, etcd_result_t *res, int reachable)
{
    pkt_t *a = pkt_new(l, &l->etcd_pkts, P_ANSWER, req->gen, req->tag, NULL);
    a->rid = req->rid;
    a->res = res;
    uint64_t now = mesh_sim_now(l->sim);
    send_to_node(l, a,
                 now + (reachable ? draw(l, l->cfg.latency_min_ns, l->cfg.latency_jitter_ns)
                                  : draw(l, l->cfg.fail_min_ns, l->cfg.fail_jitter_ns)));
}

/* A line of stream st leaves etcd now. */
static void stream_line(void *ctx, sim_watch_line_t *line)
{
    stream_t *st = ctx;
    sim_etcd_link_t *l = st->l;
    uint64_t now = mesh_sim_now(l->sim);
    uint64_t at = now + draw(l, l->cfg.latency_min_ns, l->cfg.latency_jitter_ns);
    if (line->closed && draw(l, 0, 99) < l->cfg.reset_pct) {
        /* a reset: the close overtakes what is still in flight, which the node then drops
         * (the close cancels the stream on its side) */
    } else if (at < st->down_last_at) {
        at = st->down_last_at;
    }
    st->down_last_at = at;
    pkt_t *k = pkt_new(l, &l->etcd_pkts, P_LINE, st->gen, st->tag, st);
    k->line = line;
    send_to_node(l, k, at);
}

/* Matches a key against a request's key (or prefix). */
static int key_matches(const char *key, const char *want, int prefix)
{
    return prefix ? strncmp(key, want, strlen(want)) == 0 : strcmp(key, want) == 0;
}

static etcd_result_t *range_result(sim_etcd_link_t *l, const sreq_t *r, uint64_t tag,
                                   etcd_call_t call, etcd_result_t *res)
{
    sim_range_t *rg = sim_etcd_range(l->etcd, l->client, r->prefix ? r->key : "");
    if (!res)
        res = etcd_result_new(call, tag);
    if (!res || !rg)
        abort();
    res->revision = rg->revision;
    res->origin = rg->epoch;
    for (size_t i = 0; i < rg->n; i++) {
        const sim_kv_t *kv = &rg->kvs[i];
        if (!key_matches(kv->key, r->key, r->prefix))
            continue;
        if (etcd_result_add_kv(res, kv->key, strlen(kv->key), kv->value, strlen(kv->value),
                               kv->create_revision, kv->mod_revision, kv->version, kv->lease) < 0)
            abort();
    }
    sim_etcd_range_free(rg);
    return res;
}

/* Applies a txn: compares, then one branch, as one revision. */
static etcd_result_t *txn_result(sim_etcd_link_t *l, const sreq_t *r, uint64_t tag)
{
    etcd_result_t *res = etcd_result_new(ETCD_CALL_TXN, tag);
    if (!res)
        abort();
    int ok = 1;
    for (size_t i = 0; ok && i < r->n_cmps; i++)
        ok = sim_etcd_compare(l->etcd, r->cmps[i].key, r->cmps[i].target, r->cmps[i].result,
                              r->cmps[i].value);
    res->succeeded = ok;
    const etcd_op_t *ops = ok ? r->ops : r->ops + r->n_success;
    size_t n = ok ? r->n_success : r->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == ETCD_OP_PUT && ops[i].lease &&
            !sim_etcd_lease_exists(l->etcd, ops[i].lease)) {
            res->err = ETCD_API_ERR_SERVER;
            res->server.code = ETCD_CODE_NOT_FOUND;
            snprintf(res->server.message, sizeof(res->server.message),
                     "etcdserver: requested lease not found");
            return res;
        }
    sim_etcd_txn_begin(l->etcd);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == ETCD_OP_PUT) {
            sim_etcd_txn_put(l->etcd, ops[i].key, ops[i].value, ops[i].lease, 0);
        } else if (ops[i].kind == ETCD_OP_DELETE) {
            if (!ops[i].prefix) {
                sim_etcd_txn_delete(l->etcd, ops[i].key);
                continue;
            }
            for (size_t k = 0; k < sim_etcd_live_count(l->etcd); k++) {
                const sim_kv_t *kv = sim_etcd_live_at(l->etcd, k);
                if (key_matches(kv->key, ops[i].key, 1))
                    sim_etcd_txn_delete(l->etcd, kv->key);
            }
        }
    }
    int64_t rev = sim_etcd_txn_commit(l->etcd);
    res->revision = rev ? rev : sim_etcd_revision(l->etcd);
    for (size_t i = 0; i < n; i++)
        if (ops[i].kind == ETCD_OP_RANGE) {
            sreq_t q = {.key = (char *)ops[i].key, .prefix = ops[i].prefix};
            range_result(l, &q, tag, ETCD_CALL_TXN, res);
        }
    if (rev)
        fold(l, (uint64_t)rev << 8 | l->client);
    return res;
}

static void at_etcd(void *arg)
{
    pkt_t *k = arg;
    sim_etcd_link_t *l = k->l;
    uint64_t now = mesh_sim_now(l->sim);
    int reachable = sim_etcd_reachable(l->etcd, l->client);
    switch (k->kind) {
    case P_REQ: {
        const sreq_t *r = k->req;
        etcd_result_t *res = NULL;
        if (!reachable) {
            res = etcd_result_new(r->call, k->tag);
            if (!res)
                abort();
            res->err = ETCD_API_ERR_UNAVAILABLE;
        } else if (r->call == ETCD_CALL_RANGE) {
            res = range_result(l, r, k->tag, ETCD_CALL_RANGE, NULL);
            llog(l, "range: %zu keys at revision %lld", res->n_kvs, (long long)res->revision);
        } else if (r->call == ETCD_CALL_TXN) {
            res = txn_result(l, r, k->tag);
            llog(l, "txn: %s, revision %lld",
                 res->err         ? "lease not found"
                 : res->succeeded ? "succeeded"
                                  : "compare failed",
                 (long long)res->revision);
        } else {
            res = etcd_result_new(r->call, k->tag);
            if (!res)
                abort();
            res->revision = sim_etcd_revision(l->etcd);
            if (r->call == ETCD_CALL_LEASE_GRANT) {
                res->lease = sim_etcd_lease_grant(l->etcd, l->client, r->ttl_s, now);
                res->ttl_s = r->ttl_s;
                llog(l, "lease grant: %llx", (unsigned long long)res->lease);
            } else if (r->call == ETCD_CALL_LEASE_KEEPALIVE) {
                res->lease = r->lease;
                res->ttl_s = sim_etcd_lease_keepalive(l->etcd, l->client, r->lease, now);
            } else if (r->call == ETCD_CALL_LEASE_REVOKE) {
                res->lease = r->lease;
                int64_t rev = sim_etcd_lease_revoke(l->etcd, r->lease);
                if (rev)
                    res->revision = rev;
                llog(l, "lease revoke: %llx -> %lld", (unsigned long long)r->lease, (long long)rev);
            }
        }
        answer(l, k, res, reachable);
        break;
    }
    case P_WATCH_REQ: {
        /* opened even when the node has closed the stream since: its cancel follows on the
         * same connection and closes it, and the node drops what came meanwhile */
        stream_t *st = k->st;
        st->etcd_id = sim_etcd_watch(l->etcd, l->client, st->prefix, st->start, stream_line, st);
        if (st->etcd_id < 0) {
            sim_watch_line_t *line = xcalloc(1, sizeof(*line));
            line->closed = 1;
            pkt_t *a = pkt_new(l, &l->etcd_pkts, P_LINE, st->gen, st->tag, st);
            a->line = line;
            uint64_t at = now + draw(l, l->cfg.fail_min_ns, l->cfg.fail_jitter_ns);
            if (at < st->down_last_at)
                at = st->down_last_at;
            st->down_last_at = at;
            send_to_node(l, a, at);
            st->etcd_id = 0;
        }
        break;
    }
    case P_WATCH_CANCEL:
        if (k->st->etcd_id > 0)
            sim_etcd_watch_cancel(l->etcd, k->st->etcd_id);
        k->st->etcd_id = 0;
        break;
    }
    pkt_done(k);
}

static void send_to_etcd(sim_etcd_link_t *l, pkt_t *k)
{
    uint64_t at = mesh_sim_now(l->sim) + draw(l, l->cfg.latency_min_ns, l->cfg.latency_jitter_ns);
    if (k->st) {
        if (at < k->st->up_last_at)
            at = k->st->up_last_at;
        k->st->up_last_at = at;
    }
    k->at = at;
    /* etcd is shared by every node: on a logical process of its own, at least the link's least
     * latency away (actors/sim_lp.c), or alone on the serial queue */
    int rc = l->cfg.etcd_host ? mesh_sim_call_at_host(l->sim, l->cfg.etcd_host, at, at_etcd, k)
                              : mesh_sim_call_at_serial(l->sim, at, at_etcd, k);
    if (rc < 0)
        abort();
}

/* ---- the node's side ------------------------------------------------------------------------ */

/* A watch line as the seam's result. */
static etcd_result_t *line_result(const sim_watch_line_t *line, uint64_t tag)
{
    etcd_result_t *res = etcd_result_new(ETCD_CALL_WATCH, tag);
    if (!res)
        abort();
    if (line->closed || line->error) {
        res->closed = 1;
        res->err = line->error ? ETCD_API_ERR_SERVER : ETCD_API_ERR_CLOSED;
        if (line->error) {
            res->server.code = ETCD_CODE_UNAVAILABLE;
            snprintf(res->server.message, sizeof(res->server.message), "etcdserver: error");
        }
        return res;
    }
    res->revision = line->header_revision;
    res->created = line->created;
    res->canceled = line->canceled;
    res->compact_revision = line->compact_revision;
    res->progress = !line->created && !line->canceled && line->n_events == 0;
    for (size_t i = 0; i < line->n_events; i++) {
        const sim_event_t *ev = &line->events[i];
        const char *val = ev->is_delete ? "" : ev->kv.value;
        if (etcd_result_add_event(res, ev->is_delete, ev->kv.key, strlen(ev->kv.key), val,
                                  strlen(val), ev->kv.create_revision, ev->kv.mod_revision,
                                  ev->kv.version, ev->kv.lease) < 0)
            abort();
    }
    return res;
}

/* Forgets the awaited request rid; 0 if it was not awaited (cancelled). */
static int pending_take(sim_etcd_link_t *l, uint64_t rid)
{
    for (size_t i = 0; i < l->n_pending; i++)
        if (l->pending[i].rid == rid) {
            l->pending[i] = l->pending[--l->n_pending];
            return 1;
        }
    return 0;
}

/* A packet reaches the node's host: hand it to the actor (or lose it). */
static void to_node(void *arg)
{
    pkt_t *k = arg;
    sim_etcd_link_t *l = k->l;
    if (k->gen != l->gen || !l->api || (k->kind == P_ANSWER && !pending_take(l, k->rid))) {
        pkt_done(k); /* for an actor that is gone, or a request it cancelled */
        return;
    }
    etcd_result_t *res = NULL;
    if (k->kind == P_LINE) {
        stream_t *st = k->st;
        if (st->canceled) {
            fold(l, 0x105e);
            pkt_done(k); /* a stream the node closed, or lost with the connection */
            return;
        }
        res = line_result(k->line, k->tag);
        if (res->closed)
            st->canceled = 1; /* nothing more comes on it */
        llog(l, "line%s%s%s header %lld, %zu events", res->closed ? " closed" : "",
             res->created ? " created" : "", res->canceled ? " canceled" : "",
             (long long)res->revision, res->n_events);
    } else {
        res = k->res;
        k->res = NULL;
    }
    fold(l, k->tag ^ (uint64_t)res->err << 48);
    pkt_done(k);
    l->api->super.deliver(l->api->super.ud, res);
}

/* ---- the seam ------------------------------------------------------------------------------- */

static int api_submit(etcd_api_t *api, const etcd_request_t *q)
{
    sim_etcd_link_t *l = ((link_api_t *)api)->l;
    fold(l, (uint64_t)q->call << 56 ^ q->tag);
    if (q->call == ETCD_CALL_WATCH) {
        stream_t *st = xcalloc(1, sizeof(*st));
        st->l = l;
        st->tag = q->tag;
        st->gen = l->gen;
        st->prefix = xstrdup(q->key);
        st->start = q->start_revision;
        st->next = l->streams;
        l->streams = st;
        llog(l, "WATCH from %lld", (long long)q->start_revision);
        send_to_etcd(l, pkt_new(l, &l->node_pkts, P_WATCH_REQ, l->gen, q->tag, st));
        return 0;
    }
    llog(l, "%s",
         q->call == ETCD_CALL_RANGE             ? "RANGE"
         : q->call == ETCD_CALL_TXN             ? "TXN"
         : q->call == ETCD_CALL_LEASE_GRANT     ? "LEASE GRANT"
         : q->call == ETCD_CALL_LEASE_KEEPALIVE ? "KEEPALIVE"
                                                : "REVOKE");
    pkt_t *k = pkt_new(l, &l->node_pkts, P_REQ, l->gen, q->tag, NULL);
    k->req = sreq_copy(q);
    k->rid = ++l->next_rid;
    if (l->n_pending == l->cap_pending) {
        l->cap_pending = l->cap_pending ? 2 * l->cap_pending : 8;
        l->pending = realloc(l->pending, l->cap_pending * sizeof(*l->pending));
        if (!l->pending)
            abort();
    }
    l->pending[l->n_pending++] = (pending_t){.rid = k->rid, .tag = q->tag};
    send_to_etcd(l, k);
    return 0;
}

static void api_cancel(etcd_api_t *api, uint64_t tag)
{
    sim_etcd_link_t *l = ((link_api_t *)api)->l;
    for (stream_t *st = l->streams; st; st = st->next)
        if (st->tag == tag && st->gen == l->gen && !st->canceled) {
            st->canceled = 1;
            llog(l, "CANCEL_WATCH");
            send_to_etcd(l, pkt_new(l, &l->node_pkts, P_WATCH_CANCEL, l->gen, tag, st));
        }
    for (size_t i = 0; i < l->n_pending;) /* their answers are dropped when they arrive */
        if (l->pending[i].tag == tag)
            l->pending[i] = l->pending[--l->n_pending];
        else
            i++;
}

static const char *api_endpoint(etcd_api_t *api)
{
    return "sim-etcd";
}

/* The actor stops (or crashed): its streams close, whatever is in flight is dropped. */
static void api_free(etcd_api_t *api)
{
    link_api_t *a = (link_api_t *)api;
    sim_etcd_link_t *l = a->l;
    for (stream_t *st = l->streams; st; st = st->next)
        if (st->gen == l->gen && !st->canceled) {
            st->canceled = 1;
            send_to_etcd(l, pkt_new(l, &l->node_pkts, P_WATCH_CANCEL, l->gen, st->tag, st));
        }
    if (l->api == a) {
        l->api = NULL;
        l->gen++;
        l->n_pending = 0; /* answers to this incarnation are dropped on arrival */
    }
    free(a);
}

static const etcd_api_ops_t link_ops = {
    .submit = api_submit,
    .cancel = api_cancel,
    .endpoint = api_endpoint,
    .free = api_free,
};

etcd_api_t *sim_etcd_factory(mesh_actor_t *self, etcd_deliver_fn deliver, void *deliver_ud,
                             void *arg)
{
    sim_etcd_link_t *l = arg;
    if (l->api) /* an incarnation that was never freed: detach it */
        api_free(&l->api->super);
    link_api_t *a = xcalloc(1, sizeof(*a));
    a->super.ops = &link_ops;
    a->super.deliver = deliver;
    a->super.ud = deliver_ud;
    a->l = l;
    l->gen++;
    l->api = a;
    return &a->super;
}

sim_etcd_link_t *sim_etcd_link_new(mesh_exec_t *sim, sim_etcd_t *etcd, uint32_t client,
                                   const sim_link_cfg_t *cfg, const sim_link_hooks_t *hooks)
{
    sim_etcd_link_t *l = xcalloc(1, sizeof(*l));
    l->sim = sim;
    l->etcd = etcd;
    l->client = client;
    l->cfg = *cfg;
    if (hooks)
        l->hooks = *hooks;
    return l;
}

void sim_etcd_link_free(sim_etcd_link_t *l)
{
    if (!l)
        return;
    for (int side = 0; side < 2; side++) /* the executor is gone: nothing is in flight */
        for (pkt_t *k = side ? l->etcd_pkts : l->node_pkts, *next; k; k = next) {
            next = k->next;
            pkt_free(k);
        }
    free(l->pending);
    while (l->streams) {
        stream_t *st = l->streams;
        l->streams = st->next;
        free(st->prefix);
        free(st);
    }
    free(l->api);
    free(l);
}

uint32_t sim_etcd_link_client(const sim_etcd_link_t *l)
{
    return l->client;
}
