#!/usr/bin/env bash
# tests/image/test_image.sh (label image): builds the container image with scripts/image,
# exports its root file system and checks it from a chroot (containers cannot be started in
# every sandbox; building, exporting and chrooting work): no shell or package manager, a
# non-root user, every shared library meshd loads (libcurl, libcrypto, librdkafka too)
# resolvable inside, `meshd --version`, `meshd check-config` on the default config, and a proxy
# round trip to a gRPC backend on loopback, run as the image's user on the root file system
# mounted read-only.
# Exits 77 (ctest: skipped) with a message where neither podman nor a running docker exists.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
start=$(date +%s)
if command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
else
  echo "SKIP image: neither podman nor a running docker engine here (apt-get install podman mmdebstrap)"
  exit 77
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP image: chroot and mount need root"
  exit 77
fi
tag=localhost/meshd:ctest
tmp=$(mktemp -d)
rootfs=$tmp/rootfs
pids=()
mounts=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  # Unmount before removing: a bound tree still mounted read-only would not go.
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}"
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
check() { # check NAME STATUS [DETAIL]
  if [ "$2" -eq 0 ]; then
    echo "ok   $1"
    pass=$((pass + 1))
  else
    echo "FAIL $1${3:+: $3}"
    fail=$((fail + 1))
  fi
}

# Build (the layer cache makes a rebuild after a source change cost one compile of meshd).
if ! "$root/scripts/image" --engine "$engine" --tag "$tag" >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log"
  echo "FAIL scripts/image (after $(($(date +%s) - start)) s)"
  exit 1
fi
built=$(date +%s)
tail -n 1 "$tmp/build.log"
size=$($engine image inspect --format '{{.Size}}' "$tag")

# Export the image's root file system.
id=$($engine create "$tag")
mkdir -p "$rootfs"
$engine export "$id" | tar -x -C "$rootfs"
$engine rm "$id" >/dev/null

user=$($engine image inspect --format '{{.Config.User}}' "$tag")
[ "${user%%:*}" = 65532 ]
check "runs as the non-root user 65532 (User: $user)" $?
bad=$(cd "$rootfs" && ls -d bin/sh usr/bin/sh bin/bash usr/bin/dpkg usr/bin/apt usr/bin/apt-get 2>/dev/null)
[ -z "$bad" ]
check "no shell, no package manager" $? "$bad"
files=$(find "$rootfs" -type f | wc -l)
echo "     $files files, $size bytes ($((size / 1024 / 1024)) MiB uncompressed)"

# Every library meshd opens resolves inside the image, with the image's own loader.
loader=$(cd "$rootfs" && ls usr/lib64/ld-linux-*.so.* usr/lib/ld-linux-*.so.* 2>/dev/null | head -n1)
for f in usr/local/bin/meshd usr/lib/*/libcurl.so.4 usr/lib/*/libcrypto.so.3 usr/lib/*/librdkafka.so.1; do
  out=$(cd "$rootfs" && ls $f >/dev/null 2>&1 && chroot "$rootfs" "/$loader" --list "/$(cd "$rootfs" && ls $f)" 2>&1)
  st=$?
  if echo "$out" | grep -q 'not found'; then st=1; fi
  check "libraries of /$f resolve in the image" $st "$(echo "$out" | grep 'not found' | head -n3)"
done

# The image's environment (MESHD_CONFIG names the default config), as a container gets it.
read -r -a image_env <<<"$($engine image inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$tag")"
printf '%s\n' "${image_env[@]}" | grep -qx 'MESHD_CONFIG=/etc/meshd/meshd.yaml'
check "the image's environment names the default config (${image_env[*]})" $?
run() { env -i "${image_env[@]}" chroot --userspec=65532:65532 "$rootfs" /usr/local/bin/meshd "$@"; }
out=$(run --version 2>&1)
check "meshd --version: $out" $?
out=$(run check-config /etc/meshd/meshd.yaml 2>&1)
check "meshd check-config /etc/meshd/meshd.yaml" $? "$out"

# A read-only root, as Kubernetes runs it: the exported tree bound onto itself read-only, with
# writable tmpfs on the two folders meshd writes to.
ro="read-only root"
if mount --bind "$rootfs" "$rootfs" 2>/dev/null; then
  mounts+=("$rootfs")
  if mount -o remount,bind,ro "$rootfs" 2>/dev/null; then
    for d in var/lib/meshd var/log/meshd; do
      mount -t tmpfs -o mode=0755,uid=65532,gid=65532,size=16m tmpfs "$rootfs/$d" && mounts+=("$rootfs/$d")
    done
    ! touch "$rootfs/usr/x" 2>/dev/null
    check "root file system is read-only for the round trip" $?
  else
    ro="writable root (remount read-only refused)"
  fi
else
  ro="writable root (bind mount refused)"
fi

# The proxy round trip: a gRPC backend on loopback (outside the chroot: same network), meshd
# proxy inside it with a static route, a call through it.
/usr/bin/python3 "$root/tests/image/echo_peer.py" serve >"$tmp/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening on' "$tmp/backend.log" && break; sleep 0.1; done
bport=$(sed -n 's/^listening on //p' "$tmp/backend.log")
pport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# env and chroot exec meshd: $! is meshd's own PID. The default config applies (JSON logs),
# its listen address is overridden by the flag.
env -i "${image_env[@]}" chroot --userspec=65532:65532 "$rootfs" /usr/local/bin/meshd proxy --listen "127.0.0.1:$pport" \
  --workers 1 --static "meshd.test.Echo=127.0.0.1:$bport" >"$tmp/proxy.log" 2>&1 &
pids+=($!)
out=$(/usr/bin/python3 "$root/tests/image/echo_peer.py" call "127.0.0.1:$pport" 2>&1)
st=$?
check "proxy round trip through the image's meshd ($ro): $out" $st "$(tail -n 5 "$tmp/proxy.log")"
# Its log is JSON: the default config (log-format: json) was read through MESHD_CONFIG.
[ "$(head -c 1 "$tmp/proxy.log")" = "{" ]
check "meshd read the default config (JSON log lines)" $? "$(head -n 2 "$tmp/proxy.log")"

echo "image test: build $((built - start)) s, checks $(($(date +%s) - built)) s, total $(($(date +%s) - start)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
