/*
 * common/log.c: the logger behind common/log.h.
 *
 * Lines are formatted into a stack buffer and written with a single write(2). The JSON form
 * escapes the message per RFC 8259; the timestamp is UTC with microseconds (RFC 3339).
 */
#include "common/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static char log_node[64] = "meshd";
static _Atomic int log_level = MESH_LOG_INFO;
static int log_json = 1;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void mesh_log_init(const char *node, mesh_log_level_t level, mesh_log_format_t format)
{
    if (node)
        snprintf(log_node, sizeof(log_node), "%s", node);
    atomic_store(&log_level, (int)level);
    if (format == MESH_LOG_FORMAT_AUTO)
        log_json = !isatty(log_fd);
    else
        log_json = format == MESH_LOG_FORMAT_JSON;
}

void mesh_log_set_fd(int fd)
{
    log_fd = fd;
}

int mesh_log_level_parse(const char *s, mesh_log_level_t *out)
{
    for (int i = 0; i <= MESH_LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (mesh_log_level_t)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = MESH_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *mesh_log_level_name(mesh_log_level_t level)
{
    return (unsigned)level <= MESH_LOG_OFF ? level_names[level] : "?";
}

int mesh_log_enabled(mesh_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed) &&
           level < MESH_LOG_OFF;
}

/* Appends s JSON-escaped to buf[*pos..cap), always leaving room for the closing bytes. */
static void json_escape(char *buf, size_t *pos, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;
    for (; *s && p + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[p++] = '\\';
            buf[p++] = (char)c;
        } else if (c == '\n') {
            buf[p++] = '\\';
            buf[p++] = 'n';
        } else if (c == '\t') {
            buf[p++] = '\\';
            buf[p++] = 't';
        } else if (c < 0x20) {
            memcpy(buf + p, "\\u00", 4);
            buf[p + 4] = hex[c >> 4];
            buf[p + 5] = hex[c & 15];
            p += 6;
        } else {
            buf[p++] = (char)c;
        }
    }
    *pos = p;
}

static void append(char *buf, size_t *pos, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 8 > cap)
        n = cap > *pos + 8 ? cap - *pos - 8 : 0;
    memcpy(buf + *pos, s, n);
    *pos += n;
}

void mesh_log_vwrite(mesh_log_level_t level, const char *actor, const char *trace_id,
                     const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char msg[LOG_LINE_MAX / 2];
    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%06ldZ", (long)tv.tv_usec);

    char line[LOG_LINE_MAX];
    size_t p = 0;
    const char *lvl = mesh_log_level_name(level);
    if (log_json) {
        append(line, &p, sizeof(line), "{\"ts\":\"");
        append(line, &p, sizeof(line), ts);
        append(line, &p, sizeof(line), "\",\"level\":\"");
        append(line, &p, sizeof(line), lvl);
        append(line, &p, sizeof(line), "\",\"node\":\"");
        json_escape(line, &p, sizeof(line), log_node);
        append(line, &p, sizeof(line), "\",\"actor\":\"");
        json_escape(line, &p, sizeof(line), actor ? actor : "-");
        append(line, &p, sizeof(line), "\",\"msg\":\"");
        json_escape(line, &p, sizeof(line), msg);
        if (trace_id) {
            append(line, &p, sizeof(line), "\",\"trace_id\":\"");
            json_escape(line, &p, sizeof(line), trace_id);
        }
        append(line, &p, sizeof(line), "\"}\n");
    } else {
        int n =
            snprintf(line, sizeof(line), "%s %-5s %s [%s]%s%s %s\n", ts + 11, lvl, log_node,
                     actor ? actor : "-", trace_id ? " trace=" : "", trace_id ? trace_id : "", msg);
        p = n < 0 ? 0 : (size_t)n;
        if (p >= sizeof(line)) { /* truncated: keep the line ending */
            p = sizeof(line) - 1;
            line[p - 1] = '\n';
        }
    }
    for (size_t off = 0; off < p;) {
        ssize_t w = write(log_fd, line + off, p - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved_errno;
}

void mesh_log_write(mesh_log_level_t level, const char *actor, const char *trace_id,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_log_vwrite(level, actor, trace_id, fmt, ap);
    va_end(ap);
}
