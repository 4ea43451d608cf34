{{/* app.kubernetes.io/name of every object. */}}
{{- define "wbs.name" -}}
{{- .Values.nameOverride | default .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "wbs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: wallbounce
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector of one variant, or of both with variant "": (dict "root" $ "variant" "stable") */}}
{{- define "wbs.selector" -}}
app.kubernetes.io/name: {{ include "wbs.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .variant }}
wallbounce.dev/variant: {{ .variant }}
{{- end }}
{{- end -}}

{{- define "wbs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default .Values.name -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}
