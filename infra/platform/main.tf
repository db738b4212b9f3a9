provider "kubectl" {
  config_path      = var.kubeconfig_path
  load_config_file = true
}

locals {
  manifests = coalesce(var.gpu_enablement_dir, "${path.module}/../../apps/gpu-enablement")
  platform  = yamldecode(file(var.platform_file))
  nodes     = { for node in local.platform.spec.nodes : node.name => node }
  device_plugin_documents = [
    for document in split("\n---\n", file("${local.manifests}/nvidia-device-plugin.yaml")) :
    yamldecode(document) if length(trimspace(replace(document, "/(?m)^#.*$/", ""))) > 0
  ]
  device_plugin = {
    for document in local.device_plugin_documents : "${document.kind}/${document.metadata.name}" => document
    if var.install_device_plugin
  }
}

# The platform step: declared labels, node-role.kubernetes.io/* included, applied after
# bootstrap (a kubelet may not set those on itself: NodeRestriction). One resource per
# Node: the provider's server-side apply always uses the field manager "kubectl", so two
# resources on one Node would take each other's labels away. A partial Node (name and
# labels) applied server-side is a patch, and apply_only means destroy never deletes it.
resource "kubectl_manifest" "node_labels" {
  for_each = { for name, node in local.nodes : name => node if length(try(node.labels, {})) > 0 }
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Node"
    metadata   = { name = each.key, labels = each.value.labels }
  })
  server_side_apply = true
  force_conflicts   = true
  apply_only        = true
}

resource "kubectl_manifest" "namespace" {
  for_each = var.namespaces
  yaml_body = yamlencode({
    apiVersion = "v1"
    kind       = "Namespace"
    metadata = {
      name = each.key
      labels = {
        "pod-security.kubernetes.io/enforce" = each.value
        "app.kubernetes.io/part-of"          = "gpuplane"
      }
    }
  })
  server_side_apply = true
}

resource "kubectl_manifest" "runtime_class" {
  count             = var.install_device_plugin ? 1 : 0
  yaml_body         = file("${local.manifests}/runtimeclass.yaml")
  server_side_apply = true
}

# The device plugin manifests as apps/gpu-enablement has them (Namespace first: the
# ConfigMap and DaemonSet live in it).
resource "kubectl_manifest" "device_plugin_namespace" {
  for_each          = { for key, document in local.device_plugin : key => document if document.kind == "Namespace" }
  yaml_body         = yamlencode(each.value)
  server_side_apply = true
}

resource "kubectl_manifest" "device_plugin" {
  for_each          = { for key, document in local.device_plugin : key => document if document.kind != "Namespace" }
  yaml_body         = yamlencode(each.value)
  server_side_apply = true
  depends_on        = [kubectl_manifest.runtime_class, kubectl_manifest.device_plugin_namespace]
}
