/*
 * tests/unit/transport/echo_server.h: a tiny gRPC-over-HTTP/2 echo server on nghttp2 and
 * libuv, run on its own loop thread, for the transport end-to-end tests.
 *
 * Methods: /test.Echo/Echo echoes the request bytes and ends with grpc-status 0;
 * /test.Echo/Hang never answers; /test.Echo/Die answers headers then drops the connection
 * when the first request bytes arrive.
 *
 * A server instance also has a mode (echo_server_set_mode) that changes how it treats every
 * call, for the proxy's retry and liveness tests: refuse streams, send GOAWAY, reset calls
 * after reading them, or go silent (stop reading its sockets, so PINGs stay unanswered).
 */
#ifndef MESH_TEST_ECHO_SERVER_H
#define MESH_TEST_ECHO_SERVER_H

#include <stdatomic.h>
#include <stddef.h>

/** How a server instance treats calls (see echo_server_set_mode). */
typedef enum {
    ECHO_MODE_NORMAL = 0,
    /* RST_STREAM(REFUSED_STREAM) on the request HEADERS of the first arg streams of every
     * connection (arg <= 0: every stream); later streams are served normally. */
    ECHO_MODE_REFUSE = 1,
    /* On the first request HEADERS of a connection: GOAWAY(last_stream_id 0, NO_ERROR); that
     * stream is never answered (nghttp2 ignores later ones). */
    ECHO_MODE_GOAWAY_ZERO = 2,
    /* Holds the first stream of a connection unanswered until a second stream arrives; then
     * GOAWAY(last_stream_id = the first stream's id), answers the first normally and never
     * answers the later ones. */
    ECHO_MODE_GOAWAY_AFTER_FIRST = 3,
    /* Reads the whole request (END_STREAM), then RST_STREAM(INTERNAL_ERROR), no response. */
    ECHO_MODE_RESET_INTERNAL = 4,
    /* On the first request HEADERS of a connection: stops reading that socket for good (so
     * PINGs are never acknowledged) and never answers. */
    ECHO_MODE_MUTE = 5,
    /* GOAWAY(last_stream_id 0, NO_ERROR) right after the server's SETTINGS on every new
     * connection, before any stream arrived (nghttp2 then ignores every stream). */
    ECHO_MODE_GOAWAY_AT_CONNECT = 6,
    /* Streams from the arg-th of a connection on (arg <= 1: all) are held unanswered until
     * echo_server_release(); then GOAWAY(last_stream_id = the highest held stream) and the
     * held streams are answered normally. */
    ECHO_MODE_GOAWAY_ON_RELEASE = 7,
    /* Every stream is held unanswered until echo_server_release(); then the held streams are
     * answered normally (no GOAWAY). */
    ECHO_MODE_HOLD = 8,
} echo_mode_t;

/** A running echo server. */
typedef struct echo_server echo_server_t;

/** Starts a server on 127.0.0.1 with a free port; NULL on failure. */
echo_server_t *echo_server_start(void);

/** Same on 0.0.0.0 (every 127.x.y.z reaches it, so one server stands for many instances). */
echo_server_t *echo_server_start_any(void);

/** Connections open now (accepted and not yet closed). */
int echo_server_open_conns(echo_server_t *s);

/** GOAWAY frames received from clients (a client closing a connection gracefully). */
int echo_server_goaways(echo_server_t *s);

/** Its port. */
int echo_server_port(echo_server_t *s);

/** Calls that ended with RST_STREAM CANCEL from the peer. */
int echo_server_cancels(echo_server_t *s);

/** Calls that arrived. */
int echo_server_calls(echo_server_t *s);

/** The grpc-timeout header of the last call ("" if none). */
void echo_server_last_timeout(echo_server_t *s, char *out, size_t cap);

/** The request fields of the last call but pseudo ones, "name: value\n" each ("" if none);
 *  a field the client sent never-indexed (HPACK) is "name:! value\n". */
void echo_server_last_fields(echo_server_t *s, char *out, size_t cap);

/** Sets the mode for calls and connections from now on (any thread). */
void echo_server_set_mode(echo_server_t *s, echo_mode_t mode, int arg);

/** SETTINGS_MAX_CONCURRENT_STREAMS of connections accepted from now on (default 100). */
void echo_server_set_max_streams(echo_server_t *s, int n);

/** ECHO_MODE_GOAWAY_ON_RELEASE: sends the GOAWAY and answers the held streams; ECHO_MODE_HOLD:
 *  answers the held streams (any thread). */
void echo_server_release(echo_server_t *s);

/** Connections accepted. */
int echo_server_conns(echo_server_t *s);

/** PINGs received (not ACKs); each is answered at once. */
int echo_server_pings(echo_server_t *s);

/** The server's loop stops for ms after each PING it receives, before it answers (any thread). */
void echo_server_set_ping_delay(echo_server_t *s, int ms);

/** Streams answered with RST_STREAM(REFUSED_STREAM). */
int echo_server_refused(echo_server_t *s);

/** Streams reset with RST_STREAM(INTERNAL_ERROR) after their request was read. */
int echo_server_resets(echo_server_t *s);

/** Streams that were not answered because of a GOAWAY mode or the mute mode. */
int echo_server_dropped(echo_server_t *s);

/** HEADERS frames received, including those of streams ignored after a GOAWAY. */
int echo_server_headers_frames(echo_server_t *s);

/** Calls answered to the end (trailers with grpc-status 0 submitted). */
int echo_server_completed(echo_server_t *s);

/** Stops the server and joins its thread. */
void echo_server_stop(echo_server_t *s);

#endif
