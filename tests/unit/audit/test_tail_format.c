/*
 * tests/unit/audit/test_tail_format.c: the line `meshd audit tail` prints per event
 * (audit/tail_format.h): columns line up with the header whatever the values, missing values
 * are "-", the type's own fields appear as details, and nothing a record holds reaches the
 * terminal as a control character (an escape sequence in a reason cannot recolour or move the
 * cursor).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/tail_format.h"
#include "tests/check.h"

/* Formats the record in json (or the header when json is NULL) into a string. */
static char *line_of(const char *json)
{
    static char *buf;
    size_t len;
    free(buf);
    FILE *out = open_memstream(&buf, &len);
    CHECK(out != NULL);
    if (json) {
        json_error_t err;
        json_t *o = json_loads(json, 0, &err);
        CHECK(o != NULL);
        audit_tail_print(out, o);
        json_decref(o);
    } else {
        audit_tail_print_header(out);
    }
    fclose(out);
    return buf;
}

/* Character (code point) offset of needle in s, -1 when absent. */
static long col_of(const char *s, const char *needle)
{
    const char *p = strstr(s, needle);
    if (!p)
        return -1;
    long n = 0;
    for (const char *q = s; q < p; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    return n;
}

static void test_columns_line_up(void)
{
    char header[512];
    snprintf(header, sizeof(header), "%s", line_of(NULL));
    const char *rec =
        "{\"schema\":1,\"event_id\":\"0123456789abcdef0123456789abcdef-0000000000000001\","
        "\"ts\":\"2026-12-01T16:40:00.123456Z\",\"type\":\"acl_denied\",\"outcome\":\"denied\","
        "\"reason\":\"no rule\",\"node\":\"n1\",\"role\":\"proxy\",\"service\":\"h\\u00e9.Svc\","
        "\"method\":\"Get\",\"peer\":{\"address\":\"10.0.0.1:5\",\"identity\":null},"
        "\"trace_id\":\"abc\",\"status\":7}";
    const char *l = line_of(rec);
    CHECK_EQ(strchr(l, '\n') - l, strlen(l) - 1); /* one line */
    CHECK_EQ(col_of(l, "acl_denied"), col_of(header, "TYPE"));
    CHECK_EQ(col_of(l, " denied ") + 1, col_of(header, "OUTCOME"));
    CHECK_EQ(col_of(l, "h\xc3\xa9.Svc"), col_of(header, "SERVICE"));
    CHECK_EQ(col_of(l, "Get"), col_of(header, "METHOD"));
    CHECK_EQ(col_of(l, "10.0.0.1:5"), col_of(header, "PEER"));
    CHECK_EQ(col_of(l, "no rule"), col_of(header, "REASON"));
    CHECK_CONTAINS(l, "no rule [node=n1 status=7 trace_id=abc]\n");
    CHECK(strncmp(l, "2026-12-01T16:40:00.123456Z ", 28) == 0);
}

static void test_details_and_missing(void)
{
    const char *l = line_of("{\"type\":\"instance_removed\",\"peer\":{\"address\":null,"
                            "\"identity\":\"spiffe://x\"},\"reason\":\"\",\"instance\":\"a:1\","
                            "\"source\":\"lease_expiry\",\"truncated\":true}");
    CHECK(strncmp(l, "- ", 2) == 0); /* no ts */
    CHECK_CONTAINS(l, "- (spiffe://x)");
    CHECK_CONTAINS(l, "\"\" [instance=a:1 source=lease_expiry truncated=true]\n");
    l = line_of("{\"type\":\"audit_dropped\",\"dropped\":12345,\"ready\":false}");
    CHECK_CONTAINS(l, "[ready=false dropped=12345]");
    l = line_of("{}"); /* not ours, still one line */
    CHECK_EQ(strchr(l, '\n') - l, strlen(l) - 1);
}

static void test_terminal_safe(void)
{
    const char *l =
        line_of("{\"type\":\"authn_failure\",\"reason\":\"a\\u001b[2J\\u001b]0;owned\\u0007"
                "\\n\\r\\t\\u007f\\u0085\\u009b31m z\"}");
    for (const char *p = l; *p; p++) {
        unsigned char c = (unsigned char)*p;
        CHECK(c >= 0x20 || (c == '\n' && p[1] == '\0'));
        CHECK(c != 0x7f);
        CHECK(!(c == 0xC2 && (unsigned char)p[1] >= 0x80 && (unsigned char)p[1] <= 0x9F));
    }
    CHECK_CONTAINS(l, "a\\x1b[2J\\x1b]0;owned\\x07\\n\\r\\t\\x7f\\u0085\\u009b31m z");
}

int main(void)
{
    RUN(test_columns_line_up);
    RUN(test_details_and_missing);
    RUN(test_terminal_safe);
    return 0;
}
