/*
 * actors/addr.c: mesh_addr_t parsing, formatting and comparison.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/io.h"

int mesh_addr_parse(const char *hp, mesh_addr_t *out)
{
    char host[64];
    const char *port;
    memset(out, 0, sizeof(*out));
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end || end[1] != ':' || (size_t)(end - hp - 1) >= sizeof(host))
            return -1;
        memcpy(host, hp + 1, (size_t)(end - hp - 1));
        host[end - hp - 1] = 0;
        port = end + 2;
    } else {
        const char *colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= sizeof(host))
            return -1;
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = 0;
        port = colon + 1;
    }
    char *endp;
    long p = strtol(port, &endp, 10);
    if (*port == 0 || *endp || p < 0 || p > 65535)
        return -1;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
        out->len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        out->len = sizeof(*in6);
        return 0;
    }
    return -1;
}

int mesh_addr_str(const mesh_addr_t *a, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        return snprintf(buf, n, "%s:%u", host, ntohs(in4->sin_port)) < (int)n ? 0 : -1;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        return snprintf(buf, n, "[%s]:%u", host, ntohs(in6->sin6_port)) < (int)n ? 0 : -1;
    }
    return -1;
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
