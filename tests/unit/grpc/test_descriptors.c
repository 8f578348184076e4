/*
 * tests/unit/grpc/test_descriptors.c: the descriptor pool and service model, fed with a
 * real protoc descriptor set, with single files (as reflection returns them) and with garbage.
 */
#include "grpc/descriptors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_set.h"
#include "tests/check.h"

static void check_method(const mesh_desc_pool_t *p, const char *path, mesh_call_kind_t kind,
                         const char *in, const char *out)
{
    const mesh_desc_method_t *m = mesh_desc_pool_find_method(p, path);
    if (!m) {
        fprintf(stderr, "method %s not found\n", path);
        exit(1);
    }
    CHECK(strcmp(m->path, path) == 0);
    CHECK(m->kind == kind);
    CHECK(strcmp(m->input_type, in) == 0);
    CHECK(strcmp(m->output_type, out) == 0);
    CHECK(m->proto != NULL);
}

static void test_descriptor_set_file(void)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    int n = mesh_desc_pool_load_set_file(p, DEMO_SET);
    CHECK(n == 5); /* common, timestamp, greeter, health, reflection */
    CHECK(mesh_desc_pool_find_file(p, "demo/v1/greeter.proto") != NULL);
    CHECK(mesh_desc_pool_find_file(p, "google/protobuf/timestamp.proto") != NULL);
    CHECK(mesh_desc_pool_missing_deps(p, NULL, 0) == 0);

    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);
    CHECK(mesh_desc_pool_service_count(p) == 4);
    /* Sorted by name. */
    CHECK(strcmp(mesh_desc_pool_service(p, 0)->name, "demo.v1.Counter") == 0);
    CHECK(strcmp(mesh_desc_pool_service(p, 1)->name, "demo.v1.Greeter") == 0);
    CHECK(strcmp(mesh_desc_pool_service(p, 2)->name, "grpc.health.v1.Health") == 0);
    CHECK(strcmp(mesh_desc_pool_service(p, 3)->name, "grpc.reflection.v1.ServerReflection") == 0);
    const mesh_desc_service_t *g = mesh_desc_pool_find_service(p, "demo.v1.Greeter");
    CHECK(g && g->n_methods == 4 && strcmp(g->file, "demo/v1/greeter.proto") == 0);
    CHECK(strcmp(g->methods[0].name, "SayHello") == 0); /* declaration order */

    check_method(p, "/demo.v1.Greeter/SayHello", MESH_CALL_UNARY, "demo.v1.HelloRequest",
                 "demo.v1.Greeting");
    check_method(p, "/demo.v1.Greeter/ListGreetings", MESH_CALL_SERVER_STREAMING,
                 "demo.v1.HelloRequest", "demo.v1.Greeting");
    check_method(p, "/demo.v1.Greeter/CollectNames", MESH_CALL_CLIENT_STREAMING,
                 "demo.v1.HelloRequest", "demo.v1.Greeting");
    check_method(p, "/demo.v1.Greeter/Chat", MESH_CALL_BIDI, "demo.v1.HelloRequest",
                 "demo.v1.Greeting.Meta");
    check_method(p, "/demo.v1.Counter/Count", MESH_CALL_UNARY, "demo.v1.Greeting",
                 "demo.v1.Greeting.Meta");
    check_method(p, "/grpc.health.v1.Health/Watch", MESH_CALL_SERVER_STREAMING,
                 "grpc.health.v1.HealthCheckRequest", "grpc.health.v1.HealthCheckResponse");
    check_method(p, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", MESH_CALL_BIDI,
                 "grpc.reflection.v1.ServerReflectionRequest",
                 "grpc.reflection.v1.ServerReflectionResponse");
    CHECK(mesh_desc_pool_find_method(p, "/demo.v1.Greeter/Nope") == NULL);
    CHECK(mesh_desc_pool_find_method(p, "demo.v1.Greeter/SayHello") == NULL);
    CHECK(strcmp(mesh_call_kind_name(MESH_CALL_BIDI), "bidi") == 0);

    /* Messages for the transcoder, nested ones included, with or without the dot. */
    const Google__Protobuf__DescriptorProto *meta =
        mesh_desc_pool_find_message(p, "demo.v1.Greeting.Meta");
    CHECK(meta && strcmp(meta->name, "Meta") == 0 && meta->n_field == 1);
    CHECK(mesh_desc_pool_find_message(p, ".google.protobuf.Timestamp") != NULL);
    CHECK(mesh_desc_pool_find_message(p, "demo.v1.Missing") == NULL);

    /* Only some services. */
    const char *only[] = {"demo.v1.Greeter"};
    CHECK(mesh_desc_pool_build(p, only, 1) == 0);
    CHECK(mesh_desc_pool_service_count(p) == 1);
    CHECK(mesh_desc_pool_find_method(p, "/demo.v1.Counter/Count") == NULL);
    const char *bad[] = {"demo.v1.Greeter", "nope.Svc"};
    CHECK(mesh_desc_pool_build(p, bad, 2) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "nope.Svc") != NULL);
    CHECK(mesh_desc_pool_service_count(p) == 0);
    mesh_desc_pool_free(p);
}

static void test_single_files_and_missing_deps(void)
{
    Google__Protobuf__FileDescriptorSet *set = demo_set_load();
    size_t len_g, len_c, len_t;
    uint8_t *g = demo_set_file(set, "demo/v1/greeter.proto", &len_g);
    uint8_t *c = demo_set_file(set, "demo/v1/common.proto", &len_c);
    uint8_t *t = demo_set_file(set, "google/protobuf/timestamp.proto", &len_t);
    CHECK(g && c && t);

    mesh_desc_pool_t *p = mesh_desc_pool_new();
    CHECK(mesh_desc_pool_add_file(p, g, len_g) == 0);
    CHECK(mesh_desc_pool_add_file(p, g, len_g) == 1); /* duplicate: dropped */
    CHECK(mesh_desc_pool_file_count(p) == 1);

    const char *missing[4];
    CHECK(mesh_desc_pool_missing_deps(p, missing, 4) == 2);
    CHECK(strcmp(missing[0], "demo/v1/common.proto") == 0);
    CHECK(strcmp(missing[1], "google/protobuf/timestamp.proto") == 0);

    /* Without common.proto the types of the methods cannot resolve. */
    CHECK(mesh_desc_pool_build(p, NULL, 0) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "demo.v1.Greeting") != NULL);
    CHECK(mesh_desc_pool_find_method(p, "/demo.v1.Greeter/SayHello") == NULL);

    CHECK(mesh_desc_pool_add_file(p, c, len_c) == 0);
    CHECK(mesh_desc_pool_add_file(p, t, len_t) == 0);
    CHECK(mesh_desc_pool_missing_deps(p, missing, 4) == 0);
    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);
    CHECK(mesh_desc_pool_service_count(p) == 2);
    CHECK(mesh_desc_pool_find_method(p, "/demo.v1.Greeter/Chat")->kind == MESH_CALL_BIDI);
    mesh_desc_pool_free(p);

    free(g);
    free(c);
    free(t);
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
}

static void test_bad_input(void)
{
    mesh_desc_pool_t *p = mesh_desc_pool_new();
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
    CHECK(mesh_desc_pool_add_file(p, garbage, sizeof(garbage)) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "not a valid serialized FileDescriptorProto"));
    CHECK(mesh_desc_pool_add_set(p, garbage, sizeof(garbage)) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "FileDescriptorSet"));

    /* A well-formed but empty message: a file without a name. */
    CHECK(mesh_desc_pool_add_file(p, (const uint8_t *)"", 0) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "no name"));

    /* A file that is not a descriptor set. */
    char path[] = "/tmp/meshd-desc-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "syntax = \"proto3\";\n", 19) == 19);
    close(fd);
    CHECK(mesh_desc_pool_load_set_file(p, path) == -1);
    CHECK(strstr(mesh_desc_pool_error(p), path) != NULL);
    unlink(path);
    CHECK(mesh_desc_pool_load_set_file(p, "/nonexistent/x.pb") == -1);
    CHECK(strstr(mesh_desc_pool_error(p), "cannot open") != NULL);

    CHECK(mesh_desc_pool_file_count(p) == 0);
    CHECK(mesh_desc_pool_build(p, NULL, 0) == 0);
    CHECK(mesh_desc_pool_service_count(p) == 0);
    mesh_desc_pool_free(p);
}

int main(void)
{
    test_descriptor_set_file();
    test_single_files_and_missing_deps();
    test_bad_input();
    printf("test_descriptors: ok\n");
    return 0;
}
