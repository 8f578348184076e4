/*
 * tests/unit/actors/check.h: the assertion macro the actor runtime tests share.
 */
#ifndef MESH_TEST_CHECK_H
#define MESH_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/** Fails the test (exit 1) with the location when cond is false. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/** Like CHECK for a==b on integers, printing both. */
#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", __FILE__, __LINE__,  \
                    #a, _a, #b, _b);                                                               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
