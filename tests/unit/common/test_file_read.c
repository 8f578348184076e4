/*
 * tests/unit/common/test_file_read.c: the whole-file reader (common/file_read.h): an empty
 * file reads as "", a large binary file comes back byte for byte and NUL-terminated, a file
 * of exactly the limit is read and one byte more is refused, a missing file and a directory
 * fail with their errno and a message naming the file, and a pipe (no size known in advance)
 * is read by growing, with the limit still enforced.
 */
#include "common/file_read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"

static char dir[] = "/tmp/meshd-fileread-XXXXXX";

static void cleanup(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void put(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(p, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

/* Bytes that are not text, NULs among them, and differ from place to place. */
static void fill(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131 + (i >> 9));
}

/* A small file reads back as the string it holds, with its length. */
static void check_small(const char *name, const char *text)
{
    char p[256], err[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    put(p, text, strlen(text));
    size_t n = 99;
    char *s = mesh_file_read(p, 100, 0, &n, err, sizeof(err));
    CHECK(s);
    CHECK_EQ(n, strlen(text));
    CHECK_STR(s, text);
    free(s);
}

static void test_missing(void)
{
    char p[256], err[512];
    snprintf(p, sizeof(p), "%s/no-such-file.pem", dir);
    size_t n = 7;
    errno = 0;
    CHECK(mesh_file_read(p, 100, 0, &n, err, sizeof(err)) == NULL);
    CHECK_EQ(errno, ENOENT);
    CHECK_EQ(n, 7); /* untouched */
    char want[600];
    snprintf(want, sizeof(want), "%s: No such file or directory", p);
    CHECK_STR(err, want);
    /* err may be NULL: errno alone tells. */
    errno = 0;
    CHECK(mesh_file_read(p, 100, 0, &n, NULL, 0) == NULL);
    CHECK_EQ(errno, ENOENT);
}

static void test_directory(void)
{
    char err[512];
    size_t n;
    errno = 0;
    CHECK(mesh_file_read(dir, 1 << 20, 0, &n, err, sizeof(err)) == NULL);
    CHECK_EQ(errno, EISDIR);
    CHECK_CONTAINS(err, dir);
    CHECK_CONTAINS(err, ": Is a directory");
}

static void test_limit(void)
{
    char p[256], err[512];
    unsigned char data[5000];
    fill(data, sizeof(data));
    snprintf(p, sizeof(p), "%s/limit", dir);
    put(p, data, 4096);
    size_t n = 0;
    char *s = mesh_file_read(p, 4096, 0, &n, err, sizeof(err)); /* exactly the limit */
    CHECK(s);
    CHECK_EQ(n, 4096);
    CHECK(memcmp(s, data, n) == 0);
    free(s);
    errno = 0;
    CHECK(mesh_file_read(p, 4095, 0, &n, err, sizeof(err)) == NULL); /* one byte over */
    CHECK_EQ(errno, EFBIG);
    char want[600];
    snprintf(want, sizeof(want), "%s: larger than 4095 bytes", p);
    CHECK_STR(err, want);
    put(p, data, 5000);
    CHECK(mesh_file_read(p, 4 << 10, 0, &n, err, sizeof(err)) == NULL);
    snprintf(want, sizeof(want), "%s: larger than 4 KiB", p);
    CHECK_STR(err, want);
}

static void test_large(void)
{
    char p[256], err[512];
    size_t size = (3u << 20) + 17;
    unsigned char *data = malloc(size);
    CHECK(data);
    fill(data, size);
    snprintf(p, sizeof(p), "%s/large.pb", dir);
    put(p, data, size);
    size_t n = 0;
    char *s = mesh_file_read(p, 16u << 20, 0, &n, err, sizeof(err));
    CHECK(s);
    CHECK_EQ(n, size);
    CHECK(memcmp(s, data, size) == 0);
    CHECK_EQ(s[size], '\0');
    free(s);
    CHECK(mesh_file_read(p, 2u << 20, 0, &n, err, sizeof(err)) == NULL);
    CHECK_CONTAINS(err, "larger than 2 MiB");
    free(data);
}

/* A pipe has no size: the buffer grows as it reads, under the limit, secret or not. */
static void test_pipe(int flags, size_t size, size_t max)
{
    unsigned char data[60000];
    fill(data, sizeof(data));
    int fds[2];
    CHECK(pipe(fds) == 0);
    CHECK(write(fds[1], data, size) == (ssize_t)size);
    close(fds[1]);
    char p[64], err[512];
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fds[0]);
    size_t n = 0;
    char *s = mesh_file_read(p, max, flags, &n, err, sizeof(err));
    if (size <= max) {
        CHECK(s);
        CHECK_EQ(n, size);
        CHECK(memcmp(s, data, size) == 0);
        CHECK_EQ(s[n], '\0');
        free(s);
    } else {
        CHECK(s == NULL);
        CHECK_EQ(errno, EFBIG);
        CHECK_CONTAINS(err, "larger than");
    }
    close(fds[0]);
}

int main(void)
{
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    check_small("empty", "");
    check_small("text", "a: 1\nb: 2\n");
    test_missing();
    test_directory();
    test_limit();
    test_large();
    test_pipe(0, 60000, 1 << 20);
    test_pipe(MESH_FILE_SECRET, 60000, 1 << 20);
    test_pipe(0, 60000, 60000);
    test_pipe(MESH_FILE_SECRET, 60000, 50000);
    test_pipe(0, 0, 10);
    printf("test_file_read: ok\n");
    return 0;
}
