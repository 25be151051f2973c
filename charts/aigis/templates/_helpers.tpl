{{/* Names, labels and the image reference, in one place. */}}

{{- define "aigis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aigis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "aigis.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "aigis.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "aigis.operator.name" -}}{{ include "aigis.fullname" . | trunc 54 | trimSuffix "-" }}-operator{{- end -}}
{{- define "aigis.webhook.name" -}}{{ include "aigis.fullname" . | trunc 55 | trimSuffix "-" }}-webhook{{- end -}}

{{- define "aigis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "aigis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aigis
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "webhook"). */}}
{{- define "aigis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aigis.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "aigis.componentLabels" -}}
{{ include "aigis.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* repository:tag or repository@digest: pass (dict "image" .Values.image "root" $). */}}
{{- define "aigis.imageRef" -}}
{{- $repo := .image.repository | default .root.Values.image.repository -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{- define "aigis.image" -}}{{ include "aigis.imageRef" (dict "image" .Values.image "root" .) }}{{- end -}}

{{- define "aigis.gatewayImage" -}}
{{- $g := .Values.gateway.image -}}
{{- if or $g.repository $g.tag $g.digest -}}
{{- include "aigis.imageRef" (dict "image" $g "root" .) -}}
{{- else -}}
{{- include "aigis.image" . -}}
{{- end -}}
{{- end -}}

{{/* The restricted security context every aigis container runs with. */}}
{{- define "aigis.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "aigis.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "aigis.webhook.certSecret" -}}
{{- if .Values.certManager.enabled -}}{{ include "aigis.webhook.name" . }}-cert{{- else -}}{{ .Values.webhook.certificateSecret }}{{- end -}}
{{- end -}}
