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
{{- if $svc.image.digest }}
{{- printf "%s@%s" $repository $svc.image.digest }}
{{- else }}
{{- $tag := $svc.image.tag | default $values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "seqferry.apiTokenSecretName" -}}
{{- default (printf "%s-api-token" (include "seqferry.fullname" .)) .Values.apiToken.existingSecret }}
{{- end }}

{{/*
Pod annotation that changes whenever the token does: the chart's own Secret is hashed; an existing Secret is
outside the chart, so its name and key are (rotate its value with `kubectl rollout restart`).
*/}}
{{- define "seqferry.apiTokenChecksum" -}}
{{- if .Values.apiToken.existingSecret }}
{{- printf "%s/%s" .Values.apiToken.existingSecret .Values.apiToken.existingSecretKey | sha256sum }}
{{- else }}
{{- include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
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

{{/*
Whether one service mounts the NAS: the executor with the local backend (DataSync's agent reads the share for the
datasync backend) and the simulator; no other pod ever does.
*/}}
{{- define "seqferry.mountsNas" -}}
{{- $values := .root.Values }}
{{- $reads := or (eq .component "simulator") (and (eq .component "executor") (eq $values.executor.backend "local")) }}
{{- if and $reads (include "seqferry.nasConfigured" .root) }}true{{ end }}
{{- end }}

{{/* "true" when the executor runs as a StatefulSet: the local backend, one replica with its own change index. */}}
{{- define "seqferry.executorStateful" -}}
{{- if eq .Values.executor.backend "local" }}true{{ end }}
{{- end }}

{{/*
The NAS volume source of one service, read-only at the volume level for the executor: kubelet then never changes
ownership on the share (fsGroup), whatever the volume plugin or CSI driver.
*/}}
{{- define "seqferry.nasVolume" -}}
{{- $values := .root.Values }}
{{- $readOnly := and (eq .component "executor") $values.executor.nasReadOnly }}
{{- if $values.nas.existingClaim }}
persistentVolumeClaim:
  claimName: {{ $values.nas.existingClaim }}
  readOnly: {{ $readOnly }}
{{- else }}
nfs:
  server: {{ $values.nas.nfs.server }}
  path: {{ $values.nas.nfs.path }}
  readOnly: {{ $readOnly }}
{{- end }}
{{- end }}

{{/* The port of the OTLP endpoint URL (4318 when the URL names none). */}}
{{- define "seqferry.otlpPort" -}}
{{- $url := urlParse .Values.telemetry.otlpEndpoint }}
{{- $parts := splitList ":" $url.host }}
{{- if gt (len $parts) 1 }}{{ last $parts }}{{ else if eq $url.scheme "https" }}443{{ else }}4318{{ end }}
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
{{- if not (or $values.apiToken.existingSecret $values.apiToken.value) }}
{{- fail "the API token is required: set apiToken.existingSecret (a Secret you manage) or apiToken.value; the chart generates none, so every render is the same" }}
{{- end }}
{{- if and (eq $values.config.environment "prod") (not $values.apiToken.existingSecret) (lt (len $values.apiToken.value) 16) }}
{{- fail "config.environment=prod needs an API token of at least 16 characters (apiToken.value)" }}
{{- end }}
{{- if and $values.executor.enabled (eq $values.executor.backend "local") (or $values.executor.autoscaling.enabled (gt (int $values.executor.replicaCount) 1)) }}
{{- fail "executor.backend=local runs exactly one replica (a task's pass runs in one process with its own change index; a second replica would run the same pass again): set executor.replicaCount=1 and executor.autoscaling.enabled=false" }}
{{- end }}
{{- end }}
