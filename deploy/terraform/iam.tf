# One IAM role per service, assumed through IRSA by that service's Kubernetes service account, each allowed
# exactly what the service does. The policies are plain HCL objects (jsonencode) rather than policy-document
# data sources so that tests/ can read them back and check them.

locals {
  oidc_issuer = element(split(":oidc-provider/", var.eks_oidc_provider_arn), 1)

  consumers = toset(["executor", "adhoc", "notifier"])
  services  = var.create_simulator_role ? toset(["scheduler", "executor", "adhoc", "notifier", "simulator"]) : toset(["scheduler", "executor", "adhoc", "notifier"])

  datasync_task_arn = local.datasync_enabled ? aws_datasync_task.sequencers[0].arn : null

  bucket_arn = aws_s3_bucket.runs.arn
  table_arn  = aws_dynamodb_table.state.arn
}

# -- Trust: the service's own service account, and KEDA's operator for the queue consumers ----------------------

locals {
  assume_policies = {
    for service in local.services : service => {
      Version = "2012-10-17"
      Statement = concat(
        [{
          Sid       = "ServiceAccount"
          Effect    = "Allow"
          Action    = "sts:AssumeRoleWithWebIdentity"
          Principal = { Federated = var.eks_oidc_provider_arn }
          Condition = {
            StringEquals = {
              "${local.oidc_issuer}:sub" = "system:serviceaccount:${var.kubernetes_namespace}:${var.service_account_names[service]}"
              "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
            }
          }
        }],
        # KEDA reading the queue depth with the workload's identity assumes this role from its own.
        var.keda_operator_role_arn != null && contains(local.consumers, service) ? [{
          Sid       = "KedaOperator"
          Effect    = "Allow"
          Action    = "sts:AssumeRole"
          Principal = { AWS = var.keda_operator_role_arn }
        }] : [],
      )
    }
  }
}

resource "aws_iam_role" "service" {
  for_each = local.services

  name               = "${var.prefix}-${each.key}"
  description        = "seqferry ${each.key} (IRSA: ${var.kubernetes_namespace}/${var.service_account_names[each.key]})"
  assume_role_policy = jsonencode(local.assume_policies[each.key])
}

# -- Permissions ------------------------------------------------------------------------------------------------

locals {
  # Every service publishes on the bus, but only under its own source and only the detail-types it produces
  # (ForAllValues: every entry of a PutEvents call; Null: an entry without them is no loophole), so no service can
  # speak for another. Readiness asks the bus and the table whether they answer (DescribeEventBus,
  # DescribeTable); idempotency and each service's own records live in the table.
  bus_statements = {
    for service, producer in local.event_producers : service => [
      {
        Sid      = "PutOwnEvents"
        Effect   = "Allow"
        Action   = "events:PutEvents"
        Resource = aws_cloudwatch_event_bus.main.arn
        Condition = {
          "ForAllValues:StringEquals" = {
            "events:source"      = [producer.source]
            "events:detail-type" = producer.detail_types
          }
          Null = { "events:source" = "false", "events:detail-type" = "false" }
        }
      },
      {
        Sid      = "BusReachable"
        Effect   = "Allow"
        Action   = "events:DescribeEventBus"
        Resource = aws_cloudwatch_event_bus.main.arn
      },
    ]
  }

  table_statement = {
    Sid    = "StateTable"
    Effect = "Allow"
    Action = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    Resource = [local.table_arn, "${local.table_arn}/index/*"]
  }

  consume_statements = {
    for service in local.consumers : service => {
      Sid    = "ConsumeOwnQueue"
      Effect = "Allow"
      Action = [
        "sqs:ChangeMessageVisibility",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
      ]
      Resource = aws_sqs_queue.work[service].arn
    }
  }

  # Objects are encrypted with the bucket's key; only S3 may use it on the services' behalf.
  bucket_key_statement = {
    Sid       = "BucketKeyThroughS3"
    Effect    = "Allow"
    Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
    Resource  = aws_kms_key.main.arn
    Condition = { StringEquals = { "kms:ViaService" = "s3.${local.region}.amazonaws.com" } }
  }

  # DataSync's own events carry no counters: executor and notifier describe executions.
  datasync_execution_statements = local.datasync_enabled ? [{
    Sid      = "DataSyncExecutions"
    Effect   = "Allow"
    Action   = "datasync:DescribeTaskExecution"
    Resource = "${local.datasync_task_arn}/execution/*"
  }] : []

  service_statements = {
    scheduler = concat(local.bus_statements["scheduler"], [local.table_statement])

    executor = concat(
      local.bus_statements["executor"],
      [
        local.table_statement,
        local.consume_statements["executor"],
        local.bucket_key_statement,
        # The local backend: list and head the bucket, upload (multipart), tag for lifecycle, read back.
        {
          Sid      = "BucketList"
          Effect   = "Allow"
          Action   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
          Resource = local.bucket_arn
        },
        {
          Sid    = "BucketObjects"
          Effect = "Allow"
          Action = [
            "s3:AbortMultipartUpload",
            "s3:GetObject",
            "s3:GetObjectAttributes",
            "s3:GetObjectTagging",
            "s3:ListMultipartUploadParts",
            "s3:PutObject",
            "s3:PutObjectTagging",
          ]
          Resource = "${local.bucket_arn}/*"
        },
      ],
      local.datasync_enabled ? [{
        Sid      = "DataSyncTask"
        Effect   = "Allow"
        Action   = ["datasync:DescribeTask", "datasync:StartTaskExecution"]
        Resource = local.datasync_task_arn
      }] : [],
      local.datasync_execution_statements,
    )

    adhoc = concat(local.bus_statements["adhoc"], [
      local.table_statement,
      local.consume_statements["adhoc"],
      local.bucket_key_statement,
      # HeadBucket (readiness) needs s3:ListBucket on the bucket.
      {
        Sid      = "BucketReachable"
        Effect   = "Allow"
        Action   = "s3:ListBucket"
        Resource = local.bucket_arn
      },
      {
        Sid      = "ReadManifests"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource = "${local.bucket_arn}/${local.adhoc_prefix}*"
      },
      {
        Sid      = "WriteResults"
        Effect   = "Allow"
        Action   = "s3:PutObject"
        Resource = "${local.bucket_arn}/${local.adhoc_results_prefix}*"
      },
    ])

    notifier = concat(
      local.bus_statements["notifier"],
      [
        local.table_statement,
        local.consume_statements["notifier"],
        local.bucket_key_statement,
        # Lists a run's objects, reads their checksums and RunInfo.xml, writes the run's checksum manifest.
        {
          Sid      = "BucketList"
          Effect   = "Allow"
          Action   = "s3:ListBucket"
          Resource = local.bucket_arn
        },
        {
          Sid      = "RunObjectsAndManifests"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:GetObjectAttributes", "s3:PutObject"]
          Resource = "${local.bucket_arn}/*"
        },
        {
          Sid      = "Notify"
          Effect   = "Allow"
          Action   = ["sns:Publish", "sns:GetTopicAttributes"]
          Resource = aws_sns_topic.notifications.arn
        },
        # The topic is encrypted with the key: publishing uses it through SNS.
        {
          Sid       = "TopicKeyThroughSns"
          Effect    = "Allow"
          Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource  = aws_kms_key.main.arn
          Condition = { StringEquals = { "kms:ViaService" = "sns.${local.region}.amazonaws.com" } }
        },
      ],
      local.datasync_execution_statements,
    )

    # The simulator only announces the runs it writes; readiness also asks whether the table answers.
    simulator = concat(local.bus_statements["simulator"], [
      {
        Sid      = "StateTableReachable"
        Effect   = "Allow"
        Action   = "dynamodb:DescribeTable"
        Resource = local.table_arn
      },
    ])
  }
}

resource "aws_iam_role_policy" "service" {
  for_each = local.services

  name   = "seqferry-${each.key}"
  role   = aws_iam_role.service[each.key].id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.service_statements[each.key] })
}

# -- A LIMS (or any other system) asking for transfers ------------------------------------------------------------

# The role a LIMS assumes to put Transfer Requested on the bus (docs/transfer-requested.md), and nothing else: only
# that detail-type, only under its own sources. Created when lims_principal_arns names who may assume it.
resource "aws_iam_role" "lims" {
  count = length(var.lims_principal_arns) > 0 ? 1 : 0

  name        = "${var.prefix}-lims"
  description = "seqferry: put Transfer Requested on the ${local.bus} bus (sources ${join(", ", var.lims_event_sources)})"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Lims"
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { AWS = var.lims_principal_arns }
    }]
  })
}

resource "aws_iam_role_policy" "lims" {
  count = length(var.lims_principal_arns) > 0 ? 1 : 0

  name = "seqferry-lims"
  role = aws_iam_role.lims[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "RequestTransfers"
      Effect   = "Allow"
      Action   = "events:PutEvents"
      Resource = aws_cloudwatch_event_bus.main.arn
      Condition = {
        "ForAllValues:StringEquals" = {
          "events:source"      = var.lims_event_sources
          "events:detail-type" = [local.transfer_requested]
        }
        Null = { "events:source" = "false", "events:detail-type" = "false" }
      }
    }]
  })
}
