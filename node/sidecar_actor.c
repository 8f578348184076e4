/*
 * node/sidecar_actor.c: the sidecar's control actor (see node/sidecar_actor.h).
 *
 * Health: every interval, one Health/Check call with the health timeout (unless the previous
 * one is still out), and a Health/Watch stream kept open unless the app answered Watch with
 * UNIMPLEMENTED. A SERVING pushed by Watch while not ready counts at once (fast recovery); the
 * Checks decide otherwise, so an app that hangs with its Watch stream open is found out.
 * NOT_SERVING, a failed or timed-out Check and a closed connection count as one failed check
 * each; how a call failed is decided on the app seam's reason code, never on the text of a
 * message.
 *
 * Registration: wanted while the readiness counter says registered, the services are known
 * and no shutdown began. The registry actor does the etcd work; this actor keeps one
 * registration at a time: asked (waiting for REG_MSG_REGISTER_OK), active, or stopping (a
 * deregistration in flight). A change of the service list deregisters and registers again; a
 * new registration waits until the previous one's deregistration finished, so a late delete
 * never removes fresh keys. A registry that cannot be reached yet (starting, restarting) is
 * asked again on a timer.
 *
 * Calls to the app carry tags (kind in the top byte, a sequence below); events of a call that
 * was replaced or cancelled are dropped.
 */
#include "node/sidecar_actor.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/exec.h"
#include "common/addr.h"
#include "common/log.h"
#include "grpc/descriptors.h"
#include "grpc/health_msg.h"
#include "grpc/reflection.h"
#include "node/node_msgs.h"
#include "node/readiness.h"
#include "common/prom.h"
#include "registry/reg_msgs.h"
#include "registry/registration.h"
#include "transport/grpc_status.h"
#include "transport/http1_server.h"

#define ACTOR "sidecar"

/* Message types of this actor (range 0x5343xxxx, see registry/reg_msgs.h). */
enum {
    SC_MSG_RPC = 0x53430001u,         /* ptr: mesh_rpc_event_t */
    SC_MSG_HEALTH_TICK = 0x53430002u, /* timer */
    SC_MSG_REFL_RETRY = 0x53430003u,  /* timer */
    SC_MSG_REG_RETRY = 0x53430004u,   /* timer */
};

/* Call tags. */
enum { TAG_REFL = 1, TAG_CHECK = 2, TAG_WATCH = 3 };

#define REG_RETRY_MS 500

typedef struct svc_entry {
    char *name;
    char **methods;
    size_t n_methods;
} svc_entry_t;

/* The one registration: none, asked for, active, or being deregistered. */
enum { REG_NONE = 0, REG_ASKED = 1, REG_ACTIVE = 2, REG_STOPPING = 3 };

typedef struct sidecar {
    sc_args_t *a;
    const mesh_config_t *cfg;
    mesh_actor_t *self;
    mesh_rpc_t *app;
    uint32_t seq;
    int app_reachable;
    char app_why[256];

    /* what the app serves */
    mesh_desc_pool_t *pool;
    svc_entry_t *svcs;
    size_t n_svcs;
    int svcs_known;
    uint64_t svcs_gen;
    char disco_error[512];

    /* reflection */
    mesh_reflect_t *refl;
    uint64_t refl_tag; /* the call in flight, 0 none */
    uint64_t refl_timer;
    uint64_t refl_backoff_ms;

    /* health */
    mesh_readiness_t rd;
    uint64_t check_tag;
    int check_status; /* decoded HealthCheckResponse status, -1 none, -2 undecodable */
    uint64_t watch_tag;
    int watch_status; /* last status the Watch pushed, -1 none */
    int watch_unsupported;

    /* registration (through the registry actor) */
    int reg_state;
    uint32_t reg_id;
    uint64_t reg_corr;  /* REG_ASKED: the request's correlation id */
    uint64_t reg_gen;   /* svcs_gen that the registration carries */
    int reg_confirmed;  /* the registry said the keys are in etcd */
    uint64_t reg_timer; /* retry when the registry could not be reached */
    char **reg_svcs;    /* the services the registration carries (for its audit events) */
    size_t n_reg_svcs;
    int reg_audited; /* instance_registered was emitted for this registration (lease) */

    h1_server_t *probe;
    int shutting_down;
} sidecar_t;

static void reconcile(sidecar_t *sc);
static void start_reflection(sidecar_t *sc);

/* ---- small helpers ------------------------------------------------------------------------- */

static uint64_t new_tag(sidecar_t *sc, int kind)
{
    sc->seq = sc->seq + 1 ? sc->seq + 1 : 1;
    return (uint64_t)kind << 56 | sc->seq;
}

static void svcs_free(svc_entry_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < v[i].n_methods; j++)
            free(v[i].methods[j]);
        free(v[i].methods);
        free(v[i].name);
    }
    free(v);
}

static void reg_svcs_free(sidecar_t *sc)
{
    for (size_t i = 0; i < sc->n_reg_svcs; i++)
        free(sc->reg_svcs[i]);
    free(sc->reg_svcs);
    sc->reg_svcs = NULL;
    sc->n_reg_svcs = 0;
}

/* Remembers the services a new registration carries. */
static void reg_svcs_take(sidecar_t *sc)
{
    reg_svcs_free(sc);
    sc->reg_svcs = calloc(sc->n_svcs ? sc->n_svcs : 1, sizeof(char *));
    for (size_t i = 0; sc->reg_svcs && i < sc->n_svcs; i++)
        if ((sc->reg_svcs[sc->n_reg_svcs] = strdup(sc->svcs[i].name)) != NULL)
            sc->n_reg_svcs++;
}

static void notify(sidecar_t *sc)
{
    if (sc->a->on_state)
        sc->a->on_state(sc->a->hooks_ud, sc->reg_state == REG_ASKED || sc->reg_state == REG_ACTIVE,
                        sc->reg_state == REG_ACTIVE && sc->reg_confirmed);
}

static void timer_once(sidecar_t *sc, uint64_t *slot, uint64_t ms, uint32_t type)
{
    if (*slot)
        mesh_timer_stop(sc->self, *slot);
    *slot = 0;
    if (mesh_timer_start(sc->self, ms * 1000000ull, 0, type, slot) != 0)
        mesh_error(ACTOR, "cannot start a timer");
}

/* ---- services ------------------------------------------------------------------------------ */

/* Adopts a built pool: the services (infra ones left out) become the registered ones. */
static void apply_pool(sidecar_t *sc, mesh_desc_pool_t *pool, const char *how)
{
    size_t n = mesh_desc_pool_service_count(pool);
    svc_entry_t *v = calloc(n ? n : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; v && i < n; i++) {
        const mesh_desc_service_t *s = mesh_desc_pool_service(pool, i);
        if (mesh_reflect_is_infra_service(s->name))
            continue;
        svc_entry_t *e = &v[k++];
        e->name = strdup(s->name);
        e->methods = calloc(s->n_methods ? s->n_methods : 1, sizeof(char *));
        for (size_t j = 0; e->methods && j < s->n_methods; j++)
            e->methods[e->n_methods++] = strdup(s->methods[j].name);
    }
    /* Same list as before? Then nothing changes in etcd. */
    int same = sc->svcs_known && k == sc->n_svcs;
    for (size_t i = 0; same && i < k; i++) {
        same = strcmp(v[i].name, sc->svcs[i].name) == 0 && v[i].n_methods == sc->svcs[i].n_methods;
        for (size_t j = 0; same && j < v[i].n_methods; j++)
            same = strcmp(v[i].methods[j], sc->svcs[i].methods[j]) == 0;
    }
    char list[1024];
    size_t ll = 0;
    list[0] = '\0';
    for (size_t i = 0; i < k && ll + 2 < sizeof(list); i++) {
        int w = snprintf(list + ll, sizeof(list) - ll, "%s%s (%zu methods)", i ? ", " : "",
                         v[i].name, v[i].n_methods);
        if (w > 0)
            ll += (size_t)w < sizeof(list) - ll ? (size_t)w : sizeof(list) - ll - 1;
    }
    if (k == 0)
        mesh_warn(ACTOR, "%s: the app serves no service besides health/reflection", how);
    else
        mesh_info(ACTOR, "%s: the app serves %s%s", how, list, same ? " (unchanged)" : "");
    if (same) {
        svcs_free(v, k);
    } else {
        svcs_free(sc->svcs, sc->n_svcs);
        sc->svcs = v;
        sc->n_svcs = k;
        sc->svcs_gen++;
    }
    sc->svcs_known = 1;
    sc->disco_error[0] = '\0';
    if (sc->pool)
        mesh_desc_pool_free(sc->pool);
    sc->pool = pool;
    if (sc->a->on_pool) /* the HTTP/JSON front end (--http-listen) */
        sc->a->on_pool(sc->a->pool_ud, pool);
    reconcile(sc);
}

/* ---- reflection ----------------------------------------------------------------------------- */

static void refl_close_call(sidecar_t *sc)
{
    if (sc->refl_tag)
        mesh_rpc_call_cancel(sc->app, sc->refl_tag);
    sc->refl_tag = 0;
}

static void refl_failed(sidecar_t *sc)
{
    refl_close_call(sc);
    mesh_reflect_free(sc->refl);
    sc->refl = NULL;
    sc->refl_backoff_ms = sc->refl_backoff_ms ? sc->refl_backoff_ms * 2 : 1000;
    if (sc->refl_backoff_ms > 30000)
        sc->refl_backoff_ms = 30000;
    mesh_error(ACTOR, "cannot learn the app's services: %s (retry in %llu ms)", sc->disco_error,
               (unsigned long long)sc->refl_backoff_ms);
    timer_once(sc, &sc->refl_timer, sc->refl_backoff_ms, SC_MSG_REFL_RETRY);
}

static void refl_drive(sidecar_t *sc)
{
    while (sc->refl) {
        mesh_reflect_out_t out;
        switch (mesh_reflect_next(sc->refl, &out)) {
        case MESH_REFLECT_OPEN:
            refl_close_call(sc);
            mesh_debug(ACTOR, "reflection: opening %s", out.path);
            sc->refl_tag = new_tag(sc, TAG_REFL);
            if (mesh_rpc_call_start(sc->app, sc->refl_tag, out.path, 30000) != 0) {
                sc->refl_tag = 0;
                snprintf(sc->disco_error, sizeof(sc->disco_error),
                         "reflection: cannot start a call to the app");
                refl_failed(sc);
                return;
            }
            break;
        case MESH_REFLECT_SEND:
            if (!sc->refl_tag || mesh_rpc_call_send(sc->app, sc->refl_tag, out.data, out.len)) {
                snprintf(sc->disco_error, sizeof(sc->disco_error),
                         "reflection: cannot send to the app");
                refl_failed(sc);
                return;
            }
            break;
        case MESH_REFLECT_WAIT:
            return;
        case MESH_REFLECT_DONE: {
            refl_close_call(sc);
            mesh_desc_pool_t *pool = mesh_reflect_take_pool(sc->refl);
            int alpha = strcmp(mesh_reflect_path(sc->refl), MESH_REFLECT_V1ALPHA_PATH) == 0;
            if (mesh_reflect_warning_count(sc->refl))
                mesh_warn(ACTOR, "reflection: %zu problem(s), last: %s",
                          mesh_reflect_warning_count(sc->refl),
                          mesh_reflect_last_warning(sc->refl));
            mesh_reflect_free(sc->refl);
            sc->refl = NULL;
            sc->refl_backoff_ms = 0;
            if (pool)
                apply_pool(sc, pool, alpha ? "reflection (v1alpha)" : "reflection (v1)");
            return;
        }
        case MESH_REFLECT_FAILED:
            snprintf(sc->disco_error, sizeof(sc->disco_error), "reflection failed: %s",
                     mesh_reflect_error(sc->refl));
            refl_failed(sc);
            return;
        }
    }
}

static void start_reflection(sidecar_t *sc)
{
    if (sc->cfg->descriptor_set || sc->shutting_down)
        return;
    if (sc->refl_timer)
        mesh_timer_stop(sc->self, sc->refl_timer);
    sc->refl_timer = 0;
    refl_close_call(sc);
    mesh_reflect_free(sc->refl);
    sc->refl = mesh_reflect_new(NULL);
    if (!sc->refl)
        return;
    mesh_info(ACTOR, "asking the app %s for its services (server reflection)", sc->cfg->app);
    refl_drive(sc);
}

/* ---- audit ---------------------------------------------------------------------------------- */

static void audit_readiness(sidecar_t *sc, int ready, const char *why)
{
    char reason[600];
    snprintf(reason, sizeof(reason), "app %s %s: %s", sc->cfg->app,
             ready ? "became ready" : "became not ready", why ? why : "");
    audit_event_t ev = {.type = AUDIT_READINESS_CHANGED, .ready = ready != 0, .reason = reason};
    audit_emit(sc->self, sc->a->audit, &ev);
}

/* One event per service of the registration (the Kafka key is the service). */
static void audit_instance(sidecar_t *sc, audit_type_t type, audit_source_t source,
                           const char *reason)
{
    if (!audit_api_on(sc->a->audit))
        return;
    for (size_t i = 0; i < sc->n_reg_svcs; i++) {
        audit_event_t ev = {.type = type,
                            .source = source,
                            .service = sc->reg_svcs[i],
                            .instance = sc->a->advertise,
                            .reason = reason};
        audit_emit(sc->self, sc->a->audit, &ev);
    }
}

/* ---- health --------------------------------------------------------------------------------- */

static void feed(sidecar_t *sc, mesh_check_result_t res, const char *detail)
{
    if (sc->shutting_down)
        return;
    int fx = mesh_readiness_on_check(&sc->rd, res, detail, mesh_now(sc->self));
    if (fx & MESH_READINESS_BECAME_READY) {
        mesh_info(ACTOR, "app %s is ready (health: SERVING)", sc->cfg->app);
        audit_readiness(sc, 1, detail && *detail ? detail : "health: SERVING");
    }
    if (fx & MESH_READINESS_BECAME_NOT_READY) {
        mesh_warn(ACTOR, "app %s is not ready: %s", sc->cfg->app, mesh_readiness_reason(&sc->rd));
        audit_readiness(sc, 0, mesh_readiness_reason(&sc->rd));
    } else if (res != MESH_CHECK_SERVING)
        mesh_info(ACTOR, "health check of %s failed: %s%s%s", sc->cfg->app,
                  mesh_check_result_name(res), detail && *detail ? ": " : "", detail ? detail : "");
    if (fx)
        reconcile(sc);
}

static mesh_check_result_t of_status(mesh_health_status_t st)
{
    return st == MESH_HEALTH_SERVING ? MESH_CHECK_SERVING : MESH_CHECK_NOT_SERVING;
}

/* A failed call as a readiness input, from its status and the connection's reason code. */
static mesh_check_result_t classify_call(int status, mesh_grpc_conn_reason_t reason)
{
    if (status == MESH_GRPC_DEADLINE_EXCEEDED)
        return MESH_CHECK_TIMEOUT;
    if (status == MESH_GRPC_UNAVAILABLE && reason != MESH_GRPC_CONN_OK)
        return MESH_CHECK_CONN_CLOSED;
    return MESH_CHECK_FAILED;
}

static void check_end(sidecar_t *sc, const mesh_rpc_event_t *ev)
{
    sc->check_tag = 0;
    char detail[300];
    if (ev->status == MESH_GRPC_OK && sc->check_status >= 0) {
        mesh_health_status_t st = (mesh_health_status_t)sc->check_status;
        snprintf(detail, sizeof(detail), "Health/Check answered %s", mesh_health_status_name(st));
        feed(sc, of_status(st), detail);
        return;
    }
    if (ev->status == MESH_GRPC_OK) {
        snprintf(detail, sizeof(detail), "Health/Check answered no valid HealthCheckResponse");
        feed(sc, MESH_CHECK_FAILED, detail);
        return;
    }
    snprintf(detail, sizeof(detail), "Health/Check: %s%s%s", mesh_grpc_status_name(ev->status),
             ev->text[0] ? ": " : "", ev->text);
    feed(sc, classify_call(ev->status, ev->reason), detail);
}

static void watch_message(sidecar_t *sc, const mesh_rpc_event_t *ev)
{
    mesh_health_status_t st;
    if (mesh_health_decode_response(ev->data, ev->len, &st) != 0)
        return;
    int was = sc->watch_status;
    sc->watch_status = (int)st;
    if (was != (int)st)
        mesh_info(ACTOR, "app %s health (Watch): %s", sc->cfg->app, mesh_health_status_name(st));
    if (st == MESH_HEALTH_SERVING && !mesh_readiness_is_ready(&sc->rd))
        feed(sc, MESH_CHECK_SERVING, "Health/Watch pushed SERVING");
}

static void watch_end(sidecar_t *sc, const mesh_rpc_event_t *ev)
{
    sc->watch_tag = 0;
    sc->watch_status = -1;
    if (ev->status == MESH_GRPC_UNIMPLEMENTED) {
        sc->watch_unsupported = 1;
        mesh_info(ACTOR, "app %s does not implement Health/Watch: using periodic Check",
                  sc->cfg->app);
    }
}

/* Starts a call with the one request message every health call sends. */
static uint64_t health_call(sidecar_t *sc, int kind, const char *path, uint64_t timeout_ms)
{
    uint8_t req[8];
    int n = mesh_health_encode_request("", req, sizeof(req));
    uint64_t tag = new_tag(sc, kind);
    if (mesh_rpc_call_start(sc->app, tag, path, timeout_ms) != 0)
        return 0;
    mesh_rpc_call_send(sc->app, tag, req, (size_t)(n > 0 ? n : 0));
    mesh_rpc_call_close_send(sc->app, tag);
    return tag;
}

static void health_tick(sidecar_t *sc)
{
    if (sc->shutting_down)
        return;
    /* The Watch stream only makes recovery fast; every interval a Check with a deadline is
     * what counts, so an app that hangs (its Watch stream open and silent, its last word
     * SERVING) is found out. */
    if (!sc->watch_tag && !sc->watch_unsupported) {
        sc->watch_status = -1;
        sc->watch_tag = health_call(sc, TAG_WATCH, MESH_HEALTH_WATCH_PATH, 0);
    }
    if (!sc->check_tag) {
        sc->check_status = -1;
        sc->check_tag = health_call(sc, TAG_CHECK, MESH_HEALTH_CHECK_PATH,
                                    (uint64_t)sc->cfg->health_timeout_ms);
    }
}

/* ---- the app seam --------------------------------------------------------------------------- */

static void app_conn(sidecar_t *sc, const mesh_rpc_event_t *ev)
{
    if (ev->kind == MESH_RPC_CONN_UP) {
        if (!sc->app_reachable || sc->app_why[0])
            mesh_info(ACTOR, "connected to the app %s", sc->cfg->app);
        sc->app_reachable = 1;
        sc->app_why[0] = '\0';
        start_reflection(sc); /* again on every new connection */
        return;
    }
    /* Nothing answering the port is not alive; a port that answered and then closed (or
     * did not speak HTTP/2) is. */
    int answers = !mesh_grpc_conn_unanswered(ev->reason);
    if (sc->app_reachable && !answers)
        mesh_warn(ACTOR, "the app %s does not answer: %s", sc->cfg->app, ev->text);
    else if (!sc->app_why[0] || strcmp(sc->app_why, ev->text) != 0)
        mesh_info(ACTOR, "connection to the app: %s", ev->text);
    sc->app_reachable = answers;
    snprintf(sc->app_why, sizeof(sc->app_why), "%s", ev->text);
}

static void on_rpc(sidecar_t *sc, const mesh_rpc_event_t *ev)
{
    if (ev->kind == MESH_RPC_CONN_UP || ev->kind == MESH_RPC_CONN_DOWN) {
        app_conn(sc, ev);
        return;
    }
    if (ev->tag && ev->tag == sc->refl_tag && sc->refl) {
        if (ev->kind == MESH_RPC_MESSAGE) {
            mesh_reflect_on_response(sc->refl, ev->data, ev->len);
        } else {
            sc->refl_tag = 0;
            mesh_reflect_on_stream_end(sc->refl, ev->status, ev->text);
        }
        refl_drive(sc);
    } else if (ev->tag && ev->tag == sc->check_tag) {
        if (ev->kind == MESH_RPC_MESSAGE) {
            mesh_health_status_t st;
            sc->check_status =
                mesh_health_decode_response(ev->data, ev->len, &st) == 0 ? (int)st : -2;
        } else {
            check_end(sc, ev);
        }
    } else if (ev->tag && ev->tag == sc->watch_tag) {
        if (ev->kind == MESH_RPC_MESSAGE)
            watch_message(sc, ev);
        else
            watch_end(sc, ev);
    }
}

static void deliver(void *ud, mesh_rpc_event_t *ev)
{
    sidecar_t *sc = ud;
    int rc = mesh_send_ptr(sc->self, mesh_self(sc->self), SC_MSG_RPC, ev, mesh_rpc_event_free);
    if (rc != 0) {
        mesh_error(ACTOR, "an event of the app connection was refused by the mailbox: %s",
                   mesh_strerror(rc));
        mesh_rpc_event_free(ev);
    }
}

/* ---- registration --------------------------------------------------------------------------- */

static mesh_actor_id_t registry_of(const sidecar_t *sc)
{
    return sc->a->registry ? *sc->a->registry : 0;
}

static void reg_retry_later(sidecar_t *sc)
{
    if (!sc->reg_timer)
        timer_once(sc, &sc->reg_timer, REG_RETRY_MS, SC_MSG_REG_RETRY);
}

/* Builds what the registry actor registers: one key per service, the advertised address. */
static reg_spec_t *build_spec(sidecar_t *sc)
{
    reg_service_t *rs = calloc(sc->n_svcs, sizeof(*rs));
    if (!rs)
        return NULL;
    for (size_t i = 0; i < sc->n_svcs; i++)
        rs[i] = (reg_service_t){sc->svcs[i].name, (const char *const *)sc->svcs[i].methods,
                                sc->svcs[i].n_methods};
    reg_registration_cfg_t rc = {
        .prefix = sc->cfg->etcd_prefix,
        .addr = sc->a->advertise,
        .node = sc->cfg->node,
        .zone = sc->cfg->zone,
        .version = sc->cfg->version,
        .weight = (uint32_t)sc->cfg->weight,
        .labels = (const char *const *)sc->cfg->labels.items,
        .n_labels = sc->cfg->labels.n,
        .ttl_s = (sc->cfg->lease_ttl_ms + 999) / 1000,
        .mesh_tls = sc->a->mesh_tls,
        .services = rs,
        .n_services = sc->n_svcs,
    };
    reg_spec_t *spec = reg_spec_build(&rc);
    free(rs);
    return spec;
}

static void ask_register(sidecar_t *sc)
{
    reg_spec_t *spec = build_spec(sc);
    if (!spec) {
        mesh_error(ACTOR, "cannot build the registration of %s", sc->a->advertise);
        return;
    }
    mesh_msg_t *m = mesh_msg_make_ptr(REG_MSG_REGISTER, spec, reg_spec_free, NULL);
    if (!m) {
        reg_spec_free(spec);
        return;
    }
    /* A request without a timeout of its own: the answer is the registry's, and a registry
     * that restarts answers again (it keeps its registrations); the retry timer covers one that
     * cannot be reached. */
    int rc = mesh_send_msg(sc->self, registry_of(sc), m);
    if (rc != 0) {
        mesh_msg_discard(m);
        reg_spec_free(spec);
        mesh_debug(ACTOR, "registry not reachable yet (%s): retrying", mesh_strerror(rc));
        reg_retry_later(sc);
        return;
    }
    sc->reg_state = REG_ASKED;
    sc->reg_gen = sc->svcs_gen;
    sc->reg_confirmed = 0;
    sc->reg_audited = 0;
    reg_svcs_take(sc);
    mesh_info(ACTOR, "registering %s: %zu service(s)", sc->a->advertise, sc->n_svcs);
    notify(sc);
}

static void ask_deregister(sidecar_t *sc)
{
    reg_deregister_t d = {.id = sc->reg_id};
    int rc = mesh_send(sc->self, registry_of(sc), REG_MSG_DEREGISTER, &d, sizeof(d));
    if (rc != 0) {
        reg_retry_later(sc);
        return;
    }
    sc->reg_state = REG_STOPPING;
    notify(sc);
}

static void reconcile(sidecar_t *sc)
{
    if (!registry_of(sc))
        return;
    int want = !sc->shutting_down && mesh_readiness_is_registered(&sc->rd) && sc->svcs_known &&
               sc->n_svcs > 0;
    switch (sc->reg_state) {
    case REG_NONE:
        if (want)
            ask_register(sc);
        return;
    case REG_ASKED:
    case REG_STOPPING:
        return; /* the registry's answer moves us on */
    case REG_ACTIVE:
        if (!want || sc->reg_gen != sc->svcs_gen) {
            mesh_info(ACTOR, "deregistering %s (%s)", sc->a->advertise,
                      !want ? (sc->shutting_down ? "shutting down" : "app not ready")
                            : "the app's services changed");
            ask_deregister(sc);
        }
        return;
    }
}

static void on_register_ok(sidecar_t *sc, const mesh_msg_t *m)
{
    const reg_register_ok_t *ok = mesh_msg_as(m, reg_register_ok_t);
    if (sc->reg_state != REG_ASKED)
        return;
    if (!ok || !ok->id) {
        mesh_error(ACTOR, "the registry refused to register %s", sc->a->advertise);
        sc->reg_state = REG_NONE;
        reg_retry_later(sc);
        notify(sc);
        return;
    }
    sc->reg_id = ok->id;
    sc->reg_state = REG_ACTIVE;
    reconcile(sc); /* maybe no longer wanted */
}

static void on_reg_event(sidecar_t *sc, const mesh_msg_t *m)
{
    const reg_event_t *e = mesh_msg_as(m, reg_event_t);
    if (!e || e->id != sc->reg_id || sc->reg_state == REG_NONE)
        return;
    int etcd = sc->cfg->etcd.n > 0;
    switch (e->event) {
    case REG_EV_REGISTERED:
        sc->reg_confirmed = 1;
        sc->a->reg_denied_now = 0;
        if (!sc->reg_audited) { /* once per lease: a key put again under it is not news */
            sc->reg_audited = 1;
            char reason[128];
            if (etcd)
                snprintf(reason, sizeof(reason), "registered in etcd under lease %lld",
                         (long long)e->lease);
            else
                snprintf(reason, sizeof(reason), "announced in gossip (no etcd)");
            audit_instance(sc, AUDIT_INSTANCE_REGISTERED, AUDIT_SOURCE_NONE, reason);
        }
        break;
    case REG_EV_DENIED: /* logged by the registration, once per streak; serving goes on */
        sc->reg_confirmed = 0;
        sc->a->reg_denied_total++;
        sc->a->reg_denied_now = 1;
        break;
    case REG_EV_LEASE_LOST: {
        sc->reg_confirmed = 0;
        char reason[128];
        snprintf(reason, sizeof(reason), "lease %lld expired in etcd; registering again",
                 (long long)e->lease);
        if (sc->reg_audited)
            audit_instance(sc, AUDIT_INSTANCE_REMOVED, AUDIT_SOURCE_LEASE_EXPIRY, reason);
        sc->reg_audited = 0;
        break;
    }
    case REG_EV_DEREGISTERED:
        sc->a->reg_denied_now = 0;
        if (sc->reg_audited)
            audit_instance(
                sc, AUDIT_INSTANCE_REMOVED, etcd ? AUDIT_SOURCE_ETCD : AUDIT_SOURCE_GOSSIP,
                sc->shutting_down             ? "deregistered: shutting down"
                : sc->reg_gen != sc->svcs_gen ? "deregistered: the app's services changed"
                                              : "deregistered: the app is not ready");
        sc->reg_audited = 0;
        sc->reg_state = REG_NONE;
        sc->reg_id = 0;
        sc->reg_confirmed = 0;
        notify(sc);
        reconcile(sc);
        return;
    }
    notify(sc);
}

/* ---- probes (read the actor's state on its own thread) ------------------------------------- */

/* Writes o into the answer's body and frees it; 0, or -1 when it could not (the server
 * answers 500). */
static int dump(json_t *o, h1_body_t *b)
{
    int rc = o ? h1_body_json(b, o) : -1;
    json_decref(o);
    return rc;
}

static int livez(void *ud, const h1_req_t *req, h1_body_t *body)
{
    sidecar_t *sc = ud;
    char why[400];
    if (sc->app_reachable)
        snprintf(why, sizeof(why), "the sidecar runs and the app's port answers");
    else
        snprintf(why, sizeof(why), "the app's port does not answer: %s", sc->app_why);
    if (dump(json_pack("{s:b,s:s,s:s}", "alive", sc->app_reachable, "app", sc->cfg->app, "reason",
                       why),
             body) != 0)
        return 500;
    return sc->app_reachable ? 200 : 503;
}

static int readyz(void *ud, const h1_req_t *req, h1_body_t *body)
{
    sidecar_t *sc = ud;
    int ready = mesh_readiness_is_ready(&sc->rd) && sc->svcs_known && !sc->shutting_down;
    json_t *o;
    if (ready || !mesh_readiness_is_ready(&sc->rd) || sc->shutting_down) {
        o = mesh_readiness_to_json(&sc->rd); /* the readiness counter's own fields */
    } else {
        o = json_pack("{s:b,s:s}", "ready", 0, "reason",
                      sc->disco_error[0] ? sc->disco_error
                                         : "the app's services are not known yet");
    }
    json_t *svcs = json_array();
    for (size_t i = 0; svcs && sc->svcs_known && i < sc->n_svcs; i++)
        json_array_append_new(svcs, json_string(sc->svcs[i].name));
    if (o) {
        json_object_set_new(o, "app", json_string(sc->cfg->app));
        json_object_set_new(o, "registered", json_boolean(sc->reg_state == REG_ACTIVE));
        if (sc->a->reg_denied_now)
            json_object_set_new(o, "registry_error",
                                json_string("etcd refused the registration: permission denied "
                                            "(etcd RBAC, docs/etcd-rbac.md)"));
        json_object_set_new(o, "services", svcs ? svcs : json_array());
        if (sc->disco_error[0])
            json_object_set_new(o, "error", json_string(sc->disco_error));
    } else {
        json_decref(svcs);
    }
    if (dump(o, body) != 0)
        return 500;
    return ready ? 200 : 503;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static void on_shutdown(sidecar_t *sc)
{
    if (sc->shutting_down)
        return;
    sc->shutting_down = 1;
    if (mesh_readiness_shutdown(&sc->rd, mesh_now(sc->self)) & MESH_READINESS_BECAME_NOT_READY)
        audit_readiness(sc, 0, "the sidecar is shutting down");
    mesh_info(ACTOR, "shutting down: deregistering %s, serving for %lld ms more", sc->a->advertise,
              (long long)sc->cfg->drain_timeout_ms);
    reconcile(sc);
}

/* The sidecar cannot work without its actor: a failed start stops the node with exit 1. */
static int fail_start(sidecar_t *sc, const char *what)
{
    node_fail_t f = {.exit_code = 1};
    snprintf(f.why, sizeof(f.why), "%s", what);
    mesh_send(sc->self, sc->a->node, NODE_MSG_FAIL, &f, sizeof(f));
    return -1;
}

static int sc_start(mesh_actor_t *self, void *arg)
{
    sidecar_t *sc = mesh_state(self);
    sc->a = arg;
    sc->cfg = sc->a->cfg;
    sc->self = self;
    const mesh_config_t *cfg = sc->cfg;
    mesh_readiness_init(&sc->rd, (uint32_t)cfg->ready_failures);
    sc->app_reachable = 1;
    sc->check_status = sc->watch_status = -1;

    if (cfg->probe_listen && sc->a->exec) {
        char host[256];
        int port;
        h1_server_config_t pc = {.name = ACTOR};
        sc->probe = h1_server_new(mesh_exec_uv_loop(sc->a->exec, mesh_loop_index(self)), &pc);
        if (sc->probe && sc->a->probe_tls)
            h1_server_set_tls(sc->probe, sc->a->probe_tls, sc->a->probe_tls_timeout_ms);
        if (!sc->probe || h1_server_add(sc->probe, "/livez", livez, sc) != 0 ||
            h1_server_add(sc->probe, "/readyz", readyz, sc) != 0 ||
            mesh_addr_split(cfg->probe_listen, host, sizeof(host), &port) != 0 ||
            h1_server_listen(sc->probe, host[0] ? host : "0.0.0.0", port) != 0) {
            mesh_error(ACTOR, "cannot serve probes on %s", cfg->probe_listen);
            return fail_start(sc, "the probe server");
        }
        mesh_info(ACTOR, "probes /livez /readyz on %s:%d", host[0] ? host : "0.0.0.0",
                  h1_server_port(sc->probe));
    }

    sc->app = sc->a->rpc_new(self, deliver, sc, sc->a->rpc_arg);
    if (!sc->app) {
        mesh_error(ACTOR, "cannot create the gRPC client of the app %s", cfg->app);
        return fail_start(sc, "the app client");
    }

    if (cfg->descriptor_set) {
        mesh_desc_pool_t *pool = mesh_desc_pool_new();
        if (pool && mesh_desc_pool_load_set_file(pool, cfg->descriptor_set) >= 0 &&
            mesh_desc_pool_build(pool, NULL, 0) == 0) {
            apply_pool(sc, pool, "descriptor set");
        } else {
            snprintf(sc->disco_error, sizeof(sc->disco_error), "descriptor set %s: %s",
                     cfg->descriptor_set, pool ? mesh_desc_pool_error(pool) : "out of memory");
            mesh_error(ACTOR, "%s", sc->disco_error);
            if (pool)
                mesh_desc_pool_free(pool);
        }
    }
    if (!registry_of(sc))
        mesh_warn(ACTOR, "no --etcd: the app's services are not registered anywhere");
    else /* a restart: what an earlier start registered is not ours to keep any more */
        mesh_send(self, registry_of(sc), REG_MSG_RELEASE_OWNER, NULL, 0);
    mesh_send(self, sc->a->node, NODE_MSG_WATCH_SHUTDOWN, NULL, 0);
    mesh_rpc_connect(sc->app);
    uint64_t every = (uint64_t)cfg->health_interval_ms * 1000000ull;
    if (mesh_timer_start(self, 0, every, SC_MSG_HEALTH_TICK, NULL) != 0)
        return -1;
    mesh_info(ACTOR, "sidecar for the app %s: advertising %s, health every %lld ms", cfg->app,
              sc->a->advertise, (long long)cfg->health_interval_ms);
    return 0;
}

static int sc_message(mesh_actor_t *self, mesh_msg_t *m)
{
    sidecar_t *sc = mesh_state(self);
    switch (m->type) {
    case SC_MSG_RPC:
        if (m->ptr)
            on_rpc(sc, m->ptr);
        return 0;
    case SC_MSG_HEALTH_TICK:
        health_tick(sc);
        return 0;
    case SC_MSG_REFL_RETRY:
        if (m->corr == sc->refl_timer) {
            sc->refl_timer = 0;
            if (!sc->refl)
                start_reflection(sc);
        }
        return 0;
    case SC_MSG_REG_RETRY:
        if (m->corr == sc->reg_timer) {
            sc->reg_timer = 0;
            if (sc->reg_state == REG_ACTIVE && (sc->shutting_down || sc->reg_gen != sc->svcs_gen ||
                                                !mesh_readiness_is_registered(&sc->rd)))
                ask_deregister(sc);
            else
                reconcile(sc);
        }
        return 0;
    case REG_MSG_REGISTER_OK:
        on_register_ok(sc, m);
        return 0;
    case REG_MSG_EVENT:
        on_reg_event(sc, m);
        return 0;
    case NODE_MSG_SHUTDOWN:
        on_shutdown(sc);
        return 0;
    default:
        return 0;
    }
}

static void sc_stop(mesh_actor_t *self, int reason)
{
    sidecar_t *sc = mesh_state(self);
    if (!sc->a)
        return;
    mesh_reflect_free(sc->refl);
    sc->refl = NULL;
    mesh_rpc_free(sc->app); /* drops the calls without events */
    sc->app = NULL;
    if (sc->probe)
        h1_server_close(sc->probe, NULL, NULL);
    sc->probe = NULL;
    svcs_free(sc->svcs, sc->n_svcs);
    sc->svcs = NULL;
    reg_svcs_free(sc);
    if (sc->pool)
        mesh_desc_pool_free(sc->pool);
    sc->pool = NULL;
    /* A registration still held by the registry actor: its lease expires on its own (the
     * registry stops after us and does not deregister). */
}

const mesh_actor_ops_t sc_actor_ops = {
    .name = "sidecar",
    .state_size = sizeof(sidecar_t),
    .on_start = sc_start,
    .on_message = sc_message,
    .on_stop = sc_stop,
};

mesh_rpc_t *sc_rpc_grpc_factory(mesh_actor_t *self, mesh_rpc_deliver_fn deliver_fn,
                                void *deliver_ud, void *arg)
{
    mesh_exec_t *exec = arg;
    sidecar_t *sc = mesh_state(self);
    uv_loop_t *loop = mesh_exec_uv_loop(exec, mesh_loop_index(self));
    return loop ? mesh_rpc_grpc_new(loop, sc->cfg->app, (uint64_t)sc->cfg->connect_timeout_ms,
                                    deliver_fn, deliver_ud)
                : NULL;
}

void sc_metrics_write(void *ud, prom_t *p)
{
    const sc_args_t *a = ud;
    prom_family(p, "meshd_sidecar_registration_denied_total", PROM_COUNTER,
                "Times etcd refused this sidecar's registration with permission denied (etcd "
                "RBAC); one per streak of refusals.");
    prom_sample_u64(p, "meshd_sidecar_registration_denied_total", NULL, 0, a->reg_denied_total);
    prom_one(p, "meshd_sidecar_registration_denied", PROM_GAUGE,
             "1 while etcd refuses this sidecar's registration (permission denied).",
             (double)a->reg_denied_now);
}
