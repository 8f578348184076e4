/*
 * tests/unit/node/test_readiness.c: the readiness counter, fed like the sidecar feeds it.
 */
#include "node/readiness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tests/check.h"

/* Parses /readyz's body and checks its "ready" and that "reason" contains want. */
static void check_json(const mesh_readiness_t *r, int ready, const char *want)
{
    char buf[512];
    CHECK(mesh_readiness_json(r, buf, sizeof(buf)) > 0);
    json_error_t err;
    json_t *o = json_loads(buf, 0, &err);
    CHECK(o != NULL);
    CHECK(json_is_boolean(json_object_get(o, "ready")));
    CHECK(json_boolean_value(json_object_get(o, "ready")) == ready);
    const char *reason = json_string_value(json_object_get(o, "reason"));
    CHECK(reason && strstr(reason, want) != NULL);
    json_decref(o);
}

static void test_startup_and_threshold(void)
{
    mesh_readiness_t r;
    mesh_readiness_init(&r, 0);
    CHECK(!mesh_readiness_is_ready(&r) && !mesh_readiness_is_registered(&r));
    check_json(&r, 0, "waiting for the first health check");

    /* Failures before the first success: not ready, nothing to deregister. */
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_CONN_CLOSED, "connection refused", 1) == 0);
    check_json(&r, 0, "connection refused");

    /* First SERVING: ready + register. */
    int fx = mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 2);
    CHECK(fx == (MESH_READINESS_BECAME_READY | MESH_READINESS_REGISTER));
    CHECK(mesh_readiness_is_ready(&r) && mesh_readiness_is_registered(&r));
    check_json(&r, 1, "serving");
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 3) == 0);

    /* Two failures: still ready. A success resets the count. */
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_NOT_SERVING, NULL, 4) == 0);
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_TIMEOUT, NULL, 5) == 0);
    CHECK(mesh_readiness_is_ready(&r) && mesh_readiness_failures(&r) == 2);
    check_json(&r, 1, "still ready");
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 6) == 0);
    CHECK(mesh_readiness_failures(&r) == 0);

    /* Three consecutive failures of any kind: not ready + deregister, once. */
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_FAILED, "UNAVAILABLE", 7) == 0);
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_TIMEOUT, NULL, 8) == 0);
    fx = mesh_readiness_on_check(&r, MESH_CHECK_NOT_SERVING, NULL, 9);
    CHECK(fx == (MESH_READINESS_BECAME_NOT_READY | MESH_READINESS_DEREGISTER));
    CHECK(!mesh_readiness_is_ready(&r) && !mesh_readiness_is_registered(&r));
    check_json(&r, 0, "3 consecutive failed health check(s) (last: not_serving)");
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_NOT_SERVING, NULL, 10) == 0);
    check_json(&r, 0, "4 consecutive");

    /* The next success: ready + register again. */
    fx = mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 11);
    CHECK(fx == (MESH_READINESS_BECAME_READY | MESH_READINESS_REGISTER));
    check_json(&r, 1, "serving");
}

static void test_threshold_one_and_shutdown(void)
{
    mesh_readiness_t r;
    mesh_readiness_init(&r, 1);
    mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 1);
    int fx = mesh_readiness_on_check(&r, MESH_CHECK_CONN_CLOSED, "eof", 2);
    CHECK(fx == (MESH_READINESS_BECAME_NOT_READY | MESH_READINESS_DEREGISTER));
    mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 3);

    /* Shutdown: not ready + deregister; later successes change nothing. */
    fx = mesh_readiness_shutdown(&r, 4);
    CHECK(fx == (MESH_READINESS_BECAME_NOT_READY | MESH_READINESS_DEREGISTER));
    CHECK(mesh_readiness_shutdown(&r, 5) == 0);
    CHECK(mesh_readiness_on_check(&r, MESH_CHECK_SERVING, NULL, 6) == 0);
    CHECK(!mesh_readiness_is_ready(&r) && !mesh_readiness_is_registered(&r));
    check_json(&r, 0, "shutting down");

    /* A detail with quotes and control characters stays valid JSON. */
    mesh_readiness_init(&r, 3);
    mesh_readiness_on_check(&r, MESH_CHECK_FAILED, "bad \"msg\"\n\\x", 1);
    check_json(&r, 0, "bad \"msg\"");
    char tiny[8];
    CHECK(mesh_readiness_json(&r, tiny, sizeof(tiny)) == -1);
}

int main(void)
{
    test_startup_and_threshold();
    test_threshold_one_and_shutdown();
    printf("test_readiness: ok\n");
    return 0;
}
