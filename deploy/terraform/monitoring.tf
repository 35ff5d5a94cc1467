# The CloudWatch dashboard (dashboard.json.tftpl: the reference design's widgets plus seqferry's own), the local
# engine's per-file transfer log, and alarms when poison messages pile up in a DLQ.

# One stream per local-engine execution, in DataSync's TRANSFER-level line format (the executor writes it).
resource "aws_cloudwatch_log_group" "transfers" {
  name              = "/seqferry/${var.prefix}/transfers"
  retention_in_days = var.datasync_log_retention_days
  # every transferred file's path is logged here (sample names): encrypted with the install's key like the data
  kms_key_id = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "executor_transfer_log" {
  statement {
    sid       = "TransferLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.transfers.arn}:*"]
  }
}

resource "aws_iam_role_policy" "executor_transfer_log" {
  name   = "seqferry-executor-transfer-log"
  role   = aws_iam_role.service["executor"].id
  policy = data.aws_iam_policy_document.executor_transfer_log.json
}

# Service metrics for the dashboard (SEQFERRY_CLOUDWATCH_METRICS), only into this stack's namespace.
data "aws_iam_policy_document" "metrics" {
  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "metrics" {
  for_each = local.services

  name   = "seqferry-${each.key}-metrics"
  role   = aws_iam_role.service[each.key].id
  policy = data.aws_iam_policy_document.metrics.json
}

locals {
  metrics_namespace = var.prefix
  datasync_task_id  = local.datasync_enabled ? element(split("/", aws_datasync_task.sequencers[0].arn), 1) : ""

  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", {
    region     = local.region
    namespace  = local.metrics_namespace
    task_id    = local.datasync_task_id
    agent_ids  = [for arn in local.datasync_agents : element(split("/", arn), 1)]
    log_groups = concat([aws_cloudwatch_log_group.transfers.name], local.datasync_enabled ? [aws_cloudwatch_log_group.datasync[0].name] : [])
    queues     = local.queues
    bus        = local.bus
    rules      = local.rules
    bucket     = local.bucket
  })
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = var.prefix
  dashboard_body = local.dashboard_body
}

resource "aws_cloudwatch_metric_alarm" "dlq" {
  for_each = var.dlq_alarms_enabled ? local.queues : {}

  alarm_name          = "${each.value}-dlq-not-empty"
  alarm_description   = "Messages the ${each.key} could not process after ${var.max_receive_count} attempts are waiting in ${each.value}-dlq."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.notifications.arn]
  ok_actions          = [aws_sns_topic.notifications.arn]
}
