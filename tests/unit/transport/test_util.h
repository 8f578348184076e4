/*
 * tests/unit/transport/test_util.h: the tiny assertion helpers of the transport tests.
 */
#ifndef MESH_TRANSPORT_TEST_UTIL_H
#define MESH_TRANSPORT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

/** Fails the test program with file:line when cond is false. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/** Runs one test function and prints its name. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

#endif
