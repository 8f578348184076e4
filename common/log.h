/*
 * common/log.h: meshd's logger.
 *
 * One line per event on stderr: a JSON object {"ts","level","node","actor","msg"[,"trace_id"]}
 * when stderr is not a terminal (or when JSON is forced), readable text when it is. Every
 * thread may log; each line is written with one write(2), so lines never interleave.
 */
#ifndef MESH_LOG_H
#define MESH_LOG_H

#include <stdarg.h>

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

/** Sets the node name written in every line, the lowest level written and the format. */
void mesh_log_init(const char *node, mesh_log_level_t level, mesh_log_format_t format);

/** Sends log lines to fd instead of stderr (tests use a pipe or a file). */
void mesh_log_set_fd(int fd);

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
