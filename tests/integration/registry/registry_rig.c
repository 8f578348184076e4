/*
 * tests/integration/registry/registry_rig.c: the production registry actor against real etcd,
 * driven from a test (see registry_rig.h).
 */
#include "tests/integration/registry/registry_rig.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "registry/reg_msgs.h"
#include "tests/check.h"
#include "tests/integration/registry/etcd_harness.h"

enum { TEST_MSG_REG = 0x54450001u, TEST_MSG_DEREG = 0x54450002u };

/* Everything allocated, freed by rig_free_all: plain blocks, viewers and registrars. */
static void **owned;
static size_t n_owned, cap_owned;
static viewer_t *viewers[64];
static size_t n_viewers;
static registrar_t *registrars[64];
static size_t n_registrars;

static void own(void *p)
{
    if (n_owned == cap_owned) {
        cap_owned = cap_owned ? cap_owned * 2 : 16;
        owned = realloc(owned, cap_owned * sizeof(*owned));
        CHECK(owned);
    }
    owned[n_owned++] = p;
}

static void *exec_main(void *arg)
{
    rig_t *r = arg;
    mesh_exec_run(r->exec);
    return NULL;
}

void rig_start(rig_t *r, uv_loop_t *test_loop)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->loop = test_loop;
    mesh_exec_opts_t eo = {.workers = -1, .no_signals = 1};
    r->exec = mesh_exec_new(&eo);
    CHECK(r->exec);
    CHECK(pthread_create(&r->thread, NULL, exec_main, r) == 0);
}

void rig_stop(rig_t *r)
{
    mesh_exec_shutdown(r->exec);
    pthread_join(r->thread, NULL);
    mesh_exec_free(r->exec);
    r->exec = NULL;
}

/* ---- viewers -------------------------------------------------------------------------------- */

static void free_keys(viewer_t *v)
{
    for (size_t i = 0; i < v->n_keys; i++) {
        free(v->keys[i].key);
        free(v->keys[i].node);
    }
    free(v->keys);
    v->keys = NULL;
    v->n_keys = 0;
}

/* The actor's hook, on the executor's thread: copy what the test looks at. */
static void on_view(void *ud, const reg_view_t *view, int published)
{
    viewer_t *v = ud;
    if (!view)
        return; /* the actor (re)starts */
    const reg_table_t *t = reg_view_table(view);
    const reg_entry_t **es = calloc(t->n_valid ? t->n_valid : 1, sizeof(*es));
    CHECK(es);
    size_t n = reg_table_sorted(t, es, t->n_valid);
    rig_key_t *keys = calloc(n ? n : 1, sizeof(*keys));
    CHECK(keys);
    size_t services = 0;
    for (size_t i = 0; i < n; i++) {
        keys[i].key = strndup(es[i]->key, es[i]->klen);
        keys[i].node = strdup(es[i]->node ? es[i]->node : "");
        keys[i].n_methods = es[i]->n_methods;
        keys[i].lease = es[i]->lease;
        if (i == 0 || strcmp(es[i]->service, es[i - 1]->service) != 0)
            services++;
    }
    free(es);
    pthread_mutex_lock(&v->rig->mu);
    free_keys(v);
    v->keys = keys;
    v->n_keys = n;
    v->link = reg_view_link(view);
    v->revision = reg_view_revision(view);
    v->n_valid = t->n_valid;
    v->n_warned = t->n_warned;
    v->table_bytes = reg_table_memory(t);
    v->compacted = reg_view_sm(view)->compacted;
    v->resyncs = reg_view_sm(view)->resyncs;
    if (published) {
        v->publishes++;
        v->services = services;
    }
    pthread_mutex_unlock(&v->rig->mu);
}

viewer_t *viewer_start_cfg(rig_t *r, const etcd_api_curl_cfg_t *cfg, const char *snapshot)
{
    viewer_t *v = calloc(1, sizeof(*v));
    CHECK(v && n_viewers < 64);
    viewers[n_viewers++] = v;
    v->rig = r;
    v->fac = (reg_curl_factory_t){.exec = r->exec, .cfg = *cfg};
    reg_actor_cfg_t rc = {
        .etcd_new = reg_etcd_curl_factory,
        .etcd_arg = &v->fac,
        .watch = 1,
        .snapshot_path = snapshot,
        .watch_cfg = {.backoff_min_ms = 50, .backoff_max_ms = 400},
        .on_view = on_view,
        .hooks_ud = v,
    };
    v->args = reg_actor_args_new(&rc, NULL);
    CHECK(v->args);
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL, .mailbox = REG_ACTOR_MAILBOX};
    CHECK(mesh_exec_spawn(r->exec, &reg_actor_ops, v->args, &so, &v->id) == 0);
    return v;
}

viewer_t *viewer_start(rig_t *r, const char *endpoint, const char *snapshot, uint32_t req_ms,
                       uint32_t conn_ms)
{
    char *ep = strdup(endpoint);
    CHECK(ep);
    own(ep);
    const char **eps = calloc(1, sizeof(*eps));
    CHECK(eps);
    own(eps);
    eps[0] = ep;
    etcd_api_curl_cfg_t cfg = {.endpoints = eps,
                               .n_endpoints = 1,
                               .request_timeout_ms = req_ms,
                               .connect_timeout_ms = conn_ms};
    return viewer_start_cfg(r, &cfg, snapshot);
}

void viewer_stop(viewer_t *v)
{
    CHECK(mesh_exec_stop(v->rig->exec, v->id) == 0);
    /* The stop is asynchronous: wait until the address is gone. */
    for (int i = 0; i < 500; i++) {
        if (mesh_exec_send(v->rig->exec, v->id, 0x54450099u, NULL, 0) == -MESH_ENOENT)
            return;
        h_run_for(v->rig->loop, 10);
    }
    CHECK(!"the viewer did not stop");
}

static const rig_key_t *find_key(viewer_t *v, const char *key)
{
    for (size_t i = 0; i < v->n_keys; i++)
        if (strcmp(v->keys[i].key, key) == 0)
            return &v->keys[i];
    return NULL;
}

int viewer_has(viewer_t *v, const char *key)
{
    pthread_mutex_lock(&v->rig->mu);
    int has = find_key(v, key) != NULL;
    pthread_mutex_unlock(&v->rig->mu);
    return has;
}

int viewer_key(viewer_t *v, const char *key, rig_key_t *out)
{
    pthread_mutex_lock(&v->rig->mu);
    const rig_key_t *k = find_key(v, key);
    if (k) {
        out->key = strdup(k->key);
        out->node = strdup(k->node);
        out->n_methods = k->n_methods;
        out->lease = k->lease;
        own(out->key);
        own(out->node);
    }
    pthread_mutex_unlock(&v->rig->mu);
    return k ? 0 : -1;
}

/* A copy of the viewer's observations, taken under the lock. */
static viewer_t snap(viewer_t *v)
{
    pthread_mutex_lock(&v->rig->mu);
    viewer_t c = *v;
    pthread_mutex_unlock(&v->rig->mu);
    return c;
}

int viewer_link(viewer_t *v)
{
    return snap(v).link;
}
size_t viewer_valid(viewer_t *v)
{
    return snap(v).n_valid;
}
size_t viewer_warned(viewer_t *v)
{
    return snap(v).n_warned;
}
uint64_t viewer_compacted(viewer_t *v)
{
    return snap(v).compacted;
}
uint64_t viewer_resyncs(viewer_t *v)
{
    return snap(v).resyncs;
}
int viewer_publishes(viewer_t *v)
{
    return snap(v).publishes;
}
size_t viewer_services(viewer_t *v)
{
    return snap(v).services;
}
size_t viewer_table_bytes(viewer_t *v)
{
    return snap(v).table_bytes;
}

typedef struct cond {
    viewer_t *v;
    registrar_t *g;
    const char *key;
    int want;
    size_t n;
} cond_t;

static int key_is(void *ud)
{
    cond_t *c = ud;
    return viewer_has(c->v, c->key) == c->want;
}

static int link_is(void *ud)
{
    cond_t *c = ud;
    return viewer_link(c->v) == c->want;
}

static int count_is(void *ud)
{
    cond_t *c = ud;
    return viewer_valid(c->v) == c->n;
}

int wait_key(viewer_t *v, const char *key, int want, uint64_t ms)
{
    cond_t c = {.v = v, .key = key, .want = want};
    return h_wait(v->rig->loop, key_is, &c, ms);
}

int wait_link(viewer_t *v, int link, uint64_t ms)
{
    cond_t c = {.v = v, .want = link};
    return h_wait(v->rig->loop, link_is, &c, ms);
}

int wait_count(viewer_t *v, size_t n, uint64_t ms)
{
    cond_t c = {.v = v, .n = n};
    return h_wait(v->rig->loop, count_is, &c, ms);
}

/* ---- registrars ----------------------------------------------------------------------------- */

static int gr_start(mesh_actor_t *self, void *arg)
{
    *(registrar_t **)mesh_state(self) = arg;
    return 0;
}

static int gr_message(mesh_actor_t *self, mesh_msg_t *m)
{
    registrar_t *g = *(registrar_t **)mesh_state(self);
    switch (m->type) {
    case TEST_MSG_REG: {
        void *spec = mesh_msg_take_ptr(m);
        CHECK(mesh_send_ptr(self, g->registry, REG_MSG_REGISTER, spec, reg_spec_free) == 0);
        return 0;
    }
    case TEST_MSG_DEREG: {
        pthread_mutex_lock(&g->rig->mu);
        reg_deregister_t d = {.id = g->reg_id};
        pthread_mutex_unlock(&g->rig->mu);
        CHECK(mesh_send(self, g->registry, REG_MSG_DEREGISTER, &d, sizeof(d)) == 0);
        return 0;
    }
    case REG_MSG_REGISTER_OK: {
        const reg_register_ok_t *ok = mesh_msg_as(m, reg_register_ok_t);
        CHECK(ok && ok->id);
        pthread_mutex_lock(&g->rig->mu);
        g->reg_id = ok->id;
        pthread_mutex_unlock(&g->rig->mu);
        return 0;
    }
    case REG_MSG_EVENT: {
        const reg_event_t *e = mesh_msg_as(m, reg_event_t);
        CHECK(e);
        pthread_mutex_lock(&g->rig->mu);
        if (e->event == REG_EV_REGISTERED)
            g->registered++;
        else if (e->event == REG_EV_LEASE_LOST)
            g->lost++;
        else
            g->deregistered++;
        pthread_mutex_unlock(&g->rig->mu);
        return 0;
    }
    default:
        return 0;
    }
}

static const mesh_actor_ops_t registrar_ops = {
    .name = "test-registrar",
    .state_size = sizeof(registrar_t *),
    .on_start = gr_start,
    .on_message = gr_message,
};

registrar_t *registrar_start(rig_t *r, const etcd_api_curl_cfg_t *cfg)
{
    registrar_t *g = calloc(1, sizeof(*g));
    CHECK(g && n_registrars < 64);
    registrars[n_registrars++] = g;
    g->rig = r;
    g->fac = (reg_curl_factory_t){.exec = r->exec, .cfg = *cfg};
    reg_actor_cfg_t rc = {.etcd_new = reg_etcd_curl_factory, .etcd_arg = &g->fac};
    g->args = reg_actor_args_new(&rc, NULL);
    CHECK(g->args);
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL, .mailbox = REG_ACTOR_MAILBOX};
    CHECK(mesh_exec_spawn(r->exec, &reg_actor_ops, g->args, &so, &g->registry) == 0);
    CHECK(mesh_exec_spawn(r->exec, &registrar_ops, g, &so, &g->id) == 0);
    return g;
}

static const char *const greeter_methods[] = {"SayHello", "SayBye"};

void registrar_register(registrar_t *g, const char *service, const char *addr, int64_t ttl)
{
    reg_service_t svc = {service, greeter_methods, 2};
    reg_registration_cfg_t cfg = {.addr = addr,
                                  .node = "node-1",
                                  .zone = "z1",
                                  .version = "1.0",
                                  .ttl_s = ttl,
                                  .services = &svc,
                                  .n_services = 1};
    reg_spec_t *spec = reg_spec_build(&cfg);
    CHECK(spec);
    pthread_mutex_lock(&g->rig->mu);
    g->registered = g->deregistered = g->lost = 0;
    g->reg_id = 0;
    pthread_mutex_unlock(&g->rig->mu);
    CHECK(mesh_exec_send_ptr(g->rig->exec, g->id, TEST_MSG_REG, spec, reg_spec_free) == 0);
}

static int has_id(void *ud)
{
    registrar_t *g = ud;
    pthread_mutex_lock(&g->rig->mu);
    int ok = g->reg_id != 0;
    pthread_mutex_unlock(&g->rig->mu);
    return ok;
}

void registrar_deregister(registrar_t *g)
{
    CHECK(h_wait(g->rig->loop, has_id, g, 5000));
    CHECK(mesh_exec_send(g->rig->exec, g->id, TEST_MSG_DEREG, NULL, 0) == 0);
}

static int is_registered(void *ud)
{
    registrar_t *g = ud;
    pthread_mutex_lock(&g->rig->mu);
    int ok = g->registered > 0;
    pthread_mutex_unlock(&g->rig->mu);
    return ok;
}

static int is_deregistered(void *ud)
{
    registrar_t *g = ud;
    pthread_mutex_lock(&g->rig->mu);
    int ok = g->deregistered > 0;
    pthread_mutex_unlock(&g->rig->mu);
    return ok;
}

int wait_registered(registrar_t *g, uint64_t ms)
{
    return h_wait(g->rig->loop, is_registered, g, ms);
}

int wait_deregistered(registrar_t *g, uint64_t ms)
{
    return h_wait(g->rig->loop, is_deregistered, g, ms);
}

void rig_free_all(void)
{
    for (size_t i = 0; i < n_viewers; i++) {
        free_keys(viewers[i]);
        reg_actor_args_free(viewers[i]->args);
        free(viewers[i]);
    }
    n_viewers = 0;
    for (size_t i = 0; i < n_registrars; i++) {
        reg_actor_args_free(registrars[i]->args);
        free(registrars[i]);
    }
    n_registrars = 0;
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    owned = NULL;
    n_owned = cap_owned = 0;
}
