/*
 * tests/unit/common/test_procstat.c: /proc/PID/stat parsing (a comm with spaces and ')'), and
 * a live reading of this process that a user would recognise (RSS, fds, CPU, start time).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/procstat.h"
#include "tests/check.h"

static void t_parse(void)
{
    const char *line = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 "
                       "1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0";
    mesh_procstat_t s;
    CHECK_EQ(mesh_procstat_parse(line, 4096, 100, 1700000000, &s), 0);
    CHECK(s.cpu_user_s == 2.5);
    CHECK(s.cpu_system_s == 0.5);
    CHECK(s.threads == 7);
    CHECK(s.start_time_s == 1700000010);
    CHECK(s.vsize_bytes == 123456789);
    CHECK(s.rss_bytes == 300.0 * 4096);
    CHECK_EQ(mesh_procstat_parse("4242 (x) S 1 2", 4096, 100, 0, &s), -1);
    CHECK_EQ(mesh_procstat_parse("no parenthesis", 4096, 100, 0, &s), -1);
    CHECK_EQ(mesh_procstat_parse("", 4096, 100, 0, &s), -1);
}

static void t_live(void)
{
    mesh_procstat_t s;
    CHECK_EQ(mesh_procstat_read(&s), 0);
    CHECK(s.rss_bytes > 100 * 1024);
    CHECK(s.open_fds >= 3); /* stdin, stdout, stderr */
    FILE *f = fopen("/proc/self/stat", "r");
    mesh_procstat_t s2;
    CHECK_EQ(mesh_procstat_read(&s2), 0);
    CHECK(s2.open_fds == s.open_fds + 1); /* the one just opened */
    fclose(f);
    CHECK(s.cpu_user_s >= 0 && s.cpu_system_s >= 0);
    double now = (double)time(NULL);
    CHECK(s.start_time_s > now - 3600 && s.start_time_s <= now + 2);
    CHECK(s.threads >= 1);
}

int main(void)
{
    RUN(t_parse);
    RUN(t_live);
    return 0;
}
