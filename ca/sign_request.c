/*
 * ca/sign_request.c: reading the body of POST /v1/ca/sign (see ca/sign_request.h).
 */
#include "ca/sign_request.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_sign_request_destroy(ca_sign_request_t *r)
{
    free(r->services);
    free(r->dns);
    free(r->ips);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* The strings of a JSON array member (absent: none). 0, or -1 with the reason. */
static int strings(json_t *o, const char *key, const char ***out, size_t *n, char *err,
                   size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, errlen, "\"%s\" must be an array of strings", key);
        return -1;
    }
    size_t k = json_array_size(v);
    if (k == 0)
        return 0;
    const char **a = calloc(k, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < k; i++)
        if (!(a[i] = json_string_value(json_array_get(v, i)))) {
            snprintf(err, errlen, "\"%s\"[%zu] is not a string", key, i);
            free(a);
            return -1;
        }
    *out = a;
    *n = k;
    return 0;
}

int ca_sign_request_parse(ca_sign_request_t *r, const char *data, size_t len, char *err,
                          size_t errlen)
{
    memset(r, 0, sizeof(*r));
    json_error_t je;
    json_t *o = data && len ? json_loadb(data, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the body is not a JSON object%s%s", o || !len ? "" : ": ",
                 o || !len ? (len ? "" : " (empty)") : je.text);
        json_decref(o);
        return -1;
    }
    r->json = o;
    r->csr = json_string_value(json_object_get(o, "csr"));
    r->node = json_string_value(json_object_get(o, "node"));
    if (!r->csr || !r->node) {
        snprintf(err, errlen, "\"csr\" (PEM) and \"node\" (a name) are required strings");
        goto fail;
    }
    /* A NUL inside a JSON string would cut the name short after the checks: refuse it. */
    if (strlen(r->node) != json_string_length(json_object_get(o, "node"))) {
        snprintf(err, errlen, "\"node\" holds a NUL character");
        goto fail;
    }
    json_t *lt = json_object_get(o, "lifetime_seconds");
    if (lt && (!json_is_integer(lt) || json_integer_value(lt) < 1)) {
        snprintf(err, errlen, "\"lifetime_seconds\" must be an integer of at least 1");
        goto fail;
    }
    r->lifetime_s = lt ? (int64_t)json_integer_value(lt) : 0;
    if (strings(o, "services", &r->services, &r->n_services, err, errlen) != 0 ||
        strings(o, "dns", &r->dns, &r->n_dns, err, errlen) != 0 ||
        strings(o, "ips", &r->ips, &r->n_ips, err, errlen) != 0)
        goto fail;
    const char **lists[] = {r->services, r->dns, r->ips};
    size_t ns[] = {r->n_services, r->n_dns, r->n_ips};
    const char *keys[] = {"services", "dns", "ips"};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < ns[l]; i++)
            if (strlen(lists[l][i]) !=
                json_string_length(json_array_get(json_object_get(o, keys[l]), i))) {
                snprintf(err, errlen, "\"%s\"[%zu] holds a NUL character", keys[l], i);
                goto fail;
            }
    return 0;
fail:
    ca_sign_request_destroy(r);
    return -1;
}
