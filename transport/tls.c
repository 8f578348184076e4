/*
 * transport/tls.c: one TLS connection over memory BIOs (see transport/tls.h): ciphertext in,
 * plaintext out, plaintext in, ciphertext out, and what the handshake decided.
 */
#include "transport/tls.h"

#include <stdio.h>
#include <string.h>

#include "common/ssl_lib.h"

int mesh_tls_init(mesh_tls_t *t, mesh_tls_ctx_t *ctx, const char *server_name)
{
    const mesh_ssl_t *S = ctx->S;
    memset(t, 0, sizeof(*t));
    t->ssl = S->ssl_new(ctx->ssl_ctx);
    t->in = S->bio_new(S->bio_s_mem());
    t->out = S->bio_new(S->bio_s_mem());
    if (!t->ssl || !t->in || !t->out) {
        snprintf(t->reason, sizeof(t->reason), "out of memory");
        if (t->ssl)
            S->ssl_free(t->ssl);
        t->ssl = NULL;
        return -1;
    }
    /* An empty input BIO means "wait for more", not end of file. */
    S->bio_ctrl(t->in, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, NULL);
    S->bio_ctrl(t->out, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, NULL);
    S->ssl_set_bio(t->ssl, t->in, t->out); /* the SSL owns both now */
    mesh_tls_ctx_ref(ctx);
    t->ctx = ctx;
    if (ctx->server) {
        S->ssl_set_accept_state(t->ssl);
        return 0;
    }
    S->ssl_set_connect_state(t->ssl);
    if (server_name && *server_name) {
        char ip[64];
        size_t n = strlen(server_name);
        /* "[::1]" and "127.0.0.1" are checked as IP addresses and sent without SNI (RFC 6066
         * allows only host names there). */
        if (server_name[0] == '[' && n < sizeof(ip) + 1 && server_name[n - 1] == ']') {
            memcpy(ip, server_name + 1, n - 2);
            ip[n - 2] = 0;
            S->param_set1_ip_asc(S->ssl_get0_param(t->ssl), ip);
        } else if (S->param_set1_ip_asc(S->ssl_get0_param(t->ssl), server_name) != 1) {
            S->err_clear_error();
            S->ssl_ctrl(t->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                        (void *)server_name);
            S->ssl_set1_host(t->ssl, server_name);
        }
    }
    return 0;
}

void mesh_tls_session_clear(mesh_tls_session_t *s)
{
    if (s->sess)
        s->ctx->S->session_free(s->sess);
    mesh_tls_ctx_unref(s->ctx);
    s->sess = NULL;
    s->ctx = NULL;
}

void mesh_tls_use_session(mesh_tls_t *t, mesh_tls_session_t *slot)
{
    if (!t->ssl || t->ctx->server)
        return;
    const mesh_ssl_t *S = t->ctx->S;
    t->sess = slot;
    S->ssl_set_ex_data(t->ssl, 0, slot ? t : NULL);
    if (slot && slot->sess && slot->ctx == t->ctx && !t->established)
        S->ssl_set_session(t->ssl, slot->sess);
}

/* A ticket or a session id arrived: a copy goes to the connection's slot, replacing the one
 * there. A copy, because OpenSSL marks the connection's own session not resumable when the
 * connection ends without close_notify (an upstream that closed first, a reset). */
int mesh_tls_on_new_session(struct ssl_st *ssl, struct ssl_session_st *sess)
{
    const mesh_ssl_t *S = mesh_ssl(NULL, 0);
    mesh_tls_t *t = S ? S->ssl_get_ex_data(ssl, 0) : NULL;
    if (!t || !t->sess || !S->session_is_resumable(sess))
        return 0;
    SSL_SESSION *copy = S->session_dup(sess);
    if (!copy)
        return 0;
    mesh_tls_session_clear(t->sess);
    mesh_tls_ctx_ref(t->ctx);
    t->sess->ctx = t->ctx;
    t->sess->sess = copy;
    return 0; /* OpenSSL drops its reference to sess */
}

void mesh_tls_destroy(mesh_tls_t *t)
{
    if (!t->ctx)
        return;
    if (t->ssl) {
        t->ctx->S->ssl_set_ex_data(t->ssl, 0, NULL);
        t->ctx->S->ssl_free(t->ssl); /* frees the BIOs too */
    }
    mesh_tls_ctx_unref(t->ctx);
    memset(t, 0, sizeof(*t));
}

void mesh_tls_close(mesh_tls_t *t)
{
    if (t->ctx && t->ssl && t->established && !t->failed) {
        t->ctx->S->ssl_shutdown(t->ssl);
        t->ctx->S->err_clear_error();
    }
}

int mesh_tls_feed(mesh_tls_t *t, const uint8_t *p, size_t n)
{
    const mesh_ssl_t *S = t->ctx->S;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = S->bio_write(t->in, p, chunk);
        if (w <= 0) {
            snprintf(t->reason, sizeof(t->reason), "out of memory");
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Classifies a library error reason into a failure class. */
static mesh_tls_fail_t classify(int lib_reason, long verify)
{
    if (verify != X509_V_OK)
        return MESH_TLS_FAIL_VERIFY;
    switch (lib_reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return MESH_TLS_FAIL_VERIFY;
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return MESH_TLS_FAIL_NO_PEER_CERT;
    case SSL_R_NO_APPLICATION_PROTOCOL:
        return MESH_TLS_FAIL_ALPN;
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_UNEXPECTED_MESSAGE:
        return MESH_TLS_FAIL_PROTOCOL;
    default:
        break;
    }
    /* Alerts from the peer are reported as SSL_R_SSLV3_ALERT_* / SSL_R_TLSV1_ALERT_*: their
     * reason codes are 1000 + the alert number. */
    if (lib_reason >= SSL_AD_REASON_OFFSET && lib_reason < SSL_AD_REASON_OFFSET + 256) {
        if (lib_reason == SSL_AD_REASON_OFFSET + SSL_AD_NO_APPLICATION_PROTOCOL)
            return MESH_TLS_FAIL_ALPN;
        return MESH_TLS_FAIL_PEER_ALERT;
    }
    return MESH_TLS_FAIL_OTHER;
}

/* Records why the last call failed, from OpenSSL's error queue (and the verification result). */
static int fail(mesh_tls_t *t, int ssl_err)
{
    const mesh_ssl_t *S = t->ctx->S;
    unsigned long e = S->err_peek_last_error();
    long verify = S->ssl_get_verify_result(t->ssl);
    const char *r = e ? S->err_reason_string(e) : NULL;
    char rbuf[64];
    if (!r && e) {
        snprintf(rbuf, sizeof(rbuf), "error %lu", e);
        r = rbuf;
    }
    if (!r)
        r = ssl_err == SSL_ERROR_SYSCALL ? "unexpected end of input" : "handshake failed";
    if (verify != X509_V_OK)
        snprintf(t->reason, sizeof(t->reason), "%s: %s", r, S->verify_cert_error_string(verify));
    else
        snprintf(t->reason, sizeof(t->reason), "%s", r);
    t->fail_class = classify(e ? ERR_GET_REASON(e) : 0, verify);
    t->failed = 1;
    S->err_clear_error();
    return MESH_TLS_FAIL;
}

int mesh_tls_handshake(mesh_tls_t *t)
{
    if (t->failed)
        return MESH_TLS_FAIL;
    if (t->established)
        return MESH_TLS_DONE;
    const mesh_ssl_t *S = t->ctx->S;
    int rv = S->ssl_do_handshake(t->ssl);
    if (rv == 1) {
        t->established = 1;
        return MESH_TLS_DONE;
    }
    int e = S->ssl_get_error(t->ssl, rv);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return MESH_TLS_WANT;
    return fail(t, e);
}

ssize_t mesh_tls_read(mesh_tls_t *t, uint8_t *buf, size_t cap)
{
    if (t->failed)
        return MESH_TLS_FAIL;
    const mesh_ssl_t *S = t->ctx->S;
    /* Nothing fed and nothing buffered: SSL_read could only say "want read", at the cost of a
     * record-layer pass and an error-queue mark (about a thousand instructions, once per read
     * event). */
    if (S->bio_ctrl_pending(t->in) == 0 && !S->ssl_has_pending(t->ssl))
        return MESH_TLS_WANT;
    int n = S->ssl_read(t->ssl, buf, cap > (1u << 30) ? (1 << 30) : (int)cap);
    if (n > 0)
        return n;
    int e = S->ssl_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return MESH_TLS_WANT;
    if (e == SSL_ERROR_ZERO_RETURN)
        return MESH_TLS_CLOSED;
    return fail(t, e);
}

int mesh_tls_write(mesh_tls_t *t, const void *p, size_t n)
{
    if (t->failed || !t->established)
        return MESH_TLS_FAIL;
    const mesh_ssl_t *S = t->ctx->S;
    const uint8_t *b = p;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int w = S->ssl_write(t->ssl, b, chunk);
        if (w <= 0)
            return fail(t, S->ssl_get_error(t->ssl, w));
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

size_t mesh_tls_out_peek(mesh_tls_t *t, const uint8_t **p)
{
    char *data = NULL;
    long n = t->ctx->S->bio_ctrl(t->out, BIO_CTRL_INFO, 0, &data);
    *p = (const uint8_t *)data;
    return n > 0 ? (size_t)n : 0;
}

void mesh_tls_out_consume(mesh_tls_t *t, size_t n)
{
    const mesh_ssl_t *S = t->ctx->S;
    const uint8_t *p;
    if (n >= mesh_tls_out_peek(t, &p)) {
        S->bio_ctrl(t->out, BIO_CTRL_RESET, 0, NULL); /* empty; the buffer stays for reuse */
        return;
    }
    /* Rare (a partial write copied the rest away first): read the bytes out in pieces. */
    uint8_t sink[4096];
    while (n > 0) {
        int k = S->bio_read(t->out, sink, n > sizeof(sink) ? (int)sizeof(sink) : (int)n);
        if (k <= 0)
            break;
        n -= (size_t)k;
    }
}

size_t mesh_tls_out_pending(mesh_tls_t *t)
{
    return t->ctx->S->bio_ctrl_pending(t->out);
}

size_t mesh_tls_out_take(mesh_tls_t *t, uint8_t *buf, size_t cap)
{
    size_t have = 0;
    while (have < cap) {
        size_t want = cap - have;
        int k = t->ctx->S->bio_read(t->out, buf + have, want > (1u << 30) ? (1 << 30) : (int)want);
        if (k <= 0)
            break;
        have += (size_t)k;
    }
    return have;
}

const char *mesh_tls_alpn(const mesh_tls_t *t, size_t *len)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    t->ctx->S->ssl_get0_alpn(t->ssl, &p, &n);
    *len = n;
    return n ? (const char *)p : NULL;
}

void mesh_tls_timed_out(mesh_tls_t *t)
{
    if (t->failed || t->established)
        return;
    t->failed = 1;
    t->fail_class = MESH_TLS_FAIL_TIMEOUT;
    snprintf(t->reason, sizeof(t->reason), "TLS handshake timed out");
}

void mesh_tls_refuse(mesh_tls_t *t, const char *reason)
{
    t->failed = 1;
    t->established = 0;
    t->fail_class = MESH_TLS_FAIL_VERIFY;
    snprintf(t->reason, sizeof(t->reason), "%s", reason);
}

int mesh_tls_resumed(const mesh_tls_t *t)
{
    return t->ctx->S->ssl_session_reused(t->ssl);
}

const char *mesh_tls_version(const mesh_tls_t *t)
{
    return t->ctx->S->ssl_get_version(t->ssl);
}

struct x509_st *mesh_tls_peer_cert(const mesh_tls_t *t)
{
    return t->ctx->S->ssl_get1_peer_cert(t->ssl);
}

const char *mesh_tls_reason(const mesh_tls_t *t)
{
    return t->reason;
}
