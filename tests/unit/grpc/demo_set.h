/*
 * tests/unit/grpc/demo_set.h: access to the test descriptor set built by protoc at build
 * time (DEMO_SET: testdata/demo/v1/greeter.proto with its imports, health.proto and
 * reflection v1), as serialized single files the way reflection returns them.
 */
#ifndef TEST_DEMO_SET_H
#define TEST_DEMO_SET_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "google/protobuf/descriptor.pb-c.h"

/* Reads a whole file; exits on failure. */
static inline uint8_t *demo_read_file(const char *path, size_t *len)
{
    char err[1200];
    uint8_t *buf = (uint8_t *)mesh_file_read(path, 16u << 20, 0, len, err, sizeof err);
    if (!buf) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return buf;
}

/* The unpacked test set (free with google__protobuf__file_descriptor_set__free_unpacked). */
static inline Google__Protobuf__FileDescriptorSet *demo_set_load(void)
{
    size_t len;
    uint8_t *buf = demo_read_file(DEMO_SET, &len);
    Google__Protobuf__FileDescriptorSet *set =
        google__protobuf__file_descriptor_set__unpack(NULL, len, buf);
    free(buf);
    if (!set) {
        fprintf(stderr, "cannot unpack %s\n", DEMO_SET);
        exit(1);
    }
    return set;
}

/* The file named name from set, serialized into a new buffer (*len bytes), or NULL. */
static inline uint8_t *demo_set_file(const Google__Protobuf__FileDescriptorSet *set,
                                     const char *name, size_t *len)
{
    for (size_t i = 0; i < set->n_file; i++) {
        if (strcmp(set->file[i]->name, name) != 0)
            continue;
        *len = google__protobuf__file_descriptor_proto__get_packed_size(set->file[i]);
        uint8_t *buf = malloc(*len ? *len : 1);
        google__protobuf__file_descriptor_proto__pack(set->file[i], buf);
        return buf;
    }
    return NULL;
}

#endif
