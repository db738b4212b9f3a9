terraform {
  required_version = ">= 1.5.0"
  required_providers {
    # Builds offline from its Go module (tools/terraform-provider-kubectl); the toolchain
    # lays it out as a filesystem mirror (scripts/infra.sh). Hosts with registry access
    # use this module unchanged.
    kubectl = {
      source  = "gavinbunney/kubectl"
      version = "1.19.0"
    }
  }
}
