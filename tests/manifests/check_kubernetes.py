"""Check examples/kubernetes.yaml: valid against the Kubernetes API schema
(PyPI's kubernetes-validate, offline), within the `restricted` Pod Security
profile, and with grace periods that fit together as its comment says.

usage: check_kubernetes.py FILE     exit 0 and "N passed, 0 failed", or 1
"""
import re
import subprocess
import sys

import yaml

path = sys.argv[1]
passed, failed = 0, 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}\n       {detail}")


out = subprocess.run(["kubernetes-validate", "--strict", "--quiet", path], capture_output=True, text=True)
check("valid against the Kubernetes API schema (kubernetes-validate --strict)", out.returncode == 0, out.stdout + out.stderr)

doc = yaml.safe_load(open(path))
pod = doc["spec"]["template"]["spec"]
psc = pod.get("securityContext", {})
for c in pod["containers"]:
    sc = c.get("securityContext", {})
    name = c["name"]
    check(f"{name}: runs as non-root", psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0)
    check(f"{name}: no privilege escalation", sc.get("allowPrivilegeEscalation") is False)
    check(f"{name}: every capability dropped", sc.get("capabilities", {}).get("drop") == ["ALL"])
    check(f"{name}: seccomp RuntimeDefault", (sc.get("seccompProfile") or psc.get("seccompProfile", {})).get("type") == "RuntimeDefault")
    check(f"{name}: read-only root filesystem", sc.get("readOnlyRootFilesystem") is True)
    check(f"{name}: image tag pinned", re.search(r":[0-9][^:/]*$|@sha256:", c["image"]) is not None, c["image"])
    env = {e["name"]: e["value"] for e in c.get("env", [])}
    secs = lambda v: int(v.rstrip("s"))
    grace, tgps = secs(env["CURTAIN_GRACE_PERIOD"]), pod["terminationGracePeriodSeconds"]
    check(f"{name}: CURTAIN_GRACE_PERIOD {grace}s <= terminationGracePeriodSeconds {tgps}s - 5s", grace <= tgps - 5)
    text = open(path).read()
    check(f"{name}: the timeline comment has the manifest's numbers",
          f"{grace}s     if it has not" in text and f"{tgps}s     kubelet" in text, "")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
