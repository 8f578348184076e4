/*
 * gateway/req_timeout.c: the X-Request-Timeout header (gateway/req_timeout.h).
 */
#include "gateway/req_timeout.h"

#include <string.h>

#define MAX_SECONDS 100000000.0

/* Reads a decimal number (digits, an optional fraction) at *p; -1 when there is none. */
static int number(const char **p, const char *end, double *out)
{
    const char *s = *p;
    double v = 0, scale = 1;
    int digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        digits++;
        if (v > 1e12)
            return -1;
    }
    if (s < end && *s == '.') {
        s++;
        while (s < end && *s >= '0' && *s <= '9') {
            scale /= 10;
            v += (*s++ - '0') * scale;
            digits++;
        }
    }
    if (!digits)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

/* The unit at *p in seconds; 0 when none is there. */
static double unit(const char **p, const char *end)
{
    static const struct {
        const char *u;
        double s;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
                 {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].u);
        if ((size_t)(end - *p) >= n && memcmp(*p, units[i].u, n) == 0) {
            *p += n;
            return units[i].s;
        }
    }
    return 0;
}

int gw_req_timeout_parse(const char *v, size_t len, uint64_t *out_ms)
{
    while (len && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    const char *p = v, *end = v + len;
    double x, total = 0;
    if (number(&p, end, &x) < 0)
        return -1;
    if (p == end) {
        total = x; /* a bare number: seconds */
    } else {
        for (;;) {
            double u = unit(&p, end);
            if (u == 0)
                return -1;
            total += x * u;
            if (p == end)
                break;
            if (number(&p, end, &x) < 0)
                return -1;
        }
    }
    if (!(total > 0) || total > MAX_SECONDS)
        return -1;
    double ms = total * 1000.0;
    uint64_t m = (uint64_t)ms;
    if ((double)m < ms - 1e-6)
        m++; /* rounded up: a deadline never shrinks */
    *out_ms = m ? m : 1;
    return 0;
}
