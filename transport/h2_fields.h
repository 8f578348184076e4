/*
 * transport/h2_fields.h: the HTTP/2 field rules (RFC 9113 section 8.2 and 8.3) that the proxy
 * enforces itself, one field at a time as nghttp2 hands them over.
 *
 * The proxy runs nghttp2 with its HTTP messaging checks off (they cost about 7 % of the
 * proxy's CPU per call, mostly looking up and re-validating fields the proxy looks at anyway).
 * These checks take their place for request headers, response headers and trailers: field
 * names are lower-case tokens, values have no control characters and no surrounding
 * whitespace, pseudo-header fields are known for the block, come first and appear once, no
 * connection-specific fields, te only "trailers", :status three digits; at the end of a block
 * the required pseudo-header fields are present. Sans-I/O: bytes in, a verdict out.
 */
#ifndef MESH_H2_FIELDS_H
#define MESH_H2_FIELDS_H

#include <stddef.h>
#include <stdint.h>

/** Which header block the fields belong to. */
typedef enum {
    MESH_H2_REQUEST,  /* a request's HEADERS (:method, :scheme, :path, :authority) */
    MESH_H2_RESPONSE, /* a response's first HEADERS (:status), Trailers-Only included */
    MESH_H2_TRAILERS, /* a later HEADERS block: no pseudo-header fields */
} mesh_h2_block_t;

/** The field names with a meaning or a rule of their own (mesh_h2_name_of), so that the proxy
 *  classifies each name once. Every name listed is valid (a lower-case token, or a known
 *  pseudo-header field); MESH_H2_N_OTHER is any other name. */
typedef enum {
    MESH_H2_N_OTHER = 0,
    MESH_H2_N_METHOD, /* pseudo-header fields */
    MESH_H2_N_SCHEME,
    MESH_H2_N_PATH,
    MESH_H2_N_AUTHORITY,
    MESH_H2_N_STATUS,
    MESH_H2_N_CONTENT_TYPE, /* regular fields every gRPC call carries */
    MESH_H2_N_USER_AGENT,
    MESH_H2_N_GRPC_TIMEOUT,
    MESH_H2_N_GRPC_STATUS,
    MESH_H2_N_GRPC_MESSAGE,
    MESH_H2_N_GRPC_ENCODING,
    MESH_H2_N_GRPC_ACCEPT_ENCODING,
    MESH_H2_N_TRACEPARENT, /* trace context (policy/trace.h) */
    MESH_H2_N_TRACESTATE,
    MESH_H2_N_REQUEST_ID,
    MESH_H2_N_TE,         /* te: only "trailers" */
    MESH_H2_N_HOST,       /* valid in HTTP/2, but :authority says it: a proxy does not forward it */
    MESH_H2_N_CONNECTION, /* connection-specific: never in HTTP/2 */
    MESH_H2_N_KEEP_ALIVE,
    MESH_H2_N_PROXY_CONNECTION,
    MESH_H2_N_TRANSFER_ENCODING,
    MESH_H2_N_UPGRADE,
    MESH_H2_N_COUNT
} mesh_h2_name_t;

/** Which of the names above name (nl bytes) is; MESH_H2_N_OTHER for any other name. */
mesh_h2_name_t mesh_h2_name_of(const uint8_t *name, size_t nl);

/** 1 for the names a proxy never forwards: te, host and the connection-specific ones. */
static inline int mesh_h2_name_hop_by_hop(mesh_h2_name_t n)
{
    return n >= MESH_H2_N_TE;
}

/** What one header block has shown so far. Zero it (or mesh_h2_fields_reset) per block. */
typedef struct mesh_h2_fields {
    uint8_t pseudo;      /* pseudo-header fields seen (one bit each) */
    uint8_t regular;     /* a regular field was seen */
    uint16_t n;          /* fields of the block so far, for whoever counts them (h2_field_cache) */
    const char *problem; /* the first rule broken (a static string), or NULL */
} mesh_h2_fields_t;

static inline void mesh_h2_fields_reset(mesh_h2_fields_t *f)
{
    f->pseudo = 0;
    f->regular = 0;
    f->n = 0;
    f->problem = NULL;
}

/**
 * Checks one field of a block. Returns the name's mesh_h2_name_t (>= 0; 0 for any other name)
 * if it is acceptable, -1 if it breaks a rule (then f->problem says which; later calls keep the
 * first problem and return -1).
 */
int mesh_h2_field_check(mesh_h2_fields_t *f, mesh_h2_block_t block, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl);

/** The rest of mesh_h2_field_check for a field whose name and value passed it before with the
 *  result id (h2_field_cache.h): what depends on the block and the fields before it
 *  (pseudo-header fields: their block, order and repetition; what the value must be passed
 *  already). Same result as the full check. */
int mesh_h2_field_recheck(mesh_h2_fields_t *f, mesh_h2_block_t block, mesh_h2_name_t id);

/** mesh_h2_field_check for a field whose name passed it before with the result id and whose
 *  value is new (a literal such as `:path` under a name from HPACK's static table): the value's
 *  checks and the block's, without classifying the name again. Same result as the full check. */
int mesh_h2_field_check_value(mesh_h2_fields_t *f, mesh_h2_block_t block, mesh_h2_name_t id,
                              const uint8_t *value, size_t vl);

/** At the end of a block: -1 (and f->problem) if a required pseudo-header field is missing. */
int mesh_h2_fields_end(mesh_h2_fields_t *f, mesh_h2_block_t block);

/** 1 when name (nl bytes) is not a valid regular field name: empty, or a byte that is not a
 *  lower-case token character. The check mesh_h2_field_check makes of a name it does not know. */
int mesh_h2_name_bad(const char *name, size_t nl);

/** 1 when the value has a control character other than HTAB, or DEL (NUL, CR and LF among them).
 *  The check mesh_h2_field_check makes of every value; eight bytes at a time. */
int mesh_h2_value_bad(const char *value, size_t vl);

#endif
