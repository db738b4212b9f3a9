#!/usr/bin/env bash
# The Terraform flow for platform.yaml's backend: `scripts/infra.sh up|down`, with the
# host's terraform (or tofu), or OpenTofu built from its Go module when it has neither.
# infra/cluster (terraform_data -> gpuplane up/down) needs no provider and runs offline.
# infra/platform needs the gavinbunney/kubectl provider: from GPUPLANE_TF_MIRROR (a
# filesystem mirror) when set, else from the mirror the toolchain builds from
# tools/terraform-provider-kubectl (`gpuplane toolchain terraform-mirror`, cached).
#
# Environment: GPUPLANE_PLATFORM_FILE (default ./platform.yaml), GPUPLANE_STATE (the
# cluster's state directory, as for the CLI), GPUPLANE_INFRA_DIR (where the modules run
# and keep their Terraform state; default ./infra, else a copy of the modules is made
# there once).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: scripts/infra.sh up|down}
root=$(pwd)
# terraform or tofu from PATH, else OpenTofu built from tools/tofu (cached like the rest).
tf=$("$root/.venv/bin/gpuplane" toolchain terraform) || exit $?
platform_file=${GPUPLANE_PLATFORM_FILE:-$root/platform.yaml}
infra=${GPUPLANE_INFRA_DIR:-$root/infra}
if [ "$infra" != "$root/infra" ]; then
  for module in cluster platform; do
    mkdir -p "$infra/$module"
    cp "$root/infra/$module"/*.tf "$infra/$module/"
  done
fi
vars=(-var "platform_file=$platform_file" -var "gpuplane_bin=$root/.venv/bin/gpuplane")
[ -n "${GPUPLANE_STATE:-}" ] && vars+=(-var "state_dir=$GPUPLANE_STATE")

mirror=${GPUPLANE_TF_MIRROR:-$("$root/.venv/bin/gpuplane" toolchain terraform-mirror)} || exit $?
cli_config=$(mktemp)
trap 'rm -f "$cli_config"' EXIT
# Every provider from the mirror, none from a network registry: init is offline.
printf 'provider_installation {\n  filesystem_mirror {\n    path = "%s"\n    include = ["*/*/*"]\n  }\n  direct {\n    exclude = ["*/*/*"]\n  }\n}\n' "$mirror" > "$cli_config"
export TF_CLI_CONFIG_FILE=$cli_config TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

platform_step() {
  local verb=$1 kubeconfig
  kubeconfig=$("$tf" -chdir="$infra/cluster" output -raw kubeconfig_path)
  "$tf" -chdir="$infra/platform" init -input=false >/dev/null
  "$tf" -chdir="$infra/platform" "$verb" -auto-approve -input=false \
    -var "kubeconfig_path=$kubeconfig" -var "platform_file=$platform_file" \
    -var "gpu_enablement_dir=$root/apps/gpu-enablement"
}

case "$action" in
  up)
    "$tf" -chdir="$infra/cluster" init -input=false >/dev/null
    "$tf" -chdir="$infra/cluster" apply -auto-approve -input=false "${vars[@]}"
    platform_step apply
    ;;
  down)
    platform_step destroy || true
    "$tf" -chdir="$infra/cluster" init -input=false >/dev/null
    "$tf" -chdir="$infra/cluster" destroy -auto-approve -input=false "${vars[@]}"
    ;;
  *) echo "usage: scripts/infra.sh up|down" >&2; exit 2 ;;
esac
