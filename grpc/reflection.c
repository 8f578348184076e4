/*
 * grpc/reflection.c: the reflection conversation behind grpc/reflection.h.
 *
 * Phases: LIST (list_services) -> SYMBOLS (file_containing_symbol per listed service) ->
 * DEPS (file_by_filename per missing import, each asked once) -> build the model -> DONE.
 * A conversation about one service (mesh_reflect_new_for_service) starts at SYMBOLS.
 * Requests are packed with the v1 generated code into one reusable buffer; responses are
 * unpacked with the v1 code for both versions (the wire formats are identical).
 */
#include "grpc/reflection.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#define REFLECT_MAX_REQUESTS 4096
#define GRPC_UNIMPLEMENTED   12

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse resp_t;

typedef enum { PH_LIST, PH_SYMBOLS, PH_DEPS, PH_DONE, PH_FAILED } phase_t;

struct mesh_reflect {
    char *host;
    char *only;        /* the one service asked about (no LIST phase); NULL: every listed service */
    int unimplemented; /* failed: neither version implemented */
    int alpha;         /* using v1alpha */
    int need_open;     /* next() must say OPEN */
    int awaiting;      /* a request is out, its answer not in yet */
    int got_response;
    phase_t phase;
    size_t requests;

    char **services; /* listed services, infra ones left out; NULL entries were dropped */
    size_t n_services;
    size_t next_service;
    char **tried; /* files asked for by name */
    size_t n_tried;
    char *asking; /* what the outstanding request asks about, for messages */

    mesh_desc_pool_t *pool;
    uint8_t *buf;
    size_t buf_cap;

    size_t n_warnings;
    char warning[256];
    char err[256];
};

int mesh_reflect_is_infra_service(const char *name)
{
    return strcmp(name, "grpc.health.v1.Health") == 0 ||
           strcmp(name, "grpc.reflection.v1.ServerReflection") == 0 ||
           strcmp(name, "grpc.reflection.v1alpha.ServerReflection") == 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void reset(mesh_reflect_t *r)
{
    free_strv(r->services, r->n_services);
    free_strv(r->tried, r->n_tried);
    free(r->asking);
    r->services = r->tried = NULL;
    r->asking = NULL;
    r->n_services = r->n_tried = r->next_service = 0;
    r->awaiting = r->got_response = 0;
    r->phase = PH_LIST;
    r->need_open = 1;
    mesh_desc_pool_free(r->pool);
    r->pool = mesh_desc_pool_new();
    if (r->only) {
        r->services = calloc(1, sizeof(*r->services));
        if (r->services)
            r->services[0] = strdup(r->only);
        if (!r->services || !r->services[0]) {
            mesh_desc_pool_free(r->pool);
            r->pool = NULL; /* reported as out of memory by the callers */
            return;
        }
        r->n_services = 1;
        r->phase = PH_SYMBOLS;
    }
}

mesh_reflect_t *mesh_reflect_new(const char *host)
{
    mesh_reflect_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->host = strdup(host ? host : "");
    reset(r);
    if (!r->host || !r->pool) {
        mesh_reflect_free(r);
        return NULL;
    }
    return r;
}

mesh_reflect_t *mesh_reflect_new_for_service(const char *host, const char *service)
{
    if (!service || !service[0])
        return NULL;
    mesh_reflect_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->host = strdup(host ? host : "");
    r->only = strdup(service);
    if (!r->host || !r->only) {
        mesh_reflect_free(r);
        return NULL;
    }
    reset(r);
    if (!r->pool) {
        mesh_reflect_free(r);
        return NULL;
    }
    return r;
}

int mesh_reflect_unimplemented(const mesh_reflect_t *r)
{
    return r->phase == PH_FAILED && r->unimplemented;
}

void mesh_reflect_free(mesh_reflect_t *r)
{
    if (!r)
        return;
    free(r->only);
    free_strv(r->services, r->n_services);
    free_strv(r->tried, r->n_tried);
    free(r->asking);
    mesh_desc_pool_free(r->pool);
    free(r->buf);
    free(r->host);
    free(r);
}

static void fail(mesh_reflect_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(mesh_reflect_t *r, const char *fmt, ...)
{
    if (r->phase == PH_FAILED)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->phase = PH_FAILED;
    r->awaiting = 0;
}

static void warn(mesh_reflect_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warn(mesh_reflect_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warning, sizeof(r->warning), fmt, ap);
    va_end(ap);
    r->n_warnings++;
    mesh_warn("reflection", "%s", r->warning);
}

const char *mesh_reflect_path(const mesh_reflect_t *r)
{
    return r->alpha ? MESH_REFLECT_V1ALPHA_PATH : MESH_REFLECT_V1_PATH;
}

const char *mesh_reflect_error(const mesh_reflect_t *r)
{
    return r->phase == PH_FAILED ? r->err : "";
}

size_t mesh_reflect_warning_count(const mesh_reflect_t *r)
{
    return r->n_warnings;
}

const char *mesh_reflect_last_warning(const mesh_reflect_t *r)
{
    return r->warning;
}

mesh_desc_pool_t *mesh_reflect_take_pool(mesh_reflect_t *r)
{
    if (r->phase != PH_DONE)
        return NULL;
    mesh_desc_pool_t *p = r->pool;
    r->pool = NULL;
    return p;
}

/* Packs req into r->buf and fills out; -1 (failed) when out of memory. */
static int pack(mesh_reflect_t *r, req_t *req, const char *asking, mesh_reflect_out_t *out)
{
    req->host = r->host;
    size_t n = grpc__reflection__v1__server_reflection_request__get_packed_size(req);
    if (n > r->buf_cap) {
        uint8_t *b = realloc(r->buf, n);
        if (!b) {
            fail(r, "out of memory");
            return -1;
        }
        r->buf = b;
        r->buf_cap = n;
    }
    free(r->asking);
    r->asking = strdup(asking);
    if (!r->asking) {
        fail(r, "out of memory");
        return -1;
    }
    out->data = r->buf;
    out->len = grpc__reflection__v1__server_reflection_request__pack(req, r->buf);
    r->awaiting = 1;
    r->requests++;
    return 0;
}

static int was_tried(const mesh_reflect_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_tried; i++)
        if (strcmp(r->tried[i], name) == 0)
            return 1;
    return 0;
}

/* Builds the model of the listed services; DONE or FAILED. */
static void finish(mesh_reflect_t *r)
{
    const char **only = calloc(r->n_services ? r->n_services : 1, sizeof(*only));
    if (!only) {
        fail(r, "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->n_services; i++)
        if (r->services[i])
            only[n++] = r->services[i];
    if (mesh_desc_pool_build(r->pool, only, n) < 0)
        fail(r, "cannot model the app's services: %s", mesh_desc_pool_error(r->pool));
    else
        r->phase = PH_DONE;
    free(only);
}

/* The next request to send, or a final phase. */
static mesh_reflect_action_t next_request(mesh_reflect_t *r, mesh_reflect_out_t *out)
{
    req_t req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    if (r->requests >= REFLECT_MAX_REQUESTS) {
        fail(r, "gave up after %d reflection requests", REFLECT_MAX_REQUESTS);
        return MESH_REFLECT_FAILED;
    }
    if (r->phase == PH_LIST) {
        req.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
        req.list_services = "";
        return pack(r, &req, "list_services", out) < 0 ? MESH_REFLECT_FAILED : MESH_REFLECT_SEND;
    }
    if (r->phase == PH_SYMBOLS) {
        while (r->next_service < r->n_services && !r->services[r->next_service])
            r->next_service++;
        if (r->next_service < r->n_services) {
            req.message_request_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
            req.file_containing_symbol = r->services[r->next_service];
            return pack(r, &req, req.file_containing_symbol, out) < 0 ? MESH_REFLECT_FAILED
                                                                      : MESH_REFLECT_SEND;
        }
        r->phase = PH_DEPS;
    }
    if (r->phase == PH_DEPS) {
        size_t n = mesh_desc_pool_missing_deps(r->pool, NULL, 0);
        const char **missing = n ? calloc(n, sizeof(*missing)) : NULL;
        if (n && !missing) {
            fail(r, "out of memory");
            return MESH_REFLECT_FAILED;
        }
        n = mesh_desc_pool_missing_deps(r->pool, missing, n);
        const char *ask = NULL;
        for (size_t i = 0; i < n && !ask; i++)
            if (!was_tried(r, missing[i]))
                ask = missing[i];
        if (ask) {
            char **t = realloc(r->tried, (r->n_tried + 1) * sizeof(*t));
            char *name = strdup(ask);
            free(missing);
            if (t)
                r->tried = t;
            if (!t || !name) {
                free(name);
                fail(r, "out of memory");
                return MESH_REFLECT_FAILED;
            }
            r->tried[r->n_tried++] = name;
            req.message_request_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
            req.file_by_filename = name;
            return pack(r, &req, name, out) < 0 ? MESH_REFLECT_FAILED : MESH_REFLECT_SEND;
        }
        free(missing);
        finish(r);
    }
    return r->phase == PH_DONE ? MESH_REFLECT_DONE : MESH_REFLECT_FAILED;
}

mesh_reflect_action_t mesh_reflect_next(mesh_reflect_t *r, mesh_reflect_out_t *out)
{
    memset(out, 0, sizeof(*out));
    if (r->phase == PH_FAILED)
        return MESH_REFLECT_FAILED;
    if (r->phase == PH_DONE)
        return MESH_REFLECT_DONE;
    if (r->need_open) {
        r->need_open = 0;
        out->path = mesh_reflect_path(r);
        return MESH_REFLECT_OPEN;
    }
    if (r->awaiting)
        return MESH_REFLECT_WAIT;
    return next_request(r, out);
}

static int add_files(mesh_reflect_t *r, const Grpc__Reflection__V1__FileDescriptorResponse *fr)
{
    for (size_t i = 0; i < fr->n_file_descriptor_proto; i++) {
        const ProtobufCBinaryData *b = &fr->file_descriptor_proto[i];
        if (mesh_desc_pool_add_file(r->pool, b->data, b->len) < 0) {
            fail(r, "bad descriptor in the answer to %s: %s", r->asking,
                 mesh_desc_pool_error(r->pool));
            return -1;
        }
    }
    return 0;
}

static int on_list(mesh_reflect_t *r, const resp_t *m)
{
    if (m->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE) {
        fail(r, "list_services: server error %d: %s", m->error_response->error_code,
             m->error_response->error_message);
        return -1;
    }
    if (m->message_response_case !=
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE) {
        fail(r, "list_services: unexpected answer (case %d)", (int)m->message_response_case);
        return -1;
    }
    const Grpc__Reflection__V1__ListServiceResponse *l = m->list_services_response;
    r->services = calloc(l->n_service ? l->n_service : 1, sizeof(*r->services));
    if (!r->services) {
        fail(r, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < l->n_service; i++) {
        const char *name = l->service[i]->name;
        if (!name || !name[0] || mesh_reflect_is_infra_service(name))
            continue;
        int dup = 0;
        for (size_t k = 0; k < r->n_services; k++)
            if (strcmp(r->services[k], name) == 0)
                dup = 1;
        if (dup)
            continue;
        r->services[r->n_services] = strdup(name);
        if (!r->services[r->n_services]) {
            fail(r, "out of memory");
            return -1;
        }
        r->n_services++;
    }
    r->phase = PH_SYMBOLS;
    return 0;
}

int mesh_reflect_on_response(mesh_reflect_t *r, const uint8_t *data, size_t len)
{
    if (r->phase == PH_FAILED || r->phase == PH_DONE)
        return r->phase == PH_FAILED ? -1 : 0;
    if (!r->awaiting) {
        fail(r, "reflection answer without a request");
        return -1;
    }
    resp_t *m = grpc__reflection__v1__server_reflection_response__unpack(NULL, len, data);
    if (!m) {
        fail(r, "the answer to %s is not a ServerReflectionResponse (%zu bytes)", r->asking, len);
        return -1;
    }
    r->awaiting = 0;
    r->got_response = 1;
    int rc = 0;
    int is_files =
        m->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    int is_error =
        m->message_response_case ==
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    if (r->phase == PH_LIST) {
        rc = on_list(r, m);
    } else if (is_files) {
        rc = add_files(r, m->file_descriptor_response);
        if (r->phase == PH_SYMBOLS)
            r->next_service++;
    } else if (is_error) {
        if (r->phase == PH_SYMBOLS && r->only) {
            fail(r, "service %s not served there: server error %d: %s", r->asking,
                 m->error_response->error_code, m->error_response->error_message);
            rc = -1;
        } else if (r->phase == PH_SYMBOLS) {
            warn(r, "service %s left out: server error %d: %s", r->asking,
                 m->error_response->error_code, m->error_response->error_message);
            free(r->services[r->next_service]);
            r->services[r->next_service] = NULL;
            r->next_service++;
        } else {
            warn(r, "file %s not available: server error %d: %s", r->asking,
                 m->error_response->error_code, m->error_response->error_message);
        }
    } else {
        fail(r, "unexpected answer to %s (case %d)", r->asking, (int)m->message_response_case);
        rc = -1;
    }
    grpc__reflection__v1__server_reflection_response__free_unpacked(m, NULL);
    return rc;
}

void mesh_reflect_on_stream_end(mesh_reflect_t *r, int grpc_status, const char *message)
{
    if (r->phase == PH_DONE || r->phase == PH_FAILED)
        return;
    if (grpc_status == GRPC_UNIMPLEMENTED && !r->alpha && !r->got_response) {
        mesh_debug("reflection", "v1 unimplemented, trying v1alpha");
        r->alpha = 1;
        reset(r);
        if (!r->pool)
            fail(r, "out of memory");
        return;
    }
    fail(r, "reflection stream %s ended early with status %d: %s", mesh_reflect_path(r),
         grpc_status, message && message[0] ? message : "(no message)");
    r->unimplemented = grpc_status == GRPC_UNIMPLEMENTED && r->alpha && !r->got_response;
}
