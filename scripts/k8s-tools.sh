#!/usr/bin/env bash
# The offline Kubernetes validators the tests run (no cluster needed), in a
# virtualenv under target/: kubernetes-validate (manifests against the
# Kubernetes JSON schemas, --strict) and openapi-schema-validator (custom
# resources against weft's CRD schemas). Idempotent; prints the venv's bin
# directory. Tests find it at $WEFT_K8S_TOOLS or target/k8s-tools.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh
target=$(target_dir)
venv=${WEFT_K8S_TOOLS:-${target:-target}/k8s-tools}
stamp="$venv/.installed-2"
if [[ ! -f $stamp ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        'kubernetes-validate==1.37.0' 'openapi-schema-validator==0.9.0' 'pyyaml>=6' 'cel-python==0.5.0' >&2
    touch "$stamp"
fi
echo "$venv/bin"
