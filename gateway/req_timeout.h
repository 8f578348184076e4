/*
 * gateway/req_timeout.h: the X-Request-Timeout header of HTTP/JSON calls: a number of seconds
 * with an optional fraction (`2`, `0.25`) or a Go duration (`1.5s`, `200ms`, `1m30s`, units
 * ns us µs ms s m h), positive, at most 100,000,000 seconds (grpc-timeout's largest in seconds).
 */
#ifndef GW_REQ_TIMEOUT_H
#define GW_REQ_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/** Parses v[0..len) into milliseconds, rounded up (never 0). 0, or -1 when v is not a positive
 *  timeout of the forms above. */
int gw_req_timeout_parse(const char *v, size_t len, uint64_t *out_ms);

#endif
