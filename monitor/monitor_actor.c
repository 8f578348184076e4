/*
 * monitor/monitor_actor.c: the monitor actor (see monitor/monitor_actor.h): the election's
 * effects on the etcd seam, the eviction lease, probing rounds, and the fenced evictions and
 * re-admissions with their audit events.
 */
#include "monitor/monitor_actor.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "common/log.h"
#include "gossip/gossip_actor.h"
#include "gossip/meta.h"
#include "grpc/health_msg.h"
#include "monitor/election.h"
#include "monitor/evict_txn.h"
#include "monitor/valve.h"
#include "monitor/verdict.h"
#include "registry/instance.h"
#include "registry/reg_msgs.h"
#include "registry/registry_actor.h"
#include "registry/view.h"
#include "transport/grpc_status.h"

#define ACTOR "monitor"

enum {
    MON_MSG_ETCD = 0x4d4f0001u, /* ptr: etcd_result_t */
    MON_MSG_RPC = 0x4d4f0002u,  /* ptr: mesh_rpc_event_t */
    MON_MSG_TICK = 0x4d4f0003u,
    MON_MSG_ROUND = 0x4d4f0004u,
};

#define TICK_NS 200000000ull

/* etcd tags: the kind in the top byte, a sequence below (above the registry view's kinds,
 * registry/reg_msgs.h, which share the seam). */
enum {
    T_GRANT = 0x20,
    T_CAMPAIGN,
    T_KEEPALIVE,
    T_WATCH,
    T_REVOKE,
    T_LIST_MARK,
    T_EVL_RANGE,
    T_EVL_KA,
    T_EVL_GRANT,
    T_EVL_PUT,
    T_EVICT,
    T_READMIT,
    T_INDIRECT,
};
#define TAG_KIND(t) ((int)((t) >> 56))

/* One check in flight. */
typedef struct slot {
    uint64_t tag; /* 0: free */
    mon_inst_t *inst;
    int health; /* -1 until a response message came */
} slot_t;

/* One eviction or re-admission txn in flight. */
typedef struct pending {
    uint64_t tag;
    mon_inst_t *inst;
    char reason[300];
    int stale_marker; /* a re-admission txn that removes a marker left for a replaced pod */
    int indirect;     /* an indirect check (gossip) before an eviction */
} pending_t;

/* An instance's connection (mon_inst_t.user). */
typedef struct conn {
    mesh_rpc_t *rpc;
    int inflight;
    int broken; /* a check failed on it: dropped once idle, a new one next time */
} conn_t;

typedef struct mon {
    mesh_actor_t *self;
    mon_args_t *a;
    etcd_api_t *etcd;   /* NULL: a gossip-only mesh */
    reg_view_t *view;   /* the registrations, watch-fed (registry/view.h) */
    int64_t synced_rev; /* the view's revision the table was last synced with */
    int marks_stale;    /* list the markers before the next sync */
    uint32_t rounds_since_marks;
    mesh_routes_t *gossip; /* a gossip-only mesh: the live members' instances */
    int gossip_dirty;      /* a new table came since the last sync */
    mon_keys_t keys;
    mon_elect_t el;
    mon_table_t table;
    mon_valve_t valve;
    uint64_t seq, watch_tag, tick_timer, round_timer;
    /* the eviction lease */
    int64_t ev_lease;
    int ev_state; /* 0 none, 1 acquiring, 2 ready */
    uint64_t ev_next_ka;
    int ev_ka_inflight;
    /* the round */
    int round_active, lists_pending;
    etcd_result_t *mark_list;
    mon_inst_t **queue;
    size_t q_n, q_pos, q_cap;
    slot_t *slots;
    size_t n_slots, inflight;
    pending_t *pend;
    size_t n_pend, cap_pend;
    /* counters */
    uint64_t rounds, checks, check_failures, evictions, readmissions, stale, fenced, held;
    uint64_t indirect_asked, vetoed;
    uint64_t last_round_ms;
    /* what this monitor announces in gossip (role, evicted set): its hash, ticks since sent */
    uint64_t attrs_sig;
    unsigned attrs_ticks;
    /* gossip-only: the live monitor whose name sorts first reports ("" unknown, or us) */
    char first_monitor[GSP_NAME_MAX + 1];
    int valve_was_closed;
    char valve_reason[256];
} mon_t;

static uint64_t now_ms(mon_t *m)
{
    return mesh_now(m->self) / 1000000u;
}

static uint64_t tag(mon_t *m, int kind)
{
    return ((uint64_t)kind << 56) | (++m->seq & 0x00ffffffffffffffull);
}

static void submit(mon_t *m, const etcd_request_t *req)
{
    if (etcd_api_submit(m->etcd, req) != 0) {
        /* cannot even be queued (out of memory): answer it as a failure ourselves */
        etcd_result_t *r = etcd_result_new(req->call, req->tag);
        if (r) {
            r->err = ETCD_API_ERR_NOMEM;
            if (mesh_send_ptr(m->self, mesh_self(m->self), MON_MSG_ETCD, r, etcd_result_free_ptr))
                etcd_result_free(r);
        }
    }
}

static void audit(mon_t *m, audit_type_t type, const mon_inst_t *i, const char *reason)
{
    audit_event_t ev = {
        .type = type,
        .reason = reason,
        .service = i ? i->service : NULL,
        .instance = i ? i->addr : NULL,
    };
    audit_emit(m->self, m->a->audit, &ev);
}

/* ---- election ------------------------------------------------------------------------------ */

static void start_round(mon_t *m);

static void evlease_start(mon_t *m)
{
    m->ev_state = 1;
    m->ev_lease = 0;
    etcd_request_t r = {
        .call = ETCD_CALL_RANGE, .tag = tag(m, T_EVL_RANGE), .key = m->keys.evlease};
    submit(m, &r);
}

static void run_fx(mon_t *m, const mon_efxs_t *fx)
{
    for (int k = 0; k < fx->n; k++) {
        const mon_efx_t *e = &fx->v[k];
        switch (e->kind) {
        case MON_EFX_GRANT: {
            etcd_request_t r = {
                .call = ETCD_CALL_LEASE_GRANT, .tag = tag(m, T_GRANT), .ttl_s = e->arg};
            submit(m, &r);
            break;
        }
        case MON_EFX_CAMPAIGN: {
            mon_txn_t t;
            if (mon_txn_campaign(&t, &m->keys, m->a->node, e->arg, tag(m, T_CAMPAIGN)) == 0)
                submit(m, &t.req);
            mon_txn_release(&t);
            break;
        }
        case MON_EFX_KEEPALIVE: {
            etcd_request_t r = {
                .call = ETCD_CALL_LEASE_KEEPALIVE, .tag = tag(m, T_KEEPALIVE), .lease = e->arg};
            submit(m, &r);
            break;
        }
        case MON_EFX_WATCH: {
            if (m->watch_tag)
                etcd_api_cancel(m->etcd, m->watch_tag);
            m->watch_tag = tag(m, T_WATCH);
            etcd_request_t r = {.call = ETCD_CALL_WATCH,
                                .tag = m->watch_tag,
                                .key = m->keys.leader,
                                .start_revision = e->arg};
            submit(m, &r);
            mesh_info(ACTOR, "standby: another monitor leads (lease %" PRId64 "); watching %s",
                      m->el.leader_lease, m->keys.leader);
            break;
        }
        case MON_EFX_LEADER:
            if (m->watch_tag) {
                etcd_api_cancel(m->etcd, m->watch_tag);
                m->watch_tag = 0;
            }
            mesh_info(ACTOR, "leader: %s holds %s (fence: revision %" PRId64 ")", m->a->node,
                      m->keys.leader, e->arg);
            if (!m->a->opts.dry_run)
                evlease_start(m);
            m->marks_stale = 1;
            start_round(m);
            break;
        case MON_EFX_STEP_DOWN:
            mesh_warn(ACTOR,
                      "stepped down (fence %" PRId64 "): evicting nothing until elected "
                      "again",
                      e->arg);
            m->ev_state = 0;
            m->ev_lease = 0;
            break;
        case MON_EFX_REVOKE: {
            etcd_request_t r = {
                .call = ETCD_CALL_LEASE_REVOKE, .tag = tag(m, T_REVOKE), .lease = e->arg};
            submit(m, &r);
            break;
        }
        }
    }
}

static const etcd_api_kv_t *find_kv(const etcd_result_t *res, const char *key)
{
    for (size_t i = 0; i < res->n_kvs; i++)
        if (strcmp(res->kvs[i].key, key) == 0)
            return &res->kvs[i];
    return NULL;
}

static void on_election(mon_t *m, const etcd_result_t *res)
{
    mon_efxs_t fx = {.n = 0};
    uint64_t now = now_ms(m);
    switch (TAG_KIND(res->tag)) {
    case T_GRANT:
        if (res->err == ETCD_API_OK && res->lease > 0)
            mon_elect_grant_ok(&m->el, res->lease, res->ttl_s, now, &fx);
        else {
            mesh_warn(ACTOR, "election lease grant failed: %s", etcd_api_strerror(res->err));
            mon_elect_request_failed(&m->el, now, &fx);
        }
        break;
    case T_CAMPAIGN:
        if (res->err != ETCD_API_OK) {
            mesh_warn(ACTOR, "campaign failed: %s", etcd_api_strerror(res->err));
            mon_elect_request_failed(&m->el, now, &fx);
        } else {
            const etcd_api_kv_t *kv = find_kv(res, m->keys.leader);
            mon_elect_campaign_done(&m->el, res->succeeded, res->revision, kv ? kv->lease : 0,
                                    kv ? kv->create_revision : 0, now, &fx);
        }
        break;
    case T_KEEPALIVE:
        if (res->err == ETCD_API_OK)
            mon_elect_keepalive_ok(&m->el, res->ttl_s, now, &fx);
        else
            mon_elect_keepalive_failed(&m->el, etcd_result_lease_gone(res), now, &fx);
        break;
    case T_WATCH:
        if (res->tag != m->watch_tag)
            break;
        if (res->closed || res->canceled) {
            etcd_api_cancel(m->etcd, m->watch_tag);
            m->watch_tag = 0;
            mon_elect_watch_broken(&m->el, now, &fx);
            break;
        }
        for (size_t i = 0; i < res->n_events; i++)
            if (res->events[i].is_delete) {
                etcd_api_cancel(m->etcd, m->watch_tag);
                m->watch_tag = 0;
                mesh_info(ACTOR, "the leader's key is gone: campaigning");
                mon_elect_key_deleted(&m->el, now, &fx);
                break;
            }
        break;
    default:
        break;
    }
    run_fx(m, &fx);
}

/* ---- the eviction lease ------------------------------------------------------------------- */

static void on_evlease(mon_t *m, const etcd_result_t *res)
{
    if (m->ev_state == 0 || !mon_elect_leading(&m->el))
        return;
    switch (TAG_KIND(res->tag)) {
    case T_EVL_RANGE: {
        const etcd_api_kv_t *kv = res->err == ETCD_API_OK ? find_kv(res, m->keys.evlease) : NULL;
        if (res->err != ETCD_API_OK) {
            m->ev_state = 0; /* retried on the next tick */
            return;
        }
        if (kv && kv->lease > 0) { /* adopt the lease the previous leader kept alive */
            m->ev_lease = kv->lease;
            m->ev_ka_inflight = 1;
            etcd_request_t r = {
                .call = ETCD_CALL_LEASE_KEEPALIVE, .tag = tag(m, T_EVL_KA), .lease = kv->lease};
            submit(m, &r);
            return;
        }
        etcd_request_t r = {.call = ETCD_CALL_LEASE_GRANT,
                            .tag = tag(m, T_EVL_GRANT),
                            .ttl_s = m->a->opts.marker_ttl_ms / 1000};
        submit(m, &r);
        return;
    }
    case T_EVL_KA:
        m->ev_ka_inflight = 0;
        if (res->err == ETCD_API_OK && res->ttl_s > 0) {
            if (m->ev_state == 1)
                mesh_info(ACTOR, "eviction lease %" PRId64 " adopted (TTL %" PRId64 " s)",
                          m->ev_lease, res->ttl_s);
            m->ev_state = 2;
            m->ev_next_ka = now_ms(m) + (uint64_t)m->a->opts.marker_ttl_ms / 3;
        } else if (res->err == ETCD_API_OK || etcd_result_lease_gone(res)) {
            /* gone (every marker with it): a new one */
            mesh_warn(ACTOR, "eviction lease %" PRId64 " is gone: granting a new one", m->ev_lease);
            m->marks_stale = 1; /* every marker went with it */
            m->ev_state = 1;
            m->ev_lease = 0;
            etcd_request_t r = {.call = ETCD_CALL_LEASE_GRANT,
                                .tag = tag(m, T_EVL_GRANT),
                                .ttl_s = m->a->opts.marker_ttl_ms / 1000};
            submit(m, &r);
        } else {
            m->ev_next_ka = now_ms(m) + 500;
        }
        return;
    case T_EVL_GRANT: {
        if (res->err != ETCD_API_OK || res->lease <= 0) {
            m->ev_state = 0;
            return;
        }
        m->ev_lease = res->lease;
        mon_txn_t t;
        if (mon_txn_evlease(&t, &m->keys, res->lease, m->el.fence, tag(m, T_EVL_PUT)) == 0)
            submit(m, &t.req);
        mon_txn_release(&t);
        return;
    }
    case T_EVL_PUT:
        if (res->err == ETCD_API_OK && res->succeeded) {
            m->ev_state = 2;
            m->ev_next_ka = now_ms(m) + (uint64_t)m->a->opts.marker_ttl_ms / 3;
            mesh_info(ACTOR, "eviction lease %" PRId64 " granted and recorded in %s", m->ev_lease,
                      m->keys.evlease);
        } else {
            m->ev_state = 0;
        }
        return;
    }
}

/* ---- probing ------------------------------------------------------------------------------ */

static void conn_forget(void *ud, mon_inst_t *i)
{
    (void)ud;
    conn_t *c = i->user;
    if (c) {
        mesh_rpc_free(c->rpc);
        free(c);
        i->user = NULL;
    }
}

static void rpc_deliver(void *ud, mesh_rpc_event_t *ev)
{
    mon_t *m = ud;
    if (mesh_send_ptr(m->self, mesh_self(m->self), MON_MSG_RPC, ev, mesh_rpc_event_free) != 0) {
        mesh_error(ACTOR, "a health check answer was dropped: the mailbox refused it");
        mesh_rpc_event_free(ev);
    }
}

static void finish_round(mon_t *m);

static slot_t *slot_of(mon_t *m, uint64_t t)
{
    for (size_t i = 0; i < m->n_slots; i++)
        if (m->slots[i].tag == t)
            return &m->slots[i];
    return NULL;
}

static void check_done(mon_t *m, slot_t *s, int ok, int unreached, const char *error)
{
    mon_inst_t *i = s->inst;
    conn_t *c = i->user;
    s->tag = 0;
    m->inflight--;
    m->checks++;
    if (!ok)
        m->check_failures++;
    if (c) {
        c->inflight--;
        if (!ok)
            c->broken = 1; /* a silent peer: start afresh next time */
        if (c->broken && c->inflight == 0) {
            mesh_rpc_free(c->rpc);
            free(c);
            i->user = NULL;
        }
    }
    uint32_t before = i->fails;
    mon_verdict_result(&m->table, i, ok, error, now_ms(m));
    i->unreached = !ok && unreached;
    if (!ok && before == 0)
        mesh_info(ACTOR, "%s at %s: check failed: %s", i->service, i->addr, error);
}

static void pump(mon_t *m)
{
    while (m->q_pos < m->q_n && m->inflight < m->n_slots) {
        mon_inst_t *i = m->queue[m->q_pos++];
        conn_t *c = i->user;
        if (!c) {
            c = calloc(1, sizeof(*c));
            if (c)
                c->rpc = m->a->rpc_new(m->self, i->addr, (uint64_t)m->a->opts.check_timeout_ms,
                                       rpc_deliver, m, m->a->rpc_arg);
            if (!c || !c->rpc) {
                free(c);
                mon_verdict_result(&m->table, i, 0, "cannot create a gRPC client", now_ms(m));
                i->unreached = 1;
                continue;
            }
            i->user = c;
        }
        slot_t *s = slot_of(m, 0);
        uint64_t t = ++m->seq;
        uint8_t req[320];
        int n = mesh_health_encode_request(i->service, req, sizeof(req));
        if (n < 0 || mesh_rpc_call_start(c->rpc, t, "/grpc.health.v1.Health/Check",
                                         (uint64_t)m->a->opts.check_timeout_ms) != 0) {
            mon_verdict_result(&m->table, i, 0, "cannot start a health check", now_ms(m));
            i->unreached = 1;
            continue;
        }
        mesh_rpc_call_send(c->rpc, t, req, (size_t)n);
        mesh_rpc_call_close_send(c->rpc, t);
        *s = (slot_t){.tag = t, .inst = i, .health = -1};
        c->inflight++;
        m->inflight++;
    }
    if (m->round_active && m->lists_pending == 0 && m->q_pos == m->q_n && m->inflight == 0)
        finish_round(m);
}

static void on_rpc(mon_t *m, const mesh_rpc_event_t *ev)
{
    slot_t *s =
        ev->kind == MESH_RPC_MESSAGE || ev->kind == MESH_RPC_END ? slot_of(m, ev->tag) : NULL;
    if (!s || !ev->tag)
        return;
    if (ev->kind == MESH_RPC_MESSAGE) {
        mesh_health_status_t st;
        if (mesh_health_decode_response(ev->data, ev->len, &st) == 0)
            s->health = (int)st;
        return;
    }
    char err[200];
    if (ev->status == MESH_GRPC_OK && s->health == MESH_HEALTH_SERVING) {
        check_done(m, s, 1, 0, NULL);
    } else {
        if (ev->status == MESH_GRPC_OK)
            snprintf(err, sizeof(err), "Health/Check answered %s",
                     s->health < 0 ? "no valid response"
                                   : mesh_health_status_name((mesh_health_status_t)s->health));
        else
            snprintf(err, sizeof(err), "Health/Check: %s%s%s", mesh_grpc_status_name(ev->status),
                     ev->text && ev->text[0] ? ": " : "", ev->text ? ev->text : "");
        /* No answer from the app: the connection failed, or nothing came before the deadline
         * (a silent peer). An answer of any kind means this monitor reached it. */
        int unreached = s->health < 0 && (ev->reason != MESH_GRPC_CONN_OK ||
                                          ev->status == MESH_GRPC_DEADLINE_EXCEEDED);
        check_done(m, s, 0, unreached, err);
    }
    pump(m);
}

/* Markers are written and deleted by the leader itself, so the table follows them from its own
 * txn results; they are listed again when this monitor becomes leader, when the eviction lease
 * was lost (every marker with it), and every MARK_RELIST_ROUNDS rounds (an operator's delete). */
#define MARK_RELIST_ROUNDS 12

static int acting(const mon_t *m)
{
    return !m->etcd || mon_elect_leading(&m->el);
}

static void requeue(mon_t *m)
{
    if (m->q_cap < m->table.n) {
        mon_inst_t **q = realloc(m->queue, m->table.n * sizeof(*q));
        if (!q) {
            m->q_n = m->q_pos = 0;
            return;
        }
        m->queue = q;
        m->q_cap = m->table.n;
    }
    m->q_n = 0;
    for (size_t k = 0; k < m->table.n; k++)
        if (!m->table.v[k]->busy)
            m->queue[m->q_n++] = m->table.v[k];
    m->q_pos = 0;
}

/* A gossip-only mesh: the table is the live members' instances. */
static void sync_gossip(mon_t *m)
{
    uint64_t now = now_ms(m);
    m->gossip_dirty = 0;
    mon_table_begin_sync(&m->table);
    for (size_t k = 0; m->gossip && k < mesh_routes_count(m->gossip); k++) {
        const mesh_route_service_t *svc = mesh_routes_at(m->gossip, k);
        for (size_t j = 0; j < svc->n_instances; j++)
            mon_table_put_registration(&m->table, svc->name, svc->instances[j].addr,
                                       svc->instances[j].zone, 0, 0);
    }
    mon_table_end_sync(&m->table, now);
}

/* The table from the view's entries (no parsing: the view keeps them decoded) and the markers:
 * listed ones when a listing came, else the ones the table already follows. */
static void sync_table(mon_t *m)
{
    uint64_t now = now_ms(m);
    const reg_table_t *rt = reg_view_table(m->view);
    mon_table_begin_sync(&m->table);
    for (size_t b = 0; b < rt->n_buckets; b++)
        for (const reg_entry_t *e = rt->buckets[b]; e; e = e->next)
            if (e->valid)
                mon_table_put_registration(&m->table, e->service, e->addr, e->zone, e->mod_revision,
                                           e->lease);
    m->synced_rev = reg_view_revision(m->view);
    if (m->mark_list) {
        size_t ml = strlen(m->keys.marker_prefix);
        char svc[256], addr[256];
        for (size_t k = 0; k < m->mark_list->n_kvs; k++) {
            const etcd_api_kv_t *kv = &m->mark_list->kvs[k];
            reg_key_t key;
            if (kv->key_len <= ml ||
                reg_key_parse(kv->key, kv->key_len, m->keys.marker_prefix, ml, &key) != 0 ||
                key.service_len >= sizeof(svc) || key.addr_len >= sizeof(addr))
                continue;
            snprintf(svc, sizeof(svc), "%.*s", (int)key.service_len, key.service);
            snprintf(addr, sizeof(addr), "%.*s", (int)key.addr_len, key.addr);
            char zone[128];
            mon_marker_zone(kv->value, kv->value_len, zone, sizeof(zone));
            mon_table_put_marker(&m->table, svc, addr, reg_marker_lease(kv->value, kv->value_len),
                                 kv->mod_revision, mon_marker_evictions(kv->value, kv->value_len),
                                 zone, now);
        }
        etcd_result_free(m->mark_list);
        m->mark_list = NULL;
    } else {
        for (size_t k = 0; k < m->table.n; k++) {
            mon_inst_t *i = m->table.v[k];
            if (i->has_marker)
                mon_table_put_marker(&m->table, i->service, i->addr, i->marker_lease,
                                     i->marker_mod_revision, i->evictions, NULL, now);
        }
    }
    mon_table_end_sync(&m->table, now);
}

static void start_round(mon_t *m)
{
    if (m->round_active || !acting(m))
        return;
    m->round_active = 1;
    if (!m->etcd) {
        if (m->gossip_dirty)
            sync_gossip(m);
        requeue(m);
        pump(m);
        return;
    }
    if (reg_view_revision(m->view) == 0) { /* no listing yet: nothing to check */
        m->round_active = 0;
        return;
    }
    if (m->marks_stale || ++m->rounds_since_marks >= MARK_RELIST_ROUNDS) {
        m->lists_pending = 1;
        etcd_request_t r = {.call = ETCD_CALL_RANGE,
                            .tag = tag(m, T_LIST_MARK),
                            .key = m->keys.marker_prefix,
                            .prefix = 1};
        submit(m, &r);
        return;
    }
    if (m->synced_rev != reg_view_revision(m->view))
        sync_table(m);
    requeue(m);
    pump(m);
}

static void on_list(mon_t *m, etcd_result_t *res)
{
    if (!m->round_active || m->lists_pending <= 0) {
        etcd_result_free(res);
        return;
    }
    m->lists_pending = 0;
    if (res->err != ETCD_API_OK) {
        mesh_warn(ACTOR, "listing %s failed: %s; this round checks nothing", m->keys.marker_prefix,
                  etcd_api_strerror(res->err));
        m->round_active = 0;
        etcd_result_free(res);
        return;
    }
    etcd_result_free(m->mark_list);
    m->mark_list = res;
    m->marks_stale = 0;
    m->rounds_since_marks = 0;
    sync_table(m);
    requeue(m);
}

/* ---- verdicts into etcd ------------------------------------------------------------------- */

static pending_t *add_pending(mon_t *m, mon_inst_t *i, uint64_t t)
{
    if (m->n_pend == m->cap_pend) {
        size_t cap = m->cap_pend ? m->cap_pend * 2 : 16;
        pending_t *p = realloc(m->pend, cap * sizeof(*p));
        if (!p)
            return NULL;
        m->pend = p;
        m->cap_pend = cap;
    }
    pending_t *p = &m->pend[m->n_pend++];
    *p = (pending_t){.tag = t, .inst = i};
    i->busy = 1;
    return p;
}

static void evict(mon_t *m, mon_inst_t *i)
{
    uint64_t t = tag(m, T_EVICT);
    pending_t *p = add_pending(m, i, t);
    if (!p)
        return;
    snprintf(p->reason, sizeof(p->reason), "%u consecutive health checks failed (last: %s)",
             i->fails, i->last_error);
    mon_txn_t txn;
    if (mon_txn_evict(&txn, &m->keys, i->service, i->addr, i->mod_revision, m->el.fence, i->lease,
                      m->ev_lease, p->reason, m->a->node, i->zone, i->evictions + 1,
                      audit_now_us() / 1000, t) == 0)
        submit(m, &txn.req);
    else {
        i->busy = 0;
        m->n_pend--;
    }
    mon_txn_release(&txn);
}

static void readmit(mon_t *m, mon_inst_t *i)
{
    uint64_t t = tag(m, T_READMIT);
    pending_t *p = add_pending(m, i, t);
    if (!p)
        return;
    snprintf(p->reason, sizeof(p->reason),
             "answered %u health checks in a row after eviction %u (delay %" PRIu64 " ms)", i->oks,
             i->evictions, mon_verdict_readmit_delay(&m->table, i->evictions));
    mon_txn_t txn;
    if (mon_txn_readmit(&txn, &m->keys, i->service, i->addr, i->marker_mod_revision, m->el.fence,
                        t) == 0)
        submit(m, &txn.req);
    else {
        i->busy = 0;
        m->n_pend--;
    }
    mon_txn_release(&txn);
}

/* Indirect checks: before an eviction, gossip members try to reach the instance for us. */
static int indirect_on(const mon_t *m)
{
    return m->a->opts.indirect > 0 && m->a->gossip && *m->a->gossip;
}

static void ask_indirect(mon_t *m, mon_inst_t *i)
{
    uint64_t t = tag(m, T_INDIRECT);
    gsp_check_req_t *req = calloc(1, sizeof(*req));
    pending_t *p = req ? add_pending(m, i, t) : NULL;
    if (!p) {
        free(req);
        return; /* out of memory: a later round tries again */
    }
    p->indirect = 1;
    *req = (gsp_check_req_t){.reply_to = mesh_self(m->self),
                             .tag = t,
                             .k = (uint32_t)m->a->opts.indirect,
                             .timeout_ms = (uint32_t)m->a->opts.check_timeout_ms};
    snprintf(req->addr, sizeof(req->addr), "%s", i->addr);
    m->indirect_asked++;
    if (mesh_send_ptr(m->self, *m->a->gossip, GSP_MSG_CHECK, req, free) != 0) {
        free(req);
        i->busy = 0;
        m->n_pend--;
        evict(m, i); /* gossip cannot be asked: the monitor's own checks decide */
    }
}

/* The members' answer: any that reached the instance vetoes; else the eviction goes on if this
 * monitor still may evict. */
static void on_indirect(mon_t *m, const gsp_check_done_t *d)
{
    pending_t *p = NULL;
    for (size_t k = 0; k < m->n_pend; k++)
        if (m->pend[k].tag == d->tag && m->pend[k].indirect)
            p = &m->pend[k];
    if (!p)
        return;
    mon_inst_t *i = p->inst;
    *p = m->pend[--m->n_pend];
    i->busy = 0;
    if (d->reached) {
        char why[400];
        m->vetoed++;
        m->held++;
        snprintf(why, sizeof(why),
                 "gossip member %s reached it (%u of %u asked answered): this monitor may be "
                 "the one cut off; %u failed checks (last: %s)",
                 d->by, d->answered, d->asked, i->fails, i->last_error);
        mesh_warn(ACTOR, "%s at %s not evicted: %s", i->service, i->addr, why);
        audit(m, AUDIT_MONITOR_EVICTION_HELD, i, why);
        i->fails = 0; /* it must fail as many checks again */
        return;
    }
    if (!acting(m) || m->ev_state != 2 || m->a->opts.dry_run)
        return; /* no longer leading: the next leader decides */
    if (d->asked)
        mesh_info(ACTOR, "%s at %s: none of %u gossip member(s) asked reached it (%u answered)",
                  i->service, i->addr, d->asked, d->answered);
    evict(m, i);
}

/* A marker naming a lease the registration no longer has: the evicted pod was replaced by a
 * fresh one on the same address (which the marker does not hold out). Nothing would ever
 * delete it while a leader keeps the eviction lease alive, so the leader deletes it, with the
 * re-admission txn (fenced, conditioned on the marker's mod revision). Found by
 * simulations/monitor_sim.c. */
static void drop_stale_marker(mon_t *m, mon_inst_t *i)
{
    uint64_t t = tag(m, T_READMIT);
    pending_t *p = add_pending(m, i, t);
    if (!p)
        return;
    p->stale_marker = 1;
    snprintf(p->reason, sizeof(p->reason),
             "its marker names lease %" PRId64 ", replaced by a fresh registration under lease "
             "%" PRId64,
             i->marker_lease, i->lease);
    mon_txn_t txn;
    if (mon_txn_readmit(&txn, &m->keys, i->service, i->addr, i->marker_mod_revision, m->el.fence,
                        t) == 0)
        submit(m, &txn.req);
    else {
        i->busy = 0;
        m->n_pend--;
    }
    mon_txn_release(&txn);
}

static void finish_round(mon_t *m)
{
    m->round_active = 0;
    m->rounds++;
    m->last_round_ms = now_ms(m);
    if (!acting(m))
        return;
    uint64_t now = now_ms(m);
    size_t n = 0;
    mon_inst_t **cand = malloc((m->table.n + 1) * sizeof(*cand));
    mon_valve_say_t *say = malloc((m->table.n + 1) * sizeof(*say));
    if (!cand || !say) {
        free(cand);
        free(say);
        return;
    }
    for (size_t k = 0; k < m->table.n; k++) {
        mon_inst_t *i = m->table.v[k];
        if (mon_verdict_should_evict(&m->table, i))
            cand[n++] = i;
        else if (m->etcd && mon_verdict_should_readmit(&m->table, i, now))
            readmit(m, i);
        else if (m->etcd && i->state == MON_INST_REGISTERED && i->has_marker && !i->busy &&
                 i->lease && i->marker_lease && i->marker_lease != i->lease)
            drop_stale_marker(m, i);
    }
    size_t go = mon_valve_decide(&m->valve, &m->table, cand, n, now, say);
    (void)go;
    if (m->valve.global_closed && !m->valve_was_closed) {
        mesh_warn(ACTOR, "%s", m->valve.reason);
        audit(m, AUDIT_MONITOR_EVICTION_HELD, NULL, m->valve.reason);
    } else if (!m->valve.global_closed && m->valve_was_closed) {
        mesh_info(ACTOR, "safety valve open again: %zu candidate(s) within %.0f%%", n,
                  m->valve.cfg.max_share * 100);
    }
    m->valve_was_closed = m->valve.global_closed;
    snprintf(m->valve_reason, sizeof(m->valve_reason), "%s", m->valve.reason);
    for (size_t k = 0; k < n; k++) {
        mon_inst_t *i = cand[k];
        char why[400];
        if (say[k] == MON_VALVE_ZONE) {
            m->held++;
            snprintf(why, sizeof(why), "%s; %s", i->last_error, m->valve.reason);
            mesh_warn(ACTOR, "%s at %s not evicted: %s", i->service, i->addr, m->valve.reason);
            audit(m, AUDIT_MONITOR_EVICTION_HELD, i, why);
            continue;
        }
        if (say[k] != MON_VALVE_GO) {
            m->held++;
            continue;
        }
        if (!m->etcd && m->first_monitor[0]) {
            /* another live monitor's name sorts first: it reports this one */
            mesh_info(ACTOR, "%s at %s: would evict after %u failed checks; reported by %s",
                      i->service, i->addr, i->fails, m->first_monitor);
            i->fails = 0;
            continue;
        }
        if (m->a->opts.dry_run || !m->etcd) {
            m->held++;
            snprintf(why, sizeof(why), "%s: would evict after %u failed checks (last: %s)",
                     m->etcd ? "dry run" : "no etcd: no fencing", i->fails, i->last_error);
            mesh_warn(ACTOR, "%s at %s: %s", i->service, i->addr, why);
            audit(m, AUDIT_MONITOR_EVICTION_HELD, i, why);
            i->fails = 0; /* report again after as many failures */
            continue;
        }
        if (m->ev_state != 2) {
            m->held++;
            mesh_warn(ACTOR, "%s at %s: eviction waits for the eviction lease", i->service,
                      i->addr);
            continue;
        }
        if (indirect_on(m) && i->unreached)
            ask_indirect(m, i); /* cut off, or the instance gone? members try to reach it */
        else
            evict(m, i); /* it answered, badly: this monitor is not the one cut off */
    }
    free(cand);
    free(say);
}

static void on_verdict_txn(mon_t *m, const etcd_result_t *res)
{
    pending_t *p = NULL;
    for (size_t k = 0; k < m->n_pend; k++)
        if (m->pend[k].tag == res->tag)
            p = &m->pend[k];
    if (!p)
        return;
    pending_t done = *p;
    *p = m->pend[--m->n_pend];
    mon_inst_t *i = done.inst;
    i->busy = 0;
    int is_evict = TAG_KIND(res->tag) == T_EVICT;
    if (res->err != ETCD_API_OK) {
        mesh_warn(ACTOR, "%s of %s at %s not written: %s (retried after the next round)",
                  is_evict ? "eviction" : "re-admission", i->service, i->addr,
                  etcd_api_strerror(res->err));
        return;
    }
    if (!res->succeeded) {
        if (!mon_txn_fence_holds(res, &m->keys, m->el.fence)) {
            m->fenced++;
            mesh_warn(ACTOR, "%s of %s at %s refused by the fence: another monitor leads",
                      is_evict ? "eviction" : "re-admission", i->service, i->addr);
            mon_efxs_t fx = {.n = 0};
            mon_elect_fenced(&m->el, now_ms(m), &fx);
            run_fx(m, &fx);
            return;
        }
        m->stale++;
        i->fails = i->oks = 0;
        mesh_info(ACTOR,
                  "%s of %s at %s dropped: the %s changed since the checks (a stale "
                  "verdict)",
                  is_evict ? "eviction" : "re-admission", i->service, i->addr,
                  is_evict ? "registration" : "marker");
        return;
    }
    if (is_evict) {
        m->evictions++;
        mon_verdict_evicted(&m->table, i, now_ms(m));
        i->has_marker = 1;
        i->marker_lease = i->lease;
        i->marker_mod_revision = res->revision;
        mesh_warn(ACTOR,
                  "evicted %s at %s (lease %" PRId64 "): %s; re-admitted after %" PRIu64
                  " ms of good checks",
                  i->service, i->addr, i->lease, done.reason,
                  mon_verdict_readmit_delay(&m->table, i->evictions));
        audit(m, AUDIT_MONITOR_EVICTION, i, done.reason);
    } else if (done.stale_marker) {
        i->has_marker = 0;
        mesh_info(ACTOR, "removed the eviction marker of %s at %s: %s", i->service, i->addr,
                  done.reason);
    } else {
        m->readmissions++;
        i->has_marker = 0;
        i->oks = 0;
        mesh_info(ACTOR, "re-admitted %s at %s: %s", i->service, i->addr, done.reason);
        audit(m, AUDIT_MONITOR_READMITTED, i, done.reason);
    }
}

/* ---- the actor ---------------------------------------------------------------------------- */

static void on_etcd(mon_t *m, etcd_result_t *res)
{
    if (reg_view_owns_tag(res->tag)) {
        reg_view_out_t out = {0};
        reg_view_on_result(m->view, res, &out);
        if (out.link_changed)
            mesh_info(ACTOR, "registrations view: etcd %s", reg_link_name(out.link));
        etcd_result_free(res);
        return;
    }
    switch (TAG_KIND(res->tag)) {
    case T_LIST_MARK:
        on_list(m, res); /* takes res */
        if (m->round_active && m->lists_pending == 0)
            pump(m);
        return;
    case T_EVL_RANGE:
    case T_EVL_KA:
    case T_EVL_GRANT:
    case T_EVL_PUT:
        on_evlease(m, res);
        break;
    case T_EVICT:
    case T_READMIT:
        on_verdict_txn(m, res);
        break;
    case T_REVOKE:
        break;
    default:
        on_election(m, res);
        break;
    }
    etcd_result_free(res);
}

static void etcd_deliver(void *ud, etcd_result_t *res)
{
    mon_t *m = ud;
    if (mesh_send_ptr(m->self, mesh_self(m->self), MON_MSG_ETCD, res, etcd_result_free_ptr) != 0) {
        mesh_error(ACTOR, "an etcd answer was dropped: the mailbox refused it");
        etcd_result_free(res);
    }
}

/* "Marked failed in gossip": the instances this monitor evicted, announced as its gossip
 * metadata's "evicted" attribute with role "monitor" (gossip/meta.h); proxies keep them out
 * of gossip-sourced routes (gossip/evicted.h). The leader announces its evicted instances; a
 * monitor that lost etcd keeps announcing what it last knew as leader (that is when proxies
 * route with gossip); a standby (another monitor holds the leader key) announces none. Sent
 * when the set changes, and every 5 s anyway (a restarted bridge forgets). */
static void publish_attrs(mon_t *m)
{
    if (!m->a->gossip || !*m->a->gossip)
        return;
    int listing = m->etcd && m->el.state != MON_ELECT_FOLLOWER;
    uint64_t sig = 0xcbf29ce484222325ull;
    size_t n = 0;
    for (size_t k = 0; listing && k < m->table.n; k++) {
        const mon_inst_t *i = m->table.v[k];
        if (i->state != MON_INST_EVICTED)
            continue;
        n++;
        for (const char *c = i->id; *c; c++)
            sig = (sig ^ (uint8_t)*c) * 0x100000001b3ull;
        sig = (sig ^ 0xff) * 0x100000001b3ull;
    }
    sig ^= n;
    if (sig == m->attrs_sig && ++m->attrs_ticks < 5000 / (TICK_NS / 1000000u))
        return;
    gsp_attrs_update_t *u = calloc(1, sizeof(*u));
    if (!u || (n && !(u->evicted = calloc(n, sizeof(*u->evicted))))) {
        gsp_attrs_update_free(u);
        return;
    }
    snprintf(u->role, sizeof(u->role), "%s", GSP_ROLE_MONITOR);
    for (size_t k = 0; listing && k < m->table.n; k++) {
        const mon_inst_t *i = m->table.v[k];
        if (i->state != MON_INST_EVICTED)
            continue;
        u->evicted[u->n_evicted].service = strdup(i->service);
        u->evicted[u->n_evicted].addr = strdup(i->addr);
        if (!u->evicted[u->n_evicted].service || !u->evicted[u->n_evicted].addr) {
            u->n_evicted++;
            gsp_attrs_update_free(u);
            return;
        }
        u->n_evicted++;
    }
    if (mesh_send_ptr(m->self, *m->a->gossip, GSP_MSG_SET_ATTRS, u, gsp_attrs_update_free) != 0) {
        gsp_attrs_update_free(u);
        return;
    }
    if (sig != m->attrs_sig)
        mesh_info(ACTOR, "announcing %zu evicted instance(s) in gossip", n);
    m->attrs_sig = sig;
    m->attrs_ticks = 0;
}

static void tick(mon_t *m)
{
    publish_attrs(m);
    if (!m->etcd)
        return;
    uint64_t now = now_ms(m);
    mon_efxs_t fx = {.n = 0};
    mon_elect_tick(&m->el, now, &fx);
    run_fx(m, &fx);
    if (!mon_elect_leading(&m->el) || m->a->opts.dry_run)
        return;
    if (m->ev_state == 0)
        evlease_start(m);
    else if (m->ev_state == 2 && !m->ev_ka_inflight && now >= m->ev_next_ka) {
        m->ev_ka_inflight = 1;
        etcd_request_t r = {
            .call = ETCD_CALL_LEASE_KEEPALIVE, .tag = tag(m, T_EVL_KA), .lease = m->ev_lease};
        submit(m, &r);
    }
}

static int mon_start(mesh_actor_t *self, void *arg)
{
    mon_t *m = mesh_state(self);
    m->self = self;
    m->a = arg;
    if (mon_keys_init(&m->keys, m->a->prefix) != 0) {
        mesh_error(ACTOR, "etcd prefix too long");
        return -1;
    }
    const mon_options_t *o = &m->a->opts;
    mon_elect_init(&m->el, o->lease_ttl_ms / 1000);
    mon_table_init(&m->table, &(mon_verdict_cfg_t){.fail_threshold = (uint32_t)o->failures,
                                                   .ok_threshold = (uint32_t)o->successes,
                                                   .readmit_delay = (uint64_t)o->readmit_delay_ms,
                                                   .readmit_max = (uint64_t)o->readmit_max_ms});
    m->table.on_forget = conn_forget;
    mon_valve_init(&m->valve, &(mon_valve_cfg_t){.max_share = o->max_share,
                                                 .zone_share = o->zone_share,
                                                 .per_minute = (uint32_t)o->per_minute});
    m->n_slots = (size_t)o->max_in_flight;
    m->slots = calloc(m->n_slots, sizeof(*m->slots));
    if (!m->slots) {
        mesh_error(ACTOR, "cannot start: out of memory");
        return -1;
    }
    if (m->a->etcd_new) {
        m->etcd = m->a->etcd_new(self, etcd_deliver, m, m->a->etcd_arg);
        m->view = reg_view_new(&(reg_view_cfg_t){.prefix = m->a->prefix});
        if (!m->etcd || !m->view) {
            mesh_error(ACTOR, "cannot start: %s", m->etcd ? "out of memory" : "no etcd client");
            return -1;
        }
    }
    if (mesh_timer_start(self, TICK_NS, TICK_NS, MON_MSG_TICK, &m->tick_timer) != 0 ||
        mesh_timer_start(self, (uint64_t)o->interval_ms * 1000000u,
                         (uint64_t)o->interval_ms * 1000000u, MON_MSG_ROUND, &m->round_timer) != 0)
        return -1;
    m->a->live = m;
    if (!m->etcd) {
        mesh_info(ACTOR,
                  "monitor %s: gossip-only mesh (no etcd): checking the gossip members' "
                  "instances every %" PRId64 " ms, reporting what %" PRId64
                  " failures would evict, evicting nothing (no fencing without etcd)",
                  m->a->node, o->interval_ms, o->failures);
        return 0;
    }
    reg_view_out_t vout = {0};
    reg_view_start(m->view, self, m->etcd, &vout);
    mesh_info(ACTOR,
              "monitor %s: campaigning on %s (lease TTL %" PRId64 " s); checks every %" PRId64
              " ms, evict after %" PRId64 " failures, re-admit after %" PRId64 " successes%s",
              m->a->node, m->keys.leader, o->lease_ttl_ms / 1000, o->interval_ms, o->failures,
              o->successes, o->dry_run ? " (dry run: evicting nothing)" : "");
    mon_efxs_t fx = {.n = 0};
    mon_elect_start(&m->el, now_ms(m), &fx);
    run_fx(m, &fx);
    return 0;
}

static int mon_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    mon_t *m = mesh_state(self);
    switch (msg->type) {
    case MON_MSG_ETCD:
        if (msg->ptr) {
            etcd_result_t *res = msg->ptr;
            msg->ptr = NULL; /* on_etcd owns it now */
            on_etcd(m, res);
        }
        return 0;
    case MON_MSG_RPC:
        if (msg->ptr)
            on_rpc(m, msg->ptr);
        return 0;
    case MON_MSG_TICK:
        tick(m);
        return 0;
    case MON_MSG_ROUND:
        start_round(m);
        return 0;
    case REG_MSG_VIEW_RETRY:
    case REG_MSG_VIEW_FLUSH:
        if (m->view) {
            reg_view_out_t out = {0};
            reg_view_on_timer(m->view, msg, &out);
        }
        return 0;
    case GSP_MSG_CHECK_DONE:
        if (msg->ptr)
            on_indirect(m, msg->ptr);
        return 0;
    case REG_MSG_GOSSIP:
        if (msg->ptr && !m->etcd) {
            reg_gossip_t *g = msg->ptr;
            mesh_routes_unref(m->gossip);
            m->gossip = g->routes ? mesh_routes_ref(g->routes) : NULL;
            m->gossip_dirty = 1;
            snprintf(m->first_monitor, sizeof(m->first_monitor), "%s",
                     g->first_monitor && !g->first_monitor_self ? g->first_monitor : "");
        }
        return 0;
    default:
        return 0;
    }
}

static void mon_stop(mesh_actor_t *self, int reason)
{
    (void)reason;
    mon_t *m = mesh_state(self);
    if (m->a && m->a->live == m)
        m->a->live = NULL;
    if (m->etcd && m->el.lease) { /* hand over at once: revoke our election lease */
        etcd_request_t r = {
            .call = ETCD_CALL_LEASE_REVOKE, .tag = tag(m, T_REVOKE), .lease = m->el.lease};
        etcd_api_submit(m->etcd, &r);
    }
    mon_table_destroy(&m->table); /* frees the connections (no events) */
    if (m->view)
        reg_view_free(m->view);
    etcd_api_free(m->etcd);
    mesh_routes_unref(m->gossip);
    etcd_result_free(m->mark_list);
    free(m->queue);
    free(m->slots);
    free(m->pend);
}

const mesh_actor_ops_t mon_actor_ops = {
    .name = "monitor",
    .state_size = sizeof(mon_t),
    .on_start = mon_start,
    .on_message = mon_message,
    .on_stop = mon_stop,
};

json_t *mon_actor_status(const mon_args_t *a)
{
    const mon_t *m = a->live;
    if (!m)
        return json_pack("{s:s}", "role", "stopped");
    size_t registered, evicted, failing;
    mon_table_counts(&m->table, &registered, &evicted, &failing);
    json_t *ev = json_array();
    for (size_t k = 0; ev && k < m->table.n; k++) {
        const mon_inst_t *i = m->table.v[k];
        if (i->state == MON_INST_EVICTED || i->fails)
            json_array_append_new(ev,
                                  json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:s}", "service", i->service,
                                            "address", i->addr, "state",
                                            i->state == MON_INST_EVICTED ? "evicted" : "failing",
                                            "fails", (int)i->fails, "oks", (int)i->oks, "evictions",
                                            (int)i->evictions, "last_error", i->last_error));
    }
    return json_pack(
        "{s:s,s:s,s:I,s:I,s:I,s:b,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
        "s:{s:b,s:f,s:f,s:i,s:s},s:o}",
        "node", a->node ? a->node : "", "role",
        m->etcd ? mon_elect_state_name(m->el.state) : "gossip-report", "fence",
        (json_int_t)m->el.fence, "lease", (json_int_t)m->el.lease, "eviction_lease",
        (json_int_t)m->ev_lease, "dry_run", a->opts.dry_run, "instances", "checked",
        (json_int_t)registered, "failing", (json_int_t)failing, "evicted", (json_int_t)evicted,
        "counters", "rounds", (json_int_t)m->rounds, "checks", (json_int_t)m->checks,
        "check_failures", (json_int_t)m->check_failures, "evictions", (json_int_t)m->evictions,
        "readmissions", (json_int_t)m->readmissions, "stale_verdicts", (json_int_t)m->stale,
        "fenced", (json_int_t)m->fenced, "held", (json_int_t)m->held, "indirect_asked",
        (json_int_t)m->indirect_asked, "vetoed", (json_int_t)m->vetoed, "valve", "closed",
        m->valve.global_closed, "max_share", m->valve.cfg.max_share, "zone_share",
        m->valve.cfg.zone_share, "per_minute", (int)m->valve.cfg.per_minute, "reason",
        m->valve_reason, "verdicts", ev ? ev : json_array());
}

mesh_rpc_t *mon_rpc_grpc_factory(mesh_actor_t *self, const char *addr, uint64_t connect_timeout_ms,
                                 mesh_rpc_deliver_fn deliver, void *deliver_ud, void *arg)
{
    struct uv_loop_s *loop = mesh_exec_uv_loop(arg, mesh_loop_index(self));
    return loop ? mesh_rpc_grpc_new(loop, addr, connect_timeout_ms, deliver, deliver_ud) : NULL;
}
