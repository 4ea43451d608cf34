{{/* Release-scoped name prefix. */}}
{{- define "wallbounce.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wallbounce.operatorName" -}}
{{- printf "%s-operator" (include "wallbounce.fullname" .) -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "wallbounce.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: wallbounce
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "wallbounce.operatorSelector" -}}
app.kubernetes.io/name: wallbounce-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Service selector of one variant: (dict "root" $ "variant" "stable") */}}
{{- define "wallbounce.serviceSelector" -}}
app.kubernetes.io/name: {{ .root.Values.service.name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .variant }}
wallbounce.dev/variant: {{ .variant }}
{{- end }}
{{- end -}}

{{- define "wallbounce.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "wallbounce.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The operator's rules in the namespaces it watches (a ClusterRole's or each Role's). */}}
{{- define "wallbounce.operatorRules" -}}
- apiGroups: [wallbounce.dev]
  resources: [wallbouncerollouts]
  verbs: [get, list, watch, patch]
- apiGroups: [wallbounce.dev]
  resources: [wallbouncerollouts/status]
  verbs: [patch]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, patch]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list, watch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, update]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, update]
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: [get, list, watch, update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
