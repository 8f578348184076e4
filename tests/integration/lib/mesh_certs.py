"""tests/integration/lib/mesh_certs.py: workload certificates for the mesh CA tests, made with
the openssl CLI under a root from `meshd ca init`: an identity folder (key.pem, cert.pem,
ca.pem) as meshd's identity client writes it, with the SANs `meshd ca` writes
(spiffe://TD/node/NAME and spiffe://TD/svc/SERVICE), or other SANs a test asks for."""
import os
import subprocess

from certs import openssl
from procs import check


def ca_init(meshd, ca_dir, td):
    """`meshd ca init`: a root in ca_dir (ca-cert.pem, ca-key.pem) for trust domain td."""
    r = subprocess.run([meshd, "ca", "init", "--dir", ca_dir, "--trust-domain", td],
                       capture_output=True, text=True)
    check(r.returncode == 0, "meshd ca init: %s" % r.stderr)


def issue(c, ca_dir, name, services, td="example.org", extra_sans=(), sans=None):
    """An identity folder (key.pem, cert.pem, ca.pem) for node name, signed by the CA in ca_dir
    with the openssl CLI, with the SANs `meshd ca` writes plus extra_sans (e.g. "IP:127.0.0.1"
    for a server checked by address), or exactly sans when given."""
    d = os.path.join(c.dir, "id-" + name)
    os.makedirs(d, exist_ok=True)
    key, csr, cert = (os.path.join(d, f) for f in ("key.pem", "req.pem", "cert.pem"))
    if not os.path.exists(key):  # a renewal keeps the key, as meshd's identity client does
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", "/CN=%s/O=%s" % (name, td), "-out", csr)
    ext = os.path.join(d, "ext.cnf")
    if sans is None:
        sans = ["URI:spiffe://%s/node/%s" % (td, name)]
        sans += ["URI:spiffe://%s/svc/%s" % (td, s) for s in services]
        sans += list(extra_sans)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "subjectAltName=%s\n" % ",".join(sans))
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca-cert.pem"),
            "-CAkey", os.path.join(ca_dir, "ca-key.pem"), "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")), "-days", "1", "-extfile", ext,
            "-out", cert + ".new")
    os.rename(cert + ".new", cert)  # atomically, as the identity client writes it
    with open(os.path.join(ca_dir, "ca-cert.pem")) as src, \
            open(os.path.join(d, "ca.pem"), "w") as dst:
        dst.write(src.read())
    return d
