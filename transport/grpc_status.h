/*
 * transport/grpc_status.h: gRPC status codes, their names, grpc-message percent coding and
 * the mappings from HTTP/2 errors and HTTP statuses to gRPC statuses (per the gRPC HTTP/2
 * protocol document).
 */
#ifndef MESH_GRPC_STATUS_H
#define MESH_GRPC_STATUS_H

#include <stddef.h>
#include <stdint.h>

/** The gRPC status codes. */
typedef enum {
    MESH_GRPC_OK = 0,
    MESH_GRPC_CANCELLED = 1,
    MESH_GRPC_UNKNOWN = 2,
    MESH_GRPC_INVALID_ARGUMENT = 3,
    MESH_GRPC_DEADLINE_EXCEEDED = 4,
    MESH_GRPC_NOT_FOUND = 5,
    MESH_GRPC_ALREADY_EXISTS = 6,
    MESH_GRPC_PERMISSION_DENIED = 7,
    MESH_GRPC_RESOURCE_EXHAUSTED = 8,
    MESH_GRPC_FAILED_PRECONDITION = 9,
    MESH_GRPC_ABORTED = 10,
    MESH_GRPC_OUT_OF_RANGE = 11,
    MESH_GRPC_UNIMPLEMENTED = 12,
    MESH_GRPC_INTERNAL = 13,
    MESH_GRPC_UNAVAILABLE = 14,
    MESH_GRPC_DATA_LOSS = 15,
    MESH_GRPC_UNAUTHENTICATED = 16,
} mesh_grpc_status_t;

/** "OK", "CANCELLED", ... ; "UNKNOWN_STATUS" for values outside 0..16. */
const char *mesh_grpc_status_name(int code);

/** Parses a status name ("UNAVAILABLE"); returns the code or -1. */
int mesh_grpc_status_from_name(const char *name);

/** Parses a grpc-status header value (decimal, 0..99); returns the code or -1. */
int mesh_grpc_status_parse(const char *v, size_t len);

/**
 * Percent-encodes msg (len bytes) for grpc-message into out (cap bytes, NUL-terminated):
 * bytes outside 0x20..0x7E and '%' become %XX. Returns the encoded length, or -1 if cap is
 * too small (out then holds a truncated but valid prefix).
 */
long mesh_grpc_message_encode(const char *msg, size_t len, char *out, size_t cap);

/**
 * Decodes a grpc-message value into out (cap bytes, NUL-terminated). Malformed %-sequences
 * are kept as they are, as the protocol asks. Returns the decoded length, or -1 if cap is
 * too small.
 */
long mesh_grpc_message_decode(const char *v, size_t len, char *out, size_t cap);

/** The gRPC status a client sees for an HTTP/2 RST_STREAM / GOAWAY error code. */
mesh_grpc_status_t mesh_grpc_status_from_h2_error(uint32_t h2_error);

/** The gRPC status a client sees for a non-200 HTTP status without grpc-status. */
mesh_grpc_status_t mesh_grpc_status_from_http(int http_status);

#endif
