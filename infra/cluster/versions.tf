terraform {
  required_version = ">= 1.5.0"
  # No providers: the cluster is created by gpuplane itself through terraform_data, so
  # this module initialises offline on any machine.
}
