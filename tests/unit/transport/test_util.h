/*
 * tests/unit/transport/test_util.h: the tiny assertion helpers of the transport tests.
 */
#ifndef MESH_TRANSPORT_TEST_UTIL_H
#define MESH_TRANSPORT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include "tests/check.h"

/** Runs one test function and prints its name. */
#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fprintf(stderr, "-- %s\n", #fn);                                                           \
        fn();                                                                                      \
    } while (0)

#endif
