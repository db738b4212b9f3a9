output "cluster_name" {
  description = "Name of the cluster (metadata.name of the platform file)."
  value       = local.name
}

output "backend" {
  description = "Backend the cluster runs on (sim or k3d)."
  value       = local.backend
}

output "kubeconfig_path" {
  description = "Private kubeconfig of the cluster (mode 0600); input of infra/platform."
  value       = local.kubeconfig
  depends_on  = [terraform_data.cluster]
}

output "node_roles" {
  description = "Declared nodes and their roles."
  value       = local.roles
}
