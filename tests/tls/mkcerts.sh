#!/bin/sh
# tests/tls/mkcerts.sh DIR: makes the certificates the TLS tests use, with the openssl CLI:
#   ca.pem/ca.key          a test CA
#   server.pem/server.key  signed by it, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   server2.pem/.key       another server certificate like server.pem (for rotation)
#   client.pem/client.key  signed by it (a client certificate for mTLS; its URI SAN is not a
#                          meshd identity)
#   node.pem/node.key      signed by it, a meshd node's form: URI:spiffe://mesh.test/node/n1 and
#                          URI:spiffe://mesh.test/svc/pkg.Orders (a peer identity for mTLS)
#   expired.pem/.key       signed by it, valid 2020-01-01 .. 2020-01-02
#   future.pem/.key        signed by it, valid from 2099-01-01
#   other-ca.pem/.key      another CA; wrongca.pem/.key signed by it (SAN as server's)
#   garbage.pem            not PEM at all
# Keys are EC P-256 (quick to make). Exits non-zero on any failure.
set -eu
D=$1
mkdir -p "$D"
cd "$D"
q() { "$@" >/dev/null 2>&1 || { echo "mkcerts: failed: $*" >&2; "$@"; exit 1; }; }
key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
ca() { # name cn
    key "$1.key"
    q openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
cat > ext.cnf <<'X'
[srv]
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
extendedKeyUsage = serverAuth, clientAuth
[cli]
subjectAltName = URI:spiffe://test/client
extendedKeyUsage = clientAuth
[node]
subjectAltName = URI:spiffe://mesh.test/node/n1, URI:spiffe://mesh.test/svc/pkg.Orders
extendedKeyUsage = clientAuth
X
leaf() { # name signer-ca ext
    key "$1.key"
    q openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
    q openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 825 \
        -extfile ext.cnf -extensions "$3" -out "$1.pem"
}
# A leaf with fixed dates needs `openssl ca` (openssl 3.0's x509 has no -not_before).
dated() { # name start end
    key "$1.key"
    q openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
    mkdir -p cadb
    : > cadb/index.txt
    [ -f cadb/serial ] || echo 1000 > cadb/serial
    cat > ca.cnf <<X
[ca]
default_ca = test
[test]
database = cadb/index.txt
serial = cadb/serial
new_certs_dir = cadb
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
X
    q openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in "$1.csr" -out "$1.pem" \
        -startdate "$2" -enddate "$3" -extfile ext.cnf -extensions srv -notext
}
ca ca "meshd test CA"
ca other-ca "another CA"
leaf server ca srv
leaf server2 ca srv
leaf client ca cli
leaf node ca node
leaf wrongca other-ca srv
dated expired 20200101000000Z 20200102000000Z
dated future 20990101000000Z 20991231000000Z
echo "this is not a certificate" > garbage.pem
rm -f ./*.csr
