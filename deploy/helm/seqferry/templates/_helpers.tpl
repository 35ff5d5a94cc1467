{{/*
Names, labels and small shared pieces. Templates that render one object per service call these with a context
dict: (dict "root" $ "component" "executor").
*/}}

{{/* The five services, in start order. */}}
{{- define "seqferry.serviceNames" -}}
scheduler executor adhoc simulator notifier
{{- end }}

{{/* Services that consume an SQS queue, so KEDA may scale them on its depth. */}}
{{- define "seqferry.queueConsumers" -}}
executor adhoc notifier
{{- end }}

{{- define "seqferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-wide prefix of resource names. The chart name is left out when the release name already contains it
(release "seqferry" gives "seqferry", not "seqferry-seqferry").
*/}}
{{- define "seqferry.fullname" -}}
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

{{/* Name of one service's objects: <fullname>-<component>. */}}
{{- define "seqferry.componentName" -}}
{{- printf "%s-%s" (include "seqferry.fullname" .root | trunc 50 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seqferry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable for the life of a release, so never the chart or app version (selectors are immutable).
*/}}
{{- define "seqferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seqferry.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Labels of every object: the selector labels plus version and ownership. */}}
{{- define "seqferry.labels" -}}
helm.sh/chart: {{ include "seqferry.chart" .root }}
{{ include "seqferry.selectorLabels" . }}
app.kubernetes.io/part-of: seqferry
{{- with .root.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.annotations of every object (commonAnnotations plus the given extra map), or nothing. */}}
{{- define "seqferry.annotations" -}}
{{- $all := merge (deepCopy (default (dict) .extra)) (deepCopy (default (dict) .root.Values.commonAnnotations)) }}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "seqferry.serviceAccountName" -}}
{{- $sa := (index .root.Values .component).serviceAccount }}
{{- if $sa.create }}
{{- default (include "seqferry.componentName" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* Image reference of one service. */}}
{{- define "seqferry.image" -}}
{{- $values := .root.Values }}
{{- $svc := index $values .component }}
{{- $repository := $svc.image.repository }}
{{- if not $repository }}
{{- $repository = printf "%s-%s" $values.image.repositoryPrefix .component }}
{{- with $values.image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- end }}
{{- $tag := $svc.image.tag | default $values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{- define "seqferry.apiTokenSecretName" -}}
{{- default (printf "%s-api-token" (include "seqferry.fullname" .)) .Values.apiToken.existingSecret }}
{{- end }}

{{- define "seqferry.apiTokenSecretKey" -}}
{{- if .Values.apiToken.existingSecret }}
{{- .Values.apiToken.existingSecretKey }}
{{- else -}}
api-token
{{- end }}
{{- end }}

{{/* "true" when a NAS volume is configured (an existing claim or an inline NFS server). */}}
{{- define "seqferry.nasConfigured" -}}
{{- if or .Values.nas.existingClaim .Values.nas.nfs.server }}true{{ end }}
{{- end }}

{{/* Whether one service mounts the NAS: only the executor and the simulator ever do. */}}
{{- define "seqferry.mountsNas" -}}
{{- if and (has .component (list "executor" "simulator")) (include "seqferry.nasConfigured" .root) }}true{{ end }}
{{- end }}

{{/* The NAS volume source. */}}
{{- define "seqferry.nasVolume" -}}
{{- if .Values.nas.existingClaim }}
persistentVolumeClaim:
  claimName: {{ .Values.nas.existingClaim }}
{{- else }}
nfs:
  server: {{ .Values.nas.nfs.server }}
  path: {{ .Values.nas.nfs.path }}
{{- end }}
{{- end }}

{{/* SQS queue of a consumer service: <prefix>-<component>, as the shared resource declaration names it. */}}
{{- define "seqferry.queueName" -}}
{{- printf "%s-%s" .root.Values.config.prefix .component }}
{{- end }}

{{/* A full queue URL when the account is known; KEDA also accepts a bare queue name. */}}
{{- define "seqferry.queueUrl" -}}
{{- $values := .root.Values }}
{{- $name := include "seqferry.queueName" . }}
{{- if $values.config.awsAccountId }}
{{- if $values.config.awsEndpointUrl }}
{{- printf "%s/%s/%s" (trimSuffix "/" $values.config.awsEndpointUrl) $values.config.awsAccountId $name }}
{{- else }}
{{- printf "https://sqs.%s.amazonaws.com/%s/%s" $values.config.awsRegion $values.config.awsAccountId $name }}
{{- end }}
{{- else }}
{{- $name }}
{{- end }}
{{- end }}

{{/* Stop rendering with a clear message when the values cannot work. */}}
{{- define "seqferry.validate" -}}
{{- $values := .Values }}
{{- if and $values.executor.enabled (eq $values.executor.backend "local") (not (include "seqferry.nasConfigured" .)) }}
{{- fail "executor.backend=local reads the NAS: set nas.existingClaim (an NFS/EFS PVC) or nas.nfs.server" }}
{{- end }}
{{- if and $values.simulator.enabled (not (include "seqferry.nasConfigured" .)) }}
{{- fail "the simulator writes run folders onto the NAS: set nas.existingClaim or nas.nfs.server" }}
{{- end }}
{{- if and $values.executor.enabled (eq $values.executor.backend "datasync") (empty $values.executor.datasyncTaskArns) }}
{{- fail "executor.backend=datasync needs executor.datasyncTaskArns (task name -> DataSync task ARN)" }}
{{- end }}
{{- if and (eq $values.config.environment "prod") (not $values.apiToken.existingSecret) $values.apiToken.value (lt (len $values.apiToken.value) 16) }}
{{- fail "config.environment=prod needs an API token of at least 16 characters (apiToken.value)" }}
{{- end }}
{{- end }}
