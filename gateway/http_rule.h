/*
 * gateway/http_rule.h: the `google.api.http` method option (google.api.HttpRule) read from
 * protobuf wire bytes.
 *
 * protobuf-c has no extensions: the option (extension field 72295728 of
 * google.protobuf.MethodOptions, googleapis' google/api/annotations.proto) arrives as an unknown
 * field of MethodOptions. This file decodes the HttpRule bytes itself (google/api/http.proto:
 * selector 1, get 2, put 3, post 4, delete 5, patch 6, custom 8 {kind 1, path 2}, body 7,
 * response_body 12, additional_bindings 11), from the unknown fields of a parsed MethodOptions or
 * from a raw serialized MethodOptions. Several occurrences of the extension merge as protobuf
 * does (last pattern wins, bindings append). Decoding happens when routes are built, not per
 * request: it allocates. Bad input gives -1 and an error, never a crash.
 */
#ifndef GW_HTTP_RULE_H
#define GW_HTTP_RULE_H

#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/descriptor.pb-c.h"

/** Field number of the `google.api.http` extension of google.protobuf.MethodOptions. */
#define GW_HTTP_RULE_EXTENSION 72295728u

/** One HttpRule; every string is owned by the rule (NULL when absent). */
typedef struct gw_http_rule {
    /** `selector` (1): the method it applies to; only meaningful in service configs. */
    char *selector;
    /** The HTTP method: "GET", "PUT", "POST", "DELETE", "PATCH" or a custom kind; NULL when
     * the rule has no pattern. */
    char *method;
    /** The path template of the pattern ("/v1/messages/{message_id}"); NULL when no pattern. */
    char *path;
    /** `body` (7): NULL or "" for no body, "*" for the whole request, else a field path. */
    char *body;
    /** `response_body` (12): NULL or "" for the whole response, else a field path. */
    char *response_body;
    /** `additional_bindings` (11); these never have bindings of their own. */
    struct gw_http_rule *bindings;
    size_t n_bindings;
} gw_http_rule_t;

/** Releases what the rule owns and zeroes it (a zeroed rule is empty and may be cleared). */
void gw_http_rule_clear(gw_http_rule_t *rule);

/** Decodes serialized HttpRule bytes, merging into rule (zero it first for a fresh decode).
 * Returns 0, or -1 with err set (rule then holds what was decoded so far; clear it). */
int gw_http_rule_decode(const uint8_t *data, size_t len, gw_http_rule_t *rule, char *err,
                        size_t errlen);

/** Finds `google.api.http` in a serialized MethodOptions and decodes it into *rule (zeroed
 * first). Returns 1 when found, 0 when absent (rule empty), -1 on bad bytes (err set). */
int gw_http_rule_from_options_bytes(const uint8_t *data, size_t len, gw_http_rule_t *rule,
                                    char *err, size_t errlen);

/** The same from a MethodOptions parsed by protobuf-c (the option is one of its unknown
 * fields); opts may be NULL (absent). Returns 1, 0 or -1 as above. */
int gw_http_rule_from_options(const Google__Protobuf__MethodOptions *opts, gw_http_rule_t *rule,
                              char *err, size_t errlen);

#endif
