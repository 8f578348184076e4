/*
 * tests/unit/transport/h2_client.h: a blocking nghttp2 client for the transport tests: opens
 * calls, streams request bytes, and collects each call's status, headers and body.
 */
#ifndef MESH_TEST_H2_CLIENT_H
#define MESH_TEST_H2_CLIENT_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

/** One call's outcome. */
typedef struct h2_call {
    int32_t id;
    int http_status;
    int grpc_status; /* -1 until seen */
    char grpc_message[256];
    int saw_echo_bin;
    char fields[1024]; /* every response field and trailer but pseudo ones, "name: value\n" */
    uint8_t *body;
    size_t body_len;
    int closed;
    uint32_t rst_error;
    /* request body */
    const uint8_t *req;
    size_t req_len, req_off;
    int req_end; /* end the stream after req */
} h2_call_t;

/** A client connection. */
typedef struct h2_client {
    int fd;
    nghttp2_session *session;
    int dead;
    const nghttp2_nv *extra; /* fields added to every request (n_extra of them), or NULL */
    size_t n_extra;
} h2_client_t;

/** Connects to 127.0.0.1:port. 0 or -1. */
int h2_client_connect(h2_client_t *c, int port);

/** Starts a call: POST path with content_type (and grpc-timeout when timeout != NULL). */
int h2_client_call(h2_client_t *c, h2_call_t *call, const char *path, const char *content_type,
                   const char *timeout, const uint8_t *body, size_t len, int end);

/** Sends and receives until every call in calls[] closed or deadline_ms passes. 0 or -1. */
int h2_client_wait(h2_client_t *c, h2_call_t **calls, size_t n, int deadline_ms);

/** Runs the connection for ms milliseconds. */
void h2_client_pump(h2_client_t *c, int ms);

/** Closes the socket and frees the session. */
void h2_client_close(h2_client_t *c);

/** Frees a call's body. */
void h2_call_free(h2_call_t *call);

#endif
