{{/* The chart's name (app.kubernetes.io/name). */}}
{{- define "wbo.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name. */}}
{{- define "wbo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "wbo.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "wbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "wbo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "wbo.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: wallbounce
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "wbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "wbo.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* The namespaces the operator watches, one per line; none: every namespace (rbac.scope cluster). */}}
{{- define "wbo.watchNamespaces" -}}
{{- if eq .Values.rbac.scope "namespace" -}}
{{- range (.Values.watchNamespaces | default (list .Release.Namespace)) }}
{{ . }}
{{- end -}}
{{- else if .Values.watchNamespaces -}}
{{- fail "watchNamespaces needs rbac.scope=namespace (a Role in each; a cluster-scoped operator watches every namespace)" -}}
{{- end -}}
{{- end -}}

{{/* The operator's rules in the namespaces it watches (a ClusterRole's or each Role's): exactly the verbs it uses
(docs/operator-contract.md). */}}
{{- define "wbo.rules" -}}
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
{{- if .Values.notifications.enabled }}
- apiGroups: [""]
  resources: [events]
  verbs: [create, list, patch]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [{{ .Values.notifications.namespaceConfigMap | quote }}]
  verbs: [get]
{{- else }}
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
{{- end -}}
