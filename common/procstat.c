/*
 * common/procstat.c: the process's figures from /proc/self (see common/procstat.h).
 */
#include "common/procstat.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int mesh_procstat_parse(const char *stat, long page_size, long ticks, double boot_time_s,
                        mesh_procstat_t *out)
{
    /* "pid (comm) state ppid ...": comm may hold spaces and ')' so start after the last ')'. */
    const char *p = strrchr(stat, ')');
    if (!p || p[1] != ' ' || ticks <= 0 || page_size <= 0)
        return -1;
    p += 2;
    /* Fields from 3 (state) on; we want 14 utime, 15 stime, 20 num_threads, 22 starttime,
     * 23 vsize, 24 rss. */
    double f[25] = {0};
    int field = 3;
    while (*p && field <= 24) {
        char *end;
        if (field == 3) { /* the state letter */
            while (*p && *p != ' ')
                p++;
        } else {
            double v = strtod(p, &end);
            if (end == p)
                return -1;
            f[field] = v;
            p = end;
        }
        if (*p == ' ')
            p++;
        field++;
    }
    if (field <= 24)
        return -1;
    out->cpu_user_s = f[14] / (double)ticks;
    out->cpu_system_s = f[15] / (double)ticks;
    out->threads = f[20];
    out->start_time_s = boot_time_s >= 0 ? boot_time_s + f[22] / (double)ticks : -1;
    out->vsize_bytes = f[23];
    out->rss_bytes = f[24] * (double)page_size;
    return 0;
}

/* The system's boot time (btime in /proc/stat), or -1. */
static double boot_time(void)
{
    static double cached = -2; /* read once: it does not change */
    if (cached > -2)
        return cached;
    cached = -1;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return cached;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "btime ", 6)) {
            cached = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return cached;
}

int mesh_procstat_read(mesh_procstat_t *out)
{
    *out = (mesh_procstat_t){-1, -1, -1, -1, -1, -1, -1, -1};
    /* open() then fdopendir(), not opendir(): ThreadSanitizer sees the descriptor created
     * here (opendir's own openat is inside libc, out of its sight), so a number that libuv
     * closed on another thread (by a raw close syscall, also out of its sight) and that this
     * reuses is not taken for a race */
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0)
        close(fd);
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        out->open_fds = (double)(n - 1); /* not counting the directory's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        out->max_fds = (double)rl.rlim_cur;
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return mesh_procstat_parse(buf, sysconf(_SC_PAGESIZE), sysconf(_SC_CLK_TCK), boot_time(), out);
}
