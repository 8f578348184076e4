/*
 * tests/unit/ca/test_x509_check.c: certificate checks with reasons (common/x509_check.h) on
 * files made by the openssl CLI: a good leaf signed by a CA, then garbage PEM, a key that does
 * not match, another CA, a missing file, and the time before notBefore and after notAfter
 * (the check takes the time as input, so "not yet valid" and "expired" need no clock games).
 */
#include "common/x509_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/check.h"

static char dir[] = "/tmp/meshd-x509c-XXXXXX";

static void sh(const char *fmt, const char *a)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, a, a, a, a, a, a, a);
    char full[2200];
    snprintf(full, sizeof(full), "cd %s && (%s) >/dev/null 2>&1", dir, cmd);
    CHECK(system(full) == 0);
}

static void cleanup(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#define P(f) path(f)
static const char *path(const char *f)
{
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, f);
    return buf[i];
}

int main(void)
{
    CHECK(mkdtemp(dir));
    atexit(cleanup);
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    /* Two CAs, a leaf from the first, a stray key. */
    sh("openssl req -x509 %s -keyout ca.key -out ca.pem -days 30 -subj /CN=ca1", ec);
    sh("openssl req -x509 %s -keyout ca2.key -out ca2.pem -days 30 -subj /CN=ca2", ec);
    sh("openssl req %s -keyout leaf.key -out leaf.csr -subj /CN=leaf", ec);
    sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
       "-out leaf.pem%s",
       "");
    sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key%s", "");
    sh("echo 'not a certificate' > garbage.pem%s", "");
    int64_t now = (int64_t)time(NULL);
    char err[1024];
    CHECK_EQ(x509c_check_files(P("leaf.pem"), P("leaf.key"), P("ca.pem"), now, err, sizeof(err)),
             X509C_OK);
    CHECK_EQ(x509c_check_files(P("leaf.pem"), NULL, NULL, now, err, sizeof(err)), X509C_OK);
    CHECK_EQ(x509c_check_files(P("garbage.pem"), NULL, NULL, now, err, sizeof(err)),
             X509C_CERT_UNREADABLE);
    CHECK_CONTAINS(err, "garbage.pem: no PEM certificate in it");
    CHECK_EQ(x509c_check_files(P("leaf.pem"), P("garbage.pem"), NULL, now, err, sizeof(err)),
             X509C_KEY_UNREADABLE);
    CHECK_EQ(x509c_check_files(P("leaf.pem"), NULL, P("garbage.pem"), now, err, sizeof(err)),
             X509C_CA_UNREADABLE);
    CHECK_EQ(x509c_check_files(P("leaf.pem"), P("other.key"), NULL, now, err, sizeof(err)),
             X509C_KEY_MISMATCH);
    CHECK_CONTAINS(err, "other.key: the key does not match the certificate");
    CHECK_EQ(x509c_check_files(P("leaf.pem"), P("leaf.key"), P("ca2.pem"), now, err, sizeof(err)),
             X509C_CA_NOT_VERIFIED);
    CHECK_CONTAINS(err, "does not verify against the CA");
    CHECK_CONTAINS(err, "unable to get local issuer certificate");
    CHECK_EQ(x509c_check_files(P("leaf.pem"), NULL, NULL, now - 86400, err, sizeof(err)),
             X509C_NOT_YET_VALID);
    CHECK_CONTAINS(err, "leaf.pem: not yet valid: it starts on ");
    CHECK_EQ(x509c_check_files(P("leaf.pem"), NULL, NULL, now + 3 * 86400, err, sizeof(err)),
             X509C_EXPIRED);
    CHECK_CONTAINS(err, "leaf.pem: expired on ");
    CHECK_EQ(x509c_check_files(P("missing.pem"), NULL, NULL, now, err, sizeof(err)), X509C_FILE);
    CHECK_CONTAINS(err, "missing.pem: No such file or directory");
    return 0;
}
