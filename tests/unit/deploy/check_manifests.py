#!/usr/bin/python3
"""tests/unit/deploy/check_manifests.py: checks a rendered Kustomize overlay (YAML on stdin) for
what a cluster would only show too late: every meshd container's --config names a file of a
ConfigMap it mounts, and that file passes `meshd check-config`; meshd runs as non-root with a
read-only root file system and volumes where it writes; the grace period covers meshd's whole
stop, and the app's preStop sleep beside a sidecar covers it too; the image reference is set.
  check_manifests.py MESHD OVERLAY_NAME WORKDIR < rendered.yaml
Prints one line per check and 'N passed, N failed'; exit 1 on any failure."""
import os
import re
import subprocess
import sys

import yaml

meshd, overlay, work = sys.argv[1:4]
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
passed = failed = 0


def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + f"{overlay}: {what}")
    if ok:
        passed += 1
    else:
        failed += 1


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text))
    n = int(m.group(1))
    return {"ms": n / 1000, "s": n, "m": n * 60, None: n}[m.group(2)]


config_maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
checked = set()
deployments = [d for d in docs if d["kind"] == "Deployment"]
check(any(c["name"] == "meshd" for d in deployments
          for c in d["spec"]["template"]["spec"]["containers"]), "has meshd containers")
for dep in deployments:
    name = dep["metadata"]["name"]
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        if c["name"] != "meshd":
            continue
        where = f"{name}/{c['name']}"
        check(bool(c.get("image")) and c["image"] != "meshd", f"{where}: image {c.get('image')}")
        args = c.get("args", [])
        cfg = args[args.index("--config") + 1] if "--config" in args else None
        check(cfg is not None, f"{where}: --config given")
        if cfg is None:
            continue
        mount = next((m for m in c.get("volumeMounts", [])
                      if cfg.startswith(m["mountPath"].rstrip("/") + "/")), None)
        cm_name = mount and volumes.get(mount["name"], {}).get("configMap", {}).get("name")
        key = cfg[len(mount["mountPath"].rstrip("/")) + 1:] if mount else None
        data = config_maps.get(cm_name, {}).get("data", {})
        check(key in data, f"{where}: {cfg} is key {key} of ConfigMap {cm_name}")
        if key not in data:
            continue
        path = os.path.join(work, f"{overlay}-{cm_name}-{key}")
        with open(path, "w") as f:
            f.write(data[key])
        r = subprocess.run([meshd, "check-config", path], capture_output=True, text=True)
        check(r.returncode == 0, f"{where}: meshd check-config {key}"
              + ("" if r.returncode == 0 else f": {r.stderr.strip()}"))
        checked.add((cm_name, key))
        conf = yaml.safe_load(data[key]) or {}
        # Where meshd writes: volumes under a read-only root.
        sc = c.get("securityContext", {})
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("runAsNonRoot") is True,
              f"{where}: read-only root, non-root")
        mounted = {m["mountPath"] for m in c.get("volumeMounts", [])}
        check({"/var/lib/meshd", "/var/log/meshd"} <= mounted,
              f"{where}: volumes on /var/lib/meshd and /var/log/meshd")
        # The grace period covers meshd's whole stop: its preStop sleep, then for a sidecar
        # the pre-drain period (drain-timeout, deregistered but serving) and the drain itself
        # (drain-timeout again), for the other roles the drain alone (docs/architecture.md).
        grace = pod.get("terminationGracePeriodSeconds", 30)
        pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        drain = seconds(conf.get("drain-timeout", "5s"))
        stop = pre + drain * (2 if args[0] == "sidecar" else 1)
        check(grace > stop, f"{where}: grace {grace} s > meshd's stop {stop} s")
        # The app beside a sidecar serves until that stop is over.
        if args[0] == "sidecar":
            for app in pod["containers"]:
                if app is c:
                    continue
                a_pre = app.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                check(stop <= a_pre < grace,
                      f"{name}/{app['name']}: preStop {a_pre} s covers meshd's stop {stop} s")
# Every config file of every ConfigMap is valid, also those no container names.
for cm_name, cm in config_maps.items():
    for key, text in (cm.get("data") or {}).items():
        if not key.endswith(".yaml") or (cm_name, key) in checked:
            continue
        path = os.path.join(work, f"{overlay}-{cm_name}-{key}")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([meshd, "check-config", path], capture_output=True, text=True)
        check(r.returncode == 0, f"ConfigMap {cm_name}: meshd check-config {key}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
