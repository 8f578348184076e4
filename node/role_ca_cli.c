/*
 * node/role_ca_cli.c: `meshd ca`, the mesh CA's commands for people:
 *   meshd ca init --dir D --trust-domain TD [--days N]   a new root (ca/ca_root.h) in D
 *   meshd ca verify --cert F [--key F] [--ca F]          checks files (common/x509_check.h)
 * A CA node is `meshd <role> --ca-dir D --ca-tokens F` (node/ca_server.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca/ca_root.h"
#include "ca/peer_identity.h"
#include "common/atomic_file.h"
#include "common/file_read.h"
#include "common/x509_check.h"
#include "node/cli.h"

static int usage(void)
{
    fprintf(stderr, "usage: meshd ca init --dir DIR --trust-domain DOMAIN [--days N]\n"
                    "       meshd ca verify --cert FILE [--key FILE] [--ca FILE]\n");
    return 2;
}

static int ca_init(int argc, char **argv)
{
    const char *dir = NULL, *td = NULL;
    int days = 3650;
    for (int i = 0; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--dir") == 0) {
            dir = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--trust-domain") == 0) {
            td = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--days") == 0) {
            char *end;
            long d = strtol(argv[++i], &end, 10);
            if (*end || d < 1 || d > 36500) {
                fprintf(stderr, "meshd ca init: --days %s: expected 1..36500\n", argv[i]);
                return 2;
            }
            days = (int)d;
        } else {
            fprintf(stderr, "meshd ca init: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if (!dir || !td) {
        fprintf(stderr, "meshd ca init: --dir and --trust-domain are required\n");
        return usage();
    }
    if (!spf_trust_domain_ok(td)) {
        fprintf(stderr,
                "meshd ca init: trust domain '%s' is not valid: 1-255 characters of a-z, 0-9, "
                "'.', '-', '_'\n",
                td);
        return 2;
    }
    char kp[4096], cp[4096];
    snprintf(kp, sizeof(kp), "%s/%s", dir, CA_ROOT_KEY_FILE);
    snprintf(cp, sizeof(cp), "%s/%s", dir, CA_ROOT_CERT_FILE);
    if (access(kp, F_OK) == 0 || access(cp, F_OK) == 0) {
        fprintf(stderr, "meshd ca init: %s already holds a CA (%s): not overwritten\n", dir,
                access(kp, F_OK) == 0 ? CA_ROOT_KEY_FILE : CA_ROOT_CERT_FILE);
        return 1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "meshd ca init: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    char err[512];
    ca_root_t root;
    if (ca_root_create(&root, td, days, (int64_t)time(NULL), err, sizeof(err)) != 0) {
        fprintf(stderr, "meshd ca init: %s\n", err);
        return 1;
    }
    char *key = ca_pem_write_key(root.key);
    int rc = 1;
    if (!key)
        fprintf(stderr, "meshd ca init: out of memory\n");
    else if (mesh_atomic_write(kp, key, strlen(key), 0600, MESH_ATOMIC_EXCL, err, sizeof(err)) !=
                 0 ||
             mesh_atomic_write(cp, root.cert_pem, strlen(root.cert_pem), 0644, MESH_ATOMIC_EXCL,
                               err, sizeof(err)) != 0)
        fprintf(stderr, "meshd ca init: %s\n", err);
    else
        rc = 0;
    if (key) {
        memset(key, 0, strlen(key));
        free(key);
    }
    if (rc == 0)
        printf("meshd ca init: a root for spiffe://%s, valid %d days:\n  %s (private key, 0600)\n"
               "  %s (certificate: the trust bundle every node gets)\n",
               td, days, kp, cp);
    ca_root_destroy(&root);
    return rc;
}

static int ca_verify(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *ca = NULL;
    for (int i = 0; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--cert") == 0)
            cert = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--key") == 0)
            key = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--ca") == 0)
            ca = argv[++i];
        else {
            fprintf(stderr, "meshd ca verify: unexpected argument '%s'\n", argv[i]);
            return usage();
        }
    }
    if (!cert) {
        fprintf(stderr, "meshd ca verify: --cert is required\n");
        return usage();
    }
    char err[1024];
    x509c_result_t r = x509c_check_files(cert, key, ca, (int64_t)time(NULL), err, sizeof(err));
    if (r != X509C_OK) {
        fprintf(stderr, "meshd ca verify: %s (%s)\n", err, x509c_result_name(r));
        return 1;
    }
    printf("%s: ok%s%s\n", cert, key ? ", key matches" : "", ca ? ", verifies against the CA" : "");
    /* The meshd identity, when it has one. */
    size_t n = 0;
    char *pem = mesh_file_read(cert, 16u << 20, 0, &n, NULL, 0); /* as x509c_check_files */
    X509 *x = pem ? ca_pem_read_x509(pem, n) : NULL;
    free(pem);
    ca_peer_identity_t id;
    if (x && ca_peer_identity_from_x509(x, NULL, &id, err, sizeof(err)) == 0) {
        printf("identity: spiffe://%s/node/%s\n", id.trust_domain, id.node);
        for (size_t i = 0; i < id.n_services; i++)
            printf("service:  spiffe://%s/svc/%s\n", id.trust_domain, id.services[i]);
        ca_peer_identity_destroy(&id);
    } else if (x) {
        printf("identity: none (%s)\n", err);
    }
    const mesh_crypto_t *C = ca_crypto(NULL, 0);
    if (C && x)
        C->x509_free(x);
    return 0;
}

int mesh_cli_ca(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "init") == 0)
        return ca_init(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "verify") == 0)
        return ca_verify(argc - 1, argv + 1);
    fprintf(stderr, "meshd ca: expected a subcommand: init, verify\n");
    return usage();
}
