{{/*
Names, labels and the pieces every template shares.
*/}}

{{- define "raysvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's base name: the release name, prefixed with the chart name unless it contains it.
Kept to 40 characters so that "<fullname>-reconciler-metrics" stays a valid Service name.
*/}}
{{- define "raysvc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "raysvc.webhookName" -}}
{{- printf "%s-webhook" (include "raysvc.fullname" .) -}}
{{- end -}}

{{- define "raysvc.reconcilerName" -}}
{{- printf "%s-reconciler" (include "raysvc.fullname" .) -}}
{{- end -}}

{{/* The Secret holding the webhook's serving certificate (and, self-managed, its CA). */}}
{{- define "raysvc.certSecretName" -}}
{{- printf "%s-webhook-tls" (include "raysvc.fullname" .) -}}
{{- end -}}

{{- define "raysvc.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "raysvc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "raysvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: raysvc
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "webhook"). */}}
{{- define "raysvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "raysvc.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "raysvc.componentLabels" -}}
{{ include "raysvc.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Where possible one replica per node and per zone; ScheduleAnyway so that a single-node cluster
still runs every replica. Call with (dict "ctx" $ "component" "webhook" "values" .Values.webhook).
*/}}
{{- define "raysvc.topologySpread" -}}
{{- if .values.topologySpreadConstraints -}}
{{ toYaml .values.topologySpreadConstraints }}
{{- else -}}
{{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
- maxSkew: 1
  topologyKey: {{ $key }}
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "raysvc.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 6 }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Scheduling and security fields shared by both Deployments' pod specs. */}}
{{- define "raysvc.podScheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The namespaces whose RayServices the webhook sees: never its own (an outage there could block
its own repair) nor kube-system; only watchNamespaces when set.
*/}}
{{- define "raysvc.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      - {{ .Release.Namespace }}
      - kube-system
{{- with .Values.watchNamespaces }}
  - key: kubernetes.io/metadata.name
    operator: In
    values:
      {{- toYaml . | nindent 6 }}
{{- end }}
{{- with .Values.webhook.namespaceSelectorExpressions }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Annotations of both webhook configurations: cert-manager injects the CA where enabled. */}}
{{- define "raysvc.webhookAnnotations" -}}
{{- if .Values.certManager.enabled }}
annotations:
  # cert-manager's CA injector copies the Certificate's ca.crt into every caBundle.
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "raysvc.webhookName" . }}
{{- end }}
{{- end -}}
