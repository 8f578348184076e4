/*
 * gateway/gw_errors.h: how the gateway says what went wrong over HTTP: the gRPC status ->
 * HTTP status table (grpc-gateway's runtime.HTTPStatusFromCode) and the error body
 * {"code":N,"message":"...","details":[]} (built with jansson).
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include <stddef.h>

#include "gateway/buf.h"

/** The HTTP status for a gRPC status code (0..16; anything else: 500). */
int gw_http_status_from_grpc(int code);

/** Appends {"code":code,"message":msg,"details":[]} (msg[0..len), made valid UTF-8) to out.
 *  Returns 0, or -1 when out of memory. */
int gw_error_json(int code, const char *msg, size_t len, gw_buf_t *out);

#endif
