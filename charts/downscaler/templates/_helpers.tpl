{{/* Name of every object of the release: the operator's one fixed name. */}}
{{- define "downscaler.name" -}}
gpuplane-downscaler
{{- end }}

{{- define "downscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "downscaler.name" . }}
{{- end }}

{{- define "downscaler.labels" -}}
{{ include "downscaler.selectorLabels" . }}
app.kubernetes.io/part-of: gpuplane
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
