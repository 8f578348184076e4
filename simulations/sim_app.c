/*
 * simulations/sim_app.c: the simulated gRPC app (see sim_app.h).
 *
 * The sidecar's operations travel to the app as packets over one simulated connection (FIFO,
 * with latency) and the app's answers come back the same way; the app's state (up, hung,
 * serving, version) is read when a packet arrives, as a real process would. Reflection answers
 * are built with the protobuf-c code of grpc/reflection (the v1 and v1alpha messages share
 * their wire format) and a FileDescriptorProto made here for the app's services.
 */
#include "simulations/sim_app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/health_msg.h"
#include "grpc/reflection.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "transport/grpc_status.h"

enum { K_CHECK, K_WATCH, K_REFL, K_OTHER };
enum { P_START, P_SEND, P_CLOSE, P_CANCEL, P_CONNECT };

typedef struct call {
    struct call *next;
    uint64_t tag;
    uint32_t gen;
    int kind;
    int open;
} call_t;

typedef struct app_rpc {
    mesh_rpc_t super;
    sim_app_t *app;
} app_rpc_t;

/* A packet: an operation on its way to the app, or an event on its way to the sidecar. */
typedef struct pkt {
    struct pkt *prev, *next;
    sim_app_t *app;
    uint32_t gen;
    int op; /* P_* (to the app) */
    uint64_t tag;
    char *path;
    uint64_t timeout_ms;
    uint8_t *data;
    size_t len;
    mesh_rpc_event_t *ev; /* to the sidecar */
} pkt_t;

struct sim_app {
    mesh_exec_t *sim;
    sim_app_cfg_t cfg;
    char pkg[64];
    char svc_names[2][96];
    const char *svcs[2];
    int serving, up, hung, version, running_version;
    int connected;
    uint32_t gen;
    app_rpc_t *rpc;
    call_t *calls;
    pkt_t *in_flight;
    pkt_t **backlog; /* operations that arrived while hung, served once it answers again */
    size_t n_backlog, cap_backlog;
    uint64_t up_last_at, down_last_at; /* FIFO of the connection, each way */
};

/* ---- helpers -------------------------------------------------------------------------------- */

static void fold(sim_app_t *a, uint64_t v)
{
    if (a->cfg.fold)
        a->cfg.fold(a->cfg.ud, v);
}

static uint64_t later(sim_app_t *a, uint64_t *last)
{
    uint64_t j = a->cfg.latency_jitter_ns;
    uint64_t at =
        mesh_sim_now(a->sim) + a->cfg.latency_min_ns + (j ? mesh_sim_random(a->sim) % (j + 1) : 0);
    if (at < *last)
        at = *last;
    *last = at;
    return at;
}

static pkt_t *pkt_new(sim_app_t *a)
{
    pkt_t *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    k->app = a;
    k->gen = a->gen;
    k->next = a->in_flight;
    if (k->next)
        k->next->prev = k;
    a->in_flight = k;
    return k;
}

static void pkt_free(pkt_t *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        k->app->in_flight = k->next;
    if (k->next)
        k->next->prev = k->prev;
    free(k->path);
    free(k->data);
    mesh_rpc_event_free(k->ev);
    free(k);
}

static call_t *find_call(sim_app_t *a, uint64_t tag, uint32_t gen)
{
    for (call_t *c = a->calls; c; c = c->next)
        if (c->tag == tag && c->gen == gen)
            return c;
    return NULL;
}

static void drop_call(sim_app_t *a, uint64_t tag, uint32_t gen);

/* ---- events to the sidecar ------------------------------------------------------------------ */

static void at_sidecar(void *arg)
{
    pkt_t *k = arg;
    sim_app_t *a = k->app;
    if (k->gen != a->gen || !a->rpc) {
        pkt_free(k); /* for an actor that is gone */
        return;
    }
    if (k->ev->kind == MESH_RPC_MESSAGE || k->ev->kind == MESH_RPC_END) {
        call_t *c = find_call(a, k->tag, k->gen);
        if (!c) { /* cancelled by the sidecar meanwhile */
            pkt_free(k);
            return;
        }
    }
    mesh_rpc_event_t *ev = k->ev;
    k->ev = NULL;
    fold(a, (uint64_t)ev->kind << 56 ^ ev->tag ^ (uint64_t)ev->status << 40);
    if (ev->kind == MESH_RPC_END)
        drop_call(a, k->tag, k->gen); /* the sidecar forgets a call once it ended */
    pkt_free(k);
    a->rpc->super.deliver(a->rpc->super.ud, ev);
}

static void emit(sim_app_t *a, uint32_t gen, mesh_rpc_event_kind_t kind, uint64_t tag, int status,
                 mesh_grpc_conn_reason_t reason, const char *text, const uint8_t *data, size_t len)
{
    pkt_t *k = pkt_new(a);
    k->gen = gen;
    k->tag = tag;
    k->ev = mesh_rpc_event_new(kind, tag, text, data, len);
    if (!k->ev)
        abort();
    k->ev->status = status;
    k->ev->reason = reason;
    if (mesh_sim_call_at(a->sim, later(a, &a->down_last_at), at_sidecar, k) < 0)
        abort();
}

/* Ends a call: its END leaves now; the call is forgotten once the END is delivered or not. */
static void end_call(sim_app_t *a, call_t *c, int status, mesh_grpc_conn_reason_t reason,
                     const char *text)
{
    if (!c->open)
        return;
    c->open = 0;
    emit(a, c->gen, MESH_RPC_END, c->tag, status, reason, text, NULL, 0);
}

static void health_message(sim_app_t *a, call_t *c)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = a->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                          : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    uint8_t buf[16];
    size_t n = grpc__health__v1__health_check_response__pack(&r, buf);
    emit(a, c->gen, MESH_RPC_MESSAGE, c->tag, 0, MESH_GRPC_CONN_OK, NULL, buf, n);
}

/* ---- reflection ----------------------------------------------------------------------------- */

/* The app's one proto file: messages Req and Resp, service Echo (and Admin from v2). */
static uint8_t *descriptor_file(sim_app_t *a, size_t *len)
{
    char req[128], resp[128], file[128];
    snprintf(req, sizeof(req), ".%s.Req", a->pkg);
    snprintf(resp, sizeof(resp), ".%s.Resp", a->pkg);
    snprintf(file, sizeof(file), "sim/%s.proto", a->pkg);
    Google__Protobuf__DescriptorProto m[2] = {GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT,
                                              GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT};
    m[0].name = "Req";
    m[1].name = "Resp";
    Google__Protobuf__DescriptorProto *mp[2] = {&m[0], &m[1]};
    Google__Protobuf__MethodDescriptorProto md[3] = {
        GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT,
        GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT,
        GOOGLE__PROTOBUF__METHOD_DESCRIPTOR_PROTO__INIT};
    const char *names[3] = {"Call", "Stream", "Reset"};
    Google__Protobuf__MethodDescriptorProto *mdp[3];
    for (int i = 0; i < 3; i++) {
        md[i].name = (char *)names[i];
        md[i].input_type = req;
        md[i].output_type = resp;
        mdp[i] = &md[i];
    }
    md[1].has_server_streaming = 1;
    md[1].server_streaming = 1;
    Google__Protobuf__ServiceDescriptorProto sv[2] = {
        GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT,
        GOOGLE__PROTOBUF__SERVICE_DESCRIPTOR_PROTO__INIT};
    sv[0].name = "Echo";
    sv[0].method = mdp;
    sv[0].n_method = 2;
    sv[1].name = "Admin";
    sv[1].method = mdp + 2;
    sv[1].n_method = 1;
    Google__Protobuf__ServiceDescriptorProto *svp[2] = {&sv[0], &sv[1]};
    Google__Protobuf__FileDescriptorProto f = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    f.name = file;
    f.package = a->pkg;
    f.syntax = "proto3";
    f.message_type = mp;
    f.n_message_type = 2;
    f.service = svp;
    f.n_service = a->running_version >= 2 ? 2 : 1;
    *len = google__protobuf__file_descriptor_proto__get_packed_size(&f);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b)
        abort();
    google__protobuf__file_descriptor_proto__pack(&f, b);
    return b;
}

static int serves(sim_app_t *a, const char *name)
{
    size_t n;
    const char *const *s = sim_app_services(a, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i], name) == 0)
            return 1;
    return 0;
}

static void reflection_answer(sim_app_t *a, call_t *c, const uint8_t *data, size_t len)
{
    Grpc__Reflection__V1__ServerReflectionRequest *req =
        grpc__reflection__v1__server_reflection_request__unpack(NULL, len, data);
    if (!req) {
        end_call(a, c, MESH_GRPC_INTERNAL, MESH_GRPC_CONN_OK, "bad reflection request");
        return;
    }
    Grpc__Reflection__V1__ServerReflectionResponse resp =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    Grpc__Reflection__V1__ListServiceResponse list =
        GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
    Grpc__Reflection__V1__ServiceResponse sr[4];
    Grpc__Reflection__V1__ServiceResponse *srp[4];
    Grpc__Reflection__V1__FileDescriptorResponse fr =
        GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
    Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
    ProtobufCBinaryData file = {0};
    char fname[128];
    snprintf(fname, sizeof(fname), "sim/%s.proto", a->pkg);
    int found = 0;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
        size_t n;
        const char *const *s = sim_app_services(a, &n);
        const char *infra[2] = {"grpc.health.v1.Health",
                                a->cfg.v1alpha_only ? "grpc.reflection.v1alpha.ServerReflection"
                                                    : "grpc.reflection.v1.ServerReflection"};
        size_t k = 0;
        for (size_t i = 0; i < n + 2 && k < 4; i++) {
            Grpc__Reflection__V1__ServiceResponse init =
                GRPC__REFLECTION__V1__SERVICE_RESPONSE__INIT;
            sr[k] = init;
            sr[k].name = (char *)(i < n ? s[i] : infra[i - n]);
            srp[k] = &sr[k];
            k++;
        }
        list.service = srp;
        list.n_service = k;
        resp.message_response_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
        resp.list_services_response = &list;
        break;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        found = serves(a, req->file_containing_symbol);
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        found = strcmp(req->file_by_filename, fname) == 0;
        break;
    default:
        break;
    }
    if (req->message_request_case !=
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES) {
        if (found) {
            file.data = descriptor_file(a, &file.len);
            fr.file_descriptor_proto = &file;
            fr.n_file_descriptor_proto = 1;
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
            resp.file_descriptor_response = &fr;
        } else {
            er.error_code = 5; /* NOT_FOUND */
            er.error_message = "not found";
            resp.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
            resp.error_response = &er;
        }
    }
    size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(&resp);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        abort();
    grpc__reflection__v1__server_reflection_response__pack(&resp, b);
    emit(a, c->gen, MESH_RPC_MESSAGE, c->tag, 0, MESH_GRPC_CONN_OK, NULL, b, n);
    free(b);
    free(file.data);
    grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
}

/* ---- operations arriving at the app --------------------------------------------------------- */

static void deadline_hit(void *arg)
{
    pkt_t *k = arg;
    sim_app_t *a = k->app;
    call_t *c = find_call(a, k->tag, k->gen);
    if (c && c->open && k->gen == a->gen)
        end_call(a, c, MESH_GRPC_DEADLINE_EXCEEDED, MESH_GRPC_CONN_OK, "deadline exceeded");
    pkt_free(k);
}

/* The app accepts a connection now, or refuses it. 1 when connected. */
static int accept_conn(sim_app_t *a, uint32_t gen)
{
    if (!a->up) {
        if (a->connected) {
            a->connected = 0;
            emit(a, gen, MESH_RPC_CONN_DOWN, 0, 0, MESH_GRPC_CONN_LOST, "connection lost", NULL, 0);
        }
        emit(a, gen, MESH_RPC_CONN_DOWN, 0, 0, MESH_GRPC_CONN_REFUSED,
             "cannot connect: connection refused", NULL, 0);
        return 0;
    }
    if (!a->connected) {
        a->connected = 1;
        emit(a, gen, MESH_RPC_CONN_UP, 0, 0, MESH_GRPC_CONN_OK, NULL, NULL, 0);
    }
    return 1;
}

static void serve(pkt_t *k);

static void at_app(void *arg)
{
    pkt_t *k = arg;
    sim_app_t *a = k->app;
    if (a->hung && a->up && k->op != P_CONNECT) {
        /* A hung process does not read: the operation waits in its socket. */
        if (a->n_backlog == a->cap_backlog) {
            a->cap_backlog = a->cap_backlog ? a->cap_backlog * 2 : 16;
            a->backlog = realloc(a->backlog, a->cap_backlog * sizeof(*a->backlog));
            if (!a->backlog)
                abort();
        }
        a->backlog[a->n_backlog++] = k;
        return;
    }
    serve(k);
}

static void serve(pkt_t *k)
{
    sim_app_t *a = k->app;
    call_t *c = find_call(a, k->tag, k->gen);
    switch (k->op) {
    case P_CONNECT:
        accept_conn(a, k->gen);
        break;
    case P_START:
        if (!c)
            break;
        if (!accept_conn(a, k->gen)) {
            end_call(a, c, MESH_GRPC_UNAVAILABLE, MESH_GRPC_CONN_REFUSED,
                     "cannot connect: connection refused");
            break;
        }
        if (k->timeout_ms && !a->cfg.client_deadline) {
            pkt_t *d = pkt_new(a);
            d->gen = k->gen;
            d->tag = k->tag;
            if (mesh_sim_call_at(a->sim, mesh_sim_now(a->sim) + k->timeout_ms * 1000000ull,
                                 deadline_hit, d) < 0)
                abort();
        }
        if (strcmp(k->path, MESH_HEALTH_CHECK_PATH) == 0) {
            c->kind = K_CHECK;
        } else if (strcmp(k->path, MESH_HEALTH_WATCH_PATH) == 0) {
            c->kind = K_WATCH;
            if (a->cfg.watch_unimplemented)
                end_call(a, c, MESH_GRPC_UNIMPLEMENTED, MESH_GRPC_CONN_OK, "");
        } else if (strcmp(k->path, MESH_REFLECT_V1_PATH) == 0 ||
                   strcmp(k->path, MESH_REFLECT_V1ALPHA_PATH) == 0) {
            c->kind = K_REFL;
            if (a->cfg.v1alpha_only && strcmp(k->path, MESH_REFLECT_V1_PATH) == 0)
                end_call(a, c, MESH_GRPC_UNIMPLEMENTED, MESH_GRPC_CONN_OK, "");
        } else {
            c->kind = K_OTHER;
            end_call(a, c, MESH_GRPC_UNIMPLEMENTED, MESH_GRPC_CONN_OK, "unknown method");
        }
        break;
    case P_SEND:
        if (c && c->open && a->up && c->kind == K_REFL)
            reflection_answer(a, c, k->data, k->len);
        break;
    case P_CLOSE:
        if (!c || !c->open || !a->up)
            break;
        if (c->kind == K_CHECK) {
            health_message(a, c);
            end_call(a, c, MESH_GRPC_OK, MESH_GRPC_CONN_OK, "");
        } else if (c->kind == K_WATCH) {
            health_message(a, c);
        } else if (c->kind == K_REFL) {
            end_call(a, c, MESH_GRPC_OK, MESH_GRPC_CONN_OK, "");
        }
        break;
    case P_CANCEL:
        break;
    }
    pkt_free(k);
}

static void to_app(sim_app_t *a, int op, uint64_t tag, const char *path, uint64_t timeout_ms,
                   const uint8_t *data, size_t len)
{
    pkt_t *k = pkt_new(a);
    k->op = op;
    k->tag = tag;
    k->path = path ? strdup(path) : NULL;
    k->timeout_ms = timeout_ms;
    if (len) {
        k->data = malloc(len);
        if (!k->data)
            abort();
        memcpy(k->data, data, len);
        k->len = len;
    }
    if (mesh_sim_call_at(a->sim, later(a, &a->up_last_at), at_app, k) < 0)
        abort();
}

/* ---- the seam ------------------------------------------------------------------------------- */

static void op_connect(mesh_rpc_t *r)
{
    sim_app_t *a = ((app_rpc_t *)r)->app;
    to_app(a, P_CONNECT, 0, NULL, 0, NULL, 0);
}

static int op_call_start(mesh_rpc_t *r, uint64_t tag, const char *path, uint64_t timeout_ms)
{
    sim_app_t *a = ((app_rpc_t *)r)->app;
    call_t *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->tag = tag;
    c->gen = a->gen;
    c->open = 1;
    c->next = a->calls;
    a->calls = c;
    if (timeout_ms && a->cfg.client_deadline) {
        pkt_t *d = pkt_new(a);
        d->tag = tag;
        if (mesh_sim_call_at(a->sim, mesh_sim_now(a->sim) + timeout_ms * 1000000ull, deadline_hit,
                             d) < 0)
            abort();
    }
    to_app(a, P_START, tag, path, timeout_ms, NULL, 0);
    return 0;
}

static int op_call_send(mesh_rpc_t *r, uint64_t tag, const uint8_t *msg, size_t len)
{
    sim_app_t *a = ((app_rpc_t *)r)->app;
    if (!find_call(a, tag, a->gen))
        return -1;
    to_app(a, P_SEND, tag, NULL, 0, msg, len);
    return 0;
}

static void op_call_close_send(mesh_rpc_t *r, uint64_t tag)
{
    sim_app_t *a = ((app_rpc_t *)r)->app;
    to_app(a, P_CLOSE, tag, NULL, 0, NULL, 0);
}

static void drop_call(sim_app_t *a, uint64_t tag, uint32_t gen)
{
    for (call_t **pp = &a->calls; *pp; pp = &(*pp)->next)
        if ((*pp)->tag == tag && (*pp)->gen == gen) {
            call_t *c = *pp;
            *pp = c->next;
            free(c);
            return;
        }
}

static void op_call_cancel(mesh_rpc_t *r, uint64_t tag)
{
    sim_app_t *a = ((app_rpc_t *)r)->app;
    drop_call(a, tag, a->gen);
}

static void op_free(mesh_rpc_t *r)
{
    app_rpc_t *ar = (app_rpc_t *)r;
    sim_app_t *a = ar->app;
    if (a->rpc == ar) {
        a->rpc = NULL;
        a->gen++;
        a->connected = 0; /* the client's connection closes with it */
    }
    while (a->calls) {
        call_t *c = a->calls;
        a->calls = c->next;
        free(c);
    }
    free(ar);
}

static const mesh_rpc_ops_t app_ops = {
    .connect = op_connect,
    .call_start = op_call_start,
    .call_send = op_call_send,
    .call_close_send = op_call_close_send,
    .call_cancel = op_call_cancel,
    .free = op_free,
};

mesh_rpc_t *sim_app_factory(mesh_actor_t *self, mesh_rpc_deliver_fn deliver, void *deliver_ud,
                            void *arg)
{
    sim_app_t *a = arg;
    if (a->rpc)
        op_free(&a->rpc->super);
    app_rpc_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->super.ops = &app_ops;
    r->super.deliver = deliver;
    r->super.ud = deliver_ud;
    r->app = a;
    a->gen++;
    a->rpc = r;
    return &r->super;
}

/* ---- the scenario's knobs ------------------------------------------------------------------- */

sim_app_t *sim_app_new(mesh_exec_t *sim, const sim_app_cfg_t *cfg)
{
    sim_app_t *a = calloc(1, sizeof(*a));
    if (!a)
        abort();
    a->sim = sim;
    a->cfg = *cfg;
    snprintf(a->pkg, sizeof(a->pkg), "%s", cfg->package);
    a->serving = a->up = 1;
    a->version = a->running_version = 1;
    snprintf(a->svc_names[0], sizeof(a->svc_names[0]), "%s.Admin", a->pkg);
    snprintf(a->svc_names[1], sizeof(a->svc_names[1]), "%s.Echo", a->pkg);
    return a;
}

void sim_app_free(sim_app_t *a)
{
    if (!a)
        return;
    while (a->in_flight)
        pkt_free(a->in_flight); /* the backlog's packets are in flight too */
    free(a->backlog);
    while (a->calls) {
        call_t *c = a->calls;
        a->calls = c->next;
        free(c);
    }
    free(a->rpc);
    free(a);
}

void sim_app_set_serving(sim_app_t *a, int serving)
{
    if (a->serving == serving)
        return;
    a->serving = serving;
    if (!a->up || a->hung)
        return;
    for (call_t *c = a->calls; c; c = c->next)
        if (c->open && c->kind == K_WATCH && c->gen == a->gen)
            health_message(a, c);
}

void sim_app_set_up(sim_app_t *a, int up)
{
    if (a->up == up)
        return;
    a->up = up;
    if (up) {
        a->running_version = a->version;
        return;
    }
    for (size_t i = 0; i < a->n_backlog; i++) /* the process died with what it had not read */
        pkt_free(a->backlog[i]);
    a->n_backlog = 0;
    for (call_t *c = a->calls; c; c = c->next)
        if (c->open && c->gen == a->gen)
            end_call(a, c, MESH_GRPC_UNAVAILABLE, MESH_GRPC_CONN_LOST, "connection lost");
    if (a->connected) {
        a->connected = 0;
        emit(a, a->gen, MESH_RPC_CONN_DOWN, 0, 0, MESH_GRPC_CONN_LOST, "connection lost", NULL, 0);
    }
}

void sim_app_set_hung(sim_app_t *a, int hung)
{
    a->hung = hung;
    if (hung)
        return;
    /* It answers again: what waited is served in arrival order (a call whose deadline passed
     * meanwhile is already over). */
    size_t n = a->n_backlog;
    pkt_t **b = a->backlog;
    a->backlog = NULL;
    a->n_backlog = a->cap_backlog = 0;
    for (size_t i = 0; i < n; i++)
        serve(b[i]);
    free(b);
}

void sim_app_set_version(sim_app_t *a, int version)
{
    a->version = version;
}

int sim_app_healthy(const sim_app_t *a)
{
    return a->up && !a->hung && a->serving;
}

const char *const *sim_app_services(const sim_app_t *a, size_t *n)
{
    sim_app_t *m = (sim_app_t *)a;
    if (a->running_version >= 2) {
        m->svcs[0] = a->svc_names[0]; /* Admin, Echo: sorted */
        m->svcs[1] = a->svc_names[1];
        *n = 2;
    } else {
        m->svcs[0] = a->svc_names[1];
        *n = 1;
    }
    return m->svcs;
}
