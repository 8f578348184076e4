/*
 * tests/fuzz/grpc/fuzz_descriptors.c: libFuzzer harness over the descriptor pool.
 *
 * Input layout: a FileDescriptorSet as is when it starts with 0x0a (its first field);
 * otherwise the first byte picks the mode: odd -> a sequence of files, each a 2-byte
 * big-endian length and that many bytes of serialized FileDescriptorProto (as reflection
 * returns them); even -> the rest is a FileDescriptorSet. Then the model is built (all
 * services, then only the first) and every lookup is exercised.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/descriptors.h"

static void exercise(mesh_desc_pool_t *p)
{
    const char *missing[8];
    mesh_desc_pool_missing_deps(p, missing, 8);
    mesh_desc_pool_missing_deps(p, NULL, 0);
    if (mesh_desc_pool_build(p, NULL, 0) == 0) {
        for (size_t i = 0; i < mesh_desc_pool_service_count(p); i++) {
            const mesh_desc_service_t *s = mesh_desc_pool_service(p, i);
            if (mesh_desc_pool_find_service(p, s->name) != s)
                abort();
            for (size_t j = 0; j < s->n_methods; j++) {
                const mesh_desc_method_t *m = &s->methods[j];
                const mesh_desc_method_t *f = mesh_desc_pool_find_method(p, m->path);
                if (!f || strcmp(f->path, m->path) != 0)
                    abort();
                if (!mesh_desc_pool_find_message(p, m->input_type) ||
                    !mesh_desc_pool_find_message(p, m->output_type))
                    abort();
            }
        }
        if (mesh_desc_pool_service_count(p) > 0) {
            const char *only[2] = {mesh_desc_pool_service(p, 0)->name, "no.such.Service"};
            char *keep = strdup(only[0]); /* the model is rebuilt: do not borrow from it */
            only[0] = keep;
            mesh_desc_pool_build(p, only, 1);
            mesh_desc_pool_build(p, only, 2);
            free(keep);
        }
    }
    for (size_t i = 0; i < mesh_desc_pool_file_count(p); i++)
        mesh_desc_pool_find_file(p, mesh_desc_pool_file(p, i)->name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    if (!p)
        return 0;
    if (data[0] == 0x0a) {
        mesh_desc_pool_add_set(p, data, size);
    } else if (data[0] & 1) {
        size_t pos = 1;
        while (pos + 2 <= size) {
            size_t n = ((size_t)data[pos] << 8) | data[pos + 1];
            pos += 2;
            if (n > size - pos)
                n = size - pos;
            mesh_desc_pool_add_file(p, data + pos, n);
            pos += n;
        }
    } else {
        mesh_desc_pool_add_set(p, data + 1, size - 1);
    }
    exercise(p);
    mesh_desc_pool_error(p);
    mesh_desc_pool_free(p);
    return 0;
}
