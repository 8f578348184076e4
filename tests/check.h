/*
 * tests/check.h: the assertion macros every C test program shares. A failed check prints
 * file:line and what failed, then exits 1 (atexit handlers run, so tests that started
 * servers still stop them).
 */
#ifndef MESH_TESTS_CHECK_H
#define MESH_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Fails the test when cond is false. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** Like CHECK for a == b on integers, printing both. */
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__, __LINE__,  \
                    #a, _a, #b, _b);                                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** Like CHECK for two strings being equal, printing both. */
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__,            \
                    b_ ? b_ : "(null)", a_ ? a_ : "(null)");                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** Like CHECK for hay containing needle. */
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,         \
                    h_ ? h_ : "(null)", n_);                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** Runs one test function and prints its name. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

#endif
