/*
 * gateway/gw_transcode.h: one HTTP/JSON request <-> one gRPC call's messages, sans-I/O: the
 * google.api.http binding of path variables, query parameters and the body into the request
 * message, and the response message (or its response_body field) as JSON.
 *
 * The request message is built as protobuf bytes in pieces that concatenate: the body's
 * encoding first, then the fields from the path and the query string. Protobuf merges
 * concatenated messages field by field (the last singular value wins, repeated fields append,
 * messages merge), which is exactly the precedence google.api.http asks for. Path variables
 * are captured while the request head is at hand (gw_encode_params), the body when it is
 * complete (gw_encode_body). Errors are the client's (HTTP 400) and name the field path.
 */
#ifndef GW_TRANSCODE_H
#define GW_TRANSCODE_H

#include <stddef.h>

#include "gateway/buf.h"
#include "gateway/gw_api.h"
#include "gateway/http_routes.h"

/** Appends the protobuf encoding of the request fields bound by the route's path variables
 *  and by the query parameters (those not bound by the path or the body; unknown names are
 *  ignored, as grpc-gateway does) to out. 0, or -1 with err set. */
int gw_encode_params(const gw_api_t *api, const gw_method_t *m, const gw_match_t *match,
                     gw_buf_t *out, char *err, size_t errlen);

/** Appends the protobuf encoding of the JSON body per the route's body rule (NULL/"": no body
 *  is read; "*": the whole message; else the named field) to out. An empty body is an empty
 *  message. 0, or -1 with err set ("line 1 column 9: ..." or a field path). */
int gw_encode_body(const gw_api_t *api, const gw_method_t *m, const char *body_rule,
                   const char *body, size_t len, gw_buf_t *out, char *err, size_t errlen);

/** Appends the JSON of a response message (only its response_body field when the rule names
 *  one) to out. 0, or -1 with err set (the upstream's bytes do not fit the schema). */
int gw_encode_response(const gw_api_t *api, const gw_method_t *m, const char *response_body,
                       const uint8_t *pb, size_t len, gw_buf_t *out, char *err, size_t errlen);

#endif
