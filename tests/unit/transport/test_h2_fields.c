/*
 * tests/unit/transport/test_h2_fields.c: the HTTP/2 field rules the proxy enforces itself
 * (transport/h2_fields.c): what a gRPC client or server really sends passes, and each broken
 * rule is caught with the problem named.
 */
#include "transport/h2_fields.h"
#include "tests/check.h"

#include <string.h>

typedef struct {
    const char *name, *value;
} field_t;

/* Runs a block through the checker; returns the first problem or NULL. */
static const char *block(mesh_h2_block_t kind, const field_t *fs)
{
    mesh_h2_fields_t f;
    mesh_h2_fields_reset(&f);
    for (; fs->name; fs++)
        mesh_h2_field_check(&f, kind, (const uint8_t *)fs->name, strlen(fs->name),
                            (const uint8_t *)fs->value, strlen(fs->value));
    mesh_h2_fields_end(&f, kind);
    return f.problem;
}

#define OK(kind, ...) CHECK(block(kind, (const field_t[]){__VA_ARGS__, {NULL, NULL}}) == NULL)
#define BAD(kind, want, ...)                                                                       \
    do {                                                                                           \
        const char *p = block(kind, (const field_t[]){__VA_ARGS__, {NULL, NULL}});                 \
        CHECK(p != NULL);                                                                          \
        CHECK_STR(p, want);                                                                        \
    } while (0)

#define REQ                                                                                        \
    {":method", "POST"}, {":scheme", "http"},                                                      \
    {                                                                                              \
        ":path", "/pkg.Svc/M"                                                                      \
    }

static void test_valid_blocks(void)
{
    /* What grpc-go/grpc-c++ send, metadata and -bin included. */
    OK(MESH_H2_REQUEST, REQ, {":authority", "svc:50051"}, {"content-type", "application/grpc"},
       {"te", "trailers"}, {"grpc-timeout", "100m"}, {"user-agent", "grpc-c++/1.51.1"},
       {"x-trace-bin", "AAEC/w=="}, {"x-tab", "a\tb"}, {"x-empty", ""}, {"x-obs", "caf\xc3\xa9"});
    OK(MESH_H2_RESPONSE, {":status", "200"}, {"content-type", "application/grpc"});
    OK(MESH_H2_RESPONSE, {":status", "200"}, {"grpc-status", "5"}, {"grpc-message", "not%20found"});
    OK(MESH_H2_TRAILERS, {"grpc-status", "0"});
    OK(MESH_H2_TRAILERS, {"grpc-status", "0"}, {"x-end", "1"});
}

static void test_names(void)
{
    BAD(MESH_H2_REQUEST, "upper-case letter in a field name", REQ, {"X-Upper", "1"});
    BAD(MESH_H2_REQUEST, "invalid character in a field name", REQ, {"x y", "1"});
    BAD(MESH_H2_REQUEST, "invalid character in a field name", REQ, {"x:y", "1"});
    BAD(MESH_H2_REQUEST, "empty field name", REQ, {"", "1"});
    BAD(MESH_H2_RESPONSE, "invalid character in a field name", {":status", "200"}, {"a\x01", "1"});
}

static void test_values(void)
{
    BAD(MESH_H2_REQUEST, "control character in a field value", REQ, {"x-a", "a\r\nb"});
    BAD(MESH_H2_REQUEST, "control character in a field value", REQ, {"x-a", "a\x7f"});
    BAD(MESH_H2_REQUEST, "field value starts or ends with whitespace", REQ, {"x-a", " a"});
    BAD(MESH_H2_TRAILERS, "field value starts or ends with whitespace", {"grpc-status", "0\t"});
    /* Long values are checked eight bytes at a time: a bad byte anywhere is found, while HTAB
     * and obs-text (>= 0x80) anywhere pass. */
    char v[40];
    for (size_t len = 1; len <= 33; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            static const char bad[] = {'\0', '\x01', '\n', '\r', '\x1f', '\x7f'};
            static const char good[] = {'\t', '\x80', '\xff', '~', ' '};
            for (size_t k = 0; k < sizeof(bad) + sizeof(good); k++) {
                memset(v, 'a', len);
                v[pos] = k < sizeof(bad) ? bad[k] : good[k - sizeof(bad)];
                int edge_ws = (v[pos] == ' ' || v[pos] == '\t') && (pos == 0 || pos == len - 1);
                mesh_h2_fields_t f;
                mesh_h2_fields_reset(&f);
                int rc = mesh_h2_field_check(&f, MESH_H2_TRAILERS, (const uint8_t *)"x", 1,
                                             (const uint8_t *)v, len);
                CHECK_EQ(rc, k < sizeof(bad) || edge_ws ? -1 : 0);
            }
        }
    }
    /* A NUL inside a value (HPACK carries lengths, so it can arrive). */
    mesh_h2_fields_t f;
    mesh_h2_fields_reset(&f);
    CHECK_EQ(mesh_h2_field_check(&f, MESH_H2_TRAILERS, (const uint8_t *)"x", 1,
                                 (const uint8_t *)"a\0b", 3),
             -1);
    CHECK_STR(f.problem, "control character in a field value");
    /* The first problem sticks. */
    CHECK_EQ(
        mesh_h2_field_check(&f, MESH_H2_TRAILERS, (const uint8_t *)"X", 1, (const uint8_t *)"1", 1),
        -1);
    CHECK_STR(f.problem, "control character in a field value");
}

static void test_pseudo_headers(void)
{
    BAD(MESH_H2_REQUEST, "missing :method, :scheme or :path", {":method", "POST"},
        {":path", "/a/b"});
    BAD(MESH_H2_REQUEST, "repeated pseudo-header field", REQ, {":path", "/x/y"});
    BAD(MESH_H2_REQUEST, "pseudo-header field after a regular field", {":method", "POST"},
        {"x-a", "1"}, {":scheme", "http"}, {":path", "/a/b"});
    BAD(MESH_H2_REQUEST, "unknown pseudo-header field", REQ, {":status", "200"});
    BAD(MESH_H2_REQUEST, "unknown pseudo-header field", REQ, {":protocol", "websocket"});
    BAD(MESH_H2_REQUEST, "empty :method, :scheme or :path", {":method", "POST"},
        {":scheme", "http"}, {":path", ""});
    BAD(MESH_H2_RESPONSE, "missing :status", {"content-type", "application/grpc"});
    BAD(MESH_H2_RESPONSE, "unknown pseudo-header field", {":status", "200"}, {":path", "/"});
    BAD(MESH_H2_RESPONSE, ":status is not three digits", {":status", "20"});
    BAD(MESH_H2_RESPONSE, ":status is not three digits", {":status", "2x0"});
    BAD(MESH_H2_RESPONSE, ":status is not three digits", {":status", "099"});
    BAD(MESH_H2_TRAILERS, "pseudo-header field in trailers", {":status", "200"});
}

static void test_connection_fields(void)
{
    BAD(MESH_H2_REQUEST, "connection-specific field", REQ, {"connection", "close"});
    BAD(MESH_H2_REQUEST, "connection-specific field", REQ, {"keep-alive", "1"});
    BAD(MESH_H2_REQUEST, "connection-specific field", REQ, {"proxy-connection", "1"});
    BAD(MESH_H2_REQUEST, "connection-specific field", REQ, {"transfer-encoding", "chunked"});
    BAD(MESH_H2_REQUEST, "connection-specific field", REQ, {"upgrade", "h2c"});
    BAD(MESH_H2_REQUEST, "te other than \"trailers\"", REQ, {"te", "gzip"});
    BAD(MESH_H2_RESPONSE, "connection-specific field", {":status", "200"}, {"connection", "x"});
}

/* Each name is classified once, by the check itself: what the check returns is what
 * mesh_h2_name_of says, and the proxy's "never forward" set is te, host and the connection-specific
 * fields. Names that only look alike (another length, one letter off, upper case) are other
 * names. */
static void test_name_classes(void)
{
    static const struct {
        const char *name;
        mesh_h2_name_t id;
        int hop;
    } cases[] = {
        {":path", MESH_H2_N_PATH, 0},
        {":authority", MESH_H2_N_AUTHORITY, 0},
        {"content-type", MESH_H2_N_CONTENT_TYPE, 0},
        {"grpc-timeout", MESH_H2_N_GRPC_TIMEOUT, 0},
        {"grpc-status", MESH_H2_N_GRPC_STATUS, 0},
        {"traceparent", MESH_H2_N_TRACEPARENT, 0},
        {"tracestate", MESH_H2_N_TRACESTATE, 0},
        {"x-request-id", MESH_H2_N_REQUEST_ID, 0},
        {"grpc-accept-encoding", MESH_H2_N_GRPC_ACCEPT_ENCODING, 0},
        {"te", MESH_H2_N_TE, 1},
        {"host", MESH_H2_N_HOST, 1},
        {"connection", MESH_H2_N_CONNECTION, 1},
        {"keep-alive", MESH_H2_N_KEEP_ALIVE, 1},
        {"proxy-connection", MESH_H2_N_PROXY_CONNECTION, 1},
        {"transfer-encoding", MESH_H2_N_TRANSFER_ENCODING, 1},
        {"upgrade", MESH_H2_N_UPGRADE, 1},
        {"x-request-ie", MESH_H2_N_OTHER, 0},
        {"traceparents", MESH_H2_N_OTHER, 0},
        {"Host", MESH_H2_N_OTHER, 0},
        {"hos", MESH_H2_N_OTHER, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const uint8_t *n = (const uint8_t *)cases[i].name;
        size_t nl = strlen(cases[i].name);
        CHECK_EQ(mesh_h2_name_of(n, nl), cases[i].id);
        CHECK_EQ(mesh_h2_name_hop_by_hop(mesh_h2_name_of(n, nl)), cases[i].hop);
    }
    /* What the check returns for an acceptable field is the name's class. */
    mesh_h2_fields_t f;
    mesh_h2_fields_reset(&f);
    CHECK_EQ(mesh_h2_field_check(&f, MESH_H2_REQUEST, (const uint8_t *)":path", 5,
                                 (const uint8_t *)"/a/b", 4),
             MESH_H2_N_PATH);
    CHECK_EQ(mesh_h2_field_check(&f, MESH_H2_REQUEST, (const uint8_t *)"x-request-id", 12,
                                 (const uint8_t *)"r-1", 3),
             MESH_H2_N_REQUEST_ID);
    CHECK_EQ(mesh_h2_field_check(&f, MESH_H2_REQUEST, (const uint8_t *)"x-a", 3,
                                 (const uint8_t *)"1", 1),
             MESH_H2_N_OTHER);
    /* host is valid HTTP/2 (the proxy drops it, the check does not refuse it) */
    CHECK_EQ(mesh_h2_field_check(&f, MESH_H2_REQUEST, (const uint8_t *)"host", 4,
                                 (const uint8_t *)"a", 1),
             MESH_H2_N_HOST);
    CHECK(f.problem == NULL);
}

int main(void)
{
    RUN(test_valid_blocks);
    RUN(test_names);
    RUN(test_values);
    RUN(test_pseudo_headers);
    RUN(test_connection_fields);
    RUN(test_name_classes);
    fprintf(stderr, "ok\n");
    return 0;
}
