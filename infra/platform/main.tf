provider "kubernetes" {
  config_path = var.kubeconfig_path
}

locals {
  platform = yamldecode(file(var.platform_file))
  nodes    = { for node in local.platform.spec.nodes : node.name => node }
  device_plugin_documents = [
    for document in split("\n---\n", file("${path.module}/../../apps/gpu-enablement/nvidia-device-plugin.yaml")) :
    yamldecode(document) if length(trimspace(replace(document, "/(?m)^#.*$/", ""))) > 0
  ]
}

# The platform step: declared labels, node-role.kubernetes.io/* included, applied after
# bootstrap (a kubelet may not set those on itself: NodeRestriction).
resource "kubernetes_labels" "node_role" {
  for_each      = { for name, node in local.nodes : name => node if length(try(node.labels, {})) > 0 }
  api_version   = "v1"
  kind          = "Node"
  field_manager = "gpuplane-terraform"
  force         = true
  metadata {
    name = each.key
  }
  labels = each.value.labels
}

resource "kubernetes_namespace_v1" "platform" {
  for_each = var.namespaces
  metadata {
    name = each.key
    labels = {
      "pod-security.kubernetes.io/enforce" = each.value
      "app.kubernetes.io/part-of"          = "gpuplane"
    }
  }
}

resource "kubernetes_runtime_class_v1" "nvidia" {
  count   = var.install_device_plugin ? 1 : 0
  handler = "nvidia"
  metadata {
    name = "nvidia"
  }
}

resource "kubernetes_manifest" "device_plugin" {
  for_each   = var.install_device_plugin ? { for document in local.device_plugin_documents : "${document.kind}/${document.metadata.name}" => document } : {}
  manifest   = each.value
  depends_on = [kubernetes_runtime_class_v1.nvidia]
}
