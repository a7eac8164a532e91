{{/* Names, labels and the values the chart derives (see values.yaml). */}}

{{- define "earshot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "earshot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "earshot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "earshot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "earshot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "earshot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The image: the GPU tag when GPUs are on and one is given, else image.tag, else the chart's appVersion. */}}
{{- define "earshot.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if and .Values.gpu.enabled .Values.gpu.imageTag }}{{ $tag = .Values.gpu.imageTag }}{{ end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/* The Secret holding the API keys: an existing one, or the one this chart creates. */}}
{{- define "earshot.apiKeysSecret" -}}
{{- .Values.apiKeys.existingSecret | default (printf "%s-api-keys" (include "earshot.fullname" .)) }}
{{- end }}

{{- define "earshot.apiKeysEnabled" -}}
{{- if or .Values.apiKeys.existingSecret .Values.apiKeys.keys }}true{{ end }}
{{- end }}

{{/* Seconds the kubelet waits after the preStop hook began: preStop sleep + earshot's drain + margin. */}}
{{- define "earshot.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add .Values.lifecycle.preStopSleepSeconds .Values.earshot.shutdownGraceSeconds .Values.lifecycle.marginSeconds }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Jobs (waiting or running) per replica the autoscaler aims at: one per engine worker unless set. */}}
{{- define "earshot.targetJobsPerReplica" -}}
{{- if kindIs "invalid" .Values.autoscaling.targetJobsPerReplica }}
{{- .Values.earshot.workersPerModel }}
{{- else }}
{{- .Values.autoscaling.targetJobsPerReplica }}
{{- end }}
{{- end }}

{{/* PromQL label matchers for this release's earshot pods, as a ServiceMonitor labels them. */}}
{{- define "earshot.metricMatchers" -}}
{{- .Values.autoscaling.prometheus.labelMatchers | default (printf "namespace=%q,service=%q" .Release.Namespace (include "earshot.fullname" .)) }}
{{- end }}

{{/* The scaling signal: jobs waiting plus jobs running over every replica, averaged over a short window. */}}
{{- define "earshot.scalerQuery" -}}
{{- $m := include "earshot.metricMatchers" . }}
{{- $w := .Values.autoscaling.prometheus.window }}
{{- printf "sum(avg_over_time(earshot_queue_depth{%s}[%s])) + sum(avg_over_time(earshot_jobs_in_flight{%s}[%s]))" $m $w $m $w }}
{{- end }}

{{- define "earshot.scaleBehavior" -}}
scaleUp:
  stabilizationWindowSeconds: {{ .Values.autoscaling.scaleUp.stabilizationWindowSeconds }}
  selectPolicy: Max
  policies:
    - type: Pods
      value: {{ .Values.autoscaling.scaleUp.podsPerMinute }}
      periodSeconds: 60
    - type: Percent
      value: 100
      periodSeconds: 60
scaleDown:
  stabilizationWindowSeconds: {{ .Values.autoscaling.scaleDown.stabilizationWindowSeconds }}
  selectPolicy: Min
  policies:
    - type: Pods
      value: {{ .Values.autoscaling.scaleDown.podsPerMinute }}
      periodSeconds: 60
{{- end }}
