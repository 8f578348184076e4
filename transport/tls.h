/*
 * transport/tls.h: TLS as a sans-I/O layer over OpenSSL memory BIOs.
 *
 * A mesh_tls_t is one TLS connection with no socket: ciphertext read from the network goes in
 * (mesh_tls_feed), plaintext comes out (mesh_tls_read); plaintext to send goes in
 * (mesh_tls_write), ciphertext to put on the network comes out (mesh_tls_out_peek/_consume).
 * The handshake advances as input arrives (mesh_tls_handshake). The HTTP/2 connection
 * (transport/h2_conn.c) runs it between its socket and nghttp2, so the sans-I/O protocol code
 * above it is the same with and without TLS.
 *
 * A mesh_tls_ctx_t is a reference-counted server or client context (an SSL_CTX plus the ALPN
 * list), made from files by transport/tls_ctx.c, which also checks the files and says what is
 * wrong with them. A connection holds a reference to the context it was made from, so a
 * context replaced by a reload (transport/tls_holder.h) lives until its last connection ends.
 *
 * libssl is opened on first use (common/ssl_lib.h): nothing here loads it before a context is
 * made.
 */
#ifndef MESH_TLS_H
#define MESH_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct x509_st;
struct ssl_st;
struct ssl_session_st;
struct bio_st;
struct ssl_ctx_st;
struct mesh_ssl;

/** Who checks client certificates on a server context. */
enum {
    MESH_TLS_CLIENT_AUTH_NONE = 0, /* no certificate asked for */
    MESH_TLS_CLIENT_AUTH_OPTIONAL, /* asked for; verified against the CA when sent */
    MESH_TLS_CLIENT_AUTH_REQUIRE,  /* a client without a valid certificate is refused */
};

/** What a context is made from. Strings are copied. */
typedef struct mesh_tls_conf {
    const char *cert_file; /* PEM: the certificate, then its chain (server: required) */
    const char *key_file;  /* PEM: its private key (required with cert_file) */
    const char *ca_file;   /* PEM: the CA(s) that verify the peer (client: required) */
    int client_auth;       /* server only: MESH_TLS_CLIENT_AUTH_* (needs ca_file) */
    const char *alpn;      /* comma-separated, in preference order ("h2", "h2,http/1.1") */
} mesh_tls_conf_t;

typedef struct mesh_tls_ctx mesh_tls_ctx_t;

/** A context's reference count and what connections need of it (read-only after creation). */
struct mesh_tls_ctx {
    struct ssl_ctx_st *ssl_ctx;
    const struct mesh_ssl *S;
    int server;
    _Atomic int refs;
    unsigned char alpn[64]; /* wire format: length-prefixed names */
    unsigned alpn_len;
    char desc[160]; /* "cert F" or "CA F", for logs */
};

/** Makes a server (server 1) or client context from conf. Returns NULL with the file and the
 *  reason in err: an unreadable or garbage PEM, an expired or not yet valid certificate, a key
 *  that does not match, a CA that does not verify the certificate. */
mesh_tls_ctx_t *mesh_tls_ctx_new(const mesh_tls_conf_t *conf, int server, char *err, size_t errlen);

/** Server contexts: to takes from's session ticket keys, so tickets issued before a reload still
 *  resume after it. */
void mesh_tls_ctx_share_tickets(mesh_tls_ctx_t *from, mesh_tls_ctx_t *to);

void mesh_tls_ctx_ref(mesh_tls_ctx_t *ctx);
void mesh_tls_ctx_unref(mesh_tls_ctx_t *ctx);

/** Results of mesh_tls_handshake and mesh_tls_read. */
enum {
    MESH_TLS_DONE = 1,    /* handshake: finished */
    MESH_TLS_WANT = 0,    /* more input needed (send what mesh_tls_out_peek has first) */
    MESH_TLS_CLOSED = -1, /* read: the peer sent close_notify */
    MESH_TLS_FAIL = -2,   /* the connection failed: mesh_tls_reason() says why */
};

/** Why a handshake failed, by class (the label of meshd_tls_handshake_failures_total). */
typedef enum mesh_tls_fail {
    MESH_TLS_FAIL_VERIFY = 0,   /* the peer's certificate did not verify */
    MESH_TLS_FAIL_NO_PEER_CERT, /* a required client certificate was not sent */
    MESH_TLS_FAIL_PEER_ALERT,   /* the peer refused us (an alert: unknown CA, bad cert ...) */
    MESH_TLS_FAIL_PROTOCOL,     /* not TLS, or a version or cipher we do not accept */
    MESH_TLS_FAIL_ALPN,         /* no protocol in common (ALPN) */
    MESH_TLS_FAIL_TIMEOUT,      /* not done within the handshake timeout (mesh_tls_timed_out) */
    MESH_TLS_FAIL_OTHER,
    MESH_TLS_FAIL_N
} mesh_tls_fail_t;

/**
 * A client's session for one upstream, kept for resumption (TLS 1.3 tickets, TLS 1.2 session ids
 * or tickets): the newest session a connection of the upstream received, and the context it
 * was made with (a session is resumed only with that context, so a reloaded certificate is
 * presented in full once). Zero it to start; mesh_tls_session_clear frees. Not thread-safe:
 * one per upstream per worker.
 */
typedef struct mesh_tls_session {
    struct ssl_session_st *sess;
    struct mesh_tls_ctx *ctx; /* a reference while sess is set */
} mesh_tls_session_t;

void mesh_tls_session_clear(mesh_tls_session_t *s);

/** One connection. Embed it or allocate it; mesh_tls_init/_destroy. */
typedef struct mesh_tls {
    mesh_tls_ctx_t *ctx;
    struct ssl_st *ssl;
    struct bio_st *in, *out; /* ciphertext from and to the network */
    int established;
    int failed;
    mesh_tls_fail_t fail_class;
    mesh_tls_session_t *sess; /* client: where new sessions go (mesh_tls_use_session) */
    char reason[200];
} mesh_tls_t;

/** Starts a connection on ctx (a reference is taken). server_name (client side, may be NULL):
 *  sent as SNI and checked against the server's certificate (a DNS name or an IP address).
 *  Returns 0 or -1 (out of memory; reason set). */
int mesh_tls_init(mesh_tls_t *t, mesh_tls_ctx_t *ctx, const char *server_name);

void mesh_tls_destroy(mesh_tls_t *t);

/** Client side, before the handshake: resumes slot's session when it was made with t's
 *  context, and stores every session the server hands out afterwards in slot (t must not move
 *  while it may receive one; mesh_tls_use_session(t, NULL) detaches). */
void mesh_tls_use_session(mesh_tls_t *t, mesh_tls_session_t *slot);

/** (transport/tls_ctx.c installs it as client contexts' new-session callback.) */
int mesh_tls_on_new_session(struct ssl_st *ssl, struct ssl_session_st *sess);

/** Sends close_notify (queued as ciphertext): the peer sees a clean end, and a client's session
 *  stays resumable. */
void mesh_tls_close(mesh_tls_t *t);

/** Ciphertext from the network. Returns 0 or -1 (out of memory). */
int mesh_tls_feed(mesh_tls_t *t, const uint8_t *p, size_t n);

/** Advances the handshake: MESH_TLS_DONE, MESH_TLS_WANT or MESH_TLS_FAIL. */
int mesh_tls_handshake(mesh_tls_t *t);

/** Decrypts into buf: the number of bytes (> 0), MESH_TLS_WANT (0: nothing more until more
 *  input), MESH_TLS_CLOSED or MESH_TLS_FAIL. */
ssize_t mesh_tls_read(mesh_tls_t *t, uint8_t *buf, size_t cap);

/** Encrypts n plaintext bytes (the handshake must be done). Returns 0 or MESH_TLS_FAIL. */
int mesh_tls_write(mesh_tls_t *t, const void *p, size_t n);

/** The ciphertext waiting to be sent (valid until the next call on t); 0 when none. */
size_t mesh_tls_out_peek(mesh_tls_t *t, const uint8_t **p);

/** Drops the first n bytes of the waiting ciphertext (they were sent or copied). */
void mesh_tls_out_consume(mesh_tls_t *t, size_t n);

/** How many bytes of ciphertext wait to be sent. */
size_t mesh_tls_out_pending(mesh_tls_t *t);

/** Moves up to cap bytes of the waiting ciphertext into buf; returns how many. (Cheaper than
 *  peek + consume of everything: an emptied memory BIO is reset with a memset of its buffer.) */
size_t mesh_tls_out_take(mesh_tls_t *t, uint8_t *buf, size_t cap);

/** The protocol ALPN chose ("h2"), or NULL with *len 0 when none was negotiated. */
const char *mesh_tls_alpn(const mesh_tls_t *t, size_t *len);

/** The handshake did not finish in time: the connection counts as failed with the reason "TLS
 *  handshake timed out" (class MESH_TLS_FAIL_TIMEOUT). */
void mesh_tls_timed_out(mesh_tls_t *t);

/** The owner refuses a peer whose handshake succeeded (its certificate proves the wrong
 *  identity): the connection counts as a failed handshake of class "verify" with reason, and as
 *  not established (nothing was sent on it). */
void mesh_tls_refuse(mesh_tls_t *t, const char *reason);

/** 1 when the handshake resumed a session (a ticket). */
int mesh_tls_resumed(const mesh_tls_t *t);

/** "TLSv1.3" ... */
const char *mesh_tls_version(const mesh_tls_t *t);

/** The peer's certificate (a new reference: X509_free it through common/ssl_lib.h), or NULL. */
struct x509_st *mesh_tls_peer_cert(const mesh_tls_t *t);

/** Why the connection failed (OpenSSL's reason, and the verification error when there is one). */
const char *mesh_tls_reason(const mesh_tls_t *t);

/** The metric label of a failure class ("verify", "no_peer_certificate" ...). */
const char *mesh_tls_fail_name(mesh_tls_fail_t f);

/** Counts a failed handshake of t and logs it (listener names where, e.g. "proxy"), at most once
 *  a minute per peer address. Thread-safe. */
void mesh_tls_fail_report(const mesh_tls_t *t, const char *listener, const struct sockaddr *peer);

/** Handshake failures so far, per class (process-wide). */
void mesh_tls_fail_counts(uint64_t out[MESH_TLS_FAIL_N]);

/** Counts a finished handshake of t (by side, and whether it resumed a session): once per
 *  connection. Thread-safe. */
void mesh_tls_count_handshake(const mesh_tls_t *t);

/** Finished handshakes so far: out[server][resumed] (process-wide). */
void mesh_tls_handshake_counts(uint64_t out[2][2]);

#endif
