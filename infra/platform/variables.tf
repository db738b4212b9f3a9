variable "kubeconfig_path" {
  description = "Kubeconfig of the cluster (output kubeconfig_path of infra/cluster)."
  type        = string

  validation {
    condition     = fileexists(var.kubeconfig_path)
    error_message = "kubeconfig_path must point to an existing kubeconfig: apply infra/cluster first."
  }
}

variable "platform_file" {
  description = "The platform.yaml whose node labels this module applies."
  type        = string
  default     = "../../platform.yaml"

  validation {
    condition     = fileexists(var.platform_file)
    error_message = "platform_file must point to an existing platform.yaml."
  }
}

variable "namespaces" {
  description = "Namespaces of the platform, each pinned to a Pod Security level."
  type        = map(string)
  default = {
    infra           = "baseline"
    apps            = "restricted"
    "gpu-workloads" = "restricted"
  }

  validation {
    condition     = alltrue([for level in values(var.namespaces) : contains(["privileged", "baseline", "restricted"], level)])
    error_message = "Each namespace's Pod Security level must be privileged, baseline or restricted."
  }
}

variable "install_device_plugin" {
  description = "Install the NVIDIA device plugin and RuntimeClass nvidia (on the local backend a KWOK gpu node runs its pod as a simulation)."
  type        = bool
  default     = true
}

variable "gpu_enablement_dir" {
  description = "Directory of the GPU enablement manifests (default: apps/gpu-enablement of this checkout; set it when the module runs from a copy)."
  type        = string
  default     = null
}
