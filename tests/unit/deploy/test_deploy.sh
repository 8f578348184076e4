#!/usr/bin/env bash
# tests/unit/deploy/test_deploy.sh: the deployment kit stays valid as meshd's options change. Runs
# `meshd check-config` on every config the kit embeds (the image's default, every config file of
# the Kustomize base and overlays), then renders every overlay with `kubectl kustomize` (offline)
# and checks the result (tests/unit/deploy/check_manifests.py). Without a kubectl whose kustomize
# reads the kit (kubectl 1.21 or later), the rendering is skipped with a message.
#   test_deploy.sh MESHD
set -uo pipefail
meshd=$1
root=$(cd "$(dirname "$0")/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

for f in "$root/deploy/image/meshd.yaml" "$root"/deploy/kubernetes/base/config/*.yaml \
  "$root"/deploy/kubernetes/overlays/*/config/*.yaml; do
  [ -e "$f" ] || continue
  if out=$("$meshd" check-config "$f" 2>&1); then
    echo "ok   check-config ${f#"$root"/}"
    pass=$((pass + 1))
  else
    echo "FAIL check-config ${f#"$root"/}: $out"
    fail=$((fail + 1))
  fi
done

if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP kubectl kustomize: kubectl not found (any kubectl 1.21 or later renders offline)"
elif ! kubectl kustomize --help >/dev/null 2>&1 ||
  [ "$(kubectl version --client -o json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin)["clientVersion"]; print(int(v["major"])*100+int(v["minor"].rstrip("+")))')" -lt 121 ]; then
  echo "SKIP kubectl kustomize: $(command -v kubectl) is older than 1.21 (its kustomize cannot read the kit)"
else
  for dir in "$root"/deploy/kubernetes/overlays/*/; do
    name=$(basename "$dir")
    if ! kubectl kustomize "$dir" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
      echo "FAIL kubectl kustomize overlays/$name: $(cat "$tmp/$name.err")"
      fail=$((fail + 1))
      continue
    fi
    echo "ok   kubectl kustomize overlays/$name ($(grep -c '^kind:' "$tmp/$name.yaml") objects)"
    pass=$((pass + 1))
    out=$(/usr/bin/python3 "$root/tests/unit/deploy/check_manifests.py" "$meshd" "$name" "$tmp" \
      <"$tmp/$name.yaml")
    echo "$out" | grep -v ' passed, '
    p=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(echo "$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    pass=$((pass + ${p:-0}))
    fail=$((fail + ${f:-1}))
  done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
