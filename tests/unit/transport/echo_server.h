/*
 * tests/unit/transport/echo_server.h: a tiny gRPC-over-HTTP/2 echo server on nghttp2 and
 * libuv, run on its own loop thread, for the transport end-to-end tests.
 *
 * Methods: /test.Echo/Echo echoes the request bytes and ends with grpc-status 0;
 * /test.Echo/Hang never answers; /test.Echo/Die answers headers then drops the connection
 * when the first request bytes arrive.
 */
#ifndef MESH_TEST_ECHO_SERVER_H
#define MESH_TEST_ECHO_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

/** A running echo server. */
typedef struct echo_server echo_server_t;

/** Starts a server on 127.0.0.1 with a free port; NULL on failure. */
echo_server_t *echo_server_start(void);

/** Its port. */
int echo_server_port(echo_server_t *s);

/** Calls that ended with RST_STREAM CANCEL from the peer. */
int echo_server_cancels(echo_server_t *s);

/** Calls that arrived. */
int echo_server_calls(echo_server_t *s);

/** The grpc-timeout header of the last call ("" if none). */
void echo_server_last_timeout(echo_server_t *s, char *out, size_t cap);

/** Stops the server and joins its thread. */
void echo_server_stop(echo_server_t *s);

#endif
