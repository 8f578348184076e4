/*
 * tests/unit/common/test_atomic_file.c: atomic file replacement (common/atomic_file.h): the
 * content and mode land as asked (a key is 0600 whatever the umask), a replacement keeps a
 * reader's open file intact, an exclusive write refuses an existing file and leaves it, and
 * no temporary file is left behind either way.
 */
#include "common/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/check.h"

static char dir[] = "/tmp/meshd-atomic-XXXXXX";

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    CHECK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void read_all(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

int main(void)
{
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    umask(0);
    char p[256], buf[64], err[512];
    snprintf(p, sizeof(p), "%s/key.pem", dir);
    CHECK(mesh_atomic_write(p, "one", 3, 0600, 0, err, sizeof(err)) == 0);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0600);
    read_all(p, buf, sizeof(buf));
    CHECK_STR(buf, "one");
    /* A reader holding the old file keeps reading the old content. */
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(mesh_atomic_write(p, "two!", 4, 0644, 0, err, sizeof(err)) == 0);
    char old[8] = {0};
    CHECK_EQ(read(fd, old, sizeof(old) - 1), 3);
    CHECK_STR(old, "one");
    close(fd);
    read_all(p, buf, sizeof(buf));
    CHECK_STR(buf, "two!");
    CHECK(stat(p, &st) == 0);
    CHECK_EQ(st.st_mode & 0777, 0644);
    /* Exclusive: refused, the file untouched, no temporary left. */
    CHECK(mesh_atomic_write(p, "three", 5, 0600, MESH_ATOMIC_EXCL, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "already exists (not overwritten)");
    read_all(p, buf, sizeof(buf));
    CHECK_STR(buf, "two!");
    CHECK_EQ(count_entries(), 1);
    char q[256];
    snprintf(q, sizeof(q), "%s/new.pem", dir);
    CHECK(mesh_atomic_write(q, "", 0, 0600, MESH_ATOMIC_EXCL, err, sizeof(err)) == 0);
    CHECK_EQ(count_entries(), 2);
    /* A folder that does not exist: the reason names the file. */
    snprintf(q, sizeof(q), "%s/missing/x.pem", dir);
    CHECK(mesh_atomic_write(q, "x", 1, 0600, 0, err, sizeof(err)) == -1);
    CHECK_CONTAINS(err, "missing/x.pem: cannot create a temporary file");
    return 0;
}
