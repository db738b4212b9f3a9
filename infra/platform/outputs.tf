output "labelled_nodes" {
  description = "Nodes whose declared labels this module manages."
  value       = sort(keys(kubectl_manifest.node_labels))
}

output "namespaces" {
  description = "Platform namespaces and their Pod Security level."
  value       = var.namespaces
}

output "device_plugin_objects" {
  description = "Objects of the NVIDIA device plugin installed by this module."
  value       = sort(concat(keys(kubectl_manifest.device_plugin_namespace), keys(kubectl_manifest.device_plugin)))
}
