/*
 * tests/unit/node/test_gossip_bridge.c: the gossip bridge (node/gossip_bridge.c) taking signed
 * records, on the simulated executor: member events made by hand, as the gossip actor sends
 * them, carrying records signed (ca/record_sig.h, v2) with a leaf from the mesh CA's signing
 * core; what the bridge hands the registry actor (REG_MSG_GOSSIP) tells what it routes.
 *
 * A member's record signed at version 200 is routed. Its older record (signed at version 100)
 * replayed at a higher incarnation is refused as stale, and the record accepted stays routed;
 * the older record claiming version 201 fails its signature, and the record accepted stays
 * routed too (like stale: only the owner changes its record); an empty record without a
 * signature (what a keyring holder would send to erase the member's services), and no metadata
 * at all, are refused as unsigned and change nothing; the current record again (the owner
 * refuting at a newer incarnation) is routed; a record for it signed by another member's valid
 * identity (wrong_identity) changes nothing either; the owner's own empty record, signed, withdraws
 * its instances. (Each refusal goes through the path every refused record takes: counted by
 * reason, logged, audited.) Dead owners reach the registry actor sorted by name, each with the
 * services of its accepted record, or marked unknown when its metadata never came.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/sim.h"
#include "actors/simnet.h"
#include "ca/ca_sign.h"
#include "gossip/meta.h"
#include "node/gossip_bridge.h"
#include "registry/registry_actor.h"
#include "registry/route_table.h"
#include "tests/check.h"

#define MS 1000000ull

static const mesh_crypto_t *C;
static char routed[256]; /* the addresses of shop.Cart the bridge last handed over, joined */
static int tables;       /* REG_MSG_GOSSIP received */
static char
    dead[256]; /* the dead owners it last handed over: "node:svc|svc" (?: unknown), joined */

/* The registry actor's stand-in: keeps what the bridge routes. */
static int reg_message(mesh_actor_t *self, mesh_msg_t *m)
{
    (void)self;
    if (m->type != REG_MSG_GOSSIP || !m->ptr)
        return 0;
    const reg_gossip_t *g = m->ptr;
    const mesh_route_service_t *s = g->routes ? mesh_routes_service(g->routes, "shop.Cart") : NULL;
    routed[0] = 0;
    for (size_t i = 0; s && i < s->n_instances; i++)
        snprintf(routed + strlen(routed), sizeof routed - strlen(routed), "%s%s", i ? "," : "",
                 s->instances[i].addr);
    dead[0] = 0;
    for (size_t i = 0; i < g->n_dead; i++) {
        const reg_dead_owner_t *d = &g->dead[i];
        snprintf(dead + strlen(dead), sizeof dead - strlen(dead), "%s%s:%s", i ? "," : "", d->node,
                 d->services_unknown ? "?" : "");
        for (size_t k = 0; k < d->n_services; k++)
            snprintf(dead + strlen(dead), sizeof dead - strlen(dead), "%s%s", k ? "|" : "",
                     d->services[k]);
    }
    tables++;
    return 0;
}

static const mesh_actor_ops_t reg_ops = {.name = "registry", .on_message = reg_message};

/* Metadata of one shop.Cart instance at addr (NULL: no instance, an empty record), signed by key
 * for node-a at version (key NULL: unsigned), with the leaf inline; into buf. */
static size_t signed_meta(EVP_PKEY *key, const uint8_t *der, size_t der_len, const char *addr,
                          uint64_t version, uint8_t *buf, size_t cap)
{
    gsp_inst_t in = {.service = {"shop.Cart", 9},
                     .addr = {addr, addr ? (uint32_t)strlen(addr) : 0},
                     .node = {"node-a", 6},
                     .weight = 1};
    size_t n = addr ? 1 : 0;
    uint8_t rec[256], sig[RSIG_SIG_MAX];
    int rl = gsp_meta_encode(&in, n, rec, sizeof rec);
    CHECK(rl > 0);
    int sl = key ? rsig_sign(key, "node-a", version, rec, (size_t)rl, sig, sizeof sig) : 0;
    CHECK(!key || sl > 0);
    static gsp_node_attrs_t na;
    memset(&na, 0, sizeof na);
    na.vsig = (gsp_str_t){(const char *)sig, (uint32_t)sl};
    if (key)
        na.cert = (gsp_str_t){(const char *)der, (uint32_t)der_len};
    int len = gsp_meta_encode_node(&in, n, &na, buf, cap);
    CHECK(len > 0);
    return (size_t)len;
}

/* A member event for name in state st (meta NULL: its metadata is not known). */
static void member_in(mesh_exec_t *sim, mesh_actor_id_t bridge, const char *name, gsp_state_t st,
                      uint32_t inc, uint64_t version, const uint8_t *meta, size_t len)
{
    gsp_member_event_t *e = calloc(1, sizeof *e + len);
    CHECK(e);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->addr, sizeof e->addr, "10.0.0.2:7946");
    e->state = e->prev = st;
    e->incarnation = inc;
    e->meta_version = version;
    e->meta_known = meta != NULL;
    e->meta_len = len;
    if (len)
        memcpy(e->meta, meta, len);
    CHECK(mesh_exec_send_ptr(sim, bridge, GSP_MSG_MEMBER, e, free) == 0);
    int before = tables;
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100 * MS);
    CHECK(tables > before); /* a table after every member change */
}

static void member(mesh_exec_t *sim, mesh_actor_id_t bridge, uint32_t inc, uint64_t version,
                   const uint8_t *meta, size_t len)
{
    member_in(sim, bridge, "node-a", GSP_ST_ALIVE, inc, version, meta, len);
}

/* A key and a leaf for node (owning shop.Cart) signed by root; the leaf's DER into der. */
static int leaf(ca_root_t *root, const char *node, int64_t now, EVP_PKEY **key, uint8_t *der)
{
    char err[512];
    *key = ca_key_generate();
    CHECK(*key);
    X509_REQ *r = C->x509_req_new();
    CHECK(r && C->x509_req_set_version(r, 0) == 1 && C->x509_req_set_pubkey(r, *key) == 1 &&
          C->x509_req_sign(r, *key, C->sha256()) > 0);
    char *csr = ca_pem_write_req(r);
    C->x509_req_free(r);
    const char *svcs[] = {"shop.Cart"};
    ca_sign_req_t req = {
        .csr_pem = csr, .csr_len = strlen(csr), .node = node, .services = svcs, .n_services = 1};
    ca_issued_t out;
    CHECK(ca_sign(root, &req, now - 60, &out, err, sizeof err) == CA_SIGN_OK);
    X509 *x = ca_pem_read_x509(out.cert_pem, strlen(out.cert_pem));
    CHECK(x);
    unsigned char *p = der;
    int der_len = C->i2d_x509(x, &p);
    CHECK(der_len > 0 && der_len <= GSP_CERT_MAX);
    C->x509_free(x);
    ca_issued_destroy(&out);
    free(csr);
    return der_len;
}

int main(void)
{
    char err[512];
    C = ca_crypto(err, sizeof err);
    CHECK(C);
    /* the bridge checks certificates at the wall clock: a root and a leaf valid around now */
    int64_t now = (int64_t)time(NULL);
    ca_root_t root;
    CHECK(ca_root_create(&root, "example.org", 10, now - 86400, err, sizeof err) == 0);

    /* node-a's key and leaf (shop.Cart); node-b's, another member of the mesh */
    static uint8_t der[GSP_CERT_MAX], der_b[GSP_CERT_MAX];
    EVP_PKEY *key = NULL, *key_b = NULL;
    int der_len = leaf(&root, "node-a", now, &key, der);
    int der_b_len = leaf(&root, "node-b", now, &key_b, der_b);

    mesh_exec_t *sim = mesh_sim_new(1);
    mesh_io_t *host = mesh_simnet_host(mesh_sim_net(sim), "10.0.0.1");
    mesh_actor_id_t reg = 0, bridge = 0;
    CHECK(mesh_sim_spawn_on(sim, host, &reg_ops, NULL, NULL, &reg) == 0);
    static gsp_bridge_args_t a;
    snprintf(a.gossip.name, sizeof a.gossip.name, "proxy");
    snprintf(a.gossip.bind, sizeof a.gossip.bind, "10.0.0.1:7946");
    gsp_swim_profile("lan", &a.gossip.swim);
    a.registry = &reg;
    a.routes = 1;
    a.verify = 1;
    CHECK((a.trust =
               rsig_trust_new(root.cert_pem, strlen(root.cert_pem), "ca.pem", err, sizeof err)));
    CHECK(mesh_sim_spawn_on(sim, host, &gsp_bridge_ops, &a, NULL, &bridge) == 0);
    mesh_sim_run_until(sim, mesh_sim_now(sim) + 100 * MS);

    static uint8_t old_meta[GSP_META_MAX], cur_meta[GSP_META_MAX], forged[GSP_META_MAX];
    size_t ol =
        signed_meta(key, der, (size_t)der_len, "10.0.0.2:50051", 100, old_meta, sizeof old_meta);
    size_t cl =
        signed_meta(key, der, (size_t)der_len, "10.0.0.2:50052", 200, cur_meta, sizeof cur_meta);

    member(sim, bridge, 1, 100, old_meta, ol); /* the first record: routed */
    CHECK_STR(routed, "10.0.0.2:50051");
    member(sim, bridge, 1, 200, cur_meta, cl); /* the owner's change: routed */
    CHECK_STR(routed, "10.0.0.2:50052");
    /* a replay of the older record at its own version, dressed as a newer incarnation: stale,
     * and the accepted record stays routed */
    member(sim, bridge, 2, 100, old_meta, ol);
    CHECK_STR(routed, "10.0.0.2:50052");
    /* the older record claiming a newer version: its signature says 100 */
    memcpy(forged, old_meta, ol);
    member(sim, bridge, 3, 201, forged, ol);
    CHECK_STR(routed, "10.0.0.2:50052");
    /* an empty record without a signature at a newer version: it would erase the member's
     * services; refused (unsigned), the accepted record stays */
    static uint8_t empty[GSP_META_MAX], withdrawn[GSP_META_MAX];
    size_t el = signed_meta(NULL, NULL, 0, NULL, 0, empty, sizeof empty);
    member(sim, bridge, 4, 300, empty, el);
    CHECK_STR(routed, "10.0.0.2:50052");
    member(sim, bridge, 5, 301, empty, 0); /* no metadata at all: the same */
    CHECK_STR(routed, "10.0.0.2:50052");
    /* the owner refutes with its current record: routed */
    member(sim, bridge, 6, 200, cur_meta, cl);
    CHECK_STR(routed, "10.0.0.2:50052");
    /* another member of the mesh (node-b, a valid leaf of the same CA) signs a record for
     * node-a pointing at its own address: wrong identity, and node-a stays routed as it was */
    static uint8_t hijack[GSP_META_MAX];
    size_t hl =
        signed_meta(key_b, der_b, (size_t)der_b_len, "10.0.0.66:50051", 350, hijack, sizeof hijack);
    member(sim, bridge, 7, 350, hijack, hl);
    CHECK_STR(routed, "10.0.0.2:50052");
    CHECK_STR(dead, "");
    /* dead owners go to the registry actor sorted by name, each with the services its accepted
     * record lists (or unknown: its metadata never came); alive again, it leaves the list */
    member_in(sim, bridge, "node-z", GSP_ST_DEAD, 1, 0, NULL, 0);
    CHECK_STR(dead, "node-z:?");
    member_in(sim, bridge, "node-a", GSP_ST_DEAD, 9, 200, cur_meta, cl);
    CHECK_STR(routed, "");
    CHECK_STR(dead, "node-a:shop.Cart,node-z:?");
    member_in(sim, bridge, "node-a", GSP_ST_ALIVE, 10, 200, cur_meta, cl);
    CHECK_STR(routed, "10.0.0.2:50052");
    CHECK_STR(dead, "node-z:?");
    /* the owner withdraws its instances with a signed empty record: accepted */
    size_t wl = signed_meta(key, der, (size_t)der_len, NULL, 400, withdrawn, sizeof withdrawn);
    member(sim, bridge, 8, 400, withdrawn, wl);
    CHECK_STR(routed, "");

    mesh_exec_free(sim);
    rsig_trust_free(a.trust);
    C->pkey_free(key);
    C->pkey_free(key_b);
    ca_root_destroy(&root);
    printf("ok\n");
    return 0;
}
