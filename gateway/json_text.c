/*
 * gateway/json_text.c: base64, float text, RFC 3339 timestamps, durations and FieldMask path
 * case for the proto3 JSON mapping.
 */
#include "gateway/json_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- base64 ------------------------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t gw_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = '=';
    }
    return o;
}

static int b64_val(char c)
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

long gw_base64_decode(const char *in, size_t n, uint8_t *out)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val(in[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* ---- floats ------------------------------------------------------------------------------ */

int gw_format_double(double v, bool as_float, char *out)
{
    int n = 0;
    if (as_float) {
        /* Like Python's json_format: the fewest digits, from 6 up, that read back as the same
         * float. */
        float f = (float)v;
        for (int p = 6; p <= 9; p++) {
            n = snprintf(out, 32, "%.*g", p, (double)f);
            if (strtof(out, NULL) == f)
                break;
        }
        return n;
    }
    for (int p = 15; p <= 17; p++) {
        n = snprintf(out, 32, "%.*g", p, v);
        if (strtod(out, NULL) == v)
            break;
    }
    return n;
}

/* ---- dates ------------------------------------------------------------------------------- */

#define TS_MIN  (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TS_MAX  253402300799LL   /* 9999-12-31T23:59:59Z */
#define DUR_MAX 315576000000LL

/* Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic, 400-year cycles). */
static int64_t days_from_date(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void date_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int put_frac(char *out, int32_t nanos)
{
    if (nanos == 0)
        return 0;
    if (nanos % 1000000 == 0)
        return sprintf(out, ".%03d", (int)(nanos / 1000000));
    if (nanos % 1000 == 0)
        return sprintf(out, ".%06d", (int)(nanos / 1000));
    return sprintf(out, ".%09d", (int)nanos);
}

int gw_format_timestamp(int64_t seconds, int32_t nanos, char *out)
{
    if (seconds < TS_MIN || seconds > TS_MAX || nanos < 0 || nanos > 999999999)
        return -1;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t sod = seconds - days * 86400;
    int64_t y;
    int m, d;
    date_from_days(days, &y, &m, &d);
    int n = sprintf(out, "%04d-%02d-%02dT%02d:%02d:%02d", (int)y, m, d, (int)(sod / 3600),
                    (int)(sod / 60 % 60), (int)(sod % 60));
    n += put_frac(out + n, nanos);
    out[n++] = 'Z';
    out[n] = 0;
    return n;
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *v)
{
    if (at + count > n)
        return -1;
    int x = 0;
    for (size_t i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        x = x * 10 + (c - '0');
    }
    *v = x;
    return 0;
}

/* Parses ".ddddddddd" at *at (if present) into nanos. */
static int parse_frac(const char *s, size_t n, size_t *at, int32_t *nanos)
{
    *nanos = 0;
    if (*at >= n || s[*at] != '.')
        return 0;
    (*at)++;
    size_t k = 0;
    int32_t v = 0;
    while (*at < n && s[*at] >= '0' && s[*at] <= '9') {
        if (k == 9)
            return -1;
        v = v * 10 + (s[*at] - '0');
        k++;
        (*at)++;
    }
    if (k == 0)
        return -1;
    for (; k < 9; k++)
        v *= 10;
    *nanos = v;
    return 0;
}

int gw_parse_timestamp(const char *s, size_t n, int64_t *seconds, int32_t *nanos)
{
    int y, mo, d, h, mi, se;
    if (digits(s, n, 0, 4, &y) || n < 20 || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
        digits(s, n, 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s, n, 11, 2, &h) ||
        s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' || digits(s, n, 17, 2, &se))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -1;
    size_t at = 19;
    if (parse_frac(s, n, &at, nanos) < 0 || at >= n)
        return -1;
    int64_t off = 0;
    if (s[at] == 'Z' || s[at] == 'z') {
        at++;
    } else if (s[at] == '+' || s[at] == '-') {
        int oh, om;
        if (digits(s, n, at + 1, 2, &oh) || at + 3 >= n || s[at + 3] != ':' ||
            digits(s, n, at + 4, 2, &om) || oh > 23 || om > 59)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (s[at] == '-' ? -1 : 1);
        at += 6;
    } else {
        return -1;
    }
    if (at != n)
        return -1;
    int64_t t = days_from_date(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (t < TS_MIN || t > TS_MAX)
        return -1;
    *seconds = t;
    return 0;
}

int gw_format_duration(int64_t seconds, int32_t nanos, char *out)
{
    if (seconds < -DUR_MAX || seconds > DUR_MAX || nanos <= -1000000000 || nanos >= 1000000000 ||
        (seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0))
        return -1;
    int n = 0;
    if (seconds < 0 || nanos < 0) {
        out[n++] = '-';
        seconds = -seconds;
        nanos = -nanos;
    }
    n += sprintf(out + n, "%lld", (long long)seconds);
    n += put_frac(out + n, nanos);
    out[n++] = 's';
    out[n] = 0;
    return n;
}

int gw_parse_duration(const char *s, size_t n, int64_t *seconds, int32_t *nanos)
{
    size_t at = 0;
    bool neg = false;
    if (at < n && s[at] == '-') {
        neg = true;
        at++;
    }
    size_t start = at;
    int64_t sec = 0;
    while (at < n && s[at] >= '0' && s[at] <= '9') {
        sec = sec * 10 + (s[at] - '0');
        if (sec > DUR_MAX)
            return -1;
        at++;
    }
    int32_t ns = 0;
    bool had_int = at > start;
    if (parse_frac(s, n, &at, &ns) < 0)
        return -1;
    if ((!had_int && ns == 0 && (at == start)) || at + 1 != n || s[at] != 's')
        return -1;
    if (!had_int && at == start)
        return -1;
    *seconds = neg ? -sec : sec;
    *nanos = neg ? -ns : ns;
    return 0;
}

/* ---- FieldMask path case ----------------------------------------------------------------- */

long gw_path_to_camel(const char *in, size_t n, char *out)
{
    long o = 0;
    bool after = false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'Z')
            return -1;
        if (after) {
            if (c < 'a' || c > 'z')
                return -1;
            out[o++] = (char)(c - 'a' + 'A');
            after = false;
        } else if (c == '_') {
            after = true;
        } else {
            out[o++] = c;
        }
    }
    if (after)
        return -1;
    out[o] = 0;
    return o;
}

long gw_path_to_snake(const char *in, size_t n, char *out)
{
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '_')
            return -1;
        if (c >= 'A' && c <= 'Z') {
            out[o++] = '_';
            out[o++] = (char)(c - 'A' + 'a');
        } else {
            out[o++] = c;
        }
    }
    out[o] = 0;
    return o;
}
