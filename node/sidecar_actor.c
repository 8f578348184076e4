/*
 * node/sidecar_actor.c: the sidecar's control actor (see node/sidecar_actor.h).
 *
 * Everything here runs on the control loop. The actor's runtime state only points to a heap
 * object (sidecar_t) that owns uv handles: it is freed once they are all closed, after the
 * actor stopped.
 *
 * Health: every interval, one check. While a Health/Watch stream is open and has reported a
 * status, that status is the check; otherwise a Health/Check call is made (with the health
 * timeout) and a Watch is (re)opened unless the app answered Watch with UNIMPLEMENTED. A
 * SERVING pushed by Watch while not ready counts at once (fast recovery). NOT_SERVING, a
 * failed or timed-out Check and a closed connection count as one failed check each.
 *
 * Registration: wanted while the readiness counter says registered, the services are known
 * and no shutdown began. A change of the service list (new reflection) deregisters and
 * registers again; a new registration waits until the previous one's delete finished, so a
 * late delete never removes fresh keys.
 */
#include "node/sidecar_actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/actor.h"
#include "common/addr.h"
#include "common/log.h"
#include "registry/etcd_client.h"
#include "registry/registration.h"
#include "grpc/descriptors.h"
#include "grpc/health_msg.h"
#include "transport/http1_server.h"
#include "node/readiness.h"
#include "grpc/reflection.h"
#include "transport/grpc_client.h"
#include "transport/grpc_status.h"

#define ACTOR "sidecar"

typedef struct svc_entry {
    char *name;
    char **methods;
    size_t n_methods;
} svc_entry_t;

typedef struct sidecar {
    mesh_node_t *node;
    const mesh_config_t *cfg;
    uv_loop_t *loop;
    char advertise[256];
    int handles; /* open uv handles + async frees pending */
    int stopped;

    mesh_grpc_client_t *app;
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
    mesh_grpc_call_t *refl_call;
    uv_timer_t refl_timer;
    uint64_t refl_backoff_ms;

    /* health */
    mesh_readiness_t rd;
    uv_timer_t health_timer;
    mesh_grpc_call_t *check_call;
    int check_status; /* decoded HealthCheckResponse status, -1 none */
    mesh_grpc_call_t *watch_call;
    int watch_status; /* last status the Watch pushed, -1 none */
    int watch_unsupported;
    int last_ready;

    /* registry */
    char *endpoints;
    etcd_client_t *etcd;
    reg_registration_t *reg;
    int reg_stopping;
    uint64_t reg_gen;

    h1_server_t *probe;
    int shutting_down;
} sidecar_t;

typedef struct sidecar_actor_state {
    sidecar_t *sc;
} sidecar_actor_state_t;

static void reconcile(sidecar_t *sc);
static void start_reflection(sidecar_t *sc);

/* ---- small helpers ------------------------------------------------------------------------- */

/* Appends s as a JSON string (quoted, escaped) at buf+*len. */
static void json_str(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
    if (n + 2 >= cap)
        return;
    buf[n++] = '"';
    for (; *s && n + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", ch);
        } else {
            buf[n++] = (char)ch;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
    *len = n;
}

static void json_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    int n = snprintf(buf + *len, cap - *len, "%s", s);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
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
    sc->pool = pool; /* kept for the HTTP/JSON transcoder */
    reconcile(sc);
}

/* ---- reflection ----------------------------------------------------------------------------- */

static void refl_drive(sidecar_t *sc);

static void refl_on_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    sidecar_t *sc = ud;
    if (!sc->refl || call != sc->refl_call)
        return;
    mesh_reflect_on_response(sc->refl, msg, len);
    refl_drive(sc);
}

static void refl_on_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    sidecar_t *sc = ud;
    if (call != sc->refl_call)
        return;
    sc->refl_call = NULL;
    if (!sc->refl)
        return;
    mesh_reflect_on_stream_end(sc->refl, status, message);
    refl_drive(sc);
}

static const mesh_grpc_call_ops_t refl_ops = {refl_on_message, refl_on_end};

static void on_refl_retry(uv_timer_t *t)
{
    sidecar_t *sc = t->data;
    if (!sc->refl)
        start_reflection(sc);
}

static void refl_close_call(sidecar_t *sc)
{
    if (sc->refl_call) {
        mesh_grpc_call_t *c = sc->refl_call;
        sc->refl_call = NULL;
        mesh_grpc_call_cancel(c);
    }
}

static void refl_drive(sidecar_t *sc)
{
    while (sc->refl) {
        mesh_reflect_out_t out;
        switch (mesh_reflect_next(sc->refl, &out)) {
        case MESH_REFLECT_OPEN:
            refl_close_call(sc);
            mesh_debug(ACTOR, "reflection: opening %s", out.path);
            sc->refl_call = mesh_grpc_call_start(sc->app, out.path, NULL, 0, 30000, &refl_ops, sc);
            if (!sc->refl_call) {
                snprintf(sc->disco_error, sizeof(sc->disco_error),
                         "reflection: cannot start a call to the app");
                goto failed_nomsg;
            }
            break;
        case MESH_REFLECT_SEND:
            if (!sc->refl_call || mesh_grpc_call_send(sc->refl_call, out.data, out.len) != 0) {
                snprintf(sc->disco_error, sizeof(sc->disco_error),
                         "reflection: cannot send to the app");
                goto failed_nomsg;
            }
            break;
        case MESH_REFLECT_WAIT:
            return;
        case MESH_REFLECT_DONE: {
            refl_close_call(sc);
            mesh_desc_pool_t *pool = mesh_reflect_take_pool(sc->refl);
            char how[160];
            snprintf(how, sizeof(how), "reflection (%s)",
                     strstr(mesh_reflect_path(sc->refl), "v1alpha") ? "v1alpha" : "v1");
            if (mesh_reflect_warning_count(sc->refl))
                mesh_warn(ACTOR, "reflection: %zu problem(s), last: %s",
                          mesh_reflect_warning_count(sc->refl),
                          mesh_reflect_last_warning(sc->refl));
            mesh_reflect_free(sc->refl);
            sc->refl = NULL;
            sc->refl_backoff_ms = 0;
            if (pool)
                apply_pool(sc, pool, how);
            return;
        }
        case MESH_REFLECT_FAILED:
            snprintf(sc->disco_error, sizeof(sc->disco_error), "reflection failed: %s",
                     mesh_reflect_error(sc->refl));
            goto failed_nomsg;
        }
    }
    return;
failed_nomsg:
    refl_close_call(sc);
    if (sc->refl) {
        mesh_reflect_free(sc->refl);
        sc->refl = NULL;
    }
    sc->refl_backoff_ms = sc->refl_backoff_ms ? sc->refl_backoff_ms * 2 : 1000;
    if (sc->refl_backoff_ms > 30000)
        sc->refl_backoff_ms = 30000;
    mesh_error(ACTOR, "cannot learn the app's services: %s (retry in %llu ms)", sc->disco_error,
               (unsigned long long)sc->refl_backoff_ms);
    if (!sc->stopped)
        uv_timer_start(&sc->refl_timer, on_refl_retry, sc->refl_backoff_ms, 0);
}

static void start_reflection(sidecar_t *sc)
{
    if (sc->cfg->descriptor_set || sc->stopped || sc->shutting_down)
        return;
    uv_timer_stop(&sc->refl_timer);
    refl_close_call(sc);
    if (sc->refl)
        mesh_reflect_free(sc->refl);
    sc->refl = mesh_reflect_new(NULL);
    if (!sc->refl)
        return;
    mesh_info(ACTOR, "asking the app %s for its services (server reflection)", sc->cfg->app);
    refl_drive(sc);
}

/* ---- health -----------------------------------------------------------------------------------
 */

static void feed(sidecar_t *sc, mesh_check_result_t res, const char *detail)
{
    if (sc->shutting_down)
        return;
    int fx = mesh_readiness_on_check(&sc->rd, res, detail, uv_now(sc->loop) * 1000000ull);
    if (fx & MESH_READINESS_BECAME_READY)
        mesh_info(ACTOR, "app %s is ready (health: SERVING)", sc->cfg->app);
    if (fx & MESH_READINESS_BECAME_NOT_READY)
        mesh_warn(ACTOR, "app %s is not ready: %s", sc->cfg->app, mesh_readiness_reason(&sc->rd));
    else if (res != MESH_CHECK_SERVING)
        mesh_info(ACTOR, "health check of %s failed: %s%s%s", sc->cfg->app,
                  mesh_check_result_name(res), detail && *detail ? ": " : "", detail ? detail : "");
    if (fx)
        reconcile(sc);
}

/* A failed call's status as a readiness input. */
static mesh_check_result_t classify_call(int status, const char *message)
{
    if (status == MESH_GRPC_DEADLINE_EXCEEDED)
        return MESH_CHECK_TIMEOUT;
    if (status == MESH_GRPC_UNAVAILABLE && message &&
        (strstr(message, "connect") || strstr(message, "connection") || strstr(message, "GOAWAY")))
        return MESH_CHECK_CONN_CLOSED;
    return MESH_CHECK_FAILED;
}

static void check_on_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    sidecar_t *sc = ud;
    mesh_health_status_t st;
    if (mesh_health_decode_response(msg, len, &st) == 0)
        sc->check_status = (int)st;
    else
        sc->check_status = -2;
}

static void check_on_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    sidecar_t *sc = ud;
    sc->check_call = NULL;
    char detail[300];
    if (status == MESH_GRPC_OK && sc->check_status >= 0) {
        mesh_health_status_t st = (mesh_health_status_t)sc->check_status;
        snprintf(detail, sizeof(detail), "Health/Check answered %s", mesh_health_status_name(st));
        feed(sc, (st == MESH_HEALTH_SERVING ? MESH_CHECK_SERVING : MESH_CHECK_NOT_SERVING), detail);
        return;
    }
    if (status == MESH_GRPC_OK) {
        snprintf(detail, sizeof(detail), "Health/Check answered no valid HealthCheckResponse");
        feed(sc, MESH_CHECK_FAILED, detail);
        return;
    }
    snprintf(detail, sizeof(detail), "Health/Check: %s%s%s", mesh_grpc_status_name(status),
             message[0] ? ": " : "", message);
    feed(sc, classify_call(status, message), detail);
}

static const mesh_grpc_call_ops_t check_ops = {check_on_message, check_on_end};

static void watch_on_message(void *ud, mesh_grpc_call_t *call, const uint8_t *msg, size_t len)
{
    sidecar_t *sc = ud;
    mesh_health_status_t st;
    if (mesh_health_decode_response(msg, len, &st) != 0)
        return;
    int was = sc->watch_status;
    sc->watch_status = (int)st;
    if (was != (int)st)
        mesh_info(ACTOR, "app %s health (Watch): %s", sc->cfg->app, mesh_health_status_name(st));
    if (st == MESH_HEALTH_SERVING && !mesh_readiness_is_ready(&sc->rd))
        feed(sc, MESH_CHECK_SERVING, "Health/Watch pushed SERVING");
}

static void watch_on_end(void *ud, mesh_grpc_call_t *call, int status, const char *message)
{
    sidecar_t *sc = ud;
    sc->watch_call = NULL;
    sc->watch_status = -1;
    if (status == MESH_GRPC_UNIMPLEMENTED) {
        sc->watch_unsupported = 1;
        mesh_info(ACTOR, "app %s does not implement Health/Watch: using periodic Check",
                  sc->cfg->app);
    }
}

static const mesh_grpc_call_ops_t watch_ops = {watch_on_message, watch_on_end};

static void on_health_tick(uv_timer_t *t)
{
    sidecar_t *sc = t->data;
    if (sc->shutting_down || sc->stopped)
        return;
    if (sc->watch_call && sc->watch_status >= 0) {
        mesh_health_status_t st = (mesh_health_status_t)sc->watch_status;
        char detail[128];
        snprintf(detail, sizeof(detail), "Health/Watch says %s", mesh_health_status_name(st));
        feed(sc, (st == MESH_HEALTH_SERVING ? MESH_CHECK_SERVING : MESH_CHECK_NOT_SERVING), detail);
        return;
    }
    if (!sc->watch_call && !sc->watch_unsupported) {
        uint8_t req[8];
        int n = mesh_health_encode_request("", req, sizeof(req));
        sc->watch_status = -1;
        sc->watch_call =
            mesh_grpc_call_start(sc->app, MESH_HEALTH_WATCH_PATH, NULL, 0, 0, &watch_ops, sc);
        if (sc->watch_call) {
            mesh_grpc_call_send(sc->watch_call, req, (size_t)(n > 0 ? n : 0));
            mesh_grpc_call_close_send(sc->watch_call);
        }
    }
    if (!sc->check_call) {
        uint8_t req[8];
        int n = mesh_health_encode_request("", req, sizeof(req));
        sc->check_status = -1;
        sc->check_call =
            mesh_grpc_unary(sc->app, MESH_HEALTH_CHECK_PATH, req, (size_t)(n > 0 ? n : 0),
                            (uint64_t)sc->cfg->health_timeout_ms, &check_ops, sc);
    }
}

/* ---- the app connection ------------------------------------------------------------------------
 */

static void on_app_event(void *ud, mesh_grpc_client_event_t ev, const char *why)
{
    sidecar_t *sc = ud;
    if (ev == MESH_GRPC_CLIENT_CONNECTED) {
        if (!sc->app_reachable || sc->app_why[0])
            mesh_info(ACTOR, "connected to the app %s", sc->cfg->app);
        sc->app_reachable = 1;
        sc->app_why[0] = '\0';
        start_reflection(sc); /* again on every new connection */
        return;
    }
    /* A refused/failed connect means the port does not answer; a closed connection (or one
     * that is not HTTP/2) still answered. */
    int answers = !(strstr(why, "cannot connect") || strstr(why, "cannot resolve"));
    if (sc->app_reachable && !answers)
        mesh_warn(ACTOR, "the app %s does not answer: %s", sc->cfg->app, why);
    else if (!sc->app_why[0] || strcmp(sc->app_why, why) != 0)
        mesh_info(ACTOR, "connection to the app: %s", why);
    sc->app_reachable = answers;
    snprintf(sc->app_why, sizeof(sc->app_why), "%s", why);
}

/* ---- registration ---------------------------------------------------------------------------- */

static void on_reg_event(void *ud, reg_registration_event_t ev, int64_t lease)
{
    sidecar_t *sc = ud;
    if (ev != REG_DEREGISTERED)
        return;
    reg_registration_free(sc->reg);
    sc->reg = NULL;
    sc->reg_stopping = 0;
    reconcile(sc);
}

static void reconcile(sidecar_t *sc)
{
    if (!sc->etcd || sc->stopped || sc->reg_stopping)
        return;
    int want = !sc->shutting_down && mesh_readiness_is_registered(&sc->rd) && sc->svcs_known &&
               sc->n_svcs > 0;
    if (sc->reg && (!want || sc->reg_gen != sc->svcs_gen)) {
        mesh_info(ACTOR, "deregistering %s (%s)", sc->advertise,
                  !want ? (sc->shutting_down ? "shutting down" : "app not ready")
                        : "the app's services changed");
        sc->reg_stopping = 1;
        reg_registration_stop(sc->reg);
        return;
    }
    if (sc->reg || !want)
        return;
    reg_service_t *rs = calloc(sc->n_svcs, sizeof(*rs));
    if (!rs)
        return;
    for (size_t i = 0; i < sc->n_svcs; i++)
        rs[i] = (reg_service_t){sc->svcs[i].name, (const char *const *)sc->svcs[i].methods,
                                sc->svcs[i].n_methods};
    reg_registration_cfg_t rc = {
        .client = sc->etcd,
        .prefix = sc->cfg->etcd_prefix,
        .addr = sc->advertise,
        .node = sc->cfg->node,
        .zone = sc->cfg->zone,
        .version = sc->cfg->version,
        .weight = (uint32_t)sc->cfg->weight,
        .labels = (const char *const *)sc->cfg->labels.items,
        .n_labels = sc->cfg->labels.n,
        .ttl_s = (sc->cfg->lease_ttl_ms + 999) / 1000,
        .services = rs,
        .n_services = sc->n_svcs,
    };
    sc->reg = reg_registration_new(sc->loop, &rc, on_reg_event, sc);
    free(rs);
    if (!sc->reg) {
        mesh_error(ACTOR, "cannot build the registration of %s", sc->advertise);
        return;
    }
    sc->reg_gen = sc->svcs_gen;
    mesh_info(ACTOR, "registering %s: %zu service(s)", sc->advertise, sc->n_svcs);
    reg_registration_start(sc->reg);
}

/* ---- probes ---------------------------------------------------------------------------------- */

static int livez(void *ud, char *body, size_t cap, size_t *len)
{
    sidecar_t *sc = ud;
    size_t n = 0;
    body[0] = '\0';
    json_raw(body, cap, &n,
             sc->app_reachable ? "{\"alive\":true,\"app\":" : "{\"alive\":false,\"app\":");
    json_str(body, cap, &n, sc->cfg->app);
    json_raw(body, cap, &n, ",\"reason\":");
    char why[400];
    if (sc->app_reachable)
        snprintf(why, sizeof(why), "the sidecar runs and the app's port answers");
    else
        snprintf(why, sizeof(why), "the app's port does not answer: %s", sc->app_why);
    json_str(body, cap, &n, why);
    json_raw(body, cap, &n, "}");
    *len = n;
    return sc->app_reachable ? 200 : 503;
}

static int readyz(void *ud, char *body, size_t cap, size_t *len)
{
    sidecar_t *sc = ud;
    size_t n = 0;
    body[0] = '\0';
    int ready = mesh_readiness_is_ready(&sc->rd) && sc->svcs_known && !sc->shutting_down;
    char rj[1024];
    if (mesh_readiness_json(&sc->rd, rj, sizeof(rj)) < 0)
        snprintf(rj, sizeof(rj), "{}");
    if (ready || !mesh_readiness_is_ready(&sc->rd) || sc->shutting_down) {
        /* The readiness counter's own body, plus what the sidecar knows. */
        size_t l = strlen(rj);
        if (l && rj[l - 1] == '}')
            rj[l - 1] = '\0';
        json_raw(body, cap, &n, rj);
        json_raw(body, cap, &n, ",");
    } else {
        json_raw(body, cap, &n, "{\"ready\":false,\"reason\":");
        json_str(body, cap, &n,
                 sc->disco_error[0] ? sc->disco_error : "the app's services are not known yet");
        json_raw(body, cap, &n, ",");
    }
    json_raw(body, cap, &n, "\"app\":");
    json_str(body, cap, &n, sc->cfg->app);
    json_raw(body, cap, &n, ",\"registered\":");
    json_raw(body, cap, &n, sc->reg && !sc->reg_stopping ? "true" : "false");
    json_raw(body, cap, &n, ",\"services\":[");
    for (size_t i = 0; sc->svcs_known && i < sc->n_svcs; i++) {
        if (i)
            json_raw(body, cap, &n, ",");
        json_str(body, cap, &n, sc->svcs[i].name);
    }
    json_raw(body, cap, &n, "]");
    if (sc->disco_error[0]) {
        json_raw(body, cap, &n, ",\"error\":");
        json_str(body, cap, &n, sc->disco_error);
    }
    json_raw(body, cap, &n, "}");
    *len = n;
    return ready ? 200 : 503;
}

/* ---- life cycle --------------------------------------------------------------------------------
 */

/* Node signal hook: deregister first; the node keeps serving for the drain period. */
static void on_signal(void *arg)
{
    sidecar_t *sc = arg;
    if (sc->shutting_down || sc->stopped)
        return;
    sc->shutting_down = 1;
    mesh_readiness_shutdown(&sc->rd, uv_now(sc->loop) * 1000000ull);
    mesh_info(ACTOR, "shutting down: deregistering %s, serving for %lld ms more", sc->advertise,
              (long long)sc->cfg->drain_timeout_ms);
    uv_timer_stop(&sc->health_timer);
    reconcile(sc);
}

static void sc_maybe_free(sidecar_t *sc)
{
    if (--sc->handles > 0)
        return;
    svcs_free(sc->svcs, sc->n_svcs);
    if (sc->pool)
        mesh_desc_pool_free(sc->pool);
    free(sc->endpoints);
    free(sc);
}

static void on_handle_closed(uv_handle_t *h)
{
    sc_maybe_free(h->data);
}

static void on_probe_closed(void *ud)
{
    sc_maybe_free(ud);
}

/* The sidecar cannot work without its actor: a failed start stops the node with exit 1
 * (on_stop then releases what was set up). */
static int fail_start(sidecar_t *sc)
{
    mesh_node_fail(sc->node, 1);
    return -1;
}

static int sidecar_start(mesh_actor_t *self, void *arg)
{
    sidecar_t *sc = arg;
    sidecar_actor_state_t *st = mesh_state(self);
    st->sc = sc;
    const mesh_config_t *cfg = sc->cfg;
    sc->loop = mesh_exec_uv_loop(mesh_node_exec(sc->node), mesh_loop_index(self));
    uv_timer_init(sc->loop, &sc->refl_timer);
    uv_timer_init(sc->loop, &sc->health_timer);
    sc->refl_timer.data = sc->health_timer.data = sc;
    sc->handles = 2;
    mesh_readiness_init(&sc->rd, (uint32_t)cfg->ready_failures);
    sc->app_reachable = 1;
    sc->check_status = sc->watch_status = -1;

    if (cfg->probe_listen) {
        char host[256];
        int port;
        h1_server_config_t pc = {.livez = livez, .readyz = readyz, .ud = sc};
        sc->probe = h1_server_new(sc->loop, &pc);
        if (sc->probe)
            sc->handles++; /* its close callback releases one handle, listening or not */
        if (!sc->probe || mesh_addr_split(cfg->probe_listen, host, sizeof(host), &port) != 0 ||
            h1_server_listen(sc->probe, host[0] ? host : "0.0.0.0", port) != 0) {
            mesh_error(ACTOR, "cannot serve probes on %s", cfg->probe_listen);
            return fail_start(sc);
        }
        mesh_info(ACTOR, "probes /livez /readyz on %s:%d", host[0] ? host : "0.0.0.0",
                  h1_server_port(sc->probe));
    }

    mesh_grpc_client_cfg_t gc = {.addr = cfg->app,
                                 .connect_timeout_ms = (uint64_t)cfg->connect_timeout_ms,
                                 .on_event = on_app_event,
                                 .ud = sc};
    sc->app = mesh_grpc_client_new(sc->loop, &gc);
    if (!sc->app) {
        mesh_error(ACTOR, "cannot create the gRPC client of the app %s", cfg->app);
        return fail_start(sc);
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

    if (cfg->etcd.n > 0) {
        size_t len = 1;
        for (size_t i = 0; i < cfg->etcd.n; i++)
            len += strlen(cfg->etcd.items[i]) + 1;
        sc->endpoints = calloc(1, len);
        for (size_t i = 0; sc->endpoints && i < cfg->etcd.n; i++) {
            if (i)
                strcat(sc->endpoints, ",");
            strcat(sc->endpoints, cfg->etcd.items[i]);
        }
        etcd_client_cfg_t ec = {
            .endpoints = sc->endpoints,
            .username = cfg->etcd_username,
            .password = cfg->etcd_password,
            .ca_file = cfg->etcd_ca,
            .cert_file = cfg->etcd_cert,
            .key_file = cfg->etcd_key,
        };
        sc->etcd = sc->endpoints ? etcd_client_new(sc->loop, &ec) : NULL;
        if (!sc->etcd) {
            mesh_error(ACTOR, "cannot create the etcd client for %s", sc->endpoints);
            return fail_start(sc);
        }
    } else {
        mesh_warn(ACTOR, "no --etcd: the app's services are not registered anywhere");
    }
    mesh_node_on_signal(sc->node, on_signal, sc);
    mesh_grpc_client_connect(sc->app);
    uv_timer_start(&sc->health_timer, on_health_tick, 0, (uint64_t)cfg->health_interval_ms);
    mesh_info(ACTOR, "sidecar for the app %s: advertising %s, health every %lld ms", cfg->app,
              sc->advertise, (long long)cfg->health_interval_ms);
    return 0;
}

static int sidecar_message(mesh_actor_t *self, mesh_msg_t *msg)
{
    return 0;
}

static void sidecar_stop(mesh_actor_t *self, int reason)
{
    sidecar_actor_state_t *st = mesh_state(self);
    sidecar_t *sc = st->sc;
    if (!sc || sc->stopped)
        return;
    sc->stopped = 1;
    st->sc = NULL;
    if (sc->refl) {
        mesh_reflect_free(sc->refl);
        sc->refl = NULL;
    }
    mesh_grpc_client_free(sc->app); /* drops the calls without callbacks */
    sc->app = NULL;
    if (sc->reg)
        reg_registration_free(sc->reg); /* a delete still in flight: the lease expires */
    sc->reg = NULL;
    if (sc->etcd)
        etcd_client_free(sc->etcd);
    sc->etcd = NULL;
    if (sc->probe)
        h1_server_close(sc->probe, on_probe_closed, sc);
    sc->probe = NULL;
    uv_close((uv_handle_t *)&sc->refl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&sc->health_timer, on_handle_closed);
}

static const mesh_actor_ops_t sidecar_ops = {
    .name = "sidecar",
    .state_size = sizeof(sidecar_actor_state_t),
    .on_start = sidecar_start,
    .on_message = sidecar_message,
    .on_stop = sidecar_stop,
};

int mesh_sidecar_actor_start(mesh_node_t *node, const mesh_config_t *cfg, const char *advertise)
{
    sidecar_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return -1;
    sc->node = node;
    sc->cfg = cfg;
    snprintf(sc->advertise, sizeof(sc->advertise), "%s", advertise);
    mesh_spawn_opts_t so = {.loop = MESH_LOOP_CONTROL};
    if (mesh_exec_spawn(mesh_node_exec(node), &sidecar_ops, sc, &so, NULL) != 0) {
        mesh_error(ACTOR, "cannot spawn the sidecar actor");
        free(sc);
        return -1;
    }
    return 0;
}
