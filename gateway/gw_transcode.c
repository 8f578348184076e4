/*
 * gateway/gw_transcode.c: path variables, query parameters, bodies and responses of the
 * gateway's calls (gateway/gw_transcode.h). The pieces bound from the path and the query are
 * collected into a JSON object (typed by the schema: booleans become JSON booleans, every
 * other scalar a string, which the proto3 JSON mapping accepts for numbers, enums and the
 * well-known types) and handed to the one JSON -> protobuf transcoder (gateway/json_pb.h).
 */
#include "gateway/gw_transcode.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "gateway/json_pb.h"
#include "gateway/pb_json.h"

static int dump_cb(const char *buf, size_t size, void *data)
{
    return gw_buf_put(data, buf, size) ? 0 : -1;
}

/* JSON -> protobuf of j as message m, appended to out. */
static int encode_json(const gw_api_t *api, const gw_message_t *m, const json_t *j, gw_buf_t *out,
                       char *err, size_t errlen)
{
    gw_buf_t txt = {0};
    if (json_dump_callback(j, dump_cb, &txt, JSON_COMPACT | JSON_ENCODE_ANY) != 0) {
        gw_buf_free(&txt);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    gw_json_pb_opts_t o = {.resolve = gw_resolve_in_schema, .resolve_ud = gw_api_schema(api)};
    gw_status_t st = gw_json_to_pb(m, (const char *)txt.data, txt.len, &o, out, err, errlen);
    gw_buf_free(&txt);
    return st == GW_OK ? 0 : -1;
}

/* Sets field path `path` of message m in object root to the string value v (a repeated field
 * appends). Returns 0, 1 when the path names no field (ignored for query parameters), or -1. */
static int set_path(json_t *root, const gw_message_t *m, const char *path, const char *v, size_t vl,
                    char *err, size_t errlen)
{
    json_t *obj = root;
    const char *seg = path;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        const gw_field_t *f = gw_message_field_by_json(m, seg, n);
        if (!f)
            return 1;
        if (dot) {
            if (f->type != GW_TYPE_MESSAGE || f->repeated || !f->message) {
                snprintf(err, errlen, "%s: %.*s is not a message field", path, (int)n, seg);
                return -1;
            }
            json_t *child = json_object_get(obj, f->json_name);
            if (!child) {
                child = json_object();
                if (!child || json_object_set_new(obj, f->json_name, child) != 0)
                    goto nomem;
            }
            obj = child;
            m = f->message;
            seg = dot + 1;
            continue;
        }
        json_t *val;
        if (f->type == GW_TYPE_BOOL && vl == 4 && memcmp(v, "true", 4) == 0)
            val = json_true();
        else if (f->type == GW_TYPE_BOOL && vl == 5 && memcmp(v, "false", 5) == 0)
            val = json_false();
        else
            val = json_stringn(v, vl);
        if (!val) {
            snprintf(err, errlen, "%s: not valid UTF-8", path);
            return -1;
        }
        if (f->repeated) {
            json_t *arr = json_object_get(obj, f->json_name);
            if (!arr) {
                arr = json_array();
                if (!arr || json_object_set_new(obj, f->json_name, arr) != 0) {
                    json_decref(val);
                    goto nomem;
                }
            }
            if (json_array_append_new(arr, val) != 0)
                goto nomem;
        } else if (json_object_set_new(obj, f->json_name, val) != 0) {
            goto nomem;
        }
        return 0;
    }
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

int gw_encode_params(const gw_api_t *api, const gw_method_t *m, const gw_match_t *match,
                     gw_buf_t *out, char *err, size_t errlen)
{
    if (match->n_captures == 0 && match->query_len == 0)
        return 0;
    json_t *root = json_object();
    if (!root) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    char stack[512];
    char *buf = stack;
    size_t cap = sizeof(stack);
    size_t need = match->query_len + 2;
    for (size_t i = 0; i < match->n_captures; i++)
        if (match->captures[i].len + 1 > need)
            need = match->captures[i].len + 1;
    if (need > cap) {
        buf = malloc(need);
        cap = need;
        if (!buf) {
            json_decref(root);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < match->n_captures && rc == 0; i++) {
        const gw_capture_t *c = &match->captures[i];
        ssize_t n = gw_capture_decode(c, GW_UNESCAPE_DEFAULT, buf, cap);
        if (n < 0) {
            snprintf(err, errlen, "path variable %s: malformed %%-escape", c->field);
            rc = -1;
            break;
        }
        rc = set_path(root, m->input, c->field, buf, (size_t)n, err, errlen);
        if (rc == 1) {
            snprintf(err, errlen, "path variable %s: no such field in %s", c->field,
                     m->input->full_name);
            rc = -1;
        }
    }
    gw_query_iter_t it;
    gw_query_iter_init(&it, match->query, match->query_len);
    gw_query_param_t q;
    int r;
    while (rc == 0 && (r = gw_query_next(&it, buf, cap, &q, err, errlen)) != 0) {
        if (r < 0) {
            rc = -1;
            break;
        }
        if (!q.is_field_path || gw_route_binds_field(match->route, q.key, q.key_len))
            continue;
        int s = set_path(root, m->input, q.key, q.value, q.value_len, err, errlen);
        if (s < 0)
            rc = -1;
    }
    if (buf != stack)
        free(buf);
    if (rc == 0 && json_object_size(root) > 0)
        rc = encode_json(api, m->input, root, out, err, errlen);
    json_decref(root);
    return rc;
}

/* Whether body[0..len) is only white space. */
static int blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (body[i] != ' ' && body[i] != '\t' && body[i] != '\r' && body[i] != '\n')
            return 0;
    return 1;
}

int gw_encode_body(const gw_api_t *api, const gw_method_t *m, const char *body_rule,
                   const char *body, size_t len, gw_buf_t *out, char *err, size_t errlen)
{
    if (!body_rule || !*body_rule || blank(body, len))
        return 0;
    gw_json_pb_opts_t o = {.resolve = gw_resolve_in_schema, .resolve_ud = gw_api_schema(api)};
    if (strcmp(body_rule, "*") == 0)
        return gw_json_to_pb(m->input, body, len, &o, out, err, errlen) == GW_OK ? 0 : -1;
    /* body: "a.b": the JSON is the value of that field, wrapped as {"a":{"b": BODY}}. */
    json_error_t je;
    json_t *val = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!val) {
        snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
        return -1;
    }
    json_t *root = json_object();
    json_t *obj = root;
    const gw_message_t *msg = m->input;
    const char *seg = body_rule;
    int rc = -1;
    while (obj) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        const gw_field_t *f = gw_message_field_by_json(msg, seg, n);
        if (!f || (dot && (f->type != GW_TYPE_MESSAGE || !f->message))) {
            snprintf(err, errlen, "body field %s not in %s", body_rule, m->input->full_name);
            break;
        }
        if (!dot) {
            json_object_set(obj, f->json_name, val);
            rc = encode_json(api, m->input, root, out, err, errlen);
            break;
        }
        json_t *child = json_object();
        if (!child || json_object_set_new(obj, f->json_name, child) != 0)
            break;
        obj = child;
        msg = f->message;
        seg = dot + 1;
    }
    json_decref(root);
    json_decref(val);
    return rc;
}

int gw_encode_response(const gw_api_t *api, const gw_method_t *m, const char *response_body,
                       const uint8_t *pb, size_t len, gw_buf_t *out, char *err, size_t errlen)
{
    gw_pb_json_opts_t o = {.resolve = gw_resolve_in_schema, .resolve_ud = gw_api_schema(api)};
    if (!response_body || !*response_body)
        return gw_pb_to_json(m->output, pb, len, &o, out, err, errlen) == GW_OK ? 0 : -1;
    gw_buf_t full = {0};
    if (gw_pb_to_json(m->output, pb, len, &o, &full, err, errlen) != GW_OK) {
        gw_buf_free(&full);
        return -1;
    }
    json_t *root = json_loadb((const char *)full.data, full.len, 0, NULL);
    gw_buf_free(&full);
    const json_t *j = root;
    const gw_message_t *msg = m->output;
    const char *seg = response_body;
    while (j && msg) {
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        const gw_field_t *f = gw_message_field_by_json(msg, seg, n);
        j = f ? json_object_get(j, f->json_name) : NULL;
        msg = f ? f->message : NULL;
        if (!dot)
            break;
        seg = dot + 1;
    }
    int rc = 0;
    if (!j)
        rc = gw_buf_put(out, "null", 4) ? 0 : -1;
    else if (json_dump_callback(j, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        rc = -1;
    json_decref(root);
    if (rc != 0)
        snprintf(err, errlen, "out of memory");
    return rc;
}
