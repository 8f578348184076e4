/*
 * tests/unit/common/test_log.c: log lines are one JSON object each, with the fields a log
 * pipeline reads, escaped correctly, and filtered by level.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/check.h"

int main(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    mesh_log_set_fd(fds[1]);
    mesh_log_init("node-1", MESH_LOG_INFO, MESH_LOG_FORMAT_JSON);
    mesh_debug("proxy", "hidden %d", 1);
    mesh_info("proxy", "quote \" backslash \\ newline \n tab \t ctl \x01 done");
    mesh_log_write(MESH_LOG_WARN, "registry", "4bf92f3577b34da6a3ce929d0e0e4736", "traced");
    close(fds[1]);

    char buf[8192];
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    CHECK(n > 0);
    buf[n] = '\0';
    char *save = NULL;
    char *l1 = strtok_r(buf, "\n", &save);
    char *l2 = strtok_r(NULL, "\n", &save);
    CHECK(l1 && l2 && !strtok_r(NULL, "\n", &save)); /* debug filtered: two lines */

    json_error_t je;
    json_t *j = json_loads(l1, 0, &je);
    CHECK(j);
    CHECK_STR(json_string_value(json_object_get(j, "level")), "info");
    CHECK_STR(json_string_value(json_object_get(j, "node")), "node-1");
    CHECK_STR(json_string_value(json_object_get(j, "actor")), "proxy");
    CHECK_STR(json_string_value(json_object_get(j, "msg")),
              "quote \" backslash \\ newline \n tab \t ctl \x01 done");
    CHECK(json_string_length(json_object_get(j, "ts")) == 27); /* 2026-11-25T18:00:00.123456Z */
    CHECK(!json_object_get(j, "trace_id"));
    json_decref(j);

    j = json_loads(l2, 0, &je);
    CHECK(j);
    CHECK_STR(json_string_value(json_object_get(j, "trace_id")),
              "4bf92f3577b34da6a3ce929d0e0e4736");
    json_decref(j);
    printf("test_log: ok\n");
    return 0;
}
