variable "platform_file" {
  description = "Path of the platform.yaml that declares the cluster (name, backend, nodes)."
  type        = string
  default     = "../../platform.yaml"

  validation {
    condition     = fileexists(var.platform_file)
    error_message = "platform_file must point to an existing platform.yaml."
  }
}

variable "gpuplane_bin" {
  description = "The gpuplane CLI to run (the repository's venv by default)."
  type        = string
  default     = "../../.venv/bin/gpuplane"

  validation {
    condition     = length(trimspace(var.gpuplane_bin)) > 0
    error_message = "gpuplane_bin must name the gpuplane executable."
  }
}

variable "state_dir" {
  description = "Directory for cluster state (GPUPLANE_STATE); empty means gpuplane's default (~/.local/state/gpuplane)."
  type        = string
  default     = ""
}

variable "backend_override" {
  description = "Backend to use instead of spec.backend of the platform file: \"\" (keep), \"local\" (\"sim\", its old name, is still accepted) or \"k3d\"."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "local", "sim", "k3d"], var.backend_override)
    error_message = "backend_override must be \"\", \"local\" (or its old name \"sim\") or \"k3d\"."
  }
}
