#!/bin/sh
# deploy/image/rootfs.sh: run in the Containerfile's build stage; lays out the runtime image's
# whole root file system in DEST: the meshd binary, every shared library it loads (those it is
# linked with, and libcurl, libcrypto and librdkafka, which it opens at run time, each with its own
# dependencies), the CA certificates, the non-root user, the default config and the two
# writable folders. The runtime stage copies DEST onto an empty image: no shell, no package
# manager, nothing else.
#   rootfs.sh MESHD_BINARY DEFAULT_CONFIG DEST
set -eu
meshd=$1
config=$2
dest=$3
uid=65532 # the "nonroot" uid of distroless images

# copy PATH: copies a file (following symbolic links) to the same path under DEST. A library
# named through /lib (a link to /usr/lib in Debian 12) lands under /usr/lib.
copy() {
	dir=$(readlink -f "$(dirname "$1")")
	mkdir -p "$dest$dir"
	cp -L "$1" "$dest$dir/$(basename "$1")"
}

# libs FILE: the absolute paths of the shared libraries FILE needs, the dynamic loader included.
libs() {
	ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

# libpath SONAME: where the dynamic loader finds SONAME.
libpath() {
	p=$(ldconfig -p | awk -v n="$1" '$1 == n { print $NF; exit }')
	if [ -z "$p" ]; then
		echo "rootfs.sh: $1 not found (is its package in deploy/image/build-packages?)" >&2
		exit 1
	fi
	echo "$p"
}

rm -rf "$dest"
mkdir -p "$dest/usr/lib" "$dest/usr/lib64" "$dest/usr/local/bin"
# Debian 12's merged /usr: the loader's path (/lib64/ld-linux-x86-64.so.2) and /lib go through it.
ln -s usr/lib "$dest/lib"
ln -s usr/lib64 "$dest/lib64"

install -m 0755 "$meshd" "$dest/usr/local/bin/meshd"
# meshd opens these by soname at run time (common/curl_lib.c, common/crypto_lib.c,
# common/kafka_lib.c; libssl comes with libcurl).
curl=$(libpath libcurl.so.4)
crypto=$(libpath libcrypto.so.3)
rdkafka=$(libpath librdkafka.so.1)
for f in "$meshd" "$curl" "$crypto" "$rdkafka"; do
	libs "$f"
done | sort -u >"$dest.libs"
echo "$curl" >>"$dest.libs"
echo "$crypto" >>"$dest.libs"
echo "$rdkafka" >>"$dest.libs"
sort -u "$dest.libs" | while read -r lib; do
	copy "$lib"
done
rm -f "$dest.libs"

# CA certificates, where libcurl (Debian's build) and OpenSSL look for them.
mkdir -p "$dest/etc/ssl/certs" "$dest/usr/lib/ssl"
cp -L /etc/ssl/certs/ca-certificates.crt "$dest/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$dest/usr/lib/ssl/cert.pem"
ln -s /etc/ssl/certs "$dest/usr/lib/ssl/certs"

# The user meshd runs as, and name lookups from /etc/hosts first, then DNS (glibc 2.36 has both
# in libc itself: no NSS module to copy).
printf 'root:x:0:0:root:/root:/nonexistent\nmeshd:x:%d:%d:meshd:/nonexistent:/nonexistent\n' \
	"$uid" "$uid" >"$dest/etc/passwd"
printf 'root:x:0:\nmeshd:x:%d:\n' "$uid" >"$dest/etc/group"
printf 'hosts: files dns\n' >"$dest/etc/nsswitch.conf"

install -D -m 0644 "$config" "$dest/etc/meshd/meshd.yaml"
# State and audit folders (volumes under a read-only root), and /tmp.
mkdir -p "$dest/var/lib/meshd" "$dest/var/log/meshd" "$dest/tmp"
chown "$uid:$uid" "$dest/var/lib/meshd" "$dest/var/log/meshd"
chmod 1777 "$dest/tmp"
