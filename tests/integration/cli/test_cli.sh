#!/usr/bin/env bash
# tests/integration/cli/test_cli.sh: the meshd binary's command line as a user meets it:
# --version, --help, unknown commands and flags (usage, exit 2), config errors with
# file:line (exit 2), check-config on a good file (exit 0), the sidecar's registration fields,
# the mesh CA's commands and options.
set -u
meshd=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
pass=0

# expect NAME WANT_RC WANT_TEXT -- COMMAND...: runs COMMAND, checks exit code and output.
expect() {
  local name=$1 want_rc=$2 want_text=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$want_rc" ] || ! grep -qF -- "$want_text" <<<"$out"; then
    echo "FAIL $name: rc=$rc (want $want_rc), output:"
    echo "$out" | head -20
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

expect version 0 "meshd 0." -- "$meshd" --version
expect help 0 "commands:" -- "$meshd" --help
expect help-proxy 0 "MESHD_STATIC" -- "$meshd" help proxy
expect no-args 2 "usage: meshd" -- "$meshd"
expect unknown-command 2 "unknown command 'frobnicate'" -- "$meshd" frobnicate
expect unknown-flag 2 "--lisen: unknown option" -- "$meshd" proxy --lisen 1.2.3.4:5
expect unknown-flag-usage 2 "usage: meshd proxy" -- "$meshd" proxy --lisen 1.2.3.4:5
expect bad-value 2 "--workers: 'lots' is not an integer" -- "$meshd" proxy --workers lots
expect bad-env 2 "MESHD_LISTEN: 'nope' is not HOST:PORT" -- env MESHD_LISTEN=nope "$meshd" proxy
expect bad-static 2 "static: 'x' in 'a.B=x' is not HOST:PORT" -- "$meshd" proxy --static a.B=x
# The mesh CA's commands and options (docs/mesh-ca.md).
expect ca-no-sub 2 "expected a subcommand: init, verify" -- "$meshd" ca
expect ca-bad-domain 2 "trust domain 'A B' is not valid" -- "$meshd" ca init --dir "$tmp/ca" --trust-domain "A B"
expect ca-verify-garbage 1 "/dev/null: no PEM certificate in it" -- "$meshd" ca verify --cert /dev/null
expect ca-url-alone 2 "ca.url: needs --ca-token-file" -- "$meshd" proxy --ca-url http://127.0.0.1:1
expect ca-url-scheme 2 "'ftp://x' is not an http:// or https:// URL" -- "$meshd" proxy --ca-url ftp://x
expect ca-dir-alone 2 "a CA node needs --ca-tokens" -- "$meshd" proxy --ca-dir "$tmp"

cat >"$tmp/bad.yaml" <<'YAML'
listen: 127.0.0.1:7000
workers: 2
breaker:
  failures: 3
  falures: 4
YAML
expect file-unknown 2 "bad.yaml:5: breaker.falures: unknown option" -- "$meshd" check-config "$tmp/bad.yaml"
expect file-unknown-proxy 2 "bad.yaml:5: breaker.falures: unknown option" -- "$meshd" proxy --config "$tmp/bad.yaml"
printf 'workers: 2\nlisten: "unterminated\n' >"$tmp/syntax.yaml"
expect file-syntax 2 "syntax.yaml:2: YAML" -- "$meshd" check-config "$tmp/syntax.yaml"
expect file-missing 2 "cannot open" -- "$meshd" check-config "$tmp/none.yaml"

cat >"$tmp/good.yaml" <<'YAML'
listen: 127.0.0.1:7000
static:
  meshd.test.Echo: [127.0.0.1:50051, 127.0.0.1:50052]
breaker:
  failures: 3
YAML
expect file-good 0 'meshd.test.Echo=127.0.0.1:50051,127.0.0.1:50052' -- "$meshd" check-config "$tmp/good.yaml"

# The sidecar's registration fields (zone, weight, version, labels): bad values name their
# origin (flag, environment variable, file:line); good ones show in the effective config.
sc=(sidecar --app 127.0.0.1:1)
expect label-no-eq 2 "--label: 'team' is not KEY=VALUE" -- "$meshd" "${sc[@]}" --label team
expect label-bad-key 2 "--label: '-team' is not a label key" -- "$meshd" "${sc[@]}" --label -team=a
expect label-bad-prefix 2 "--label: 'Example.com/team' is not a label key" -- "$meshd" "${sc[@]}" --label Example.com/team=a
expect label-bad-value 2 "--label: 'a b' is not a label value" -- "$meshd" "${sc[@]}" --label "team=a b"
expect label-twice 2 "--label: label 'team' is given twice" -- "$meshd" "${sc[@]}" --label team=a --label team=b
expect label-env 2 "MESHD_LABEL: 'x' is not KEY=VALUE" -- env MESHD_LABEL="team=a;x" "$meshd" "${sc[@]}"
expect weight-zero 2 "--weight: 0 is out of range [1, 1000000]" -- "$meshd" "${sc[@]}" --weight 0
expect weight-word 2 "--weight: 'heavy' is not an integer" -- "$meshd" "${sc[@]}" --weight heavy
expect zone-space 2 "--zone: 'eu 1' must be 1 to 128 characters without spaces" -- "$meshd" "${sc[@]}" --zone "eu 1"
expect version-empty 2 "--version: '' must be 1 to 128 characters" -- "$meshd" "${sc[@]}" --version ""
expect label-proxy 2 "--label: unknown option" -- "$meshd" proxy --label a=b
expect help-sidecar 0 "--label KEY=VALUE" -- "$meshd" help sidecar
cat >"$tmp/labels.yaml" <<'YAML'
app: 127.0.0.1:1
zone: eu-1a
label:
  team: core
  "Bad Key": x
YAML
expect file-label 2 "labels.yaml:5: label: 'Bad Key' is not a label key" -- "$meshd" check-config "$tmp/labels.yaml"
cat >"$tmp/fields.yaml" <<'YAML'
app: 127.0.0.1:1
zone: eu-1a
weight: 7
version: 2.1.0-canary
label:
  team: core
  app.kubernetes.io/tier: gold
YAML
expect file-fields 0 'label: ["team=core", "app.kubernetes.io/tier=gold"]' -- "$meshd" check-config "$tmp/fields.yaml"
expect file-fields-version 0 'version: "2.1.0-canary"' -- "$meshd" check-config "$tmp/fields.yaml"
printf 'app: 127.0.0.1:1\nlabel: [team=core, tier=gold]\n' >"$tmp/list.yaml"
expect file-label-list 0 'label: ["team=core", "tier=gold"]' -- "$meshd" check-config "$tmp/list.yaml"

# The configs of the deployment kit (deploy/) are checked by tests/unit/deploy.

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
