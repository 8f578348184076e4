/*
 * common/addr.c: parsing, resolving, formatting and comparing "host:port" addresses (see
 * common/addr.h).
 */
#include "common/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mesh_addr_split(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1; /* no port, or a bare IPv6 address without brackets */
        hl = (size_t)(colon - s);
    }
    if (hl >= hostlen)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

/* Sets the port of a resolved address. */
static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

int mesh_addr_resolve_all(const char *s, struct sockaddr_storage *out, size_t cap, char *err,
                          size_t errlen)
{
    char host[256];
    int port;
    if (!cap || mesh_addr_split(s, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", s);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (host[0] == '\0' || strcmp(host, "*") == 0) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons((uint16_t)port);
        return 1;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return 1;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    size_t n = 0;
    for (const struct addrinfo *ai = res; ai && n < cap; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(*out))
            continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        set_port(&ss, port);
        size_t k = 0; /* the resolver may list an address once per protocol */
        while (k < n && memcmp(&out[k], &ss, sizeof(ss)) != 0)
            k++;
        if (k == n)
            out[n++] = ss;
    }
    freeaddrinfo(res);
    if (!n) {
        snprintf(err, errlen, "cannot resolve '%s': no IPv4 or IPv6 address", host);
        return -1;
    }
    return (int)n;
}

int mesh_addr_resolve(const char *s, struct sockaddr_storage *out, char *err, size_t errlen)
{
    return mesh_addr_resolve_all(s, out, 1, err, errlen) < 0 ? -1 : 0;
}

void mesh_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in4->sin_port));
    } else {
        snprintf(buf, len, "?");
    }
}

/* A numeric host (no brackets) into a socket address with port. */
static int numeric(const char *host, int port, mesh_addr_t *out)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*in6);
        return 0;
    }
    return -1;
}

int mesh_addr_parse(const char *hp, mesh_addr_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    int port;
    memset(out, 0, sizeof(*out));
    if (mesh_addr_split(hp, host, sizeof(host), &port) != 0)
        return -1;
    return numeric(host, port, out);
}

/* Writes v in decimal at p; returns the end. */
static char *put_dec(char *p, unsigned v)
{
    char d[10];
    int k = 0;
    do
        d[k++] = (char)('0' + v % 10);
    while ((v /= 10) && k < 10);
    while (k)
        *p++ = d[--k];
    return p;
}

int mesh_addr_str(const mesh_addr_t *a, char *buf, size_t n)
{
    if (a->ss.ss_family == AF_INET) {
        /* by hand: the gossip actor names the sender of every datagram this way, and
         * inet_ntop + snprintf cost more than the datagram's handling */
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
        const uint8_t *b = (const uint8_t *)&in4->sin_addr;
        char tmp[sizeof "255.255.255.255:65535"], *p = tmp;
        for (int k = 0; k < 4; k++) {
            p = put_dec(p, b[k]);
            *p++ = k < 3 ? '.' : ':';
        }
        p = put_dec(p, ntohs(in4->sin_port));
        size_t len = (size_t)(p - tmp);
        if (len >= n)
            return -1;
        memcpy(buf, tmp, len);
        buf[len] = 0;
        return 0;
    }
    if (a->ss.ss_family != AF_INET6)
        return -1;
    char tmp[INET6_ADDRSTRLEN + 16];
    mesh_addr_format((const struct sockaddr *)&a->ss, tmp, sizeof(tmp));
    return snprintf(buf, n, "%s", tmp) < (int)n ? 0 : -1;
}

int mesh_addr_same_host(const mesh_addr_t *a, const mesh_addr_t *b)
{
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    if (a->ss.ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                      &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16) == 0;
    return 0;
}

int mesh_addr_equal(const mesh_addr_t *a, const mesh_addr_t *b)
{
    if (!mesh_addr_same_host(a, b))
        return 0;
    /* sin_port and sin6_port sit at the same offset. */
    return ((const struct sockaddr_in *)&a->ss)->sin_port ==
           ((const struct sockaddr_in *)&b->ss)->sin_port;
}
