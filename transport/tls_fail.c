/*
 * transport/tls_fail.c: TLS handshakes counted: finished ones by side and resumption for
 * meshd_tls_handshakes_total{side,resumed}, and failed ones per class for
 * meshd_tls_handshake_failures_total{reason=...}, these logged with OpenSSL's reason at most once a
 * minute per peer IP address (a scanner or a misconfigured client must not flood the log; the
 * next line says how many failures were not logged in between).
 */
#include "transport/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#define LOG_EVERY_S 60
#define SLOTS       256

static _Atomic uint64_t counts[MESH_TLS_FAIL_N];
static _Atomic uint64_t done[2][2]; /* [server][resumed] */

typedef struct slot {
    char ip[64];
    time_t logged;
    uint64_t unlogged;
} slot_t;

static slot_t slots[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *mesh_tls_fail_name(mesh_tls_fail_t f)
{
    static const char *const names[MESH_TLS_FAIL_N] = {
        [MESH_TLS_FAIL_VERIFY] = "verify",
        [MESH_TLS_FAIL_NO_PEER_CERT] = "no_peer_certificate",
        [MESH_TLS_FAIL_PEER_ALERT] = "peer_alert",
        [MESH_TLS_FAIL_PROTOCOL] = "protocol",
        [MESH_TLS_FAIL_ALPN] = "alpn",
        [MESH_TLS_FAIL_TIMEOUT] = "timeout",
        [MESH_TLS_FAIL_OTHER] = "other",
    };
    return f < MESH_TLS_FAIL_N ? names[f] : "other";
}

static void peer_ip(const struct sockaddr *sa, char *out, size_t len)
{
    out[0] = 0;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)len);
    if (!out[0])
        snprintf(out, len, "(unknown)");
}

void mesh_tls_fail_report(const mesh_tls_t *t, const char *listener, const struct sockaddr *peer)
{
    mesh_tls_fail_t f = t->fail_class < MESH_TLS_FAIL_N ? t->fail_class : MESH_TLS_FAIL_OTHER;
    atomic_fetch_add(&counts[f], 1);
    char ip[64];
    peer_ip(peer, ip, sizeof(ip));
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    time_t now = time(NULL);
    uint64_t skipped = 0;
    int log_it = 0;
    pthread_mutex_lock(&lock);
    slot_t *s = &slots[h % SLOTS];
    if (strcmp(s->ip, ip) != 0) { /* a new peer (or one that shares the slot): log it */
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
        s->unlogged = 0;
        s->logged = now;
        log_it = 1;
    } else if (now - s->logged >= LOG_EVERY_S) {
        skipped = s->unlogged;
        s->unlogged = 0;
        s->logged = now;
        log_it = 1;
    } else {
        s->unlogged++;
    }
    pthread_mutex_unlock(&lock);
    if (!log_it)
        return;
    if (skipped)
        mesh_warn("tls",
                  "%s: TLS handshake with %s failed (%s): %s (%llu more since the last line)",
                  listener, ip, mesh_tls_fail_name(f), t->reason, (unsigned long long)skipped);
    else
        mesh_warn("tls", "%s: TLS handshake with %s failed (%s): %s", listener, ip,
                  mesh_tls_fail_name(f), t->reason);
}

void mesh_tls_fail_counts(uint64_t out[MESH_TLS_FAIL_N])
{
    for (int i = 0; i < MESH_TLS_FAIL_N; i++)
        out[i] = atomic_load(&counts[i]);
}

void mesh_tls_count_handshake(const mesh_tls_t *t)
{
    atomic_fetch_add(&done[t->ctx->server ? 1 : 0][mesh_tls_resumed(t) ? 1 : 0], 1);
}

void mesh_tls_handshake_counts(uint64_t out[2][2])
{
    for (int s = 0; s < 2; s++)
        for (int r = 0; r < 2; r++)
            out[s][r] = atomic_load(&done[s][r]);
}
