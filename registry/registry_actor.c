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
#include "actors/io.h"
#include "common/addr.h"
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
    mesh_actor_id_t local_subscriber; /* gets REG_MSG_LOCAL (kept across restarts) */
    reg_gossip_t *gossip;             /* the last word of gossip (kept across restarts) */
};

/* Whether a dead owner's instance is really gone: a connect to it (GONE when refused or
 * unanswered, ALIVE when accepted), or GONE at once when it left routing while etcd was
 * unreachable (it stays out when etcd comes back). A result older than PROBE_RECHECK_NS is
 * checked again when the table is next built (a partition healed: the instance is back before
 * gossip says so); it stands meanwhile. Kept until its owner is no longer dead. */
typedef enum { PROBE_PENDING = 0, PROBE_GONE = 1, PROBE_ALIVE = 2 } probe_result_t;
#define PROBE_RECHECK_NS 5000000000ull
typedef struct probe {
    struct reg_actor *st;
    char *addr, *node;
    uint64_t hash; /* of addr: the probe index's key */
    probe_result_t result;
    uint64_t at; /* when the result came */
    mesh_stream_t *stream;
    uint64_t timer;
} probe_t;

typedef struct reg_actor {
    reg_actor_args_t *a;
    mesh_actor_t *self;
    etcd_api_t *api;
    reg_view_t *view;
    mesh_reconciler_t rec;
    reg_registration_t **regs; /* one per kept registration, same order (NULL without etcd) */
    size_t n_regs;
    uint64_t tables;
    reg_etcd_state_t etcd_state;
    int grace; /* etcd came back: gossip routes still merged until the grace timer */
    probe_t **probes;
    size_t n_probes;
    probe_t **probe_ix; /* the probes by addr: open addressing, at most half full */
    size_t probe_ix_cap;
    int probe_tick;  /* the re-check timer is armed (only while probes exist) */
    int probe_apply; /* results came in: the table is rebuilt on REG_MSG_PROBE_APPLY */
    uint8_t *gone;   /* without_dead's scratch: which instances of a service go */
    size_t gone_cap;
    /* Services of the etcd table holding an instance of a dead owner whose metadata we never
     * had (services_unknown): found by one scan when the gossip view changes, then kept up to
     * date from the etcd table's diffs, so a rebuild costs what changed. */
    char **unk_names; /* strdup'd, unsorted, unique */
    size_t n_unk, unk_cap;
    mesh_routes_t *unk_table; /* the etcd table they reflect (a reference), or NULL */
    uint64_t unk_gen;         /* the gossip view they reflect (gossip_gen) */
    uint64_t gossip_gen;      /* bumped for every gossip view taken */
    /* The dead owners' service names of the gossip view dead_gen, sorted, each once (they
     * point into that view): without_dead runs for every etcd batch, the view changes far
     * less often. */
    const char **dead_names;
    size_t n_dead_names, dead_names_cap;
    uint64_t dead_gen;
    int dead_names_ok;
    /* The dead owners of the gossip view dead_ix_gen by name: open addressing, at most half
     * full, built on the first lookup of each view (a lookup per instance of a service). */
    struct dead_slot {
        uint32_t pos; /* index in the view's dead + 1; 0: free */
        uint32_t hash;
    } * dead_ix;
    size_t dead_ix_cap;
    uint64_t dead_ix_gen;
    int dead_ix_ok;
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
    reg_gossip_free(a->gossip);
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

static reg_etcd_state_t etcd_state(const reg_actor_t *st)
{
    if (!st->api)
        return REG_ETCD_OFF;
    if (!st->view)
        return REG_ETCD_CONNECTED; /* registering only: routing does not depend on it */
    return reg_view_link(st->view) == REG_LINK_CONNECTED ? REG_ETCD_CONNECTED : REG_ETCD_DEGRADED;
}

/* ---- dead owners (SWIM) and their corroboration ----------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dead_cmp(const void *a, const void *b)
{
    return strcmp(((const reg_dead_owner_t *)a)->node, ((const reg_dead_owner_t *)b)->node);
}

static uint64_t addr_hash(const char *s);

/* Indexes the current gossip view's dead owners by name. 0, or -1 out of memory. */
static int dead_ix_build(reg_actor_t *st)
{
    const reg_gossip_t *g = st->a->gossip;
    size_t cap = 16;
    while (cap < 2 * g->n_dead)
        cap *= 2;
    if (cap > st->dead_ix_cap) {
        struct dead_slot *ni = realloc(st->dead_ix, cap * sizeof(*ni));
        if (!ni)
            return -1;
        st->dead_ix = ni;
        st->dead_ix_cap = cap;
    }
    memset(st->dead_ix, 0, cap * sizeof(*st->dead_ix));
    for (size_t d = 0; d < g->n_dead; d++) {
        uint64_t h = addr_hash(g->dead[d].node);
        size_t i = h & (cap - 1);
        while (st->dead_ix[i].pos)
            i = (i + 1) & (cap - 1);
        st->dead_ix[i] = (struct dead_slot){.pos = (uint32_t)d + 1, .hash = (uint32_t)h};
    }
    st->dead_ix_cap = cap; /* the probe mask uses exactly this size */
    st->dead_ix_gen = st->gossip_gen;
    st->dead_ix_ok = 1;
    return 0;
}

/* The dead owner named node in the current gossip view, or NULL: a hash lookup (the index is
 * built once per view); g's dead owners are also sorted by name when g arrives (on_gossip), so
 * without memory for the index a lookup is a binary search. */
static const reg_dead_owner_t *dead_owner(reg_actor_t *st, const char *node)
{
    const reg_gossip_t *g = st->a->gossip;
    if (!g || !node || !node[0] || !g->n_dead)
        return NULL;
    if ((!st->dead_ix_ok || st->dead_ix_gen != st->gossip_gen) && dead_ix_build(st) != 0) {
        st->dead_ix_ok = 0;
        reg_dead_owner_t key = {.node = (char *)node};
        return bsearch(&key, g->dead, g->n_dead, sizeof(*g->dead), dead_cmp);
    }
    uint64_t h = addr_hash(node);
    size_t mask = st->dead_ix_cap - 1;
    for (size_t i = h & mask; st->dead_ix[i].pos; i = (i + 1) & mask) {
        const reg_dead_owner_t *d = &g->dead[st->dead_ix[i].pos - 1];
        if (st->dead_ix[i].hash == (uint32_t)h && !strcmp(d->node, node))
            return d;
    }
    return NULL;
}

/* ---- the probe index (by instance address) -------------------------------------------------- */

static uint64_t addr_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static void ix_put(probe_t **ix, size_t cap, probe_t *p)
{
    size_t i = p->hash & (cap - 1);
    while (ix[i])
        i = (i + 1) & (cap - 1);
    ix[i] = p;
}

static int ix_grow(reg_actor_t *st)
{
    if ((st->n_probes + 1) * 2 <= st->probe_ix_cap)
        return 0;
    size_t cap = st->probe_ix_cap ? st->probe_ix_cap * 2 : 16;
    probe_t **ix = calloc(cap, sizeof(*ix));
    if (!ix)
        return -1;
    for (size_t i = 0; i < st->n_probes; i++)
        ix_put(ix, cap, st->probes[i]);
    free(st->probe_ix);
    st->probe_ix = ix;
    st->probe_ix_cap = cap;
    return 0;
}

/* Backward-shift deletion keeps the probe chains whole. */
static void ix_del(reg_actor_t *st, probe_t *p)
{
    size_t mask = st->probe_ix_cap - 1, i = p->hash & mask;
    while (st->probe_ix[i] != p)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; st->probe_ix[j]; j = (j + 1) & mask) {
        size_t home = st->probe_ix[j]->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            st->probe_ix[i] = st->probe_ix[j];
            i = j;
        }
    }
    st->probe_ix[i] = NULL;
}

static probe_t *probe_find(reg_actor_t *st, const char *addr)
{
    if (!st->probe_ix_cap)
        return NULL;
    uint64_t h = addr_hash(addr);
    for (size_t i = h & (st->probe_ix_cap - 1); st->probe_ix[i];
         i = (i + 1) & (st->probe_ix_cap - 1))
        if (st->probe_ix[i]->hash == h && !strcmp(st->probe_ix[i]->addr, addr))
            return st->probe_ix[i];
    return NULL;
}

static void probe_close(reg_actor_t *st, probe_t *p)
{
    if (p->stream)
        mesh_stream_close(mesh_io(st->self), p->stream);
    p->stream = NULL;
    if (p->timer)
        mesh_timer_stop(st->self, p->timer);
    p->timer = 0;
}

static void probe_drop(reg_actor_t *st, size_t i)
{
    probe_t *p = st->probes[i];
    probe_close(st, p);
    ix_del(st, p);
    free(p->addr);
    free(p->node);
    free(p);
    st->probes[i] = st->probes[--st->n_probes];
}

/* Forgets the probes of owners that are no longer dead in the current gossip view (all when
 * keep is 0). */
static void probes_prune(reg_actor_t *st, int keep)
{
    for (size_t i = 0; i < st->n_probes;)
        if (!keep || !dead_owner(st, st->probes[i]->node))
            probe_drop(st, i);
        else
            i++;
    if (!st->n_probes) {
        free(st->probes);
        st->probes = NULL;
        free(st->probe_ix);
        st->probe_ix = NULL;
        st->probe_ix_cap = 0;
    }
}

static probe_t *probe_new(reg_actor_t *st, const char *node, const char *addr)
{
    if (ix_grow(st))
        return NULL;
    probe_t **np = realloc(st->probes, (st->n_probes + 1) * sizeof(*np));
    if (!np)
        return NULL;
    st->probes = np;
    probe_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->addr = strdup(addr)) || !(p->node = strdup(node))) {
        if (p)
            free(p->addr);
        free(p);
        return NULL;
    }
    p->st = st;
    p->hash = addr_hash(addr);
    st->probes[st->n_probes++] = p;
    ix_put(st->probe_ix, st->probe_ix_cap, p);
    if (!st->probe_tick &&
        mesh_timer_start(st->self, PROBE_RECHECK_NS, 0, REG_MSG_PROBE_TICK, NULL) == 0)
        st->probe_tick = 1;
    return p;
}

static void apply_sources(reg_actor_t *st);

static void probe_done(probe_t *p, probe_result_t r)
{
    reg_actor_t *st = p->st;
    probe_close(st, p);
    probe_result_t was = p->result;
    p->result = r;
    p->at = mesh_now(st->self);
    if (r != was)
        mesh_info("registry", "instance %s of %s, which gossip declares dead: %s", p->addr, p->node,
                  r == PROBE_GONE ? "connect failed, removing it from routing"
                                  : "still accepts connections, keeping it (etcd has its lease)");
    /* many results come at once after a partition: one rebuild for all of them */
    if (r != was && !st->probe_apply &&
        mesh_timer_start(st->self, 0, 0, REG_MSG_PROBE_APPLY, NULL) == 0)
        st->probe_apply = 1;
}

static void probe_on_connect(mesh_stream_t *s, int status, void *arg)
{
    probe_t *p = arg;
    p->stream = s; /* closed by probe_done, whatever the status */
    probe_done(p, status < 0 ? PROBE_GONE : PROBE_ALIVE);
}

/* Starts (or restarts) the connect of p. */
static void probe_start(reg_actor_t *st, probe_t *p)
{
    mesh_addr_t to;
    if (mesh_addr_parse(p->addr, &to)) {
        p->result = PROBE_ALIVE; /* a name we cannot check here: keep it */
        p->at = UINT64_MAX / 2;
        return;
    }
    uint64_t to_ns =
        st->a->cfg.corroborate_timeout_ns ? st->a->cfg.corroborate_timeout_ns : 1000000000ull;
    mesh_timer_start(st->self, to_ns, 0, REG_MSG_PROBE_TIMEOUT, &p->timer);
    if (mesh_connect(mesh_io(st->self), &to, probe_on_connect, p, &p->stream) != 0) {
        p->stream = NULL;
        probe_close(st, p);
        p->result = PROBE_GONE;
        p->at = mesh_now(st->self);
    }
}

/* The corroboration of node's instance at addr: starts a probe the first time (an ALIVE result
 * is checked again once it is old; meanwhile it stands). */
static probe_result_t corroborated(reg_actor_t *st, const char *node, const char *addr)
{
    probe_t *p = probe_find(st, addr);
    if (!p) {
        if (!(p = probe_new(st, node, addr)))
            return PROBE_PENDING;
        probe_start(st, p);
    } else if (p->result != PROBE_PENDING && !p->stream && !p->timer &&
               mesh_now(st->self) - p->at > PROBE_RECHECK_NS) {
        probe_start(st, p); /* the old result stands until the new one comes (no flap) */
    }
    return p->result;
}

/* An instance that left routing while etcd was unreachable stays out when etcd comes back. */
static void gone_meanwhile(reg_actor_t *st, const char *node, const char *addr)
{
    probe_t *p = probe_find(st, addr);
    if (!p && (p = probe_new(st, node, addr)) != NULL) {
        p->result = PROBE_GONE;
        p->at = mesh_now(st->self);
    }
}

static void unk_clear(reg_actor_t *st)
{
    for (size_t i = 0; i < st->n_unk; i++)
        free(st->unk_names[i]);
    st->n_unk = 0;
    if (st->unk_table)
        mesh_routes_unref(st->unk_table);
    st->unk_table = NULL;
    st->unk_gen = 0;
}

/* Adds the service if one of its instances belongs to an unknown dead owner of the gossip view. */
static void unk_consider(reg_actor_t *st, const char *name, const mesh_route_service_t *svc)
{
    int hit = 0;
    for (size_t k = 0; svc && k < svc->n_instances && !hit; k++) {
        const reg_dead_owner_t *d = dead_owner(st, svc->instances[k].node);
        hit = d && d->services_unknown;
    }
    if (!hit)
        return;
    for (size_t i = 0; i < st->n_unk; i++)
        if (!strcmp(st->unk_names[i], name))
            return;
    if (st->n_unk == st->unk_cap) {
        size_t nc = st->unk_cap ? st->unk_cap * 2 : 8;
        char **nn = realloc(st->unk_names, nc * sizeof(*nn));
        if (!nn)
            return;
        st->unk_names = nn;
        st->unk_cap = nc;
    }
    char *c = strdup(name);
    if (c)
        st->unk_names[st->n_unk++] = c;
}

static void unk_diff_cb(void *ud, const char *name, const mesh_route_svc_t *before,
                        const mesh_route_svc_t *after)
{
    (void)before;
    if (after)
        unk_consider(ud, name, mesh_route_svc_get(after));
}

/* Brings st->unk_names up to date with the gossip view and the etcd table. */
static void unk_refresh(reg_actor_t *st, mesh_routes_t *etcd)
{
    if (st->unk_gen != st->gossip_gen || !st->unk_table) {
        unk_clear(st);
        for (size_t i = 0, n = mesh_routes_count(etcd); i < n; i++) {
            const mesh_route_service_t *svc = mesh_routes_at(etcd, i);
            unk_consider(st, svc->name, svc);
        }
    } else if (st->unk_table != etcd) {
        mesh_routes_diff(st->unk_table, etcd, unk_diff_cb, st);
        mesh_routes_unref(st->unk_table);
    } else {
        return;
    }
    st->unk_table = mesh_routes_ref(etcd);
    st->unk_gen = st->gossip_gen;
}

/* Brings st->dead_names up to date with the gossip view (n: the services its dead owners list,
 * duplicates included): sorted and deduplicated once per view. 0, or -1 out of memory. */
static int dead_names_refresh(reg_actor_t *st, size_t n)
{
    const reg_gossip_t *g = st->a->gossip;
    if (st->dead_names_ok && st->dead_gen == st->gossip_gen)
        return 0;
    st->dead_names_ok = 0;
    if (n > st->dead_names_cap) {
        const char **nn = realloc(st->dead_names, n * sizeof(*nn));
        if (!nn)
            return -1;
        st->dead_names = nn;
        st->dead_names_cap = n;
    }
    size_t k = 0;
    for (size_t d = 0; d < g->n_dead; d++)
        for (size_t j = 0; j < g->dead[d].n_services; j++)
            st->dead_names[k++] = g->dead[d].services[j];
    if (k)
        qsort(st->dead_names, k, sizeof(*st->dead_names), name_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (!u || strcmp(st->dead_names[i], st->dead_names[u - 1]))
            st->dead_names[u++] = st->dead_names[i];
    st->n_dead_names = u;
    st->dead_gen = st->gossip_gen;
    st->dead_names_ok = 1;
    return 0;
}

/*
 * The etcd table without the instances of dead owners (see reg_gossip_t), as a new reference.
 * Costs the services the dead owners' metadata lists, not the table. A dead owner whose
 * metadata was never known (it died before this node joined: a proxy restarted from its
 * snapshot during an etcd outage) may own instances anywhere: the table is scanned once per
 * gossip view that has such owners, then followed by its diffs (unk_refresh).
 */
static mesh_routes_t *without_dead(reg_actor_t *st, mesh_routes_t *etcd)
{
    const reg_gossip_t *g = st->a->gossip;
    if (!etcd || !g || !g->n_dead)
        return etcd ? mesh_routes_ref(etcd) : NULL;
    int connected = st->etcd_state == REG_ETCD_CONNECTED;
    mesh_route_edit_t *edits = NULL;
    size_t n_edits = 0, cap = 0;
    mesh_route_svc_builder_t *b = NULL;
    /* each service of a dead owner once, whatever the number of dead owners listing it */
    size_t n_names = 0, unknown = 0;
    for (size_t d = 0; d < g->n_dead; d++) {
        n_names += g->dead[d].n_services;
        unknown += g->dead[d].services_unknown;
    }
    if (unknown)
        unk_refresh(st, etcd);
    else if (st->unk_table)
        unk_clear(st);
    size_t n_scan = unknown ? st->n_unk : 0;
    const char **names = NULL; /* owned here only with unknown owners' services merged in */
    if (n_scan) {
        names = malloc((n_names + n_scan) * sizeof(*names));
        if (!names)
            return mesh_routes_ref(etcd);
        n_names = 0;
        for (size_t d = 0; d < g->n_dead; d++)
            for (size_t k = 0; k < g->dead[d].n_services; k++)
                names[n_names++] = g->dead[d].services[k];
        for (size_t i = 0; i < n_scan; i++)
            names[n_names++] = st->unk_names[i];
        qsort(names, n_names, sizeof(*names), name_cmp);
    } else {
        if (dead_names_refresh(st, n_names))
            return mesh_routes_ref(etcd);
        n_names = st->n_dead_names;
    }
    const char *const *sorted = n_scan ? names : st->dead_names;
    for (size_t k = 0; k < n_names; k++) {
        const char *name = sorted[k];
        if (k && !strcmp(name, sorted[k - 1]))
            continue;
        const mesh_route_service_t *svc = mesh_routes_service(etcd, name);
        if (!svc)
            continue;
        size_t kept = 0;
        size_t n = svc->n_instances, drop = 0, keep_min = (n + 1) / 2;
        if (n > st->gone_cap) { /* which instances go: one flag per instance */
            uint8_t *ng = realloc(st->gone, n);
            if (!ng)
                goto oom;
            st->gone = ng;
            st->gone_cap = n;
        }
        uint8_t *gone = st->gone;
        memset(gone, 0, n);
        for (size_t i = 0; i < n; i++) {
            const mesh_route_instance_t *in = &svc->instances[i];
            if (!dead_owner(st, in->node))
                continue;
            if (connected && corroborated(st, in->node, in->addr) != PROBE_GONE)
                continue;
            if (n - drop <= keep_min) {
                kept++;
                continue;
            }
            gone[i] = 1;
            drop++;
            if (!connected)
                gone_meanwhile(st, in->node, in->addr);
        }
        if (kept)
            mesh_warn("registry",
                      "panic floor: keeping %zu instance%s of %s although %s owner%s "
                      "dead (at least half of a service's instances stay routable)",
                      kept, kept == 1 ? "" : "s", name, kept == 1 ? "its" : "their",
                      kept == 1 ? " is" : "s are");
        if (!drop)
            continue;
        if (!b && !(b = mesh_route_svc_builder_new()))
            goto oom;
        for (size_t i = 0; i < n; i++)
            if (!gone[i])
                mesh_route_svc_builder_add_instance(b, &svc->instances[i]);
        mesh_route_svc_t *out = NULL;
        if (mesh_route_svc_builder_finish(b, name, &out) < 0)
            goto oom;
        if (n_edits == cap) {
            cap = cap ? cap * 2 : 8;
            mesh_route_edit_t *ne = realloc(edits, cap * sizeof(*ne));
            if (!ne) {
                mesh_route_svc_unref(out);
                goto oom;
            }
            edits = ne;
        }
        edits[n_edits++] = (mesh_route_edit_t){.name = name, .svc = out};
    }
    mesh_route_svc_builder_free(b);
    mesh_routes_t *t = n_edits ? mesh_routes_update(etcd, edits, n_edits) : mesh_routes_ref(etcd);
    free(edits);
    free(names);
    return t ? t : mesh_routes_ref(etcd);
oom:
    for (size_t e = 0; e < n_edits; e++)
        mesh_route_svc_unref(edits[e].svc);
    free(edits);
    free(names);
    mesh_route_svc_builder_free(b);
    return mesh_routes_ref(etcd);
}

/* Hands the reconciler the etcd source (minus dead owners) and, while etcd is not connected
 * (or in the grace after it came back), the gossip source. */
static void apply_sources(reg_actor_t *st)
{
    reg_actor_args_t *a = st->a;
    if (a->last_etcd)
        mesh_reconciler_set(&st->rec, MESH_ROUTE_ETCD, without_dead(st, a->last_etcd));
    int with_gossip =
        a->gossip && a->gossip->routes && (st->etcd_state != REG_ETCD_CONNECTED || st->grace);
    mesh_reconciler_set(&st->rec, MESH_ROUTE_GOSSIP,
                        with_gossip ? mesh_routes_ref(a->gossip->routes) : NULL);
}

/* The etcd link may have changed: gossip joins or leaves the sources. */
static void link_check(reg_actor_t *st)
{
    reg_etcd_state_t now = etcd_state(st);
    if (now == st->etcd_state)
        return;
    reg_etcd_state_t was = st->etcd_state;
    st->etcd_state = now;
    if (now == REG_ETCD_CONNECTED && was == REG_ETCD_DEGRADED && st->a->gossip) {
        /* sidecars registered meanwhile re-put their keys: keep their gossip routes a while */
        uint64_t g = st->a->cfg.gossip_grace_ns ? st->a->cfg.gossip_grace_ns : 5000000000ull;
        st->grace = 1;
        mesh_timer_start(st->self, g, 0, REG_MSG_GOSSIP_GRACE, NULL);
    }
    if (now == REG_ETCD_DEGRADED && st->a->gossip)
        mesh_warn("registry", "etcd unreachable: routing from the last etcd view and gossip");
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
    int changed = 0;
    if (out->publish) {
        mesh_routes_t *t = reg_view_routes(st->view);
        if (t) {
            mesh_routes_unref(st->a->last_etcd);
            st->a->last_etcd = t;
            mesh_debug("registry", "view at revision %lld: %zu service%s",
                       (long long)reg_view_revision(st->view), mesh_routes_count(t),
                       mesh_routes_count(t) == 1 ? "" : "s");
            changed = 1;
        } else {
            mesh_error("registry", "out of memory building the etcd routes");
        }
    }
    if (out->link_changed)
        link_to(st, out->link);
    reg_etcd_state_t before = st->etcd_state;
    link_check(st);
    if (changed || before != st->etcd_state) {
        apply_sources(st);
        publish(st);
    }
    if (st->a->cfg.on_view && st->view)
        st->a->cfg.on_view(st->a->cfg.hooks_ud, st->view, out->publish);
}

static void on_gossip(reg_actor_t *st, mesh_msg_t *m)
{
    reg_gossip_t *g = mesh_msg_take_ptr(m);
    if (!g)
        return;
    /* The dead owners sorted by name. The gossip bridge sends them so, and mostly the same as
     * before: equal to the last view's (sorted) list, they are sorted; else one pass checks. */
    const reg_gossip_t *was = st->a->gossip;
    int dead_changed = !was || was->n_dead != g->n_dead;
    for (size_t i = 0; !dead_changed && i < g->n_dead; i++)
        dead_changed = strcmp(g->dead[i].node, was->dead[i].node) != 0;
    int sorted = 1;
    for (size_t i = 1; dead_changed && sorted && i < g->n_dead; i++)
        sorted = strcmp(g->dead[i - 1].node, g->dead[i].node) <= 0;
    if (!sorted) {
        qsort(g->dead, g->n_dead, sizeof(*g->dead), dead_cmp);
        dead_changed = !was || was->n_dead != g->n_dead;
        for (size_t i = 0; !dead_changed && i < g->n_dead; i++)
            dead_changed = strcmp(g->dead[i].node, was->dead[i].node) != 0;
    }
    reg_gossip_free(st->a->gossip);
    st->a->gossip = g;
    st->gossip_gen++;
    if (dead_changed)
        probes_prune(st, 1);
    /* with etcd connected gossip's routes are not merged: only a change of the dead owners
     * can change the table */
    int merged = st->etcd_state != REG_ETCD_CONNECTED || st->grace;
    if (!st->a->cfg.watch || (!merged && !dead_changed))
        return;
    apply_sources(st);
    publish(st);
}

void reg_local_free(void *p)
{
    reg_local_t *l = p;
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->keys[i]);
        free(l->values[i]);
    }
    free(l->keys);
    free(l->values);
    free(l);
}

void reg_gossip_free(void *p)
{
    reg_gossip_t *g = p;
    if (!g)
        return;
    mesh_routes_unref(g->routes);
    free(g->dead); /* with the names and lists it points to */
    free(g->first_monitor);
    free(g);
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

/* Tells the local subscriber (gossip) what this node registers: every kept registration not
 * being withdrawn, whether or not etcd has it yet. */
static void local_send(reg_actor_t *st)
{
    reg_actor_args_t *a = st->a;
    if (!a->local_subscriber)
        return;
    reg_local_t *l = calloc(1, sizeof(*l));
    size_t n = 0;
    for (size_t i = 0; i < a->n_kept; i++)
        if (!a->kept[i].stopping)
            n += a->kept[i].spec->n_keys;
    if (!l ||
        (n && (!(l->keys = calloc(n, sizeof(char *))) || !(l->values = calloc(n, sizeof(char *))))))
        goto oom;
    for (size_t i = 0; i < a->n_kept; i++) {
        const reg_spec_t *sp = a->kept[i].spec;
        if (a->kept[i].stopping)
            continue;
        for (size_t k = 0; k < sp->n_keys; k++, l->n++)
            if (!(l->keys[l->n] = strdup(sp->keys[k])) ||
                !(l->values[l->n] = strdup(sp->values[k]))) {
                l->n++;
                goto oom;
            }
    }
    int rc = mesh_send_ptr(st->self, a->local_subscriber, REG_MSG_LOCAL, l, reg_local_free);
    if (rc == -MESH_ENOENT)
        a->local_subscriber = 0;
    else if (rc)
        mesh_error("registry", "cannot tell gossip about our registrations: %s", mesh_strerror(rc));
    if (rc)
        reg_local_free(l);
    return;
oom:
    reg_local_free(l);
    mesh_error("registry", "out of memory telling gossip about our registrations");
}

/* Without etcd (a gossip-only mesh) a registration is the local record gossip announces: it
 * is registered at once and withdrawn at once. */
static void local_event(reg_actor_t *st, mesh_actor_id_t owner, uint32_t id, int event)
{
    reg_event_t e = {.id = id, .event = event};
    mesh_send(st->self, owner, REG_MSG_EVENT, &e, sizeof(e));
}

static void local_drop(reg_actor_t *st, size_t i)
{
    reg_actor_args_t *a = st->a;
    reg_spec_free(a->kept[i].spec);
    a->kept[i] = a->kept[--a->n_kept];
    st->n_regs--;
}

static int on_register(reg_actor_t *st, mesh_msg_t *m)
{
    reg_actor_args_t *a = st->a;
    reg_spec_t *spec = mesh_msg_take_ptr(m);
    reg_register_ok_t ok = {0};
    int local = !st->api && a->cfg.local_registry;
    if (!spec || (!st->api && !local) || grow_regs(st) < 0) {
        mesh_error("registry", "cannot register %s: %s", spec ? spec->addr : "(nothing)",
                   !spec      ? "empty request"
                   : !st->api ? "no etcd and no gossip configured"
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
    if (local) {
        st->regs[i] = NULL;
        mesh_info("registry", "registered %s in gossip (no etcd)", spec->addr);
        local_event(st, m->from, id, REG_EV_REGISTERED);
        local_send(st);
        return 0;
    }
    if (start_reg(st, i) < 0) {
        st->n_regs--;
        a->n_kept--;
        reg_spec_free(spec);
        return -1;
    }
    reap(st);
    local_send(st);
    return 0;
}

static void on_deregister(reg_actor_t *st, const mesh_msg_t *m)
{
    const reg_deregister_t *d = mesh_msg_as(m, reg_deregister_t);
    size_t i;
    if (!st->api) {
        for (i = 0; d && i < st->a->n_kept; i++)
            if (st->a->kept[i].id == d->id) {
                local_drop(st, i);
                break;
            }
        if (d)
            local_event(st, m->from, d->id, REG_EV_DEREGISTERED);
        local_send(st);
        return;
    }
    reg_registration_t *r = d ? find_reg(st, d->id, &i) : NULL;
    if (r) {
        st->a->kept[i].stopping = 1;
        reg_registration_stop(r);
    } else if (d) { /* unknown (never granted, or already done): say so, so nobody waits */
        reg_event_t e = {.id = d->id, .event = REG_EV_DEREGISTERED};
        mesh_send(st->self, m->from, REG_MSG_EVENT, &e, sizeof(e));
    }
    reap(st);
    local_send(st);
}

static void on_release_owner(reg_actor_t *st, const mesh_msg_t *m)
{
    if (!st->api) {
        for (size_t i = 0; i < st->a->n_kept;)
            if (st->a->kept[i].owner == m->from)
                local_drop(st, i);
            else
                i++;
        local_send(st);
        return;
    }
    for (size_t i = 0; i < st->n_regs; i++)
        if (st->a->kept[i].owner == m->from && !st->a->kept[i].stopping) {
            mesh_info("registry", "deregistering %s: its owner started over",
                      st->a->kept[i].spec->addr);
            st->a->kept[i].stopping = 1;
            reg_registration_stop(st->regs[i]);
        }
    reap(st);
    local_send(st);
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
    /* a restart keeps serving what the previous start published (etcd and gossip); until the
     * view is live again etcd counts as unreachable */
    st->etcd_state = a->cfg.etcd_new ? REG_ETCD_DEGRADED : REG_ETCD_OFF;
    apply_sources(st);
    if (a->cfg.on_view) /* a new start: the hook's view is this one from now on */
        a->cfg.on_view(a->cfg.hooks_ud, NULL, 0);
    if (a->starts++ == 0 || a->last_etcd || a->gossip)
        publish(st); /* static routes serve at once, before etcd answers */
    if (!a->cfg.etcd_new) {
        st->n_regs = a->n_kept; /* local registrations (gossip) survive a restart as they are */
        if (a->n_kept && grow_regs(st) < 0)
            return -1;
        for (size_t i = 0; i < a->n_kept; i++)
            st->regs[i] = NULL;
        local_send(st);
        return 0;
    }
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
        .snapshot_fs = a->cfg.snapshot_fs,
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
    case REG_MSG_VIEW_SNAP:
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
    case REG_MSG_LOCAL_SUBSCRIBE:
        st->a->local_subscriber = m->from;
        local_send(st);
        return 0;
    case REG_MSG_GOSSIP:
        on_gossip(st, m);
        return 0;
    case REG_MSG_GOSSIP_GRACE:
        if (st->grace) {
            st->grace = 0;
            apply_sources(st);
            publish(st);
        }
        return 0;
    case REG_MSG_PROBE_TICK:
        /* old corroboration results are checked again (see probe_t), while there are any */
        st->probe_tick = 0;
        if (st->etcd_state == REG_ETCD_CONNECTED && st->n_probes)
            apply_sources(st);
        if (st->n_probes && !st->probe_tick &&
            mesh_timer_start(self, PROBE_RECHECK_NS, 0, REG_MSG_PROBE_TICK, NULL) == 0)
            st->probe_tick = 1;
        return 0;
    case REG_MSG_PROBE_APPLY:
        st->probe_apply = 0;
        apply_sources(st);
        publish(st);
        return 0;
    case REG_MSG_PROBE_TIMEOUT:
        for (size_t i = 0; i < st->n_probes; i++)
            if (st->probes[i]->timer && st->probes[i]->timer == m->corr) {
                st->probes[i]->timer = 0;
                probe_done(st->probes[i], PROBE_GONE); /* silent: packets dropped */
                break;
            }
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
    probes_prune(st, 0);
    free(st->probe_ix);
    st->probe_ix = NULL;
    st->probe_ix_cap = 0;
    free(st->gone);
    st->gone = NULL;
    st->gone_cap = 0;
    unk_clear(st);
    free(st->unk_names);
    st->unk_names = NULL;
    st->unk_cap = 0;
    free(st->dead_names);
    free(st->dead_ix);
    st->dead_ix = NULL;
    st->dead_ix_cap = 0;
    st->dead_ix_ok = 0;
    st->dead_names = NULL;
    st->n_dead_names = st->dead_names_cap = 0;
    st->dead_names_ok = 0;
    st->probe_apply = 0;
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
