output "labelled_nodes" {
  description = "Nodes whose declared labels this module manages."
  value       = sort(keys(kubernetes_labels.node_role))
}

output "namespaces" {
  description = "Platform namespaces and their Pod Security level."
  value       = { for name, namespace in kubernetes_namespace_v1.platform : name => namespace.metadata[0].labels["pod-security.kubernetes.io/enforce"] }
}

output "device_plugin_objects" {
  description = "Objects of the NVIDIA device plugin installed by this module."
  value       = sort(keys(kubernetes_manifest.device_plugin))
}
