/*
 * tests/unit/registry/check.h: the tiny assertion macro the registry unit tests share.
 */
#ifndef REG_TEST_CHECK_H
#define REG_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/** Fails the test with file:line when cond is false. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#endif
