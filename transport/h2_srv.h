/*
 * transport/h2_srv.h: the gateway's HTTP/2 cleartext (h2c) server connection, sans-I/O.
 *
 * The HTTP/2 twin of transport/h1_conn.h, with the same shape so one binding
 * (transport/h1_server.c) and one application (gateway/gw_front.c) serve both: bytes in
 * (h2s_conn_feed), bytes out (h2s_conn_take_out / h2s_conn_sent), request events out through a
 * callback table (a head as an h1_conn_head_t, body pieces, the end, "this request is over"),
 * responses in per request (h2s_conn_respond / _body / _end / _respond_error, the same
 * signatures as h1_conn's). A request id is its stream id. The framing, HPACK, flow control and
 * the protocol checks are nghttp2's (a server session driven with mem_recv / mem_send); this
 * file adds the request/response model and limits: a header block over max_head gets 431, a
 * path over max_target 414, a body over max_body 413, at most 100 streams at once.
 *
 * Backpressure: each stream buffers what the application wrote until the client's
 * flow-control window lets nghttp2 send it; h2s_conn_body() returns 1 once a stream holds
 * out_high / 4 bytes (64 KiB by default) and on_drain follows when it fell below half of that,
 * so a client that stops reading a stream stops the application writing it (and the gateway
 * stops consuming the upstream call behind it). Request bodies are flow-controlled per stream
 * (automatic WINDOW_UPDATE is off): a stream's bytes are acknowledged once the application has
 * received them, unless it paused the stream (h2s_conn_pause: its upstream cannot take more),
 * then only at h2s_conn_resume; so a paused stream holds at most its window (64 KiB) and the
 * client stops sending it, while the connection's window (100 streams' worth) keeps the other
 * streams flowing. A body is bounded by max_body unless the application lifts that for a
 * stream it consumes as it arrives (h2s_conn_body_limit).
 *
 * Upgrade from HTTP/1.1 (`Upgrade: h2c` with `HTTP2-Settings`): the binding collects the
 * HTTP/1.1 request and makes the connection with h2s_conn_new_upgrade(), which answers `101
 * Switching Protocols` and serves that request as stream 1.
 */
#ifndef TRANSPORT_H2_SRV_H
#define TRANSPORT_H2_SRV_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/h1_conn.h"

/** The client connection preface (RFC 9113 3.4), 24 bytes: how a prior-knowledge h2c
 *  connection is recognized on a port that also serves HTTP/1.1. */
#define H2S_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2S_PREFACE_LEN 24

/** Streams open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define H2S_MAX_STREAMS 100

/** A connection. */
typedef struct h2s_conn h2s_conn_t;

/** What a connection tells its owner; as h1_conn_cbs_t (ids are stream ids). on_error's
 *  status is what the connection answered itself (413, 431, ...) or 0 (stream reset by the
 *  client, connection gone). */
typedef struct {
    void (*on_head)(void *ud, h2s_conn_t *c, uint64_t id, const h1_conn_head_t *head);
    void (*on_body)(void *ud, h2s_conn_t *c, uint64_t id, const char *data, size_t len);
    void (*on_end)(void *ud, h2s_conn_t *c, uint64_t id);
    void (*on_error)(void *ud, h2s_conn_t *c, uint64_t id, int status, const char *why);
    void (*on_drain)(void *ud, h2s_conn_t *c);
    void (*on_wake)(void *ud, h2s_conn_t *c);
} h2s_conn_cbs_t;

/** A new connection expecting the client preface (cfg may be NULL: h1_conn's defaults for
 *  max_head, max_target, max_headers, max_body, out_high, idle_timeout_ms), or NULL. mem is
 *  nghttp2's allocator (the binding's per-loop transport/h2_mem.h; NULL: malloc). */
h2s_conn_t *h2s_conn_new(const h1_conn_config_t *cfg, const h2s_conn_cbs_t *cbs, void *ud,
                         uint64_t now_ms, nghttp2_mem *mem);

/**
 * Decodes an HTTP2-Settings header value (base64url, no padding) into out: its length, or -1
 * when it is not base64url, does not fit or is not a whole number of settings (6 bytes each).
 */
int h2s_settings_decode(const char *value, size_t len, uint8_t *out, size_t cap);

/**
 * A connection upgraded from HTTP/1.1: its first output is `101 Switching Protocols`, settings
 * (decoded with h2s_settings_decode) are the client's, and head + body (copied) become stream
 * 1, delivered to the callbacks by h2s_conn_start(). NULL when out of memory or nghttp2 refuses
 * the settings.
 */
h2s_conn_t *h2s_conn_new_upgrade(const h1_conn_config_t *cfg, const h2s_conn_cbs_t *cbs, void *ud,
                                 uint64_t now_ms, nghttp2_mem *mem, const uint8_t *settings,
                                 size_t settings_len, const h1_conn_head_t *head, const char *body,
                                 size_t body_len);

/** Delivers the upgraded request (on_head, on_body, on_end of stream 1); nothing for a
 *  connection made with h2s_conn_new(). Call once the owner is ready for callbacks. */
void h2s_conn_start(h2s_conn_t *c);

/** Frees c. Requests whose responses have not ended get on_error(status 0) first. */
void h2s_conn_free(h2s_conn_t *c);

/* ---- input and output (as h1_conn's) ------------------------------------------------------- */

size_t h2s_conn_feed(h2s_conn_t *c, const char *data, size_t len, uint64_t now_ms);
void h2s_conn_eof(h2s_conn_t *c, uint64_t now_ms);
int h2s_conn_wants_read(const h2s_conn_t *c);
size_t h2s_conn_take_out(h2s_conn_t *c, const char **data, uint64_t now_ms);
void h2s_conn_sent(h2s_conn_t *c, uint64_t now_ms);
int h2s_conn_should_close(const h2s_conn_t *c);
/** Graceful stop: GOAWAY; streams begun are answered, then the connection closes. */
void h2s_conn_shutdown(h2s_conn_t *c);
uint64_t h2s_conn_deadline(const h2s_conn_t *c);
void h2s_conn_on_timer(h2s_conn_t *c, uint64_t now_ms);

/* ---- responses (as h1_conn's; header names are sent lower-cased) ---------------------------- */

int h2s_conn_respond(h2s_conn_t *c, uint64_t id, int status, const h1_conn_hdr_t *headers,
                     size_t n_headers, int64_t content_length);
int h2s_conn_body(h2s_conn_t *c, uint64_t id, const void *data, size_t len);
int h2s_conn_end(h2s_conn_t *c, uint64_t id);
int h2s_conn_respond_error(h2s_conn_t *c, uint64_t id, int status, const char *message);

/** Most trailer fields of a response. */
#define H2S_MAX_TRAILERS 8

/** Ends a started response with trailer fields (a HEADERS frame after the body: gRPC's
 *  grpc-status and grpc-message), instead of h2s_conn_end(). 0, or -1 (not started, ended,
 *  none or more than H2S_MAX_TRAILERS fields, a bad field, out of memory). */
int h2s_conn_end_trailers(h2s_conn_t *c, uint64_t id, const h1_conn_hdr_t *trailers, size_t n);

/** Streams open now (requests begun and not over). */
unsigned h2s_conn_streams(const h2s_conn_t *c);

/* ---- request body flow control --------------------------------------------------------------- */

/** Stops acknowledging stream id's request body: bytes still arrive (on_body) up to the
 *  stream's window, then the client must wait. 0, or -1 when id is not open. */
int h2s_conn_pause(h2s_conn_t *c, uint64_t id);

/** Undoes h2s_conn_pause(): what arrived meanwhile is acknowledged (WINDOW_UPDATE, on_wake).
 *  0, or -1 when id is not open. */
int h2s_conn_resume(h2s_conn_t *c, uint64_t id);

/** Body bytes of stream id received while it was paused and not yet acknowledged. */
size_t h2s_conn_held(const h2s_conn_t *c, uint64_t id);

/** As h1_conn_body_limit(): stream id's body limit (0: none), from on_head. 0 or -1. */
int h2s_conn_body_limit(h2s_conn_t *c, uint64_t id, uint64_t max_body);

#endif
