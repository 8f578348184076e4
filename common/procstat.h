/*
 * common/procstat.h: what the process costs, read from /proc/self: CPU seconds (user and
 * system), resident memory, open file descriptors and their limit, the start time. For the
 * process metrics of the admin API (meshd_process_*). Linux only; a field that cannot be read
 * is reported as unknown, never guessed.
 */
#ifndef MESH_PROCSTAT_H
#define MESH_PROCSTAT_H

#include <stdint.h>

/** One reading; a negative value is unknown. */
typedef struct mesh_procstat {
    double cpu_user_s, cpu_system_s; /* CPU time used so far */
    double rss_bytes;                /* resident set size */
    double vsize_bytes;              /* virtual memory size */
    double open_fds;                 /* entries of /proc/self/fd */
    double max_fds;                  /* RLIMIT_NOFILE's soft limit */
    double start_time_s;             /* Unix time the process started */
    double threads;                  /* threads of the process */
} mesh_procstat_t;

/** Reads the process's figures now. 0, or -1 when /proc/self/stat cannot be read (the fields
 *  that could be read are set, the others are -1). */
int mesh_procstat_read(mesh_procstat_t *out);

/** Parses the content of /proc/PID/stat (a NUL-terminated line) into out's CPU, RSS, vsize,
 *  threads and start time (page size and clock ticks given, boot_time_s the system's boot as
 *  Unix time). 0, or -1 when malformed (a comm with ")" in it is handled). */
int mesh_procstat_parse(const char *stat, long page_size, long ticks, double boot_time_s,
                        mesh_procstat_t *out);

#endif
