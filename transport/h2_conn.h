/*
 * transport/h2_conn.h: one HTTP/2 connection (server or client side) on a libuv TCP handle,
 * driven by nghttp2 without per-frame allocation.
 *
 * Input: the socket is read into a buffer shared by the worker and fed to
 * nghttp2_session_mem_recv(); DATA payloads are handed to the owner's callbacks as borrowed
 * slices. Output: frames produced by nghttp2_session_mem_send() are gathered into one write
 * batch (control frames copied into a reusable byte buffer, DATA payloads lent from chunk
 * queues through NGHTTP2_DATA_FLAG_NO_COPY and the send_data callback) and written with one
 * uv_write of several uv_buf_t. At most one write is in flight per connection, which bounds
 * what a connection buffers and lets a slow socket push back on nghttp2's flow control.
 *
 * Writes go out with uv_try_write first; only a remainder the socket did not take is queued
 * with uv_write (so a connection that keeps up never arms POLLOUT). A connection attached to
 * a flusher (mesh_h2_conn_set_flusher) does not write when asked to flush: it is queued and
 * written once per loop iteration, so everything one loop turn produced for it (the frames
 * of every call whose input arrived in that turn, on any connection) leaves in one write.
 *
 * Re-entrancy: flush and close requests made from inside this connection's nghttp2
 * callbacks are deferred until the callback returns, so owners may call them anywhere.
 */
#ifndef MESH_H2_CONN_H
#define MESH_H2_CONN_H

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "transport/chunk.h"
#include "transport/h2_liveness.h"

struct mesh_tls;
struct mesh_tls_ctx;

/** Largest number of write-batch segments. */
#define MESH_H2_MAX_SEGS 64

typedef struct mesh_h2_conn mesh_h2_conn_t;

/**
 * Per-loop write coalescing for many connections. Flush requests of attached connections are
 * queued and run from a uv_check handle (right after the poll phase delivered every ready
 * socket of this turn) and from a uv_prepare handle (before the loop may block, for requests
 * made by timers, completed writes or close callbacks). Both handles are unreferenced: they
 * do not keep the loop alive.
 *
 * It also waits one more poll: when a turn ends with output queued, the flusher first lets
 * the loop poll once more without blocking (an active idle handle makes libuv's poll timeout
 * 0), so input that arrived meanwhile joins the same writes; the next check writes everything.
 * Under load that is about a fifth fewer reads and writes per call for the proxy (bench/proxy,
 * h2load -c 10 -m 10: writes per call 0.28 -> 0.23); at one call at a time it costs a
 * non-blocking epoll_wait per turn, lost in the noise of the wake-ups (h2load -c 1 -m 1).
 */
typedef struct mesh_h2_flusher {
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle;        /* active while holding: the next poll does not block */
    mesh_h2_conn_t *dirty; /* queued connections, linked through dirty_next */
    int closed;            /* after mesh_h2_flusher_close: flushes are immediate again */
    int held;              /* this turn's writes wait for the next check */
    uint64_t now_ns;       /* the turn's clock (mesh_h2_flusher_now_ns); 0: not read yet */
} mesh_h2_flusher_t;

/** The loop turn's clock: uv_hrtime() read once between the flusher's prepare and check (and
 * once between check and the next prepare), so the calls of one batch of input share one
 * reading instead of a clock_gettime each. Off by at most the time the batch takes. */
static inline uint64_t mesh_h2_flusher_now_ns(mesh_h2_flusher_t *f)
{
    if (!f->now_ns)
        f->now_ns = uv_hrtime();
    return f->now_ns;
}

/** Initializes f on loop and starts it. Returns 0 (libuv cannot fail these inits). */
int mesh_h2_flusher_init(mesh_h2_flusher_t *f, uv_loop_t *loop);

/** Flushes what is queued, then closes the handles; cb runs once per handle (three times).
 * Flushes of connections still attached are immediate from here on. */
void mesh_h2_flusher_close(mesh_h2_flusher_t *f, uv_close_cb cb);

/** What the owner supplies. */
typedef struct mesh_h2_conn_ops {
    /** The connection is closing: detach streams. The session is still valid here. */
    void (*on_teardown)(mesh_h2_conn_t *c);
    /** All handles are closed: free the owner object. */
    void (*on_closed)(mesh_h2_conn_t *c);
    /** Every write completed and nothing is left to send (used to finish a drain). */
    void (*on_idle)(mesh_h2_conn_t *c);
    /** Calls waiting for an answer on this connection (for the liveness check; NULL: the
     * check never fires). */
    size_t (*outstanding)(mesh_h2_conn_t *c);
    /** The peer became suspect (suspect 1: a liveness PING is out, nothing arrived since) or
     *  not any more (0: it answered, or the connection is closing); may be NULL. */
    void (*on_suspect)(mesh_h2_conn_t *c, int suspect);
    /** The TLS handshake finished, before anything is sent: the place to read or check the
     *  peer's certificate. Return -1 to refuse the peer (call mesh_tls_refuse first: the
     *  connection then fails as a failed handshake), else 0. May be NULL. */
    int (*on_tls_done)(mesh_h2_conn_t *c);
} mesh_h2_conn_ops_t;

/** One segment of the write batch: bytes in the batch buffer or a lent chunk slice. */
typedef struct mesh_h2_seg {
    mesh_chunk_t *chunk; /* NULL: bytes at off in the batch buffer */
    const uint8_t *data;
    size_t off, len;
} mesh_h2_seg_t;

/** The connection; owners embed it as their first member. */
struct mesh_h2_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect timeout, then keepalive and liveness */
    uv_write_t wreq;
    nghttp2_session *session;
    const mesh_h2_conn_ops_t *ops;
    uint8_t *rbuf; /* shared read buffer (owner's) */
    size_t rbuf_len;
    /* write batch */
    uint8_t *bytes;
    size_t bytes_len, bytes_cap;
    mesh_h2_seg_t segs[MESH_H2_MAX_SEGS];
    uv_buf_t bufs[MESH_H2_MAX_SEGS];
    int n_segs;
    size_t batch_total;
    /* write coalescing (NULL flusher: flush writes at once) */
    mesh_h2_flusher_t *flusher;
    mesh_h2_conn_t *dirty_next, **dirty_pprev; /* dirty_pprev set while queued */
    /* state */
    int depth; /* nesting of nghttp2 calls on this session */
    int writing;
    int want_flush;
    int want_close;
    int closing;
    int handles_open;
    int reading;
    mesh_h2_live_t live; /* keepalive and liveness PINGs, in loop time (h2_liveness.h) */
    int suspect;         /* as last told to ops->on_suspect */
    uint64_t timer_due;  /* loop time the timer fires; 0: stopped */
    const char *name;    /* for logs */
    /* TLS (mesh_h2_conn_set_tls; NULL: h2c): ciphertext on the socket, plaintext to nghttp2 */
    struct mesh_tls *tls;
    const char *tls_where; /* for handshake failure logs: "proxy", "upstream" ... */
};

/**
 * Initializes the TCP and timer handles on loop (the session is set later with
 * mesh_h2_conn_set_session). Returns 0 or a negative libuv error.
 */
int mesh_h2_conn_init(mesh_h2_conn_t *c, uv_loop_t *loop, const mesh_h2_conn_ops_t *ops,
                      uint8_t *rbuf, size_t rbuf_len, const char *name);

/** Attaches the nghttp2 session (whose user_data must be c). */
void mesh_h2_conn_set_session(mesh_h2_conn_t *c, nghttp2_session *s);

/** Attaches the connection to a flusher of the same loop (before it starts). */
void mesh_h2_conn_set_flusher(mesh_h2_conn_t *c, mesh_h2_flusher_t *f);

/**
 * Runs the connection over TLS made from ctx (a reference is taken): a server context accepts,
 * a client context connects and checks server_name (SNI and the certificate's names). Call
 * before mesh_h2_conn_start. Nothing goes to nghttp2 or from it until the handshake is done; a
 * failed handshake is counted and logged (mesh_tls_fail_report, as where) and closes the
 * connection. Reads decrypt into the shared read buffer; writes encrypt a batch at once (the
 * read buffer is the plaintext scratch) and send the ciphertext straight from OpenSSL's memory
 * BIO when the socket takes it all. Returns 0 or -1 (out of memory).
 */
int mesh_h2_conn_set_tls(mesh_h2_conn_t *c, struct mesh_tls_ctx *ctx, const char *server_name,
                         const char *where);

/** Closes the connection as a failed handshake (class "timeout", counted and logged) when its
 *  TLS handshake is not done within timeout_ms from now (0: no limit). Server side: at accept;
 *  client side: once connected (the connect timeout covers the TCP part). Shares the timer
 *  with keepalive and liveness. */
void mesh_h2_conn_tls_timeout(mesh_h2_conn_t *c, uint64_t timeout_ms);

/** Starts reading the socket. Returns 0 or a negative libuv error. */
int mesh_h2_conn_start(mesh_h2_conn_t *c);

/** Sends PINGs every interval_ms and closes the connection when one is unanswered for
 * timeout_ms; 0 disables. */
void mesh_h2_conn_keepalive(mesh_h2_conn_t *c, uint64_t interval_ms, uint64_t timeout_ms);

/** Liveness: when calls are outstanding (ops->outstanding) and nothing was received for
 * stall_ms since the later of the last read and a write, a PING is sent, and the connection
 * is closed when it is not answered within timeout_ms. A peer whose packets are silently
 * dropped is found in stall_ms + timeout_ms, not after TCP's retransmission timeout; a peer
 * that is only slow answers the PING, and is not asked again until something more is
 * written. 0 disables. Call once the connection is established. */
void mesh_h2_conn_liveness(mesh_h2_conn_t *c, uint64_t stall_ms, uint64_t timeout_ms);

/** Lets the connection know a PING ACK arrived (call from on_frame_recv). */
void mesh_h2_conn_ping_acked(mesh_h2_conn_t *c);

/** Writes whatever nghttp2 has to send (deferred when called from inside a callback, and to
 * the end of the loop turn when the connection has a flusher). */
void mesh_h2_conn_flush(mesh_h2_conn_t *c);

/** Closes the connection (deferred when called from inside a callback). */
void mesh_h2_conn_close(mesh_h2_conn_t *c);

/** Feeds bytes to the session as if read from the socket (tests, fuzzers). */
int mesh_h2_conn_feed(mesh_h2_conn_t *c, const uint8_t *data, size_t len);

/**
 * A DATA source: a chunk queue plus what to do at its end. on_eof (may be NULL) is called
 * once when the last byte is handed out and q.eof is set; it returns nonzero when it
 * submitted trailers (the DATA then does not end the stream).
 */
typedef struct mesh_h2_source {
    mesh_chunkq_t q;
    int deferred; /* the read callback said NGHTTP2_ERR_DEFERRED: resume after appending */
    int (*on_eof)(struct mesh_h2_source *src, nghttp2_session *session, int32_t stream_id);
} mesh_h2_source_t;

/**
 * The nghttp2 data source read callback for a mesh_h2_source_t in source->ptr: lends DATA
 * with NGHTTP2_DATA_FLAG_NO_COPY, defers when the queue is empty, ends the stream at EOF.
 * Resume a deferred stream with mesh_h2_source_resume() after appending.
 */
ssize_t mesh_h2_source_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data);

/** After appending to (or ending) src's queue: nghttp2_session_resume_data() if the stream
 * is waiting for it (saves nghttp2 a stream lookup per DATA chunk when it is not). */
static inline void mesh_h2_source_resume(mesh_h2_source_t *src, nghttp2_session *session,
                                         int32_t stream_id)
{
    if (src->deferred) {
        src->deferred = 0;
        nghttp2_session_resume_data(session, stream_id);
    }
}

/** The nghttp2 send_data callback paired with mesh_h2_source_read (user_data is the conn). */
int mesh_h2_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                      size_t length, nghttp2_data_source *source, void *user_data);

#endif
