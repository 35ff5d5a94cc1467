{{/*
Environment of each service beyond the shared ConfigMap: "seqferry.env.<component>", called with
(dict "root" $ "component" "<component>"). Empty values are left out so the service's own default applies.
*/}}

{{- define "seqferry.env.scheduler" -}}
{{- $svc := .root.Values.scheduler }}
- name: SEQFERRY_LAB_TIME_ZONE
  value: {{ $svc.labTimeZone | quote }}
- name: SEQFERRY_INTERVAL
  value: {{ $svc.interval | toString | quote }}
- name: SEQFERRY_TRANSFER_DAYS
  value: {{ $svc.transferDays | quote }}
- name: SEQFERRY_TASKS
  value: {{ $svc.tasks | quote }}
{{- end }}

{{- define "seqferry.env.executor" -}}
{{- $svc := .root.Values.executor }}
- name: SEQFERRY_BACKEND
  value: {{ $svc.backend | quote }}
- name: SEQFERRY_DEFAULT_TASK
  value: {{ $svc.defaultTask | quote }}
{{- with $svc.datasyncTaskArns }}
{{- $pairs := list }}
{{- range $name, $arn := . }}
{{- $pairs = append $pairs (printf "%s=%s" $name $arn) }}
{{- end }}
- name: SEQFERRY_DATASYNC_TASK_ARNS
  value: {{ join "," $pairs | quote }}
{{- end }}
- name: SEQFERRY_LOCAL__INDEX_PATH
  value: /var/lib/seqferry/local-index.sqlite
- name: SEQFERRY_LOCAL__QUIET_PERIOD_S
  value: {{ $svc.local.quietPeriodSeconds | quote }}
- name: SEQFERRY_LOCAL__CHECKSUM
  value: {{ $svc.local.checksum | quote }}
- name: SEQFERRY_LOCAL__CONCURRENCY
  value: {{ $svc.local.concurrency | quote }}
- name: SEQFERRY_LOCAL__MEMORY_LIMIT_MB
  value: {{ $svc.local.memoryLimitMb | quote }}
{{- end }}

{{- define "seqferry.env.adhoc" -}}
{{- $svc := .root.Values.adhoc }}
{{- with $svc.allowedRoots }}
- name: SEQFERRY_ADHOC_ALLOWED_ROOTS
  value: {{ . | quote }}
{{- end }}
- name: SEQFERRY_ADHOC_CONSUME
  value: {{ $svc.consume | quote }}
{{- end }}

{{- define "seqferry.env.notifier" -}}
{{- $svc := .root.Values.notifier }}
{{- with $svc.snsTopicArn }}
- name: SEQFERRY_SNS_TOPIC_ARN
  value: {{ . | quote }}
{{- end }}
{{- with $svc.webhook.existingSecret }}
- name: SEQFERRY_WEBHOOK_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $svc.webhook.key }}
{{- end }}
{{- end }}

{{- define "seqferry.env.simulator" -}}
{{- /* The ledger of written runs (only folders in it are ever deleted). */}}
- name: SEQFERRY_STATE_DIR
  value: /var/lib/seqferry/simulator
{{- end }}
