#!/usr/bin/env bash
# Static checks of the deployment files, with no Terraform binary and no cloud account:
#   1. every .tf file parses, every variable and output has a description, and every
#      module's README documents its inputs and outputs (infra/checks/check_terraform.py);
#   2. checkov passes on terraform/ (and on the Dockerfile); skipped rules must be inline
#      `#checkov:skip=CKV_…:reason` comments, which step 1 checks for a reason;
#   3. the operations files agree with the platform and the runbook
#      (infra/checks/check_ops.py): every CAMPUS_* variable they set is a real setting,
#      the Prometheus rules parse and use only metrics the platform exports (so do the
#      Grafana dashboards), every alert and alarm names an existing runbook section;
#   4. the systemd units in infra/systemd/ pass `systemd-analyze verify` without a warning
#      (where systemd-analyze exists).
# The Python tools live in virtual environments under $INFRA_CHECK_VENV
# (default ~/.cache/campus-infra-venv), created on first use and reused afterwards.
# python-hcl2 and checkov (which bundles its own fork of the same `hcl2` module) get one
# each, so neither shadows the other.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

HCL2_VERSION=8.1.4
CHECKOV_VERSION=3.3.30
venvs="${INFRA_CHECK_VENV:-$HOME/.cache/campus-infra-venv}"

command -v python3 >/dev/null 2>&1 || need_packages python3
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_packages python3-venv

# venv NAME PACKAGE==VERSION: makes sure $venvs/NAME has exactly that package.
venv() {
  local dir="$venvs/$1" spec="$2"
  if [ ! -f "$dir/.installed" ] || [ "$(cat "$dir/.installed")" != "$spec" ]; then
    echo "installing $spec into $dir…"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$spec"
    echo "$spec" > "$dir/.installed"
  fi
}

venv hcl "python-hcl2==$HCL2_VERSION"
venv checkov "checkov==$CHECKOV_VERSION"

"$venvs/hcl/bin/python" infra/checks/check_terraform.py terraform
# Formatting needs no providers; check it where a terraform binary happens to exist.
if command -v terraform >/dev/null 2>&1; then
  terraform fmt -check -recursive -diff terraform >/dev/null 2>&1 || {
    echo "terraform fmt: these files need \`terraform fmt -recursive terraform\`:" >&2
    terraform fmt -check -recursive terraform >&2 2>/dev/null || true
    exit 1
  }
fi

# --skip-download: no calls to the vendor's platform; results come from the local rules.
checkov=("$venvs/checkov/bin/checkov" --quiet --compact --skip-download)
"${checkov[@]}" -d terraform --framework terraform
"${checkov[@]}" -f Dockerfile --framework dockerfile

# PyYAML comes with checkov, so its environment runs this one.
"$venvs/checkov/bin/python" infra/checks/check_ops.py

if command -v systemd-analyze >/dev/null 2>&1; then
  # verify insists that ExecStart's program exists: point the units at a placeholder.
  units="$(mktemp -d)"
  trap 'rm -rf "$units"' EXIT
  printf '#!/bin/sh\n' > "$units/campus" && chmod +x "$units/campus"
  for unit in infra/systemd/*.service; do
    sed "s#/usr/local/bin/campus#$units/campus#g" "$unit" > "$units/$(basename "$unit")"
  done
  # verify exits 0 on unknown keys and other warnings; any output is a finding.
  findings="$(systemd-analyze verify --man=no "$units"/*.service 2>&1 || true)"
  if [ -n "$findings" ]; then
    echo "systemd units:" >&2
    echo "${findings//$units/infra/systemd}" >&2
    exit 1
  fi
  echo "systemd units: $(ls infra/systemd/*.service | wc -l) verified"
else
  echo "systemd units: not verified (systemd-analyze is not installed)"
fi
echo "infra checks passed"
