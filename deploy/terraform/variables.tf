# -- Naming ---------------------------------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region of every resource (the services' AWS_REGION)."
  type        = string
}

variable "prefix" {
  description = "Resource name prefix, the services' SEQFERRY_PREFIX: bus '<prefix>', table '<prefix>-state', topic '<prefix>-notifications', queues '<prefix>-{executor,adhoc,notifier}' (+ '-dlq')."
  type        = string
  default     = "seqferry"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.prefix))
    error_message = "prefix: a lowercase letter, then up to 30 lowercase letters, digits or '-'."
  }
}

variable "bucket_name" {
  description = "Destination bucket (SEQFERRY_BUCKET); null gives '<prefix>-runs'. Access logs go to '<bucket>-logs'."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# -- Bucket lifecycle -----------------------------------------------------------------------------------------
# Rules match the 'seqferry-class' object tag that seqferry sets on every object it delivers, from the file suffix
# (the local engine when it uploads, the DataSync backend after each execution): basecalls, alignments, variants,
# reads, 'run' for the rest of a run folder, and 'adhoc' for adhoc/, which no rule archives. Untagged objects (the
# checksum manifests next to each run, ad-hoc results) stay in STANDARD.

variable "basecalls_to_deep_archive_days" {
  description = "Days before objects tagged seqferry-class=basecalls (BCL, CBCL, filter, locs) move to DEEP_ARCHIVE."
  type        = number
  default     = 30
}

variable "alignments_to_deep_archive_days" {
  description = "Days before objects tagged seqferry-class=alignments (BAM, CRAM and indexes) move to DEEP_ARCHIVE."
  type        = number
  default     = 90
}

variable "variants_to_standard_ia_days" {
  description = "Days before objects tagged seqferry-class=variants (VCF, BCF) move to STANDARD_IA (at least 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.variants_to_standard_ia_days >= 30
    error_message = "S3 moves objects to STANDARD_IA no earlier than 30 days after creation."
  }
}

variable "run_data_to_glacier_ir_days" {
  description = "Days before objects tagged seqferry-class=run (InterOp, XML, sample sheets, logs) move to GLACIER_IR."
  type        = number
  default     = 30
}

variable "reads_expire_days" {
  description = "Days after which objects tagged seqferry-class=reads (FASTQ, ORA) expire; null keeps them."
  type        = number
  default     = null
}

variable "noncurrent_version_expire_days" {
  description = "Days a replaced or deleted object version is kept."
  type        = number
  default     = 30
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which incomplete multipart uploads are aborted (their parts cost storage)."
  type        = number
  default     = 7
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept in the log bucket."
  type        = number
  default     = 365
}

# -- Queues, table, notifications -----------------------------------------------------------------------------

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the three work queues (the consumers extend it while they work)."
  type        = number
  default     = 60
}

variable "queue_retention_seconds" {
  description = "Retention of messages in the queues and dead-letter queues."
  type        = number
  default     = 1209600
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5
}

variable "table_deletion_protection" {
  description = "Protect the state table from deletion."
  type        = bool
  default     = true
}

variable "notification_emails" {
  description = "E-mail addresses subscribed to the notification topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after 'destroy'."
  type        = number
  default     = 30
}

# -- DataSync ---------------------------------------------------------------------------------------------------

variable "datasync_agent" {
  description = "A DataSync agent deployed next to the NAS (VM or EC2) to activate and register here: its activation key (from the agent's local console or `http://<agent-ip>/?activationRegion=<region>`), or its IP address when the machine running terraform reaches the agent on port 80. Null: no agent is created (use datasync_agent_arns for agents activated elsewhere)."
  type = object({
    name                  = string
    activation_key        = optional(string)
    ip_address            = optional(string)
    vpc_endpoint_id       = optional(string)
    private_link_endpoint = optional(string)
    subnet_arns           = optional(list(string))
    security_group_arns   = optional(list(string))
  })
  default = null

  validation {
    condition     = var.datasync_agent == null || try((var.datasync_agent.activation_key == null) != (var.datasync_agent.ip_address == null), false)
    error_message = "datasync_agent needs exactly one of activation_key or ip_address."
  }
}

variable "datasync_agent_arns" {
  description = "ARNs of DataSync agents activated outside this stack; with datasync_agent, every agent serves the NAS location. Neither: no DataSync location or task (local backend only)."
  type        = list(string)
  default     = []
}

variable "additional_datasync_task_arns" {
  description = "Other DataSync tasks of this install (the chart's executor.datasyncTaskArns beyond 'sequencers'): their state changes reach the notifier too. Grant the executor's and notifier's roles access to them separately."
  type        = list(string)
  default     = []
}

variable "nas_protocol" {
  description = "How DataSync reads the NAS: NFS or SMB (instruments writing to a Windows share)."
  type        = string
  default     = "NFS"

  validation {
    condition     = contains(["NFS", "SMB"], var.nas_protocol)
    error_message = "nas_protocol is NFS or SMB."
  }
}

variable "nas_server_hostname" {
  description = "NFS or SMB server of the NAS as the DataSync agent reaches it (required when DataSync is used)."
  type        = string
  default     = null
}

variable "nas_export_path" {
  description = "NFS export path, or SMB share path (e.g. /sequencing), that is the NAS root; object keys are paths relative to it (the services' SEQFERRY_NAS_ROOT)."
  type        = string
  default     = "/"
}

variable "nfs_version" {
  description = "NFS version DataSync mounts with: AUTOMATIC, NFS3, NFS4_0 or NFS4_1."
  type        = string
  default     = "AUTOMATIC"
}

variable "smb_user" {
  description = "SMB user DataSync reads the share as (nas_protocol = SMB): read access to every run folder is enough."
  type        = string
  default     = null
}

variable "smb_password" {
  description = "Password of smb_user (nas_protocol = SMB). Kept in the state: use an encrypted backend."
  type        = string
  default     = null
  sensitive   = true
}

variable "smb_domain" {
  description = "Windows domain of smb_user (null: none)."
  type        = string
  default     = null
}

variable "smb_version" {
  description = "SMB version DataSync mounts with: AUTOMATIC, SMB1, SMB2_0, SMB2 or SMB3."
  type        = string
  default     = "AUTOMATIC"
}

variable "datasync_log_retention_days" {
  description = "Days the DataSync task's transfer log is kept in CloudWatch Logs (the reference design keeps 90)."
  type        = number
  default     = 90
}

# -- EKS service accounts (IRSA) --------------------------------------------------------------------------------

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IRSA), e.g. arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE."
  type        = string
}

variable "kubernetes_namespace" {
  description = "Namespace of the Helm release."
  type        = string
  default     = "seqferry"
}

variable "service_account_names" {
  description = "Service account of each service; the defaults are the chart's for a release named 'seqferry'."
  type        = map(string)
  default = {
    scheduler = "seqferry-scheduler"
    executor  = "seqferry-executor"
    adhoc     = "seqferry-adhoc"
    notifier  = "seqferry-notifier"
    simulator = "seqferry-simulator"
  }

  validation {
    condition     = length(setsubtract(["scheduler", "executor", "adhoc", "notifier", "simulator"], keys(var.service_account_names))) == 0
    error_message = "service_account_names needs scheduler, executor, adhoc, notifier and simulator."
  }
}

variable "keda_operator_role_arn" {
  description = "IAM role of the KEDA operator; when set, the queue consumers' roles trust it so KEDA (identityOwner: workload) can read queue depth."
  type        = string
  default     = null
}

variable "create_simulator_role" {
  description = "Create the simulator's role (test and demo clusters only)."
  type        = bool
  default     = false
}

# -- Systems that ask for transfers ------------------------------------------------------------------------------

variable "lims_principal_arns" {
  description = "IAM principals (role, user or account ARNs) of systems that ask for transfers, e.g. a LIMS: they may assume '<prefix>-lims', which may only put Transfer Requested on the bus under lims_event_sources. Empty: no such role."
  type        = list(string)
  default     = []
}

variable "lims_event_sources" {
  description = "Sources the LIMS role may put Transfer Requested under (docs/transfer-requested.md: name your system, e.g. lims.lab.example)."
  type        = list(string)
  default     = ["lims"]

  validation {
    condition = length(var.lims_event_sources) > 0 && alltrue([
      for source in var.lims_event_sources : !startswith(source, "aws.") && !startswith(source, "seqferry.") && length(source) > 0
    ])
    error_message = "lims_event_sources: at least one, none starting with 'aws.' (AWS services) or 'seqferry.' (seqferry's own services)."
  }
}

# -- Monitoring -------------------------------------------------------------------------------------------------

variable "dlq_alarms_enabled" {
  description = "Alarm to the notification topic when a dead-letter queue holds messages."
  type        = bool
  default     = true
}
