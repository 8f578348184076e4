/*
 * tests/unit/registry/test_codec.c: decoding etcd 3.4 gateway answers (string int64s, omitted
 * default fields, {"result":..} wrapping, errors), base64 and prefix range ends.
 */
#include <string.h>

#include "registry/etcd_codec.h"
#include "tests/check.h"

typedef struct {
    int n;
    char keys[8][64];
    char vals[8][64];
    int64_t mods[8];
    int types[8];
    int has_prev[8];
} seen_t;

static int on_kv(void *ud, const etcd_kv_t *kv)
{
    seen_t *s = ud;
    snprintf(s->keys[s->n], 64, "%.*s", (int)kv->key_len, kv->key);
    snprintf(s->vals[s->n], 64, "%.*s", (int)kv->value_len, kv->value);
    s->mods[s->n++] = kv->mod_revision;
    return 0;
}

static int on_ev(void *ud, const etcd_event_t *ev)
{
    seen_t *s = ud;
    s->types[s->n] = ev->type;
    s->has_prev[s->n] = ev->has_prev;
    return on_kv(ud, &ev->kv);
}

static void test_base64(void)
{
    char out[64];
    etcd_b64_encode("meshd/a", 7, out);
    CHECK(strcmp(out, "bWVzaGQvYQ==") == 0);
    etcd_b64_encode("", 0, out);
    CHECK(strcmp(out, "") == 0);
    CHECK(etcd_b64_decode("bWVzaGQvYQ==", 12, out) == 7 && memcmp(out, "meshd/a", 7) == 0);
    CHECK(etcd_b64_decode("bWVzaGQvYQ", 10, out) == 7); /* unpadded */
    CHECK(etcd_b64_decode("b!==", 4, out) == -1);
    for (int n = 0; n < 20; n++) { /* round trips of every length and byte */
        char in[20], enc[40], dec[20];
        for (int i = 0; i < n; i++)
            in[i] = (char)(i * 37 + n);
        etcd_b64_encode(in, (size_t)n, enc);
        CHECK(strlen(enc) == etcd_b64_len((size_t)n));
        CHECK(etcd_b64_decode(enc, strlen(enc), dec) == n && memcmp(in, dec, (size_t)n) == 0);
    }
    char end[16];
    CHECK(etcd_prefix_end("meshd/", 6, end) == 6 && memcmp(end, "meshd0", 6) == 0);
    CHECK(etcd_prefix_end("a\xff", 2, end) == 1 && end[0] == 'b');
}

static void test_range(void)
{
    etcd_decoder_t d;
    etcd_decoder_init(&d);
    etcd_range_info_t info;
    seen_t s = {0};
    /* Nothing matched: no kvs, no count. */
    const char *empty = "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":"
                        "\"17\",\"raft_term\":\"2\"}}";
    CHECK(etcd_decode_range(&d, empty, strlen(empty), &info, on_kv, &s) == 0);
    CHECK(info.revision == 17 && info.count == 0 && s.n == 0 && info.err.code == 0);
    const char *two =
        "{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"bWVzaGQvYQ==\",\"create_revision\":"
        "\"2\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":\"dg==\"},{\"key\":\"eA==\","
        "\"mod_revision\":5}],\"count\":\"2\"}";
    CHECK(etcd_decode_range(&d, two, strlen(two), &info, on_kv, &s) == 0);
    CHECK(info.revision == 9 && info.count == 2 && s.n == 2);
    CHECK(strcmp(s.keys[0], "meshd/a") == 0 && strcmp(s.vals[0], "v") == 0 && s.mods[0] == 4);
    CHECK(strcmp(s.keys[1], "x") == 0 && strcmp(s.vals[1], "") == 0 && s.mods[1] == 5);
    CHECK(etcd_decode_range(&d, "not json", 8, &info, on_kv, &s) == -1);
    const char *bad = "{\"kvs\":[{\"key\":\"***\"}]}";
    CHECK(etcd_decode_range(&d, bad, strlen(bad), &info, on_kv, &s) == -1);
    etcd_decoder_destroy(&d);
}

static void test_watch(void)
{
    etcd_decoder_t d;
    etcd_decoder_init(&d);
    etcd_watch_info_t info;
    seen_t s = {0};
    const char *created = "{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}";
    CHECK(etcd_decode_watch(&d, created, strlen(created), &info, on_ev, &s) == 0);
    CHECK(info.created && !info.canceled && info.n_events == 0 && info.revision == 3);
    /* A PUT has no "type"; a DELETE carries prev_kv when asked. */
    const char *evs =
        "{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"bWVzaGQvYQ=="
        "\","
        "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\",\"value\":\"djI=\"}},"
        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"bWVzaGQvYQ==\",\"mod_revision\":\"5\"},\"prev_kv\":"
        "{\"key\":\"bWVzaGQvYQ==\",\"mod_revision\":\"4\",\"value\":\"djI=\"}}]}}";
    CHECK(etcd_decode_watch(&d, evs, strlen(evs), &info, on_ev, &s) == 0);
    CHECK(info.n_events == 2 && s.n == 2);
    CHECK(s.types[0] == ETCD_EVENT_PUT && strcmp(s.vals[0], "v2") == 0 && s.mods[0] == 4);
    CHECK(s.types[1] == ETCD_EVENT_DELETE && s.has_prev[1] && s.mods[1] == 5);
    const char *compacted = "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,"
                            "\"compact_revision\":\"4\"}}";
    CHECK(etcd_decode_watch(&d, compacted, strlen(compacted), &info, on_ev, &s) == 0);
    CHECK(info.canceled && info.compact_revision == 4 && info.watch_id == 0);
    const char *progress = "{\"result\":{\"header\":{\"revision\":\"42\"}}}";
    CHECK(etcd_decode_watch(&d, progress, strlen(progress), &info, on_ev, &s) == 0);
    CHECK(!info.created && !info.canceled && info.n_events == 0 && info.revision == 42);
    const char *err = "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: "
                      "no leader\",\"http_status\":\"Service Unavailable\"}}";
    CHECK(etcd_decode_watch(&d, err, strlen(err), &info, on_ev, &s) == 0);
    CHECK(info.err.code == 14 && strstr(info.err.message, "no leader"));
    CHECK(etcd_decode_watch(&d, "{\"result\":", 10, &info, on_ev, &s) == -1);
    etcd_decoder_destroy(&d);
}

static void test_lease_and_errors(void)
{
    etcd_lease_info_t li;
    const char *grant = "{\"header\":{\"revision\":\"1\"},\"ID\":\"4111120241081485062\","
                        "\"TTL\":\"5\"}";
    CHECK(etcd_decode_lease(grant, strlen(grant), &li) == 0);
    CHECK(li.id == 4111120241081485062LL && li.ttl == 5 && li.err.code == 0);
    /* keepalive of an expired lease: wrapped, and TTL left out (0). */
    const char *gone = "{\"result\":{\"header\":{\"revision\":\"2\"},\"ID\":\"123\"}}";
    CHECK(etcd_decode_lease(gone, strlen(gone), &li) == 0 && li.id == 123 && li.ttl == 0);
    const char *alive = "{\"result\":{\"header\":{},\"ID\":\"123\",\"TTL\":\"7\"}}";
    CHECK(etcd_decode_lease(alive, strlen(alive), &li) == 0 && li.ttl == 7);
    const char *nf = "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                     "\"etcdserver: requested lease not found\",\"code\":5}";
    CHECK(etcd_decode_lease(nf, strlen(nf), &li) == 0 && li.err.code == ETCD_CODE_NOT_FOUND);
    etcd_error_t e;
    CHECK(etcd_decode_error(nf, strlen(nf), &e) == 1 && e.code == 5);
    CHECK(strstr(e.message, "lease not found"));
    CHECK(etcd_decode_error(grant, strlen(grant), &e) == 0 && e.code == 0);
    int64_t rev = 0;
    int ok = 0;
    const char *txn = "{\"header\":{\"revision\":\"3\"},\"succeeded\":true,\"responses\":[]}";
    CHECK(etcd_decode_header(txn, strlen(txn), &rev, &ok, &e) == 0 && rev == 3 && ok == 1);
    const char *txn_false = "{\"header\":{\"revision\":\"3\"}}"; /* succeeded omitted: false */
    CHECK(etcd_decode_header(txn_false, strlen(txn_false), &rev, &ok, &e) == 0 && ok == 0);
    CHECK(etcd_decode_header(nf, strlen(nf), &rev, &ok, &e) == 1);
}

static void test_requests(void)
{
    char *r = etcd_req_range_prefix("meshd/");
    CHECK(r && strcmp(r, "{\"key\":\"bWVzaGQv\",\"range_end\":\"bWVzaGQw\"}") == 0);
    free(r);
    r = etcd_req_put("k", "v", 1, 7);
    CHECK(r && strcmp(r, "{\"key\":\"aw==\",\"value\":\"dg==\",\"lease\":\"7\"}") == 0);
    free(r);
    r = etcd_req_watch_prefix("meshd/", 12);
    CHECK(r && strstr(r, "\"start_revision\":\"12\"") && strstr(r, "\"prev_kv\":true") &&
          strstr(r, "\"progress_notify\":true"));
    free(r);
}

int main(void)
{
    test_base64();
    test_range();
    test_watch();
    test_lease_and_errors();
    test_requests();
    printf("ok\n");
    return 0;
}
