/*
 * gateway/schema_cache.c: the descriptor cache actor (gateway/schema_cache.h): services and
 * their variants from the routing table, the fetch queue and its reflection conversations,
 * deadlines, backoff, grace, and the coalesced on_pool calls.
 *
 * Everything happens in the message handler: table updates (REG_MSG_ROUTES), app seam events
 * (GWC_MSG_RPC, posted by deliver()), and three actor timers: a fetch's deadline
 * (GWC_MSG_DEADLINE, corr = the timer), one wake-up for the earliest backoff end or grace end
 * (GWC_MSG_WAKE) and the coalesced emit (GWC_MSG_EMIT). The lists it walks on a wake-up hold
 * only the services in backoff and the variants in grace, so an idle cache of a large table
 * costs nothing.
 */
#include "gateway/schema_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "gateway/schema_cache_int.h"
#include "registry/reg_msgs.h"
#include "transport/grpc_status.h"

#define ACTOR "gw-schemas"

enum {
    GWC_MSG_RPC = 0x47430001u,      /* ptr: mesh_rpc_event_t */
    GWC_MSG_DEADLINE = 0x47430002u, /* a fetch's deadline (corr: the timer) */
    GWC_MSG_WAKE = 0x47430003u,     /* backoff or grace ended */
    GWC_MSG_EMIT = 0x47430004u,     /* the coalesced on_pool call */
};

#define MS (1000000ull)

static void pump(gw_cache_t *c);

const char *gwc_vstate_name(gwc_vstate_t s)
{
    switch (s) {
    case GWC_V_NEED:
        return "pending";
    case GWC_V_FETCHING:
        return "fetching";
    case GWC_V_HAVE:
        return "ok";
    case GWC_V_FAILED:
        return "failed";
    case GWC_V_NOREFL:
        return "no_reflection";
    }
    return "unknown";
}

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    void **p = pp;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 8;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The key of an instance's variant: its method set (0: not listed). */
static uint64_t methods_hash(const mesh_route_instance_t *in)
{
    if (!in->methods)
        return 0;
    uint64_t h = 14695981039346656037ull;
    for (uint32_t i = 0; i < in->n_methods; i++)
        h = fnv(h, in->methods[i], strlen(in->methods[i]) + 1);
    return h ? h : 1;
}

static int inst_matches(const mesh_route_instance_t *in, const gwc_variant_t *v)
{
    return strcmp(in->version ? in->version : "", v->version) == 0 && methods_hash(in) == v->mhash;
}

/* ---- services and variants ------------------------------------------------------------------ */

static size_t name_hash(const char *s)
{
    return (size_t)fnv(14695981039346656037ull, s, strlen(s));
}

static gwc_svc_t *svc_find(const gw_cache_t *c, const char *name)
{
    if (!c->n_buckets)
        return NULL;
    for (gwc_svc_t *s = c->buckets[name_hash(name) & (c->n_buckets - 1)]; s; s = s->hnext)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int rehash(gw_cache_t *c)
{
    size_t n = c->n_buckets ? c->n_buckets * 2 : 64;
    gwc_svc_t **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (gwc_svc_t *s = c->buckets[i], *nx; s; s = nx) {
            nx = s->hnext;
            size_t k = name_hash(s->name) & (n - 1);
            s->hnext = b[k];
            b[k] = s;
        }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = n;
    return 0;
}

static gwc_svc_t *svc_add(gw_cache_t *c, const char *name)
{
    if ((c->n_svcs + 1) * 2 > c->n_buckets * 3 && rehash(c) < 0)
        return NULL;
    gwc_svc_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return NULL;
    }
    size_t k = name_hash(name) & (c->n_buckets - 1);
    s->hnext = c->buckets[k];
    c->buckets[k] = s;
    c->n_svcs++;
    return s;
}

static void svc_unlink_free(gw_cache_t *c, gwc_svc_t *s)
{
    gwc_svc_t **pp = &c->buckets[name_hash(s->name) & (c->n_buckets - 1)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    c->n_svcs--;
    mesh_route_svc_unref(s->obj);
    free(s->v);
    free(s->name);
    free(s);
}

static void variant_files_free(gwc_variant_t *v)
{
    for (size_t i = 0; i < v->n_files; i++) {
        free(v->files[i].name);
        free(v->files[i].data);
    }
    free(v->files);
    v->files = NULL;
    v->n_files = 0;
    v->bytes = 0;
}

static void variant_free(gwc_variant_t *v)
{
    if (!v)
        return;
    variant_files_free(v);
    free(v->version);
    free(v);
}

static gwc_variant_t *variant_find(const gwc_svc_t *s, const char *version, uint64_t mhash)
{
    for (size_t i = 0; i < s->n_v; i++)
        if (s->v[i]->mhash == mhash && strcmp(s->v[i]->version, version) == 0)
            return s->v[i];
    return NULL;
}

static gwc_variant_t *variant_add(gw_cache_t *c, gwc_svc_t *s, const char *version, uint64_t mhash)
{
    if (grow(&s->v, &s->cap_v, s->n_v + 1, sizeof(*s->v)) < 0)
        return NULL;
    gwc_variant_t *v = calloc(1, sizeof(*v));
    if (!v || !(v->version = strdup(version))) {
        free(v);
        return NULL;
    }
    v->svc = s;
    v->mhash = mhash;
    v->seq = ++c->seq;
    s->v[s->n_v++] = v;
    return v;
}

/* ---- wake-ups (backoff and grace) ----------------------------------------------------------- */

static void arm_wake(gw_cache_t *c, uint64_t at)
{
    if (c->wake_timer && c->wake_at <= at)
        return;
    if (c->wake_timer)
        mesh_timer_stop(c->self, c->wake_timer);
    uint64_t now = mesh_now(c->self);
    c->wake_at = at;
    c->wake_timer = 0;
    if (mesh_timer_start(c->self, at > now ? at - now : 0, 0, GWC_MSG_WAKE, &c->wake_timer) < 0)
        mesh_error(ACTOR, "cannot start a timer: backoff and grace are stalled");
}

static void mark_absent(gw_cache_t *c, gwc_variant_t *v)
{
    v->absent_since = mesh_now(c->self);
    if (!v->in_absent) {
        if (grow(&c->absent, &c->cap_absent, c->n_absent + 1, sizeof(*c->absent)) < 0) {
            mesh_error(ACTOR, "out of memory: %s %s kept past its grace", v->svc->name, v->version);
            return;
        }
        c->absent[c->n_absent++] = v;
        v->in_absent = 1;
    }
    arm_wake(c, v->absent_since + c->grace_ns);
}

static void enqueue(gw_cache_t *c, gwc_variant_t *v)
{
    if (v->queued || v->state != GWC_V_NEED || !v->n_instances)
        return;
    v->queued = 1;
    v->qnext = NULL;
    if (c->q_tail)
        c->q_tail->qnext = v;
    else
        c->q_head = v;
    c->q_tail = v;
    c->n_queued++;
}

static void dequeue(gw_cache_t *c, gwc_variant_t *v)
{
    if (!v->queued)
        return;
    gwc_variant_t **pp = &c->q_head, *prev = NULL;
    while (*pp && *pp != v) {
        prev = *pp;
        pp = &(*pp)->qnext;
    }
    if (*pp) {
        *pp = v->qnext;
        if (c->q_tail == v)
            c->q_tail = prev;
    }
    v->queued = 0;
    c->n_queued--;
}

/* ---- the merged pool ------------------------------------------------------------------------ */

static void emit_now(gw_cache_t *c)
{
    c->dirty = 0;
    c->last_emit = mesh_now(c->self);
    mesh_desc_pool_t *p = gwc_merge(c);
    if (!p) {
        mesh_error(ACTOR, "out of memory merging the descriptors: the gateway keeps the last set");
        return;
    }
    mesh_desc_pool_t *old = c->merged;
    c->merged = p;
    c->generation++;
    mesh_info(ACTOR, "schemas: generation %llu, %zu services, %zu files",
              (unsigned long long)c->generation, mesh_desc_pool_service_count(p),
              mesh_desc_pool_file_count(p));
    if (c->a->on_pool)
        c->a->on_pool(c->a->ctx, p, c->generation);
    mesh_desc_pool_free(old);
}

/* The merged set changed: call on_pool now or when coalesce_ms since the last call passed. */
static void changed(gw_cache_t *c)
{
    c->dirty = 1;
    if (c->emit_timer)
        return;
    uint64_t now = mesh_now(c->self);
    uint64_t at = c->last_emit ? c->last_emit + c->coalesce_ns : now;
    if (mesh_timer_start(c->self, at > now ? at - now : 0, 0, GWC_MSG_EMIT, &c->emit_timer) < 0)
        emit_now(c);
}

/* ---- fetches -------------------------------------------------------------------------------- */

/* The variant's i-th instance in the current table (NULL past the end). */
static const mesh_route_instance_t *variant_instance(const gwc_variant_t *v, uint32_t i)
{
    if (!v->svc->obj)
        return NULL;
    const mesh_route_service_t *rs = mesh_route_svc_get(v->svc->obj);
    for (size_t k = 0; k < rs->n_instances; k++)
        if (inst_matches(&rs->instances[k], v) && i-- == 0)
            return &rs->instances[k];
    return NULL;
}

static void deliver(void *ud, mesh_rpc_event_t *ev)
{
    gw_cache_t *c = ud;
    if (ev->kind == MESH_RPC_CONN_UP || ev->kind == MESH_RPC_CONN_DOWN) {
        mesh_rpc_event_free(ev); /* calls end with UNAVAILABLE on their own */
        return;
    }
    int rc = mesh_send_ptr(c->self, mesh_self(c->self), GWC_MSG_RPC, ev, mesh_rpc_event_free);
    if (rc != 0) {
        mesh_error(ACTOR, "an event of a reflection call was refused by the mailbox: %s",
                   mesh_strerror(rc));
        mesh_rpc_event_free(ev);
    }
}

/* Ends the conversation with the current instance (no events from it any more). */
static void fetch_close_instance(gw_cache_t *c, gwc_fetch_t *f)
{
    if (f->timer)
        mesh_timer_stop(c->self, f->timer);
    f->timer = 0;
    if (f->rpc && f->call_tag)
        mesh_rpc_call_cancel(f->rpc, f->call_tag);
    f->call_tag = 0;
    mesh_rpc_free(f->rpc);
    f->rpc = NULL;
    mesh_reflect_free(f->refl);
    f->refl = NULL;
}

static void fetch_release(gw_cache_t *c, gwc_fetch_t *f)
{
    fetch_close_instance(c, f);
    if (f->v)
        c->n_fetching--;
    memset(f, 0, sizeof(*f));
}

static void drive(gw_cache_t *c, gwc_fetch_t *f);

/* Opens the conversation with the variant's instance number f->tried of this round; -1 when
 * it cannot be started (the reason is in the service's last_error). */
static int start_instance(gw_cache_t *c, gwc_fetch_t *f)
{
    gwc_variant_t *v = f->v;
    f->inst = (v->next_inst + f->tried) % v->n_instances;
    const mesh_route_instance_t *in = variant_instance(v, f->inst);
    if (!in)
        return -1;
    snprintf(f->addr, sizeof(f->addr), "%s", in->addr);
    f->refl = mesh_reflect_new_for_service(NULL, v->svc->name);
    f->rpc = f->refl ? c->a->rpc_new(c->a->rpc_arg, c->self, f->addr, deliver, c) : NULL;
    if (!f->refl || !f->rpc) {
        snprintf(v->svc->last_error, sizeof(v->svc->last_error), "%s: cannot start a client%s",
                 f->addr, f->refl ? "" : " (out of memory)");
        return -1;
    }
    f->started = mesh_now(c->self);
    c->fetches_started++;
    if (mesh_timer_start(c->self, c->timeout_ms * MS, 0, GWC_MSG_DEADLINE, &f->timer) < 0)
        f->timer = 0; /* the call's own deadline still ends it */
    mesh_debug(ACTOR, "fetching %s (version '%s') from %s", v->svc->name, v->version, f->addr);
    return 0;
}

/* The round failed for every instance tried: back off (or skip: no reflection anywhere). */
static void round_failed(gw_cache_t *c, gwc_fetch_t *f)
{
    gwc_variant_t *v = f->v;
    gwc_svc_t *s = v->svc;
    uint32_t tried = f->tried, unimpl = f->unimpl;
    v->next_inst += tried ? tried : 1;
    fetch_release(c, f);
    if (!v->n_instances) { /* nobody left to ask: asked again when instances come back */
        v->state = GWC_V_NEED;
        return;
    }
    if (tried && unimpl == tried) {
        v->state = GWC_V_NOREFL;
        c->no_reflection++;
        if (!s->norefl_logged)
            mesh_warn(ACTOR,
                      "service %s: its instances serve no reflection (v1 or v1alpha); left out "
                      "of the gateway until a new version is deployed",
                      s->name);
        s->norefl_logged = 1;
        changed(c); /* reflection at the entry says so instead of waiting for it */
        return;
    }
    v->state = GWC_V_FAILED;
    s->failures++;
    uint64_t b = c->backoff_min_ms;
    for (uint32_t i = 1; i < s->failures && b < c->backoff_max_ms; i++)
        b *= 2;
    if (b > c->backoff_max_ms)
        b = c->backoff_max_ms;
    /* Equal jitter: half fixed, half random, so services that failed together spread out. */
    uint64_t delay = b / 2 + mesh_random(c->self) % (b / 2 + 1);
    s->retry_at = mesh_now(c->self) + delay * MS;
    if (!s->in_backoff &&
        grow(&c->backoff, &c->cap_backoff, c->n_backoff + 1, sizeof(*c->backoff)) == 0) {
        c->backoff[c->n_backoff++] = s;
        s->in_backoff = 1;
    }
    mesh_warn(ACTOR,
              "service %s (version '%s'): cannot fetch its descriptors: %s (retry in %llu ms)",
              s->name, v->version, s->last_error, (unsigned long long)delay);
    arm_wake(c, s->retry_at);
}

/* Asks the next instance of the round, or ends the round. */
static void fetch_advance(gw_cache_t *c, gwc_fetch_t *f)
{
    for (;;) {
        uint32_t n = f->v->n_instances, limit = n < c->tries ? n : c->tries;
        if (f->tried >= limit) {
            round_failed(c, f);
            return;
        }
        if (start_instance(c, f) == 0) {
            drive(c, f); /* may end this instance at once and come back here */
            return;
        }
        fetch_close_instance(c, f);
        f->tried++;
    }
}

/* The current instance failed: the next one, or the round is over. */
static void instance_failed(gw_cache_t *c, gwc_fetch_t *f, const char *why, int unimpl)
{
    gwc_variant_t *v = f->v;
    snprintf(v->svc->last_error, sizeof(v->svc->last_error), "%s: %s", f->addr, why);
    mesh_info(ACTOR, "service %s: instance %s: %s", v->svc->name, f->addr, why);
    fetch_close_instance(c, f);
    f->tried++;
    f->unimpl += unimpl != 0;
    fetch_advance(c, f);
}

/* Keeps the files of the conversation's pool, serialized. */
static int keep_files(gwc_variant_t *v, const mesh_desc_pool_t *p)
{
    size_t n = mesh_desc_pool_file_count(p);
    gwc_file_t *files = calloc(n ? n : 1, sizeof(*files));
    if (!files)
        return -1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const Google__Protobuf__FileDescriptorProto *fd = mesh_desc_pool_file(p, i);
        size_t len = google__protobuf__file_descriptor_proto__get_packed_size(fd);
        files[i].name = strdup(fd->name);
        files[i].data = malloc(len ? len : 1);
        if (!files[i].name || !files[i].data) {
            for (size_t k = 0; k <= i; k++) {
                free(files[k].name);
                free(files[k].data);
            }
            free(files);
            return -1;
        }
        files[i].len = google__protobuf__file_descriptor_proto__pack(fd, files[i].data);
        bytes += files[i].len;
    }
    variant_files_free(v);
    v->files = files;
    v->n_files = n;
    v->bytes = bytes;
    return 0;
}

static void fetch_done(gw_cache_t *c, gwc_fetch_t *f)
{
    gwc_variant_t *v = f->v;
    mesh_desc_pool_t *p = mesh_reflect_take_pool(f->refl);
    if (!p || keep_files(v, p) < 0) {
        mesh_desc_pool_free(p);
        instance_failed(c, f, "out of memory keeping the descriptors", 0);
        return;
    }
    mesh_desc_pool_free(p);
    uint64_t now = mesh_now(c->self);
    v->fetch_ns = now - f->started;
    v->fetched_at = now;
    snprintf(v->from, sizeof(v->from), "%s", f->addr);
    v->state = GWC_V_HAVE;
    v->next_inst = f->inst + 1;
    v->svc->failures = 0;
    v->svc->last_error[0] = '\0';
    c->fetched++;
    mesh_info(ACTOR, "service %s (version '%s'): %zu files from %s in %.1f ms", v->svc->name,
              v->version, v->n_files, f->addr, (double)v->fetch_ns / 1e6);
    fetch_release(c, f);
    changed(c);
}

static void drive(gw_cache_t *c, gwc_fetch_t *f)
{
    while (f->refl) {
        mesh_reflect_out_t out;
        switch (mesh_reflect_next(f->refl, &out)) {
        case MESH_REFLECT_OPEN:
            if (f->call_tag)
                mesh_rpc_call_cancel(f->rpc, f->call_tag);
            f->call_tag = ++c->next_tag;
            if (mesh_rpc_call_start(f->rpc, f->call_tag, out.path, c->timeout_ms) != 0) {
                f->call_tag = 0;
                instance_failed(c, f, "cannot start a reflection call", 0);
                return;
            }
            break;
        case MESH_REFLECT_SEND:
            if (mesh_rpc_call_send(f->rpc, f->call_tag, out.data, out.len) != 0) {
                instance_failed(c, f, "cannot send a reflection request", 0);
                return;
            }
            break;
        case MESH_REFLECT_WAIT:
            return;
        case MESH_REFLECT_DONE:
            fetch_done(c, f);
            return;
        case MESH_REFLECT_FAILED: {
            char why[256];
            snprintf(why, sizeof(why), "%s", mesh_reflect_error(f->refl));
            instance_failed(c, f, why, mesh_reflect_unimplemented(f->refl));
            return;
        }
        }
    }
}

/* Starts fetches from the queue while slots are free (after every message). */
static void pump(gw_cache_t *c)
{
    while (c->q_head && c->n_fetching < c->max_fetches) {
        gwc_variant_t *v = c->q_head;
        dequeue(c, v);
        if (!v->n_instances || v->state != GWC_V_NEED)
            continue;
        gwc_fetch_t *f = NULL;
        for (size_t i = 0; i < c->max_fetches && !f; i++)
            if (!c->fetches[i].v)
                f = &c->fetches[i];
        if (!f) { /* cannot happen: n_fetching counts the busy slots */
            enqueue(c, v);
            return;
        }
        memset(f, 0, sizeof(*f));
        f->v = v;
        v->state = GWC_V_FETCHING;
        c->n_fetching++;
        fetch_advance(c, f);
    }
}

static gwc_fetch_t *fetch_of_tag(gw_cache_t *c, uint64_t tag)
{
    for (size_t i = 0; i < c->max_fetches; i++)
        if (c->fetches[i].v && c->fetches[i].call_tag == tag)
            return &c->fetches[i];
    return NULL;
}

static void on_rpc(gw_cache_t *c, const mesh_rpc_event_t *ev)
{
    gwc_fetch_t *f = ev->tag ? fetch_of_tag(c, ev->tag) : NULL;
    if (!f || !f->refl)
        return; /* a call that was given up */
    if (ev->kind == MESH_RPC_MESSAGE) {
        mesh_reflect_on_response(f->refl, ev->data, ev->len);
    } else if (ev->kind == MESH_RPC_END) {
        f->call_tag = 0;
        mesh_reflect_on_stream_end(f->refl, ev->status, ev->text);
    }
    drive(c, f);
}

static void on_deadline(gw_cache_t *c, uint64_t timer)
{
    for (size_t i = 0; i < c->max_fetches; i++) {
        gwc_fetch_t *f = &c->fetches[i];
        if (f->v && f->timer == timer) {
            f->timer = 0;
            c->timeouts++;
            char why[96];
            snprintf(why, sizeof(why), "no answer within %llu ms",
                     (unsigned long long)c->timeout_ms);
            instance_failed(c, f, why, 0);
            return;
        }
    }
}

/* ---- the table ------------------------------------------------------------------------------ */

/* Drops a variant (its grace ended); frees the service when nothing is left of it. */
static void variant_drop(gw_cache_t *c, gwc_variant_t *v)
{
    gwc_svc_t *s = v->svc;
    dequeue(c, v);
    for (size_t i = 0; i < c->max_fetches; i++)
        if (c->fetches[i].v == v)
            fetch_release(c, &c->fetches[i]);
    if (v->state == GWC_V_NOREFL)
        c->no_reflection--;
    if (v->n_files)
        changed(c);
    mesh_info(ACTOR, "service %s (version '%s'): no instance for the grace period, dropped",
              s->name, v->version);
    for (size_t i = 0; i < s->n_v; i++)
        if (s->v[i] == v) {
            s->v[i] = s->v[--s->n_v];
            break;
        }
    variant_free(v);
    if (!s->n_v && !s->obj && !s->in_backoff)
        svc_unlink_free(c, s);
}

/* A service's object changed (after: NULL when it left the table). */
static void svc_update(gw_cache_t *c, const char *name, mesh_route_svc_t *after)
{
    if (mesh_reflect_is_infra_service(name))
        return;
    gwc_svc_t *s = svc_find(c, name);
    if (!s && !after)
        return;
    if (!s && !(s = svc_add(c, name))) {
        mesh_error(ACTOR, "out of memory: service %s not cached", name);
        return;
    }
    if (!s->obj && after)
        c->n_table_svcs++;
    else if (s->obj && !after)
        c->n_table_svcs--;
    mesh_route_svc_unref(s->obj);
    s->obj = after ? mesh_route_svc_ref(after) : NULL;

    for (size_t i = 0; i < s->n_v; i++)
        s->v[i]->n_instances = 0;
    const mesh_route_service_t *rs = after ? mesh_route_svc_get(after) : NULL;
    for (size_t k = 0; rs && k < rs->n_instances; k++) {
        const mesh_route_instance_t *in = &rs->instances[k];
        const char *ver = in->version ? in->version : "";
        uint64_t mh = methods_hash(in);
        gwc_variant_t *v = variant_find(s, ver, mh);
        if (!v) {
            if (!(v = variant_add(c, s, ver, mh))) {
                mesh_error(ACTOR, "out of memory: a version of %s not cached", name);
                continue;
            }
            if (s->n_v > 1)
                mesh_info(ACTOR, "service %s: new version '%s' (%s methods)", name, ver,
                          in->methods ? "listed" : "unlisted");
        }
        v->n_instances++;
    }
    for (size_t i = 0; i < s->n_v; i++) {
        gwc_variant_t *v = s->v[i];
        if (v->n_instances) {
            v->absent_since = 0;
            enqueue(c, v); /* only when it still needs its descriptors */
        } else if (!v->absent_since) {
            mark_absent(c, v);
        }
    }
}

static void diff_cb(void *ud, const char *name, const mesh_route_svc_t *before,
                    const mesh_route_svc_t *after)
{
    (void)before;
    svc_update(ud, name, (mesh_route_svc_t *)after);
}

static void on_routes(gw_cache_t *c, mesh_routes_t *t)
{
    mesh_routes_diff(c->routes, t, diff_cb, c);
    mesh_routes_unref(c->routes);
    c->routes = t;
}

static void on_wake(gw_cache_t *c)
{
    c->wake_timer = 0;
    c->wake_at = 0;
    uint64_t now = mesh_now(c->self), next = UINT64_MAX;
    /* Services whose backoff ended: their failed variants go back to the queue. */
    for (size_t i = 0; i < c->n_backoff;) {
        gwc_svc_t *s = c->backoff[i];
        if (s->retry_at > now) {
            if (s->retry_at < next)
                next = s->retry_at;
            i++;
            continue;
        }
        c->backoff[i] = c->backoff[--c->n_backoff];
        s->in_backoff = 0;
        for (size_t k = 0; k < s->n_v; k++)
            if (s->v[k]->state == GWC_V_FAILED || s->v[k]->state == GWC_V_NEED) {
                s->v[k]->state = GWC_V_NEED;
                enqueue(c, s->v[k]);
            }
        if (!s->n_v && !s->obj)
            svc_unlink_free(c, s);
    }
    /* Variants whose grace ended. */
    for (size_t i = 0; i < c->n_absent;) {
        gwc_variant_t *v = c->absent[i];
        if (v->n_instances) {
            v->in_absent = 0;
            c->absent[i] = c->absent[--c->n_absent];
            continue;
        }
        if (v->absent_since + c->grace_ns > now) {
            if (v->absent_since + c->grace_ns < next)
                next = v->absent_since + c->grace_ns;
            i++;
            continue;
        }
        c->absent[i] = c->absent[--c->n_absent];
        variant_drop(c, v);
    }
    if (next != UINT64_MAX)
        arm_wake(c, next);
}

/* ---- the actor ------------------------------------------------------------------------------ */

static uint64_t or_default(uint64_t v, uint64_t d)
{
    return v ? v : d;
}

static int cache_start(mesh_actor_t *self, void *arg)
{
    gw_cache_t *c = mesh_state(self);
    c->self = self;
    c->a = arg;
    if (!c->a || !c->a->rpc_new)
        return -1;
    c->max_fetches = (uint32_t)or_default(c->a->max_fetches, 4);
    c->tries = (uint32_t)or_default(c->a->tries_per_round, 3);
    c->timeout_ms = or_default(c->a->fetch_timeout_ms, 5000);
    c->backoff_min_ms = or_default(c->a->backoff_min_ms, 1000);
    c->backoff_max_ms = or_default(c->a->backoff_max_ms, 60000);
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    c->grace_ns = or_default(c->a->grace_ms, 30000) * MS;
    c->coalesce_ns = or_default(c->a->coalesce_ms, 100) * MS;
    c->fetches = calloc(c->max_fetches, sizeof(*c->fetches));
    if (!c->fetches)
        return -1;
    c->a->live = c;
    /* A (re)started cache asks for the tables: the current one comes at once. */
    if (c->a->routes_from && mesh_send(self, c->a->routes_from, REG_MSG_ROUTES_WATCH, NULL, 0) != 0)
        mesh_warn(ACTOR, "cannot ask for the routing tables: nothing will be learned");
    return 0;
}

static int cache_message(mesh_actor_t *self, mesh_msg_t *m)
{
    gw_cache_t *c = mesh_state(self);
    switch (m->type) {
    case REG_MSG_ROUTES: {
        mesh_routes_t *t = mesh_msg_take_ptr(m);
        if (t)
            on_routes(c, t);
        return 0;
    }
    case GWC_MSG_RPC:
        if (m->ptr)
            on_rpc(c, m->ptr);
        return 0;
    case GWC_MSG_DEADLINE:
        on_deadline(c, m->corr);
        return 0;
    case GWC_MSG_WAKE:
        if (m->corr == c->wake_timer)
            on_wake(c);
        return 0;
    case GWC_MSG_EMIT:
        c->emit_timer = 0;
        if (c->dirty)
            emit_now(c);
        return 0;
    default:
        mesh_debug(ACTOR, "unexpected message 0x%x", m->type);
        return 0;
    }
}

static void cache_stop(mesh_actor_t *self, int reason)
{
    (void)reason;
    gw_cache_t *c = mesh_state(self);
    if (c->a && c->a->live == c)
        c->a->live = NULL;
    for (size_t i = 0; c->fetches && i < c->max_fetches; i++)
        fetch_close_instance(c, &c->fetches[i]);
    free(c->fetches);
    for (size_t i = 0; i < c->n_buckets; i++)
        for (gwc_svc_t *s = c->buckets[i], *nx; s; s = nx) {
            nx = s->hnext;
            for (size_t k = 0; k < s->n_v; k++)
                variant_free(s->v[k]);
            mesh_route_svc_unref(s->obj);
            free(s->v);
            free(s->name);
            free(s);
        }
    free(c->buckets);
    free(c->absent);
    free(c->backoff);
    mesh_routes_unref(c->routes);
    mesh_desc_pool_free(c->merged);
    gwc_unresolved_clear(c);
}

static int cache_message_pump(mesh_actor_t *self, mesh_msg_t *m)
{
    int rc = cache_message(self, m);
    pump(mesh_state(self));
    return rc;
}

const mesh_actor_ops_t gw_cache_actor_ops = {
    .name = "gw-schemas",
    .state_size = sizeof(gw_cache_t),
    .on_start = cache_start,
    .on_message = cache_message_pump,
    .on_stop = cache_stop,
};

void gw_cache_counts(const gw_cache_t *c, gw_cache_counts_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    out->services = c->n_table_svcs;
    out->fetching = c->n_fetching;
    out->queued = c->n_queued;
    out->failed = c->n_backoff;
    out->no_reflection = c->no_reflection;
    out->fetches = c->fetches_started;
    out->fetched = c->fetched;
    out->timeouts = c->timeouts;
    out->conflicts = c->conflicts;
    out->generation = c->generation;
    for (size_t i = 0; i < c->n_buckets; i++)
        for (const gwc_svc_t *s = c->buckets[i]; s; s = s->hnext) {
            int held = 0;
            for (size_t k = 0; k < s->n_v; k++) {
                held |= s->v[k]->state == GWC_V_HAVE;
                out->files += s->v[k]->n_files;
                out->bytes += s->v[k]->bytes;
            }
            out->held += held;
        }
}

mesh_rpc_t *gw_cache_rpc_grpc(void *arg, mesh_actor_t *self, const char *addr,
                              mesh_rpc_deliver_fn deliver_fn, void *deliver_ud)
{
    (void)arg;
    struct uv_loop_s *loop = mesh_uv_loop(self);
    return loop ? mesh_rpc_grpc_new(loop, addr, 5000, deliver_fn, deliver_ud) : NULL;
}

size_t gw_cache_conflict_count(const gw_cache_t *c)
{
    return c ? c->n_unresolved / 2 : 0;
}

const char *gw_cache_conflict(const gw_cache_t *c, size_t i, const char **why)
{
    *why = c->unresolved[2 * i + 1];
    return c->unresolved[2 * i];
}

void gw_cache_each_unfetchable(const gw_cache_t *c, void (*fn)(void *ud, const char *service),
                               void *ud)
{
    for (size_t i = 0; c && i < c->n_buckets; i++)
        for (const gwc_svc_t *s = c->buckets[i]; s; s = s->hnext) {
            if (!s->obj || !s->n_v)
                continue;
            size_t norefl = 0, held = 0;
            for (size_t k = 0; k < s->n_v; k++) {
                norefl += s->v[k]->state == GWC_V_NOREFL;
                held += s->v[k]->n_files != 0;
            }
            if (norefl && !held)
                fn(ud, s->name);
        }
}
