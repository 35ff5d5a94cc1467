# A CloudWatch dashboard of transfers and errors, and alarms when poison messages pile up in a DLQ.

locals {
  datasync_task_id = local.datasync_enabled ? element(split("/", aws_datasync_task.sequencers[0].arn), 1) : null

  datasync_widgets = local.datasync_enabled ? [
    {
      type   = "metric"
      x      = 0
      y      = 0
      width  = 12
      height = 6
      properties = {
        title  = "DataSync: files transferred and verified"
        region = local.region
        stat   = "Sum"
        period = 300
        view   = "timeSeries"
        metrics = [
          ["AWS/DataSync", "FilesTransferred", "TaskId", local.datasync_task_id],
          ["AWS/DataSync", "FilesVerifiedDestination", "TaskId", local.datasync_task_id],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 0
      width  = 12
      height = 6
      properties = {
        title   = "DataSync: bytes transferred"
        region  = local.region
        stat    = "Sum"
        period  = 300
        view    = "timeSeries"
        metrics = [["AWS/DataSync", "BytesTransferred", "TaskId", local.datasync_task_id]]
      }
    },
  ] : []

  common_widgets = [
    {
      type   = "metric"
      x      = 0
      y      = 6
      width  = 12
      height = 6
      properties = {
        title  = "Bucket: objects and bytes (daily)"
        region = local.region
        stat   = "Average"
        period = 86400
        view   = "timeSeries"
        metrics = [
          ["AWS/S3", "NumberOfObjects", "BucketName", local.bucket, "StorageType", "AllStorageTypes"],
          ["AWS/S3", "BucketSizeBytes", "BucketName", local.bucket, "StorageType", "StandardStorage", { yAxis = "right" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 6
      width  = 12
      height = 6
      properties = {
        title  = "Work queues: messages waiting and oldest age (s)"
        region = local.region
        stat   = "Maximum"
        period = 300
        view   = "timeSeries"
        metrics = concat(
          [for name in values(local.queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name]],
          [for name in values(local.queues) : ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", name, { yAxis = "right" }]],
        )
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 12
      width  = 12
      height = 6
      properties = {
        title   = "Errors: messages in dead-letter queues"
        region  = local.region
        stat    = "Maximum"
        period  = 300
        view    = "timeSeries"
        metrics = [for name in values(local.queues) : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${name}-dlq"]]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 12
      width  = 12
      height = 6
      properties = {
        title  = "Errors: event deliveries that failed"
        region = local.region
        stat   = "Sum"
        period = 300
        view   = "timeSeries"
        metrics = [
          ["AWS/Events", "FailedInvocations", "EventBusName", local.bus, "RuleName", local.rules.to_executor],
          ["AWS/Events", "FailedInvocations", "EventBusName", local.bus, "RuleName", local.rules.to_notifier],
          ["AWS/Events", "FailedInvocations", "RuleName", local.rules.datasync_to_notifier],
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = var.prefix
  dashboard_body = jsonencode({ widgets = concat(local.datasync_widgets, local.common_widgets) })
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
