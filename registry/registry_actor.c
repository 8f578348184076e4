/*
 * registry/registry_actor.c: the registry actor (see registry/registry_actor.h).
 *
 * Dispatch: REG_MSG_ETCD results go to the view or to the registration named in their tag;
 * timer messages to whoever armed them; REG_MSG_REGISTER / REG_MSG_DEREGISTER create and stop
 * registrations. Every table the view produces is merged with the static routes and sent to
 * the subscriber; the arguments remember the last etcd table for the next start.
 */
#include "registry/registry_actor.h"

#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "common/log.h"
#include "registry/reconciler.h"
#include "registry/registration.h"

/* A registration some actor asked for, kept across restarts of the registry actor. */
typedef struct reg_kept {
    uint32_t id;
    mesh_actor_id_t owner;
    reg_spec_t *spec;
    int stopping; /* deregistration asked for */
} reg_kept_t;

struct reg_actor_args {
    reg_actor_cfg_t cfg;
    char *prefix;
    char *snapshot_path;
    mesh_routes_t *static_routes;
    mesh_routes_t *last_etcd; /* the last etcd table published, kept across restarts */
    uint64_t starts;
    reg_kept_t *kept; /* the registrations, kept across restarts */
    size_t n_kept, cap_kept;
    uint32_t next_id;
};

typedef struct reg_actor {
    reg_actor_args_t *a;
    mesh_actor_t *self;
    etcd_api_t *api;
    reg_view_t *view;
    mesh_reconciler_t rec;
    reg_registration_t **regs; /* one per kept registration, same order */
    size_t n_regs;
    uint64_t tables;
    int link; /* last REG_MSG_LINK sent by this start: -1 none, else reg_link_t */
} reg_actor_t;

/* ---- arguments ------------------------------------------------------------------------------ */

reg_actor_args_t *reg_actor_args_new(const reg_actor_cfg_t *cfg, mesh_routes_t *static_routes)
{
    reg_actor_args_t *a = calloc(1, sizeof(*a));
    if (!a) {
        mesh_routes_unref(static_routes);
        return NULL;
    }
    a->cfg = *cfg;
    a->prefix = strdup(cfg->prefix ? cfg->prefix : REG_DEFAULT_PREFIX);
    a->snapshot_path = cfg->snapshot_path ? strdup(cfg->snapshot_path) : NULL;
    a->static_routes = static_routes;
    if (!a->prefix || (cfg->snapshot_path && !a->snapshot_path)) {
        reg_actor_args_free(a);
        return NULL;
    }
    a->cfg.prefix = a->prefix;
    a->cfg.snapshot_path = a->snapshot_path;
    return a;
}

void reg_actor_args_free(reg_actor_args_t *a)
{
    if (!a)
        return;
    mesh_routes_unref(a->static_routes);
    mesh_routes_unref(a->last_etcd);
    for (size_t i = 0; i < a->n_kept; i++)
        reg_spec_free(a->kept[i].spec);
    free(a->kept);
    free(a->prefix);
    free(a->snapshot_path);
    free(a);
}

/* ---- publishing ----------------------------------------------------------------------------- */

static void publish(reg_actor_t *st)
{
    mesh_routes_t *t = mesh_reconciler_build(&st->rec);
    if (!t) {
        mesh_error("registry", "out of memory building the routing table");
        return;
    }
    st->tables++;
    if (!st->a->cfg.subscriber) {
        mesh_routes_unref(t);
        return;
    }
    int rc = mesh_send_ptr(st->self, st->a->cfg.subscriber, REG_MSG_ROUTES, t,
                           (void (*)(void *))mesh_routes_unref);
    if (rc != 0) {
        mesh_routes_unref(t);
        if (rc != -MESH_ENOENT)
            mesh_error("registry", "cannot hand the routing table to the node: %s",
                       mesh_strerror(rc));
    }
}

/* Tells the link subscriber when etcd's reachability changed. */
static void link_to(reg_actor_t *st, reg_link_t link)
{
    if (st->link == (int)link || !st->a->cfg.link_subscriber)
        return;
    st->link = (int)link;
    reg_link_msg_t lm = {.connected = link == REG_LINK_CONNECTED};
    int rc = mesh_send(st->self, st->a->cfg.link_subscriber, REG_MSG_LINK, &lm, sizeof(lm));
    if (rc != 0 && rc != -MESH_ENOENT)
        mesh_warn("registry", "cannot tell the node about etcd's link: %s", mesh_strerror(rc));
}

/* The view changed and/or its link did. */
static void view_out(reg_actor_t *st, const reg_view_out_t *out)
{
    if (out->publish) {
        mesh_routes_t *t = reg_view_routes(st->view);
        if (t) {
            mesh_routes_unref(st->a->last_etcd);
            st->a->last_etcd = mesh_routes_ref(t);
            mesh_debug("registry", "view at revision %lld: %zu service%s",
                       (long long)reg_view_revision(st->view), mesh_routes_count(t),
                       mesh_routes_count(t) == 1 ? "" : "s");
            mesh_reconciler_set(&st->rec, MESH_ROUTE_ETCD, t);
            publish(st);
        } else {
            mesh_error("registry", "out of memory building the etcd routes");
        }
    }
    if (out->link_changed)
        link_to(st, out->link);
    if (st->a->cfg.on_view && st->view)
        st->a->cfg.on_view(st->a->cfg.hooks_ud, st->view, out->publish);
}

/* ---- registrations -------------------------------------------------------------------------- */

/* Registrations are kept in the arguments (st->a->kept) and mirrored by st->regs, index for
 * index, so that a restarted actor registers the same instances again. */

static reg_registration_t *find_reg(reg_actor_t *st, uint32_t id, size_t *ix)
{
    for (size_t i = 0; i < st->n_regs; i++)
        if (reg_registration_id(st->regs[i]) == id) {
            if (ix)
                *ix = i;
            return st->regs[i];
        }
    return NULL;
}

/* Frees the registrations that finished deregistering. */
static void reap(reg_actor_t *st)
{
    reg_actor_args_t *a = st->a;
    for (size_t i = 0; i < st->n_regs;) {
        if (!reg_registration_done(st->regs[i])) {
            i++;
            continue;
        }
        reg_registration_free(st->regs[i]);
        reg_spec_free(a->kept[i].spec);
        st->regs[i] = st->regs[--st->n_regs];
        a->kept[i] = a->kept[--a->n_kept];
    }
}

/* Creates and starts the registration of kept entry i. 0 or -1. */
static int start_reg(reg_actor_t *st, size_t i)
{
    reg_kept_t *k = &st->a->kept[i];
    reg_registration_t *r = reg_registration_new(k->id, k->owner, k->spec);
    if (!r)
        return -1;
    st->regs[i] = r;
    reg_registration_start(r, st->self, st->api);
    if (k->stopping)
        reg_registration_stop(r);
    return 0;
}

static int grow_regs(reg_actor_t *st)
{
    reg_actor_args_t *a = st->a;
    if (a->n_kept < a->cap_kept && st->regs)
        return 0;
    size_t nc = a->cap_kept ? a->cap_kept * 2 : 4;
    if (a->n_kept < a->cap_kept)
        nc = a->cap_kept; /* a restart: only st->regs is missing */
    reg_kept_t *nk = realloc(a->kept, nc * sizeof(*nk));
    if (!nk)
        return -1;
    a->kept = nk;
    reg_registration_t **nr = realloc(st->regs, nc * sizeof(*nr));
    if (!nr)
        return -1;
    st->regs = nr;
    a->cap_kept = nc;
    return 0;
}

static int on_register(reg_actor_t *st, mesh_msg_t *m)
{
    reg_actor_args_t *a = st->a;
    reg_spec_t *spec = mesh_msg_take_ptr(m);
    reg_register_ok_t ok = {0};
    if (!spec || !st->api || grow_regs(st) < 0) {
        mesh_error("registry", "cannot register %s: %s", spec ? spec->addr : "(nothing)",
                   !spec      ? "empty request"
                   : !st->api ? "no etcd configured"
                              : "out of memory");
        reg_spec_free(spec);
        mesh_send(st->self, m->from, REG_MSG_REGISTER_OK, &ok, sizeof(ok));
        return 0;
    }
    uint32_t id = ++a->next_id & 0xFFFFFFu;
    if (!id)
        id = ++a->next_id & 0xFFFFFFu;
    size_t i = a->n_kept++;
    a->kept[i] = (reg_kept_t){.id = id, .owner = m->from, .spec = spec};
    st->n_regs++;
    ok.id = id;
    mesh_send(st->self, m->from, REG_MSG_REGISTER_OK, &ok, sizeof(ok));
    if (start_reg(st, i) < 0) {
        st->n_regs--;
        a->n_kept--;
        reg_spec_free(spec);
        return -1;
    }
    reap(st);
    return 0;
}

static void on_deregister(reg_actor_t *st, const mesh_msg_t *m)
{
    const reg_deregister_t *d = mesh_msg_as(m, reg_deregister_t);
    size_t i;
    reg_registration_t *r = d ? find_reg(st, d->id, &i) : NULL;
    if (r) {
        st->a->kept[i].stopping = 1;
        reg_registration_stop(r);
    } else if (d) { /* unknown (never granted, or already done): say so, so nobody waits */
        reg_event_t e = {.id = d->id, .event = REG_EV_DEREGISTERED};
        mesh_send(st->self, m->from, REG_MSG_EVENT, &e, sizeof(e));
    }
    reap(st);
}

static void on_release_owner(reg_actor_t *st, const mesh_msg_t *m)
{
    for (size_t i = 0; i < st->n_regs; i++)
        if (st->a->kept[i].owner == m->from && !st->a->kept[i].stopping) {
            mesh_info("registry", "deregistering %s: its owner started over",
                      st->a->kept[i].spec->addr);
            st->a->kept[i].stopping = 1;
            reg_registration_stop(st->regs[i]);
        }
    reap(st);
}

/* ---- the etcd seam -------------------------------------------------------------------------- */

static void deliver(void *ud, etcd_result_t *res)
{
    reg_actor_t *st = ud;
    int rc = mesh_send_ptr(st->self, mesh_self(st->self), REG_MSG_ETCD, res, etcd_result_free_ptr);
    if (rc != 0) {
        /* Cannot happen with REG_ACTOR_MAILBOX unless a million answers are queued: loud. */
        mesh_error("registry", "etcd answer dropped: the registry actor's mailbox refused it (%s)",
                   mesh_strerror(rc));
        etcd_result_free(res);
    }
}

static void on_etcd(reg_actor_t *st, const etcd_result_t *res)
{
    if (st->view && reg_view_owns_tag(res->tag)) {
        reg_view_out_t out;
        reg_view_on_result(st->view, res, &out);
        view_out(st, &out);
        return;
    }
    if (reg_tag_kind(res->tag) == REG_TAG_LEASE) {
        if (!st->view) /* a node that only registers: its calls tell whether etcd answers */
            link_to(st, res->err == ETCD_API_OK || res->err == ETCD_API_ERR_SERVER
                            ? REG_LINK_CONNECTED
                            : REG_LINK_DEGRADED);
        reg_registration_t *r = find_reg(st, reg_tag_id(res->tag), NULL);
        if (r)
            reg_registration_on_result(r, res);
        reap(st);
    }
}

/* ---- the actor ------------------------------------------------------------------------------ */

static int reg_start(mesh_actor_t *self, void *arg)
{
    reg_actor_args_t *a = arg;
    reg_actor_t *st = mesh_state(self);
    st->a = a;
    st->self = self;
    st->link = -1;
    mesh_reconciler_init(&st->rec);
    if (a->static_routes)
        mesh_reconciler_set(&st->rec, MESH_ROUTE_STATIC, mesh_routes_ref(a->static_routes));
    if (a->last_etcd) /* a restart: keep serving what the previous start published */
        mesh_reconciler_set(&st->rec, MESH_ROUTE_ETCD, mesh_routes_ref(a->last_etcd));
    if (a->cfg.on_view) /* a new start: the hook's view is this one from now on */
        a->cfg.on_view(a->cfg.hooks_ud, NULL, 0);
    if (a->starts++ == 0 || a->last_etcd)
        publish(st); /* static routes serve at once, before etcd answers */
    if (!a->cfg.etcd_new)
        return 0;
    st->api = a->cfg.etcd_new(self, deliver, st, a->cfg.etcd_arg);
    if (!st->api) {
        mesh_error("registry", "cannot create the etcd client");
        return -1;
    }
    if (a->n_kept) { /* a restart: register again what was registered */
        if (grow_regs(st) < 0)
            return -1;
        for (size_t i = 0; i < a->n_kept; i++, st->n_regs++)
            if (start_reg(st, i) < 0)
                return -1;
        reap(st);
    }
    if (!a->cfg.watch)
        return 0;
    reg_view_cfg_t vc = {
        .prefix = a->prefix,
        .snapshot_path = a->snapshot_path,
        .watch = a->cfg.watch_cfg,
    };
    vc.watch.seed = mesh_random(self);
    st->view = reg_view_new(&vc);
    if (!st->view) {
        mesh_error("registry", "out of memory creating the view of %s", a->prefix);
        return -1;
    }
    mesh_info("registry", "watching %s/ on %s", a->prefix, etcd_api_endpoint(st->api));
    reg_view_out_t out;
    reg_view_start(st->view, self, st->api, &out);
    view_out(st, &out);
    return 0;
}

static int reg_message(mesh_actor_t *self, mesh_msg_t *m)
{
    reg_actor_t *st = mesh_state(self);
    switch (m->type) {
    case REG_MSG_ETCD:
        if (m->ptr)
            on_etcd(st, m->ptr);
        return 0;
    case REG_MSG_VIEW_RETRY:
    case REG_MSG_VIEW_FLUSH:
        if (st->view && (m->flags & MESH_MSG_F_TIMER)) {
            reg_view_out_t out;
            if (reg_view_on_timer(st->view, m, &out))
                view_out(st, &out);
        }
        return 0;
    case REG_MSG_LEASE_TIMER:
        for (size_t i = 0; i < st->n_regs; i++)
            if (reg_registration_on_timer(st->regs[i], m))
                break;
        reap(st);
        return 0;
    case REG_MSG_REGISTER:
        return on_register(st, m);
    case REG_MSG_DEREGISTER:
        on_deregister(st, m);
        return 0;
    case REG_MSG_RELEASE_OWNER:
        on_release_owner(st, m);
        return 0;
    default:
        mesh_debug("registry", "unexpected message %#x", m->type);
        return 0;
    }
}

static void reg_stop(mesh_actor_t *self, int reason)
{
    reg_actor_t *st = mesh_state(self);
    if (!st->a)
        return;
    reg_view_free(st->view);
    st->view = NULL;
    for (size_t i = 0; i < st->n_regs; i++)
        reg_registration_free(st->regs[i]); /* their specs stay kept for the next start */
    free(st->regs);
    st->regs = NULL;
    st->n_regs = 0;
    etcd_api_free(st->api);
    st->api = NULL;
    mesh_reconciler_destroy(&st->rec);
}

const mesh_actor_ops_t reg_actor_ops = {
    .name = "registry",
    .state_size = sizeof(reg_actor_t),
    .on_start = reg_start,
    .on_message = reg_message,
    .on_stop = reg_stop,
};

/* ---- the production etcd factory ------------------------------------------------------------ */

etcd_api_t *reg_etcd_curl_factory(mesh_actor_t *self, etcd_deliver_fn deliver_fn, void *deliver_ud,
                                  void *arg)
{
    reg_curl_factory_t *f = arg;
    uv_loop_t *loop = mesh_exec_uv_loop(f->exec, mesh_loop_index(self));
    return loop ? etcd_api_curl_new(loop, &f->cfg, deliver_fn, deliver_ud) : NULL;
}
