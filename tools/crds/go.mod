// Not built: pins the upstream projects whose CustomResourceDefinitions the manifest
// checks install on the sim cluster (Argo CD's Application and AppProject, the
// Prometheus operator's ServiceMonitor, PodMonitor and PrometheusRule). `go mod
// download` fetches these exact versions, checked against go.sum, from the module proxy.
module gpuplane.io/tools/crds

go 1.26.0

require (
	github.com/argoproj/argo-cd/v3 v3.5.7
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
