{{/*
Whether an Application is rendered. "remote" says whether it needs a remote chart
repository; the value "sources" picks all of them (a real cluster), those of this
repository only, or the remote ones only (the local backend keeps the two apart, so an
offline remote source never holds up the sync waves of the rest).
*/}}
{{- define "platform-apps.wanted" -}}
{{- $sources := .Values.sources | default "all" -}}
{{- if not (has $sources (list "all" "local" "remote")) -}}
{{- fail (printf "sources: %q is not one of all, local, remote" $sources) -}}
{{- end -}}
{{- if or (eq $sources "all") (eq $sources (ternary "remote" "local" .remote)) -}}yes{{- end -}}
{{- end -}}
