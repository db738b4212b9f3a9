#!/usr/bin/env bash
# Debian packages the local backend needs: Prometheus (server and promtool); for kubelet
# nodes, libseccomp-dev (runc is linked statically against it), busybox-static (the
# toolbox image) and gcc (the pause image); for GitOps, redis-server (Argo CD's cache)
# and git (its repo server, and the loopback git server). Installed when missing; exit 3 (missing
# prerequisite) with the command to run when that is not possible.
set -euo pipefail

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
[ -f /usr/lib/x86_64-linux-gnu/libseccomp.a ] || need+=(libseccomp-dev)
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v git >/dev/null 2>&1 || need+=(git)
[ ${#need[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # The package enables a system service on :9090; gpuplane runs its own instance.
  # So does redis-server on :6379; gpuplane runs its own, with a password.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now prometheus redis-server >/dev/null 2>&1 || true
  fi
  exit 0
fi
echo "missing prerequisite: ${need[*]} — run: sudo apt-get install ${need[*]}" >&2
exit 3
