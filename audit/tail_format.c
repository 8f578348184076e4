/*
 * audit/tail_format.c: the line `meshd audit tail` prints for people (audit/tail_format.h).
 */
#include "audit/tail_format.h"

#include <string.h>

/* Column widths (the last column, reason and details, has none). */
enum { W_TIME = 27, W_TYPE = 19, W_OUTCOME = 7, W_SERVICE = 24, W_METHOD = 16, W_PEER = 21 };

/* Prints s with control characters made visible; returns the number of characters printed
 * (UTF-8 code points: close enough to columns for padding; wide CJK characters take two). */
static size_t put_safe(FILE *out, const char *s)
{
    size_t n = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (; *u; u++) {
        unsigned char c = *u;
        if (c == '\n' || c == '\t' || c == '\r') {
            fputc('\\', out);
            fputc(c == '\n' ? 'n' : c == '\t' ? 't' : 'r', out);
            n += 2;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)fprintf(out, "\\x%02x", c);
        } else if (c == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F) { /* C1 controls, as UTF-8 */
            n += (size_t)fprintf(out, "\\u%04x", u[1]);
            u++;
        } else {
            fputc(c, out);
            n += (c & 0xC0) != 0x80; /* continuation bytes add no character */
        }
    }
    return n;
}

/* A value as text: strings as they are, numbers and booleans as JSON, others "-". */
static void put_value(FILE *out, const json_t *v, size_t *n)
{
    char num[32];
    if (json_is_string(v) && json_string_length(v) == 0) {
        fputs("\"\"", out); /* empty, not missing */
        *n += 2;
    } else if (json_is_string(v)) {
        *n += put_safe(out, json_string_value(v));
    } else if (json_is_integer(v)) {
        *n += (size_t)fprintf(out, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%g", json_real_value(v));
        *n += put_safe(out, num);
    } else if (json_is_boolean(v)) {
        *n += (size_t)fprintf(out, "%s", json_is_true(v) ? "true" : "false");
    } else {
        fputc('-', out);
        (*n)++;
    }
}

/* One padded column: the value, then spaces up to width, then one space. */
static void column(FILE *out, const json_t *v, int width)
{
    size_t n = 0;
    put_value(out, v, &n);
    for (; n < (size_t)width; n++)
        fputc(' ', out);
    fputc(' ', out);
}

void audit_tail_print_header(FILE *out)
{
    fprintf(out, "%-*s %-*s %-*s %-*s %-*s %-*s %s\n", W_TIME, "TIME", W_TYPE, "TYPE", W_OUTCOME,
            "OUTCOME", W_SERVICE, "SERVICE", W_METHOD, "METHOD", W_PEER, "PEER",
            "REASON [DETAILS]");
}

void audit_tail_print(FILE *out, const json_t *rec)
{
    json_t *o = (json_t *)rec;
    column(out, json_object_get(o, "ts"), W_TIME);
    column(out, json_object_get(o, "type"), W_TYPE);
    column(out, json_object_get(o, "outcome"), W_OUTCOME);
    column(out, json_object_get(o, "service"), W_SERVICE);
    column(out, json_object_get(o, "method"), W_METHOD);

    /* peer: "address (identity)" */
    json_t *peer = json_object_get(o, "peer");
    json_t *addr = json_object_get(peer, "address"), *id = json_object_get(peer, "identity");
    size_t n = 0;
    put_value(out, addr, &n);
    if (json_is_string(id)) {
        n += 2;
        fputs(" (", out);
        n += put_safe(out, json_string_value(id));
        fputc(')', out);
        n++;
    }
    for (; n < W_PEER; n++)
        fputc(' ', out);
    fputc(' ', out);

    n = 0;
    put_value(out, json_object_get(o, "reason"), &n);

    static const char *const details[] = {"node",    "instance", "source",   "member",   "ready",
                                          "dropped", "status",   "trace_id", "truncated"};
    int any = 0;
    for (size_t i = 0; i < sizeof(details) / sizeof(details[0]); i++) {
        json_t *v = json_object_get(o, details[i]);
        if (!v || json_is_null(v))
            continue;
        fputs(any ? " " : " [", out);
        any = 1;
        fprintf(out, "%s=", details[i]);
        put_value(out, v, &n);
    }
    if (any)
        fputc(']', out);
    fputc('\n', out);
}
