# `terraform test`: offline, against a mocked AWS provider ("apply" creates nothing), so only what this
# configuration decides is checked: names, encryption, lifecycle, routing, DataSync options, least privilege.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  aws_region            = "eu-west-1"
  eks_oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE"
  prefix                = "lab"
}

run "local_backend_only" {
  command = apply

  assert {
    condition     = aws_cloudwatch_log_group.transfers.name == "/seqferry/lab/transfers"
    error_message = "The local engine's transfer log group is '/seqferry/<prefix>/transfers' (ResourceNames)."
  }

  assert {
    condition = aws_cloudwatch_log_group.transfers.kms_key_id == aws_kms_key.main.arn && anytrue([
      for s in data.aws_iam_policy_document.kms.statement :
      anytrue([for p in s.principals : contains(p.identifiers, "logs.eu-west-1.amazonaws.com")]) && contains(
        flatten([for c in s.condition : c.values if c.variable == "kms:EncryptionContext:aws:logs:arn"]),
        "arn:aws:logs:eu-west-1:123456789012:log-group:/seqferry/lab/transfers"
      )
    ])
    error_message = "The transfer log (file paths) is encrypted with the install's key, and the key lets CloudWatch Logs use it for that group."
  }

  assert {
    condition = length([
      for w in jsondecode(aws_cloudwatch_dashboard.main.dashboard_body).widgets : w
      if w.type == "log" && startswith(try(w.properties.query, ""), "SOURCE '/seqferry/lab/transfers' | ")
    ]) == 5 && !strcontains(aws_cloudwatch_dashboard.main.dashboard_body, "AWS/DataSync") && !strcontains(aws_cloudwatch_dashboard.main.dashboard_body, "/aws/datasync/")
    error_message = "Without DataSync the log widgets read the transfer log alone and no DataSync metric is shown."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.executor_transfer_log.policy).Statement :
      s.Resource == "${aws_cloudwatch_log_group.transfers.arn}:*"
    ])
    error_message = "The executor may write only to the transfer log group."
  }

  assert {
    condition     = length(aws_datasync_task.sequencers) == 0 && length(aws_datasync_location_nfs.nas) == 0
    error_message = "Without agents there is no DataSync location or task."
  }

  assert {
    condition     = aws_s3_bucket.runs.bucket == "lab-runs" && aws_s3_bucket.logs.bucket == "lab-runs-logs"
    error_message = "Buckets are '<prefix>-runs' and '<bucket>-logs'."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.runs.block_public_acls,
      aws_s3_bucket_public_access_block.runs.block_public_policy,
      aws_s3_bucket_public_access_block.runs.ignore_public_acls,
      aws_s3_bucket_public_access_block.runs.restrict_public_buckets,
    ])
    error_message = "The destination bucket blocks every kind of public access."
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.runs.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "The destination bucket encrypts with KMS."
  }

  assert {
    condition     = one(aws_s3_bucket_versioning.runs.versioning_configuration).status == "Enabled"
    error_message = "The destination bucket is versioned."
  }

  assert {
    condition = {
      for rule in aws_s3_bucket_lifecycle_configuration.runs.rule : rule.id => [for t in rule.transition : "${t.storage_class}@${t.days}"]
      if length(rule.transition) > 0
      } == {
      "basecalls-to-deep-archive"  = ["DEEP_ARCHIVE@30"]
      "alignments-to-deep-archive" = ["DEEP_ARCHIVE@90"]
      "variants-to-standard-ia"    = ["STANDARD_IA@30"]
      "run-data-to-glacier-ir"     = ["GLACIER_IR@30"]
    }
    error_message = "Lifecycle transitions: basecalls and alignments to Deep Archive, variants to Standard-IA, other run data to Glacier IR."
  }

  assert {
    condition = alltrue([
      for rule in aws_s3_bucket_lifecycle_configuration.runs.rule : one(one(rule.filter).tag).key == "seqferry-class"
      if length(rule.transition) > 0
    ])
    error_message = "Transitions select objects by the seqferry-class tag only; no rule archives the adhoc class."
  }

  assert {
    condition = !contains([
      for rule in aws_s3_bucket_lifecycle_configuration.runs.rule : one(one(rule.filter).tag).value
      if length(rule.transition) > 0 || length(rule.expiration) > 0
    ], "adhoc")
    error_message = "No rule moves or expires objects of the adhoc class: adhoc/ is never archived."
  }

  assert {
    condition     = !contains([for rule in aws_s3_bucket_lifecycle_configuration.runs.rule : rule.id], "reads-expiry")
    error_message = "Reads do not expire unless reads_expire_days is set."
  }

  assert {
    condition = [
      for rule in aws_s3_bucket_lifecycle_configuration.runs.rule :
      one(rule.abort_incomplete_multipart_upload).days_after_initiation if length(rule.abort_incomplete_multipart_upload) > 0
    ] == [7]
    error_message = "Incomplete multipart uploads are aborted after 7 days."
  }

  assert {
    condition     = one(aws_s3_bucket_notification.runs.queue).filter_prefix == "adhoc/"
    error_message = "Only adhoc/ objects notify the adhoc queue."
  }

  assert {
    condition     = toset([for q in aws_sqs_queue.work : q.name]) == toset(["lab-executor", "lab-adhoc", "lab-notifier"])
    error_message = "Work queues are '<prefix>-{executor,adhoc,notifier}'."
  }

  assert {
    condition     = alltrue([for q in aws_sqs_queue.work : jsondecode(q.redrive_policy).maxReceiveCount == 5])
    error_message = "Poison messages reach the DLQ after 5 receives."
  }

  assert {
    condition     = toset([for q in aws_sqs_queue.dlq : q.name]) == toset(["lab-executor-dlq", "lab-adhoc-dlq", "lab-notifier-dlq"])
    error_message = "Dead-letter queues are '<queue>-dlq'."
  }

  assert {
    condition     = length(aws_cloudwatch_event_rule.datasync_to_notifier) == 0
    error_message = "Without a DataSync task no DataSync event (of other tasks in the account) reaches the notifier."
  }

  assert {
    condition = (
      aws_dynamodb_table.state.name == "lab-state" &&
      one(aws_dynamodb_table.state.ttl).attribute_name == "expires_at" &&
      one(aws_dynamodb_table.state.point_in_time_recovery).enabled &&
      one(aws_dynamodb_table.state.server_side_encryption).enabled &&
      one(aws_dynamodb_table.state.server_side_encryption).kms_key_arn == aws_kms_key.main.arn &&
      one(aws_dynamodb_table.state.global_secondary_index).name == "gsi1"
    )
    error_message = "State table: '<prefix>-state', gsi1, TTL on expires_at, PITR and SSE with the stack's key."
  }

  assert {
    condition     = aws_sns_topic.notifications.name == "lab-notifications" && aws_sns_topic.notifications.kms_master_key_id != null
    error_message = "The topic is '<prefix>-notifications', encrypted with the key."
  }

  assert {
    condition     = toset(keys(aws_iam_role.service)) == toset(["scheduler", "executor", "adhoc", "notifier"])
    error_message = "One role per production service; the simulator's only on request."
  }

  assert {
    condition = alltrue([
      for name, role in aws_iam_role.service :
      jsondecode(role.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE:sub"] == "system:serviceaccount:seqferry:seqferry-${name}"
    ])
    error_message = "Each role trusts exactly its own service account."
  }

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.service["scheduler"].policy).Statement : s.Action
    ])) == toset(["events:PutEvents", "events:DescribeEventBus", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"])
    error_message = "The scheduler may only publish events and use the state table."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.service["adhoc"].policy).Statement : s.Resource if s.Sid == "WriteResults"
    ] == ["arn:aws:s3:::lab-runs/adhoc/results/*"]
    error_message = "The adhoc service writes only under adhoc/results/."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.service["adhoc"].policy).Statement : s.Resource if s.Sid == "ReadManifests"
    ] == ["arn:aws:s3:::lab-runs/adhoc/*"]
    error_message = "The adhoc service reads only under adhoc/."
  }

  assert {
    condition = !anytrue([
      for s in jsondecode(aws_iam_role_policy.service["executor"].policy).Statement : startswith(s.Sid, "DataSync")
    ])
    error_message = "Without a DataSync task the executor gets no DataSync permission."
  }
}

run "datasync_backend" {
  command = apply

  variables {
    datasync_agent_arns    = ["arn:aws:datasync:eu-west-1:123456789012:agent/agent-0123456789abcdef0"]
    nas_server_hostname    = "nas.lab.example.org"
    reads_expire_days      = 365
    create_simulator_role  = true
    keda_operator_role_arn = "arn:aws:iam::123456789012:role/keda-operator"
  }

  assert {
    condition = alltrue([
      for w in jsondecode(aws_cloudwatch_dashboard.main.dashboard_body).widgets :
      strcontains(try(w.properties.query, ""), "SOURCE '/seqferry/lab/transfers' | SOURCE '/aws/datasync/lab' |") if w.type == "log"
    ])
    error_message = "Log widgets read the local engine's transfer log and the DataSync task's log group."
  }

  assert {
    condition     = strcontains(aws_cloudwatch_dashboard.main.dashboard_body, "\"AgentId\",\"agent-0123456789abcdef0\"")
    error_message = "The by-agent widgets name the configured agent."
  }

  assert {
    condition = (
      one(aws_datasync_task.sequencers[0].options).transfer_mode == "CHANGED" &&
      one(aws_datasync_task.sequencers[0].options).verify_mode == "ONLY_FILES_TRANSFERRED" &&
      one(aws_datasync_task.sequencers[0].options).log_level == "TRANSFER" &&
      one(aws_datasync_task.sequencers[0].options).atime == "BEST_EFFORT" &&
      one(aws_datasync_task.sequencers[0].options).mtime == "PRESERVE"
    )
    error_message = "The DataSync task keeps the reference options."
  }

  assert {
    condition     = aws_datasync_location_s3.runs[0].subdirectory == "/" && aws_datasync_location_nfs.nas[0].subdirectory == "/"
    error_message = "Object key = path relative to the NAS root."
  }

  assert {
    condition     = aws_cloudwatch_event_rule.datasync_to_notifier[0].event_bus_name == "default"
    error_message = "DataSync state changes arrive on the default bus."
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.datasync_to_notifier[0].event_pattern).resources == [
      { prefix = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0/execution/" }
    ]
    error_message = "Only this install's task executions reach the notifier."
  }

  assert {
    condition = (
      aws_cloudwatch_log_group.datasync[0].retention_in_days == 90 &&
      aws_cloudwatch_log_group.datasync[0].kms_key_id == aws_kms_key.main.arn
    )
    error_message = "The DataSync log is kept 90 days, encrypted with the stack's key."
  }

  assert {
    condition     = length(aws_datasync_agent.nas) == 0 && length(aws_datasync_location_smb.nas) == 0
    error_message = "An agent activated elsewhere is used as is; NFS is the default protocol."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.service["executor"].policy).Statement : s.Resource if s.Sid == "DataSyncTask"
    ] == ["arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0"]
    error_message = "The executor starts executions of its task only."
  }

  assert {
    condition = anytrue([
      for s in jsondecode(aws_iam_role_policy.service["notifier"].policy).Statement : s.Sid == "DataSyncExecutions"
    ])
    error_message = "The notifier may describe the task's executions."
  }

  assert {
    condition     = contains([for rule in aws_s3_bucket_lifecycle_configuration.runs.rule : rule.id], "reads-expiry")
    error_message = "reads_expire_days adds the reads expiry rule."
  }

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.service["simulator"].policy).Statement : s.Action
    ])) == toset(["events:PutEvents", "events:DescribeEventBus", "dynamodb:DescribeTable"])
    error_message = "The simulator may only publish events (and see that the table exists)."
  }

  assert {
    condition     = length(jsondecode(aws_iam_role.service["executor"].assume_role_policy).Statement) == 2 && length(jsondecode(aws_iam_role.service["scheduler"].assume_role_policy).Statement) == 1
    error_message = "Only the queue consumers trust the KEDA operator."
  }
}

run "smb_share_with_an_agent_activated_here" {
  command = apply

  variables {
    datasync_agent = {
      name           = "lab-agent"
      activation_key = "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY"
    }
    nas_protocol                  = "SMB"
    nas_server_hostname           = "fileserver.lab.example.org"
    nas_export_path               = "/sequencing"
    smb_user                      = "svc-datasync"
    smb_password                  = "not-a-real-password"
    smb_domain                    = "LAB"
    additional_datasync_task_arns = ["arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef9"]
  }

  assert {
    condition     = aws_datasync_agent.nas[0].name == "lab-agent" && aws_datasync_agent.nas[0].activation_key == "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY"
    error_message = "The agent is activated with its key."
  }

  assert {
    condition = (
      length(aws_datasync_location_nfs.nas) == 0 &&
      aws_datasync_location_smb.nas[0].subdirectory == "/sequencing" &&
      aws_datasync_location_smb.nas[0].user == "svc-datasync" &&
      aws_datasync_location_smb.nas[0].domain == "LAB" &&
      aws_datasync_location_smb.nas[0].agent_arns == toset([aws_datasync_agent.nas[0].arn]) &&
      aws_datasync_task.sequencers[0].source_location_arn == aws_datasync_location_smb.nas[0].arn
    )
    error_message = "With SMB the task reads the share through the agent activated here."
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.datasync_to_notifier[0].event_pattern).resources == [
      { prefix = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0/execution/" },
      { prefix = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef9/execution/" },
    ]
    error_message = "Every task of this install, and only those, reach the notifier."
  }
}
