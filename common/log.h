/*
 * common/log.h: meshd's logger.
 *
 * One line per event on stderr: a JSON object {"ts","level","node","actor","msg"[,"trace_id"]}
 * when stderr is not a terminal (or when JSON is forced), readable text when it is. Every
 * thread may log, and logging never blocks it on I/O: the caller formats its line and copies
 * it into a bounded in-memory ring shared by all threads (lock-free), and a log thread writes
 * the ring out, many lines per write(2). Lines of one thread keep their order (lines of all
 * threads are written in the order they entered the ring) and never interleave. When the ring
 * is full the line is dropped and counted; once the ring has room again the log thread writes
 * a line saying how many were dropped. Lines still queued are written at process exit
 * (exit(), return from main), before an abort(), on mesh_log_flush() and mesh_log_set_fd().
 * In a forked child, or when the log thread cannot start, lines are written directly.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MESH_LOG_DEBUG = 0,
    MESH_LOG_INFO = 1,
    MESH_LOG_WARN = 2,
    MESH_LOG_ERROR = 3,
    MESH_LOG_OFF = 4,
} mesh_log_level_t;

typedef enum {
    MESH_LOG_FORMAT_AUTO = 0, /* text on a terminal, JSON otherwise */
    MESH_LOG_FORMAT_JSON = 1,
    MESH_LOG_FORMAT_TEXT = 2,
} mesh_log_format_t;

/** Size of the line ring when mesh_log_set_buffer() was not called: 64 KiB, about 400 lines
 *  of 150 bytes; 16 pages of memory at most. */
#define MESH_LOG_BUFFER_DEFAULT (64u * 1024u)

/** Sets the node name written in every line, the lowest level written and the format. */
void mesh_log_init(const char *node, mesh_log_level_t level, mesh_log_format_t format);

/** Sends log lines to fd instead of stderr (tests use a pipe or a file). Lines queued so far
 *  are written to the previous fd first. */
void mesh_log_set_fd(int fd);

/** Sets the size of the line ring in bytes (a power of two from 16 KiB to 256 MiB; each line
 *  takes its length + 8 bytes, rounded up to 8). Only before the first line is logged;
 *  returns 0, or -1 when the size is invalid or logging already started. */
int mesh_log_set_buffer(size_t bytes);

/** Writes every line logged so far (by any thread) before returning; waits at most a few
 *  seconds for an output that does not drain. */
void mesh_log_flush(void);

/** Lines dropped because the ring was full, since the start (each is also reported in the
 *  log once there is room). */
uint64_t mesh_log_dropped(void);

/** Parses "debug", "info", "warn"/"warning", "error", "off"; returns -1 if unknown. */
int mesh_log_level_parse(const char *s, mesh_log_level_t *out);

/** The name of a level ("info"). */
const char *mesh_log_level_name(mesh_log_level_t level);

/** Nonzero when lines of this level are written; check before costly formatting. */
int mesh_log_enabled(mesh_log_level_t level);

/** Writes one line; actor names the component ("proxy", "registry"), trace_id may be NULL. */
void mesh_log_write(mesh_log_level_t level, const char *actor, const char *trace_id,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void mesh_log_vwrite(mesh_log_level_t level, const char *actor, const char *trace_id,
                     const char *fmt, va_list ap);

#define mesh_log(level, actor, ...)                                                                \
    do {                                                                                           \
        if (mesh_log_enabled(level))                                                               \
            mesh_log_write((level), (actor), NULL, __VA_ARGS__);                                   \
    } while (0)
#define mesh_debug(actor, ...) mesh_log(MESH_LOG_DEBUG, actor, __VA_ARGS__)
#define mesh_info(actor, ...)  mesh_log(MESH_LOG_INFO, actor, __VA_ARGS__)
#define mesh_warn(actor, ...)  mesh_log(MESH_LOG_WARN, actor, __VA_ARGS__)
#define mesh_error(actor, ...) mesh_log(MESH_LOG_ERROR, actor, __VA_ARGS__)

#endif
