/*
 * common/base64.c: base64 encoding and decoding (see common/base64.h).
 */
#include "common/base64.h"

#include <stdint.h>

static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t mesh_b64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void mesh_b64_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    size_t i = 0;
    char *o = out;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = chars[v >> 18];
        *o++ = chars[(v >> 12) & 63];
        *o++ = chars[(v >> 6) & 63];
        *o++ = chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = chars[v >> 18];
        *o++ = chars[(v >> 12) & 63];
        *o++ = i + 1 < n ? chars[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
}

static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long mesh_b64_decode(const char *in, size_t len, void *out, size_t cap, int strict)
{
    unsigned char *o = out;
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return (long)cap + 1;
            o[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (strict && (acc & ((1u << bits) - 1)))
        return -1;
    return (long)n;
}
