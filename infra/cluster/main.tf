locals {
  platform = yamldecode(file(var.platform_file))
  name     = local.platform.metadata.name
  declared = var.backend_override != "" ? var.backend_override : try(local.platform.spec.backend, "local")
  # "sim" is the local backend's old name, still accepted.
  backend    = lookup({ sim = "local" }, local.declared, local.declared)
  state_root = var.state_dir != "" ? abspath(var.state_dir) : pathexpand("~/.local/state/gpuplane")
  # Where each backend keeps its private kubeconfig (mode 0600).
  kubeconfig = local.backend == "local" ? "${local.state_root}/${local.name}/kubeconfig" : "${local.state_root}/k3d-${local.name}/kubeconfig"
  roles      = { for node in local.platform.spec.nodes : node.name => node.role }
}

# `gpuplane up` on create, `gpuplane down` on destroy. A destroy-time provisioner may only
# read `self`, so everything it needs travels in `input`.
resource "terraform_data" "cluster" {
  input = {
    gpuplane      = abspath(var.gpuplane_bin)
    platform_file = abspath(var.platform_file)
    backend       = local.backend
    state_dir     = var.state_dir != "" ? abspath(var.state_dir) : ""
  }

  # Another cluster (name, backend, nodes) is a new resource; other edits converge in place.
  triggers_replace = [local.name, local.backend, sha256(jsonencode(local.platform.spec.nodes))]

  provisioner "local-exec" {
    # Argument list, no shell: interpreter + command are executed directly.
    interpreter = [self.input.gpuplane, "-f", self.input.platform_file, "--backend", self.input.backend]
    command     = "up"
    environment = self.input.state_dir != "" ? { GPUPLANE_STATE = self.input.state_dir } : {}
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = [self.input.gpuplane, "-f", self.input.platform_file, "--backend", self.input.backend]
    command     = "down"
    environment = self.input.state_dir != "" ? { GPUPLANE_STATE = self.input.state_dir } : {}
  }
}
