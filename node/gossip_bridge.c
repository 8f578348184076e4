/*
 * node/gossip_bridge.c: the gossip bridge (see node/gossip_bridge.h): the membership mirror,
 * the gossip routing table and dead owners for the registry actor, our registrations as gossip
 * metadata, and the admin API's members and route annotations.
 *
 * Tables are rebuilt whole from the mirror after a short coalescing delay (membership changes
 * come in bursts: a join, a partition); a rebuild costs the gossip instances, which a
 * gossip-registered mesh keeps in the thousands, not the etcd view's hundred thousands.
 */
#include "node/gossip_bridge.h"

#include <jansson.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "gossip/evicted.h"
#include "gossip/meta.h"
#include "node/admin.h"
#include "node/admin_routes.h"
#include "node/gossip_signer.h"
#include "node/node_msgs.h"
#include "registry/instance.h"
#include "registry/reg_msgs.h"
#include "registry/registry_actor.h"

#define MS 1000000ull

#define VERDICT_PENDING RSIG_N_RESULTS /* a record whose certificate set has not arrived */

typedef struct bmember {
    char name[GSP_NAME_MAX + 1];
    char addr[GSP_ADDR_MAX + 1];
    gsp_state_t state;
    uint32_t incarnation;
    uint64_t since_ns;
    int self, meta_known;
    uint8_t *meta;
    size_t meta_len;
    int verdict;     /* rsig_result_t of the record in meta (RSIG_OK when verification is off),
                        or VERDICT_PENDING while its certificate set is being fetched */
    uint64_t cset;   /* the certificate set it waits for (pending) */
    uint32_t logged; /* reasons already logged, a bit each */
    uint64_t meta_version; /* of meta */
    uint64_t accepted;     /* the version of its last signed record accepted (v2; 0: none) */
    int pinned;            /* a v2 record of it was accepted: v1 records are refused */
    int monitor;           /* meta decodes and says role "monitor" (set whenever meta changes) */
    /* The services meta lists, each once, in the order of its instances: NUL-terminated names
     * one after the other (what a dead owner's entry for the registry actor lists; set whenever
     * meta changes, so a rebuild does not decode the dead). */
    char *svcs;
    size_t svcs_len;
    uint32_t n_svcs;
} bmember_t;

typedef struct bset {
    uint64_t hash;
    size_t n;
    char **names; /* gsp_set_event_t's layout: one allocation */
    gsp_set_event_t *ev;
} bset_t;

/* A death our own suspicion timeout declared, waiting out the tie-break window: when another
 * member whose name sorts before ours declared it too, it reports and we do not. */
typedef struct pending_death {
    gsp_member_event_t *ev; /* a copy */
    int64_t ts_us;          /* when we declared it */
    uint64_t timer;
    int silenced;
} pending_death_t;

typedef struct bridge {
    gsp_bridge_args_t *a;
    bmember_t **tab; /* open addressing by name hash (find is O(1): events come per member) */
    size_t tab_cap;
    mesh_actor_t *self;
    mesh_actor_id_t gossip;
    uint64_t started;
    bmember_t **ms;      /* in the order first heard of (the gossip table's instance order) */
    bmember_t **by_name; /* the same members sorted by name (dead owners go out in this order) */
    size_t n, cap;
    bset_t *sets;
    size_t n_sets, cap_sets;
    int rebuild_pending;
    gsp_stats_event_t stats; /* the gossip actor's last counters */
    pending_death_t *deaths; /* declared by us, not reported yet */
    size_t n_deaths;
    gsp_inst_t insts[GSP_INST_MAX];
    gsp_attrs_update_t *attrs; /* our node attributes (a monitor's), or NULL */
    uint8_t *local_meta;       /* our instances alone, as last encoded (NULL: none yet) */
    size_t local_meta_len;
    gsp_node_attrs_t nattrs;           /* scratch: attributes being encoded or decoded */
    gsign_t signer;                    /* our signing identity */
    uint8_t cert[GSP_CERT_MAX];        /* scratch: a member's certificate reassembled */
    uint64_t rejected[RSIG_N_RESULTS]; /* records refused, by reason ([RSIG_OK]: accepted) */
    uint64_t version; /* the highest metadata version of ours we chose or saw (signed records) */
} bridge_t;

/* ---- the mirror -------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static bmember_t *find(bridge_t *b, const char *name)
{
    if (!b->tab_cap)
        return NULL;
    for (size_t i = name_hash(name) & (b->tab_cap - 1);; i = (i + 1) & (b->tab_cap - 1)) {
        if (!b->tab[i])
            return NULL;
        if (!strcmp(b->tab[i]->name, name))
            return b->tab[i];
    }
}

/* Indexes m (members are never removed from the mirror: tombstones stay as SWIM's do). */
static int tab_add(bridge_t *b, bmember_t *m)
{
    if ((b->n + 1) * 2 > b->tab_cap) {
        size_t cap = b->tab_cap ? b->tab_cap * 2 : 64;
        bmember_t **t = calloc(cap, sizeof(*t));
        if (!t)
            return -1;
        for (size_t i = 0; i < b->tab_cap; i++)
            if (b->tab[i]) {
                size_t j = name_hash(b->tab[i]->name) & (cap - 1);
                while (t[j])
                    j = (j + 1) & (cap - 1);
                t[j] = b->tab[i];
            }
        free(b->tab);
        b->tab = t;
        b->tab_cap = cap;
    }
    size_t j = name_hash(m->name) & (b->tab_cap - 1);
    while (b->tab[j])
        j = (j + 1) & (b->tab_cap - 1);
    b->tab[j] = m;
    return 0;
}

/* Copies the string src into dst of cap bytes, cut to fit (what snprintf "%s" does, without
 * formatting: this runs for every member event). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Adds m (new, b->n members before it) to the name order; room for it is there. */
static void by_name_add(bridge_t *b, bmember_t *m)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(b->by_name[mid]->name, m->name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(b->by_name + lo + 1, b->by_name + lo, (b->n - lo) * sizeof(*b->by_name));
    b->by_name[lo] = m;
}

static const bset_t *set_of(const bridge_t *b, uint64_t hash)
{
    for (size_t i = 0; i < b->n_sets; i++)
        if (b->sets[i].hash == hash)
            return &b->sets[i];
    return NULL;
}

static void cstr(char *buf, size_t cap, gsp_str_t s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    if (n)
        memcpy(buf, s.p, n);
    buf[n] = 0;
}

/* ---- signed records ---------------------------------------------------------------------- */

/* Whether a record refused for r leaves the member's last accepted record in force (routed):
 * what only someone other than the owner sends. A replay (stale) or a signature that does not
 * verify, always; from a member that had a signed record accepted (which keeps signing with its
 * own identity for as long as it lives), no signature at all (also an empty or missing record)
 * and a record signed by another identity (another member's valid certificate, or one naming
 * no node). Other refusals (an expired or wrong-CA certificate, a service not allowed) are the
 * owner's own and unroute it, as does a wrong identity before anything was accepted. */
static int keeps_accepted(const bmember_t *m, int r)
{
    return r == RSIG_STALE || r == RSIG_BAD_SIGNATURE ||
           ((r == RSIG_UNSIGNED || r == RSIG_WRONG_IDENTITY) && m->pinned);
}

/* A refused record: counted, logged once per (member, reason), audited. */
static void rejected(bridge_t *b, bmember_t *m, rsig_result_t r, const char *why, const char *svc)
{
    b->rejected[r]++;
    if (!(m->logged & (1u << r))) {
        m->logged |= 1u << r;
        mesh_warn("gossip", "record of %s (%s) refused, %s: %s", m->name, rsig_result_name(r),
                  keeps_accepted(m, r) ? "the record accepted before stays"
                                       : "its instances are not routed",
                  why);
    }
    audit_api_t *api = b->a->audit;
    if (!audit_api_on(api))
        return;
    char reason[700];
    snprintf(reason, sizeof(reason), "%s: %s", rsig_result_name(r), why);
    audit_event_t ev = {.type = AUDIT_GOSSIP_RECORD_REJECTED,
                        .member = m->name,
                        .peer_address = m->addr,
                        .service = svc,
                        .reason = reason};
    audit_emit(b->self, api, &ev);
}

/* Checks a member's record (once per metadata version: the mirror calls it when it changes). */
static int verify_record(bridge_t *b, bmember_t *m)
{
    size_t n = 0;
    m->cset = 0;
    if (m->self)
        return RSIG_OK; /* our own record: we signed it */
    if (!m->meta ||
        gsp_meta_decode_node(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n, &b->nattrs) != 0) {
        if (!m->pinned)
            return RSIG_OK; /* nothing routable comes of it anyway */
        /* It would withdraw what a signed record of the member claims: only a signed one may. */
        rejected(b, m, RSIG_UNSIGNED, m->meta ? "metadata that does not decode" : "no metadata",
                 NULL);
        return RSIG_UNSIGNED;
    }
    if (n == 0 && b->nattrs.n_evicted == 0 && !m->pinned)
        return RSIG_OK; /* claims nothing (a proxy's record): nothing to prove */
    /* (An empty record of a member that signed before withdraws its instances: it is checked
     * like any record, so a keyring holder cannot erase another node's services with one.) */
    const uint8_t *cert = (const uint8_t *)b->nattrs.cert.p;
    size_t cert_len = b->nattrs.cert.n;
    int v1 = !b->nattrs.vsig.n; /* signed by a node older than versioned signatures */
    gsp_str_t sig = v1 ? b->nattrs.sig : b->nattrs.vsig;
    if (!cert_len && b->nattrs.cset && sig.n) {
        const bset_t *cs = set_of(b, b->nattrs.cset);
        if (!cs) {
            m->cset = b->nattrs.cset; /* being fetched: checked when it arrives */
            return VERDICT_PENDING;
        }
        long cl = gsp_cert_set_read((const char *const *)cs->names, cs->n, b->cert, GSP_CERT_MAX);
        cert = b->cert;
        cert_len = cl > 0 ? (size_t)cl : 0; /* not a certificate set: unsigned */
    }
    char **svcs = n ? calloc(n, sizeof(char *)) : NULL;
    size_t k = 0;
    for (size_t i = 0; svcs && i < n; i++) {
        char svc[GSP_FIELD_MAX + 1];
        cstr(svc, sizeof(svc), b->insts[i].service);
        int dup = 0;
        for (size_t j = 0; j < k && !dup; j++)
            dup = !strcmp(svcs[j], svc);
        if (!dup && !(svcs[k++] = strdup(svc)))
            break;
    }
    char err[600];
    size_t refused = SIZE_MAX;
    rsig_result_t r;
    if (n && (!svcs || !svcs[k - 1])) {
        snprintf(err, sizeof(err), "out of memory");
        r = RSIG_INTERNAL;
    } else {
        rsig_record_t rec = {.node = m->name,
                             .rec = (const uint8_t *)b->nattrs.insts_raw.p,
                             .rec_len = b->nattrs.insts_raw.n,
                             .sig = (const uint8_t *)sig.p,
                             .sig_len = sig.n,
                             .version = m->meta_version,
                             .v1 = v1,
                             .accepted = m->accepted,
                             .pinned = m->pinned,
                             .cert_der = cert,
                             .cert_len = cert_len,
                             .services = (const char *const *)svcs,
                             .n_services = k};
        r = rsig_verify(b->a->trust, b->a->rules, &rec, (int64_t)time(NULL), &refused, err,
                        sizeof(err));
    }
    if (r == RSIG_OK) {
        b->rejected[RSIG_OK]++;
        if (!v1) {
            m->pinned = 1;
            if (m->meta_version > m->accepted)
                m->accepted = m->meta_version;
        }
        if (m->logged) {
            mesh_info("gossip", "record of %s accepted again", m->name);
            m->logged = 0;
        }
    } else {
        /* The audit names the service refused, when that was the reason. */
        rejected(b, m, r, err, refused < k ? svcs[refused] : NULL);
    }
    for (size_t j = 0; svcs && j < k; j++)
        free(svcs[j]);
    free(svcs);
    return r;
}

static void reannounce(bridge_t *b);

/* Whether m's metadata decodes and names it a monitor (its role attribute). */
static int is_monitor(bridge_t *b, const bmember_t *m)
{
    size_t n;
    return m->meta &&
           gsp_meta_decode_node(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n, &b->nattrs) ==
               0 &&
           b->nattrs.role.n == strlen(GSP_ROLE_MONITOR) &&
           memcmp(b->nattrs.role.p, GSP_ROLE_MONITOR, b->nattrs.role.n) == 0;
}

/* Sets m->svcs from m->meta (none when it does not decode). 0, or -1 out of memory. */
static int services_of(bridge_t *b, bmember_t *m)
{
    free(m->svcs);
    m->svcs = NULL;
    m->svcs_len = 0;
    m->n_svcs = 0;
    size_t n = 0, len = 0;
    if (!m->meta || gsp_meta_decode(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n) != 0 || !n)
        return 0;
    for (size_t k = 0; k < n; k++)
        len += b->insts[k].service.n + 1;
    if (!(m->svcs = malloc(len)))
        return -1;
    for (size_t k = 0; k < n; k++) {
        char svc[GSP_FIELD_MAX + 1];
        cstr(svc, sizeof(svc), b->insts[k].service);
        int dup = 0;
        for (size_t o = 0; o < m->svcs_len && !dup; o += strlen(m->svcs + o) + 1)
            dup = !strcmp(m->svcs + o, svc);
        if (dup)
            continue;
        size_t sl = strlen(svc) + 1;
        memcpy(m->svcs + m->svcs_len, svc, sl);
        m->svcs_len += sl;
        m->n_svcs++;
    }
    return 0;
}

static void on_member(bridge_t *b, const gsp_member_event_t *e)
{
    bmember_t *m = find(b, e->name);
    if (!m) {
        if (b->n == b->cap) {
            size_t nc = b->cap ? b->cap * 2 : 16;
            bmember_t **nm = realloc(b->ms, nc * sizeof(*nm));
            if (!nm)
                return;
            b->ms = nm;
            bmember_t **nb = realloc(b->by_name, nc * sizeof(*nb));
            if (!nb)
                return;
            b->by_name = nb;
            b->cap = nc;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
            return;
        copy_str(m->name, sizeof(m->name), e->name);
        if (tab_add(b, m) != 0) {
            free(m);
            return;
        }
        by_name_add(b, m);
        b->ms[b->n++] = m;
    }
    copy_str(m->addr, sizeof(m->addr), e->addr);
    m->state = e->state;
    m->incarnation = e->incarnation;
    m->since_ns = e->since_ns;
    m->self = e->self;
    if (e->self && e->meta_version > b->version && b->signer.key && b->local_meta) {
        /* our version was raised past the one we signed (the swim heard of a previous life):
         * sign again above it */
        b->version = e->meta_version;
        reannounce(b);
    }
    if (e->meta_known) {
        uint8_t *c = e->meta_len ? malloc(e->meta_len) : NULL;
        if (e->meta_len && !c)
            return;
        if (c)
            memcpy(c, e->meta, e->meta_len);
        uint8_t *old = m->meta;
        size_t old_len = m->meta_len;
        uint64_t old_version = m->meta_version;
        int old_verdict = m->verdict, had = m->meta_known;
        m->meta = c;
        m->meta_len = e->meta_len;
        m->meta_version = e->meta_version;
        m->meta_known = 1;
        m->verdict = b->a->verify ? verify_record(b, m) : RSIG_OK;
        if (keeps_accepted(m, m->verdict) && had) {
            /* a replayed, forged or unsigned record: the one accepted stays (metadata never
             * moves back, and only the owner changes it) */
            free(c);
            m->meta = old;
            m->meta_len = old_len;
            m->meta_version = old_version;
            m->verdict = old_verdict;
        } else {
            free(old);
            m->monitor = is_monitor(b, m);
            if (services_of(b, m) != 0)
                mesh_error("gossip", "out of memory reading the services of %s", m->name);
        }
    }
}

static void on_set(bridge_t *b, gsp_set_event_t *e)
{
    if (set_of(b, e->hash)) {
        free(e);
        return;
    }
    if (b->n_sets == b->cap_sets) {
        size_t nc = b->cap_sets ? b->cap_sets * 2 : 16;
        bset_t *ns = realloc(b->sets, nc * sizeof(*ns));
        if (!ns) {
            free(e);
            return;
        }
        b->sets = ns;
        b->cap_sets = nc;
    }
    b->sets[b->n_sets++] = (bset_t){.hash = e->hash, .n = e->n, .names = e->names, .ev = e};
    for (size_t i = 0; b->a->verify && i < b->n; i++) /* a certificate some records wait for */
        if (b->ms[i]->verdict == VERDICT_PENDING && b->ms[i]->cset == e->hash)
            b->ms[i]->verdict = verify_record(b, b->ms[i]);
}

/* Decodes a member's instances into b->insts; their count, or 0. */
static size_t instances_of(bridge_t *b, const bmember_t *m)
{
    size_t n = 0;
    if (!m->meta_known || !m->meta || m->verdict != RSIG_OK ||
        gsp_meta_decode(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n) != 0)
        return 0;
    return n;
}

static int is_live(gsp_state_t s)
{
    return s == GSP_ST_ALIVE || s == GSP_ST_SUSPECT;
}

/* ---- what the registry actor routes with -------------------------------------------------- */

/* Collects what the live monitors announce: the instances they evicted (into ev) and the one
 * whose name sorts first (into g). */
static int monitors_of(bridge_t *b, gsp_evicted_set_t *ev, reg_gossip_t *g)
{
    const bmember_t *first = NULL;
    for (size_t i = 0; i < b->n; i++) {
        const bmember_t *m = b->ms[i];
        size_t n;
        if (!m->monitor || !is_live(m->state) || !m->meta_known || !m->meta ||
            m->verdict != RSIG_OK ||
            gsp_meta_decode_node(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n, &b->nattrs) !=
                0 ||
            !b->nattrs.role.n || strlen(GSP_ROLE_MONITOR) != b->nattrs.role.n ||
            memcmp(b->nattrs.role.p, GSP_ROLE_MONITOR, b->nattrs.role.n) != 0)
            continue;
        if (gsp_evicted_set_add_attrs(ev, &b->nattrs) != 0)
            return -1;
        if (!first || strcmp(m->name, first->name) < 0)
            first = m;
    }
    if (first) {
        if (!(g->first_monitor = strdup(first->name)))
            return -1;
        g->first_monitor_self = first->self;
    }
    return 0;
}

/* Whether a dead owner's entry lists m's services: its metadata is known and accepted (what
 * instances_of decodes). */
static int dead_lists_services(const bmember_t *m)
{
    return m->meta_known && m->meta && m->verdict == RSIG_OK && m->n_svcs;
}

static reg_gossip_t *build(bridge_t *b)
{
    reg_gossip_t *g = calloc(1, sizeof(*g));
    mesh_route_builder_t *rb = mesh_route_builder_new();
    gsp_evicted_set_t ev;
    gsp_evicted_set_init(&ev);
    if (!g || !rb || monitors_of(b, &ev, g) != 0)
        goto oom;
    size_t n_dead = 0;
    for (size_t i = 0; i < b->n; i++) {
        const bmember_t *m = b->ms[i];
        if (!is_live(m->state)) {
            n_dead += !m->self;
            continue;
        }
        size_t n = instances_of(b, m);
        for (size_t k = 0; k < n; k++) {
            const gsp_inst_t *in = &b->insts[k];
            const char *const *methods = NULL;
            size_t n_methods = 0;
            if (in->methods) {
                const bset_t *s = set_of(b, in->methods);
                if (!s)
                    continue; /* routable once its method set arrived (it is being fetched) */
                methods = (const char *const *)s->names;
                n_methods = s->n;
            }
            char svc[GSP_FIELD_MAX + 1], addr[GSP_FIELD_MAX + 1], zone[GSP_FIELD_MAX + 1];
            char version[GSP_FIELD_MAX + 1];
            cstr(svc, sizeof(svc), in->service);
            cstr(addr, sizeof(addr), in->addr);
            cstr(zone, sizeof(zone), in->zone);
            cstr(version, sizeof(version), in->version);
            if (gsp_evicted_set_has(&ev, svc, addr))
                continue; /* a live monitor evicted it: marked failed in gossip */
            if (mesh_route_builder_add(rb, svc, addr, methods, n_methods, MESH_ROUTE_GOSSIP,
                                       m->name, zone, in->weight ? in->weight : 1) != 0 ||
                mesh_route_builder_set_version(rb, version) != 0 ||
                mesh_route_builder_set_mesh_tls(rb, in->mesh_tls) != 0)
                mesh_warn("gossip", "instance %s of %s from %s not routable (bad or no memory)",
                          addr, svc, m->name);
        }
    }
    g->routes = mesh_route_builder_finish(rb);
    rb = NULL;
    if (!g->routes)
        goto oom;
    /* the dead owners, their names and service lists in one allocation (reg_gossip_t) */
    size_t n_ptrs = 0, n_chars = 0;
    for (size_t i = 0; i < b->n; i++) {
        const bmember_t *m = b->by_name[i];
        if (is_live(m->state) || m->self)
            continue;
        n_chars += strlen(m->name) + 1;
        if (dead_lists_services(m)) {
            n_ptrs += m->n_svcs;
            n_chars += m->svcs_len;
        }
    }
    if (n_dead) {
        size_t size = n_dead * sizeof(*g->dead) + n_ptrs * sizeof(char *) + n_chars;
        if (!(g->dead = malloc(size)))
            goto oom;
        char **ptrs = (char **)(g->dead + n_dead);
        char *chars = (char *)(ptrs + n_ptrs);
        for (size_t i = 0; i < b->n; i++) { /* in name order: the registry actor wants them so */
            const bmember_t *m = b->by_name[i];
            if (is_live(m->state) || m->self)
                continue;
            reg_dead_owner_t *d = &g->dead[g->n_dead++];
            /* a member whose metadata we never had (it died before we joined) may own
             * instances in any service of the etcd view we restarted with: the registry actor
             * looks */
            size_t nl = strlen(m->name) + 1;
            *d = (reg_dead_owner_t){.node = memcpy(chars, m->name, nl),
                                    .services_unknown = !m->meta_known || !m->meta};
            chars += nl;
            if (!dead_lists_services(m))
                continue;
            d->services = ptrs;
            d->n_services = m->n_svcs;
            memcpy(chars, m->svcs, m->svcs_len);
            for (size_t o = 0; o < m->svcs_len; o += strlen(chars + o) + 1)
                *ptrs++ = chars + o;
            chars += m->svcs_len;
        }
    }
    gsp_evicted_set_destroy(&ev);
    return g;
oom:
    gsp_evicted_set_destroy(&ev);
    mesh_route_builder_free(rb);
    reg_gossip_free(g);
    mesh_error("gossip", "out of memory building the gossip routes");
    return NULL;
}

static void rebuild(bridge_t *b)
{
    b->rebuild_pending = 0;
    if (!b->a->registry || !*b->a->registry)
        return;
    reg_gossip_t *g = build(b);
    if (!g)
        return;
    int rc = mesh_send_ptr(b->self, *b->a->registry, REG_MSG_GOSSIP, g, reg_gossip_free);
    if (rc) {
        reg_gossip_free(g);
        if (rc != -MESH_ENOENT)
            mesh_error("gossip", "cannot hand the gossip routes to the registry: %s",
                       mesh_strerror(rc));
    }
}

static void schedule(bridge_t *b)
{
    if (b->rebuild_pending || !b->a->routes)
        return; /* a node that does not route (a sidecar) needs no gossip table */
    uint64_t d = b->a->coalesce_ns ? b->a->coalesce_ns : 20 * MS;
    if (mesh_timer_start(b->self, d, 0, GSP_BRIDGE_MSG_REBUILD, NULL) == 0)
        b->rebuild_pending = 1;
}

/* ---- our registrations as gossip metadata ------------------------------------------------ */

/* The metadata version of our next signed record: above every one we chose or saw, and at least
 * the wall clock in milliseconds, so that it rises across our restarts too (a receiver refuses a
 * signed record below the last it accepted: ca/record_sig.h). */
static uint64_t next_version(bridge_t *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    b->version = ms > b->version ? ms : b->version + 1;
    return b->version;
}

/* Encodes b->insts[0..n) with our attributes (b->attrs, may be NULL) and, with an identity,
 * the signature over rec (their bare encoding) at the version it picks (*version; 0 when
 * unsigned: the swim takes the next) into buf (GSP_META_MAX bytes). */
static int encode_with_attrs(bridge_t *b, size_t n, const uint8_t *rec, size_t rec_len,
                             uint8_t *buf, uint64_t *version)
{
    gsp_node_attrs_t *na = &b->nattrs;
    static const gsp_attrs_update_t none = {.role = ""};
    const gsp_attrs_update_t *a = b->attrs ? b->attrs : &none;
    uint8_t sig[RSIG_SIG_MAX];
    uint64_t v = rec && b->signer.key ? next_version(b) : 0;
    size_t sl = v ? gsign_sign(&b->signer, b->a->gossip.name, v, rec, rec_len, sig) : 0;
    *version = sl ? v : 0;
    na->sig = (gsp_str_t){"", 0};
    na->vsig = (gsp_str_t){(const char *)sig, (uint32_t)sl};
    na->cert = (gsp_str_t){"", 0};
    na->cset = sl ? b->signer.cset.hash : 0; /* the certificate travels as a set */
    na->role = (gsp_str_t){a->role, (uint32_t)strlen(a->role)};
    na->n_evicted = 0;
    for (size_t i = 0; i < a->n_evicted && na->n_evicted < GSP_EVICTED_MAX; i++)
        na->evicted[na->n_evicted++] =
            (gsp_evicted_t){{a->evicted[i].service, (uint32_t)strlen(a->evicted[i].service)},
                            {a->evicted[i].addr, (uint32_t)strlen(a->evicted[i].addr)}};
    if (a->n_evicted > GSP_EVICTED_MAX)
        mesh_warn("gossip",
                  "%zu evicted instances: only %d announced in gossip (the rest stay routable "
                  "through gossip while etcd is down)",
                  a->n_evicted, GSP_EVICTED_MAX);
    int len = gsp_meta_encode_node(b->insts, n, na, buf, GSP_META_MAX);
    if (len < 0)
        mesh_error("gossip",
                   "our node attributes (role %s, %zu evicted) do not fit gossip "
                   "metadata: not announced",
                   a->role, a->n_evicted);
    return len;
}

/* Adds our certificate set (when we sign) to u's sets (room for one more was allocated). */
static int add_cert_set(bridge_t *b, gsp_meta_update_t *u)
{
    const gsp_cert_set_t *cs = &b->signer.cset;
    if (!b->signer.key || !cs->n)
        return 0;
    char **names = calloc(cs->n, sizeof(char *));
    if (!names)
        return -1;
    u->sets[u->n_sets].hash = cs->hash;
    u->sets[u->n_sets].names = names;
    u->sets[u->n_sets].n = 0;
    for (size_t i = 0; i < cs->n; i++, u->sets[u->n_sets].n++)
        if (!(names[i] = strdup(cs->names[i]))) {
            u->n_sets++;
            return -1;
        }
    u->n_sets++;
    return 0;
}

/* Announces our last instances again with our attributes and identity (either changed). */
static void reannounce(bridge_t *b)
{
    size_t n = 0;
    if (b->local_meta &&
        gsp_meta_decode(b->local_meta, b->local_meta_len, b->insts, GSP_INST_MAX, &n) != 0)
        n = 0;
    gsp_meta_update_t *u = calloc(1, sizeof(*u));
    if (!u || !(u->meta = malloc(GSP_META_MAX)) || !(u->sets = calloc(1, sizeof(*u->sets))) ||
        add_cert_set(b, u) != 0) {
        gsp_meta_update_free(u);
        return;
    }
    int len = encode_with_attrs(b, n, b->local_meta, b->local_meta_len, u->meta, &u->version);
    if (len < 0) {
        gsp_meta_update_free(u);
        return;
    }
    u->meta_len = (size_t)len;
    if (mesh_send_ptr(b->self, b->gossip, GSP_MSG_SET_META, u, gsp_meta_update_free) != 0) {
        mesh_error("gossip", "cannot hand our node attributes to the gossip actor");
        gsp_meta_update_free(u);
    }
}

/* New attributes: announce them with the instances we last announced. */
static void on_attrs(bridge_t *b, gsp_attrs_update_t *a)
{
    gsp_attrs_update_free(b->attrs);
    b->attrs = a;
    reannounce(b);
}

static void on_local(bridge_t *b, const reg_local_t *l)
{
    gsp_meta_update_t *u = calloc(1, sizeof(*u));
    reg_value_t *vals = l->n ? calloc(l->n, sizeof(*vals)) : NULL;
    int *ok = l->n ? calloc(l->n, sizeof(int)) : NULL;
    if (!u || (l->n && (!vals || !ok)))
        goto out;
    size_t n = 0;
    u->sets = calloc(l->n + 1, sizeof(*u->sets)); /* and our certificate's */
    u->meta = malloc(GSP_META_MAX);
    if (!u->sets || !u->meta)
        goto out;
    size_t plen = strlen(b->a->prefix);
    for (size_t i = 0; i < l->n && n < GSP_INST_MAX; i++) {
        reg_key_t key;
        if (reg_key_parse(l->keys[i], strlen(l->keys[i]), b->a->prefix, plen, &key) != 0 ||
            reg_value_parse(l->values[i], strlen(l->values[i]), &vals[i]) != REG_VALUE_OK)
            continue;
        ok[i] = 1;
        const reg_instance_t *in = &vals[i].inst;
        gsp_inst_t *gi = &b->insts[n++];
        memset(gi, 0, sizeof(*gi));
        gi->service = (gsp_str_t){key.service, (uint32_t)key.service_len};
        gi->addr = (gsp_str_t){in->addr, (uint32_t)strlen(in->addr)};
#define S_(x) (gsp_str_t){(x) ? (x) : "", (uint32_t)((x) ? strlen(x) : 0)}
        gi->node = S_(in->node);
        gi->zone = S_(in->zone);
        gi->version = S_(in->version);
#undef S_
        gi->weight = in->weight;
        gi->mesh_tls = in->mesh_tls ? 1 : 0;
        for (size_t k = 0; k < in->n_labels && k < GSP_LABEL_MAX; k++, gi->n_labels++) {
            gi->labels[k].key = (gsp_str_t){in->labels[k].key, (uint32_t)strlen(in->labels[k].key)};
            gi->labels[k].value =
                (gsp_str_t){in->labels[k].value, (uint32_t)strlen(in->labels[k].value)};
        }
        if (in->methods) {
            gi->methods = gsp_meta_set_hash(in->methods, in->n_methods);
            int known = 0;
            for (size_t s = 0; s < u->n_sets && !known; s++)
                known = u->sets[s].hash == gi->methods;
            if (!known) {
                u->sets[u->n_sets].hash = gi->methods;
                u->sets[u->n_sets].n = in->n_methods;
                u->sets[u->n_sets].names =
                    calloc(in->n_methods ? in->n_methods : 1, sizeof(char *));
                if (!u->sets[u->n_sets].names)
                    goto out;
                for (size_t k = 0; k < in->n_methods; k++)
                    if (!(u->sets[u->n_sets].names[k] = strdup(in->methods[k]))) {
                        u->sets[u->n_sets++].n = k;
                        goto out;
                    }
                u->n_sets++;
            }
        }
    }
    int len = gsp_meta_encode(b->insts, n, u->meta, GSP_META_MAX);
    if (len < 0) {
        mesh_error("gossip",
                   "our %zu instances do not fit gossip metadata (at most %d, %u bytes): "
                   "not announced",
                   n, GSP_INST_MAX, (unsigned)GSP_META_MAX);
        goto out;
    }
    uint8_t *copy = malloc((size_t)len ? (size_t)len : 1);
    if (!copy)
        goto out;
    memcpy(copy, u->meta, (size_t)len);
    free(b->local_meta);
    b->local_meta = copy;
    b->local_meta_len = (size_t)len;
    if ((b->attrs || b->signer.key) &&
        (len = encode_with_attrs(b, n, b->local_meta, b->local_meta_len, u->meta, &u->version)) < 0)
        goto out;
    if (add_cert_set(b, u) != 0)
        goto out;
    u->meta_len = (size_t)len;
    if (mesh_send_ptr(b->self, b->gossip, GSP_MSG_SET_META, u, gsp_meta_update_free) == 0)
        u = NULL;
    else
        mesh_error("gossip", "cannot hand our instances to the gossip actor");
out:
    for (size_t i = 0; i < l->n; i++)
        if (ok && ok[i])
            reg_value_release(&vals[i]);
    free(vals);
    free(ok);
    gsp_meta_update_free(u);
}

/* ---- admin ------------------------------------------------------------------------------- */

static const char *state_name(gsp_state_t s)
{
    return s == GSP_ST_ALIVE     ? "alive"
           : s == GSP_ST_SUSPECT ? "suspect"
           : s == GSP_ST_DEAD    ? "dead"
                                 : "left";
}

static json_t *members_json(void *ud, const h1_req_t *req, int *status)
{
    (void)req, (void)status;
    bridge_t *b = ud;
    json_t *arr = json_array();
    uint64_t now = mesh_now(b->self);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (size_t i = 0; arr && i < b->n; i++) {
        const bmember_t *m = b->ms[i];
        time_t since = ts.tv_sec - (time_t)((now - m->since_ns) / 1000000000ull);
        struct tm tm;
        char when[32];
        gmtime_r(&since, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        size_t n = 0;
        int ok =
            m->meta_known && m->meta &&
            gsp_meta_decode_node(m->meta, m->meta_len, b->insts, GSP_INST_MAX, &n, &b->nattrs) == 0;
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:b}", "node", m->name, "addr", m->addr,
                      "state", state_name(m->state), "incarnation", (json_int_t)m->incarnation,
                      "instances", (json_int_t)(ok ? n : 0), "since", when, "self", m->self);
        if (o && ok && b->nattrs.role.n) { /* a monitor: its role and what it marked failed */
            json_t *ev = json_array();
            for (uint32_t k = 0; ev && k < b->nattrs.n_evicted; k++)
                json_array_append_new(ev, json_pack("{s:s%, s:s%}", "service",
                                                    b->nattrs.evicted[k].service.p,
                                                    (size_t)b->nattrs.evicted[k].service.n,
                                                    "address", b->nattrs.evicted[k].addr.p,
                                                    (size_t)b->nattrs.evicted[k].addr.n));
            json_object_set_new(o, "role", json_stringn(b->nattrs.role.p, b->nattrs.role.n));
            json_object_set_new(o, "evicted", ev ? ev : json_array());
        }
        if (o && b->a->verify && ok) /* the signed record's verdict (docs/gossip.md) */
            json_object_set_new(o, "record",
                                json_string(m->verdict == VERDICT_PENDING
                                                ? "pending"
                                                : rsig_result_name((rsig_result_t)m->verdict)));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:s, s:o}", "self", b->a->gossip.name, "members", arr);
}

/* /v1/node's "gossip": who we are in gossip, the membership by state, the counters. */
static json_t *node_json(void *ud)
{
    bridge_t *b = ud;
    json_int_t by[4] = {0};
    for (size_t i = 0; i < b->n; i++)
        by[b->ms[i]->state & 3]++;
    const gsp_swim_stats_t *w = &b->stats.swim;
    json_t *refused = json_object();
    for (int e = 1; refused && e < GSP_SEAL_NERR; e++)
        if (b->stats.actor.refused[e])
            json_object_set_new(refused, gsp_seal_errname(e),
                                json_integer((json_int_t)b->stats.actor.refused[e]));
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I, s:I, s:I}, s:o}",
        "name", b->a->gossip.name, "addr",
        b->a->gossip.advertise[0] ? b->a->gossip.advertise : b->a->gossip.bind, "incarnation",
        (json_int_t)b->stats.incarnation, "awareness", (json_int_t)b->stats.awareness, "members",
        "alive", by[GSP_ST_ALIVE], "suspect", by[GSP_ST_SUSPECT], "dead", by[GSP_ST_DEAD], "left",
        by[GSP_ST_LEFT], "counters", "probes", (json_int_t)w->probes, "probe_acks",
        (json_int_t)w->probe_acks, "indirect_probes", (json_int_t)w->indirect_probes,
        "stream_probes", (json_int_t)w->stream_probes, "suspicions", (json_int_t)w->suspicions,
        "refutations", (json_int_t)w->refutations, "deaths", (json_int_t)w->deaths, "push_pulls",
        (json_int_t)w->push_pulls, "late_timers", (json_int_t)w->late_timers, "bad_messages",
        (json_int_t)w->bad_messages, "sent_bytes", (json_int_t)w->sent_bytes, "recv_bytes",
        (json_int_t)w->recv_bytes, "sent_datagrams", (json_int_t)w->sent_datagrams,
        "recv_datagrams", (json_int_t)w->recv_datagrams, "refused",
        refused ? refused : json_object());
}

/* GET /metrics: the gossip families, from the mirror and the actor's last counters (once a
 * second). */
static void gossip_metrics(void *ud, prom_t *p)
{
    bridge_t *b = ud;
    uint64_t by[4] = {0};
    for (size_t i = 0; i < b->n; i++)
        by[b->ms[i]->state & 3]++;
    prom_family(p, "meshd_gossip_members", PROM_GAUGE,
                "Gossip members by SWIM state, this node included.");
    for (int st = 0; st < 4; st++) {
        prom_label_t l[] = {{"state", state_name((gsp_state_t)st)}};
        prom_sample_u64(p, "meshd_gossip_members", l, 1, by[st]);
    }
    prom_one(p, "meshd_gossip_awareness", PROM_GAUGE,
             "Lifeguard's local health score (0 = healthy; higher stretches probe timeouts).",
             b->stats.awareness);
    prom_one(p, "meshd_gossip_incarnation", PROM_GAUGE, "This node's SWIM incarnation.",
             b->stats.incarnation);
    const gsp_swim_stats_t *w = &b->stats.swim;
    static const struct {
        const char *name, *help;
        size_t off;
    } c[] = {
#define C(f, h) {"meshd_gossip_" #f "_total", h, offsetof(gsp_swim_stats_t, f)}
        C(probes, "Direct probes sent."),
        C(probe_acks, "Probe acknowledgements received."),
        C(indirect_probes, "Indirect probes asked of other members."),
        C(stream_probes, "Probes retried over TCP after no UDP answer."),
        C(suspicions, "Members this node began to suspect."),
        C(refutations, "Suspicions of this node that it refuted."),
        C(deaths, "Members declared dead."),
        C(push_pulls, "Full state exchanges."),
        C(late_timers, "Timers that fired late (a stalled loop)."),
        C(bad_messages, "Messages that did not decode."),
        C(sent_datagrams, "Datagrams sent."),
        C(recv_datagrams, "Datagrams received."),
        C(sent_bytes, "Bytes sent in datagrams."),
        C(recv_bytes, "Bytes received in datagrams."),
#undef C
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        prom_family(p, c[i].name, PROM_COUNTER, c[i].help);
        prom_sample_u64(p, c[i].name, NULL, 0, *(const uint64_t *)((const char *)w + c[i].off));
    }
    /* probe round trips: the swim's integer buckets as a Prometheus histogram in seconds */
    static double rtt_bounds[GSP_RTT_BOUNDS];
    for (size_t i = 0; i < GSP_RTT_BOUNDS; i++)
        rtt_bounds[i] = (double)gsp_rtt_bounds_us[i] / 1e6;
    prom_hist_t rtt;
    if (prom_hist_init(&rtt, rtt_bounds, GSP_RTT_BOUNDS) == 0) {
        for (size_t i = 0; i <= GSP_RTT_BOUNDS; i++) {
            rtt.counts[i] = w->probe_rtt_buckets[i];
            rtt.count += w->probe_rtt_buckets[i];
        }
        rtt.sum = (double)w->probe_rtt_sum_us / 1e6;
        prom_family(p, "meshd_gossip_probe_rtt_seconds", PROM_HISTOGRAM,
                    "SWIM probe round trips: from a probe's ping to its first ack (direct, by "
                    "TCP or through an indirect probe).");
        prom_histogram(p, "meshd_gossip_probe_rtt_seconds", NULL, 0, &rtt);
    }
    if (b->a->verify) {
        prom_family(p, "meshd_gossip_records_total", PROM_COUNTER,
                    "Members' signed records checked (once per metadata version), by result "
                    "(ok, or why it was refused: unsigned, wrong_identity, ...).");
        for (int r = 0; r < RSIG_N_RESULTS; r++) {
            prom_label_t l[] = {{"result", rsig_result_name((rsig_result_t)r)}};
            prom_sample_u64(p, "meshd_gossip_records_total", l, 1, b->rejected[r]);
        }
    }
    prom_family(p, "meshd_gossip_refused_total", PROM_COUNTER,
                "Packets refused by the seal, by cause (auth, label, version, ...).");
    for (int e = 1; e < GSP_SEAL_NERR; e++) {
        prom_label_t l[] = {{"cause", gsp_seal_errname(e)}};
        prom_sample_u64(p, "meshd_gossip_refused_total", l, 1, b->stats.actor.refused[e]);
    }
}

/* /v1/routes: the instances of owners SWIM declares dead that the table dropped are listed as
 * owner_dead. */
static void routes_source(void *ud, mesh_admin_routes_t *list)
{
    bridge_t *b = ud;
    for (size_t i = 0; i < b->n; i++) {
        const bmember_t *m = b->ms[i];
        if (is_live(m->state))
            continue;
        size_t n = instances_of(b, m);
        for (size_t k = 0; k < n; k++) {
            char svc[GSP_FIELD_MAX + 1], addr[GSP_FIELD_MAX + 1], zone[GSP_FIELD_MAX + 1];
            cstr(svc, sizeof(svc), b->insts[k].service);
            cstr(addr, sizeof(addr), b->insts[k].addr);
            cstr(zone, sizeof(zone), b->insts[k].zone);
            /* still in the table: the registry keeps routing to it (etcd holds its lease and
             * it still accepts connections, or the panic floor): routable, as it is */
            if (mesh_admin_routes_get(list, svc, addr))
                continue;
            mesh_admin_route_t add = {.service = svc,
                                      .addr = addr,
                                      .node = m->name,
                                      .zone = zone,
                                      .weight = b->insts[k].weight,
                                      .source = MESH_ROUTE_GOSSIP,
                                      .state = MESH_ADMIN_ROUTE_OWNER_DEAD};
            mesh_admin_routes_put(list, &add);
        }
    }
}

/* ---- audit ------------------------------------------------------------------------------- */

/* A member our own suspicion timeout declared dead: we are the one member that reports it. */
static void audit_death(bridge_t *b, const gsp_member_event_t *e, int64_t ts_us)
{
    audit_api_t *api = b->a->audit;
    if (!audit_api_on(api))
        return;
    char reason[300];
    snprintf(reason, sizeof(reason),
             "no answer to probes: our suspicion timeout declared %s (%s) dead at incarnation %u",
             e->name, e->addr, e->incarnation);
    audit_event_t ev = {.type = AUDIT_MEMBER_DEAD,
                        .ts_us = ts_us,
                        .member = e->name,
                        .peer_address = e->addr,
                        .reason = reason};
    audit_emit(b->self, api, &ev);
    size_t n = 0;
    if (!e->meta_known || !e->meta_len ||
        gsp_meta_decode(e->meta, e->meta_len, b->insts, GSP_INST_MAX, &n) != 0)
        return;
    snprintf(reason, sizeof(reason), "its owner %s was declared dead by gossip", e->name);
    for (size_t k = 0; k < n; k++) {
        char svc[GSP_FIELD_MAX + 1], addr[GSP_FIELD_MAX + 1];
        cstr(svc, sizeof(svc), b->insts[k].service);
        cstr(addr, sizeof(addr), b->insts[k].addr);
        audit_event_t iv = {.type = AUDIT_INSTANCE_REMOVED,
                            .ts_us = ts_us,
                            .source = AUDIT_SOURCE_GOSSIP,
                            .service = svc,
                            .instance = addr,
                            .reason = reason};
        audit_emit(b->self, api, &iv);
    }
}

/* Several members' suspicion timeouts can fire within one gossip round of each other: each
 * waits this long (ten gossip rounds, at least 1 s) for the others' DEAD news, and only the one
 * whose name sorts first reports the death. Duplicates remain possible when two declarers never
 * hear of each other; a death is never left unreported (the first name always reports). */
static uint64_t tie_window_ns(const bridge_t *b)
{
    uint64_t w = 10 * b->a->gossip.swim.gossip_interval_ns;
    return w < 1000 * MS ? 1000 * MS : w;
}

static void death_declared(bridge_t *b, const gsp_member_event_t *e)
{
    if (!audit_api_on(b->a->audit))
        return;
    size_t sz = sizeof(*e) + e->meta_len;
    pending_death_t *nd = realloc(b->deaths, (b->n_deaths + 1) * sizeof(*nd));
    gsp_member_event_t *copy = malloc(sz);
    if (!nd || !copy) {
        if (nd)
            b->deaths = nd;
        free(copy);
        audit_death(b, e, audit_now_us()); /* no room to wait: report now */
        return;
    }
    b->deaths = nd;
    memcpy(copy, e, sz);
    pending_death_t *d = &b->deaths[b->n_deaths];
    *d = (pending_death_t){.ev = copy, .ts_us = audit_now_us()};
    if (mesh_timer_start(b->self, tie_window_ns(b), 0, GSP_BRIDGE_MSG_DEATH, &d->timer) != 0) {
        audit_death(b, copy, d->ts_us);
        free(copy);
        return;
    }
    b->n_deaths++;
}

static void death_accused(bridge_t *b, const gsp_accused_event_t *a)
{
    for (size_t i = 0; i < b->n_deaths; i++) {
        pending_death_t *d = &b->deaths[i];
        if (!d->silenced && !strcmp(d->ev->name, a->member) &&
            d->ev->incarnation == a->incarnation && strcmp(a->accuser, b->a->gossip.name) < 0) {
            d->silenced = 1;
            mesh_debug("gossip", "%s declared %s dead too: it reports the death", a->accuser,
                       a->member);
        }
    }
}

static void death_report(bridge_t *b, size_t i)
{
    pending_death_t d = b->deaths[i];
    b->deaths[i] = b->deaths[--b->n_deaths];
    if (!d.silenced)
        audit_death(b, d.ev, d.ts_us);
    free(d.ev);
}

/* ---- the actor --------------------------------------------------------------------------- */

static int br_start(mesh_actor_t *self, void *arg)
{
    bridge_t *b = mesh_state(self);
    b->a = arg;
    b->self = self;
    b->started = mesh_now(self);
    b->a->gossip.subscriber = mesh_self(self);
    mesh_spawn_opts_t so = {.name = "gossip"};
    int rc = mesh_spawn(self, &gsp_actor_ops, &b->a->gossip, &so, &b->gossip);
    if (rc < 0) {
        mesh_error("gossip", "cannot start the gossip actor: %s", mesh_strerror(rc));
        return -1;
    }
    gsign_init(&b->signer, b->a->identity_dir);
    if (b->a->identity_dir && *b->a->identity_dir) {
        gsign_refresh(&b->signer);
        mesh_timer_start(self, 2000 * MS, 2000 * MS, GSP_BRIDGE_MSG_IDENTITY, NULL);
    }
    if (b->a->registry && *b->a->registry)
        mesh_send(self, *b->a->registry, REG_MSG_LOCAL_SUBSCRIBE, NULL, 0);
    if (b->a->admin) {
        mesh_admin_set_members(b->a->admin, members_json, b);
        mesh_admin_add_routes_source(b->a->admin, routes_source, b);
        mesh_admin_set_node_section(b->a->admin, "gossip", node_json, b);
        mesh_admin_add_metrics(b->a->admin, gossip_metrics, b);
    }
    return 0;
}

static int br_message(mesh_actor_t *self, mesh_msg_t *m)
{
    bridge_t *b = mesh_state(self);
    switch (m->type) {
    case GSP_MSG_CHECK: { /* an indirect check (the monitor's): for the gossip actor */
        gsp_check_req_t *req = m->ptr;
        if (!req)
            return 0;
        m->ptr = NULL;
        if (b->gossip && mesh_send_ptr(self, b->gossip, GSP_MSG_CHECK, req, free) == 0)
            return 0;
        gsp_check_done_t *d = calloc(1, sizeof(*d)); /* no gossip actor now: nobody asked */
        if (d) {
            d->asker = req->reply_to;
            d->tag = req->tag;
            if (mesh_send_ptr(self, req->reply_to, GSP_MSG_CHECK_DONE, d, free) != 0)
                free(d);
        }
        free(req);
        return 0;
    }
    case GSP_MSG_SET_ATTRS:
        if (m->ptr) {
            gsp_attrs_update_t *a = m->ptr;
            m->ptr = NULL;
            on_attrs(b, a);
        }
        return 0;
    case GSP_MSG_MEMBER: {
        const gsp_member_event_t *e = m->ptr;
        if (e && e->declared && e->state == GSP_ST_DEAD)
            death_declared(b, e);
        if (!b->a->routes && !b->a->admin)
            return 0; /* nobody reads the mirror here (a sidecar without an admin port) */
        if (m->ptr) {
            on_member(b, m->ptr);
            schedule(b);
        }
        return 0;
    }
    case GSP_MSG_SET:
        if (!b->a->routes && !b->a->admin)
            return 0;
        if (m->ptr) {
            on_set(b, mesh_msg_take_ptr(m));
            schedule(b);
        }
        return 0;
    case GSP_MSG_CONFLICT: {
        const gsp_conflict_event_t *c = m->ptr;
        if (c && c->self && c->joining && b->a->node) { /* we are the newcomer: give way */
            node_fail_t f = {.exit_code = 2};
            snprintf(f.why, sizeof(f.why), "gossip name %.24s in use", c->name);
            mesh_send(self, b->a->node, NODE_MSG_FAIL, &f, sizeof(f));
        }
        return 0;
    }
    case GSP_MSG_ACCUSED:
        if (m->ptr)
            death_accused(b, m->ptr);
        return 0;
    case GSP_BRIDGE_MSG_DEATH:
        for (size_t i = 0; i < b->n_deaths; i++)
            if (b->deaths[i].timer == m->corr) {
                death_report(b, i);
                break;
            }
        return 0;
    case GSP_MSG_STATS:
        if (m->ptr)
            b->stats = *(const gsp_stats_event_t *)m->ptr;
        return 0;
    case REG_MSG_LOCAL:
        if (m->ptr)
            on_local(b, m->ptr);
        return 0;
    case GSP_BRIDGE_MSG_REBUILD:
        rebuild(b);
        return 0;
    case GSP_BRIDGE_MSG_IDENTITY: /* a first or rotated certificate: sign with it */
        if (gsign_refresh(&b->signer) && b->local_meta)
            reannounce(b);
        return 0;
    case MESH_MSG_CHILD_EXIT: {
        const mesh_child_exit_t *x = mesh_msg_as(m, mesh_child_exit_t);
        if (x && x->reason != MESH_STOP_FAILED)
            return 0; /* a shutdown */
        mesh_error("gossip", "the gossip actor failed: restarting gossip");
        return -1; /* our supervisor restarts us, and we the gossip actor */
    }
    default:
        return 0;
    }
}

static void br_stop(mesh_actor_t *self, int reason)
{
    bridge_t *b = mesh_state(self);
    if (!b->a)
        return;
    gsp_attrs_update_free(b->attrs);
    b->attrs = NULL;
    free(b->local_meta);
    b->local_meta = NULL;
    gsign_destroy(&b->signer);
    while (b->n_deaths) /* stopping within a tie-break window: report rather than lose it */
        death_report(b, b->n_deaths - 1);
    free(b->deaths);
    b->deaths = NULL;
    if (reason == MESH_STOP_SHUTDOWN && audit_api_on(b->a->audit)) {
        /* The gossip actor, our child, stopped first and announced the leave. */
        char why[GSP_NAME_MAX + 64];
        snprintf(why, sizeof(why), "%s left the mesh: graceful shutdown", b->a->gossip.name);
        audit_event_t ev = {.type = AUDIT_MEMBER_LEFT,
                            .member = b->a->gossip.name,
                            .peer_address = b->a->gossip.advertise[0] ? b->a->gossip.advertise
                                                                      : b->a->gossip.bind,
                            .reason = why};
        audit_emit(self, b->a->audit, &ev);
    }
    if (b->a->admin) {
        mesh_admin_set_members(b->a->admin, NULL, NULL);
        mesh_admin_remove_routes_source(b->a->admin, routes_source, b);
        mesh_admin_set_node_section(b->a->admin, "gossip", NULL, NULL);
        mesh_admin_remove_metrics(b->a->admin, gossip_metrics, b);
    }
    for (size_t i = 0; i < b->n; i++) {
        free(b->ms[i]->meta);
        free(b->ms[i]->svcs);
        free(b->ms[i]);
    }
    free(b->ms);
    free(b->by_name);
    free(b->tab);
    for (size_t i = 0; i < b->n_sets; i++)
        free(b->sets[i].ev);
    free(b->sets);
}

const mesh_actor_ops_t gsp_bridge_ops = {.name = "gossip-bridge",
                                         .state_size = sizeof(bridge_t),
                                         .on_start = br_start,
                                         .on_message = br_message,
                                         .on_stop = br_stop};
