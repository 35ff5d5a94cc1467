# One work queue per consuming service, each with a dead-letter queue: a message received max_receive_count
# times without being deleted (a poison message) moves there instead of blocking the queue.

resource "aws_sqs_queue" "dlq" {
  for_each = local.queues

  name                      = "${each.value}-dlq"
  message_retention_seconds = var.queue_retention_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "work" {
  for_each = local.queues

  name                       = each.value
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  message_retention_seconds  = var.queue_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the matching work queue may use a DLQ as its dead-letter target.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.queues

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.work[each.key].arn]
  })
}

locals {
  # Who may send to each work queue: the EventBridge rules that target it, or the bucket's notifications.
  queue_senders = {
    executor = {
      service     = "events.amazonaws.com"
      source_arns = [aws_cloudwatch_event_rule.to_executor.arn]
    }
    notifier = {
      service     = "events.amazonaws.com"
      source_arns = concat([aws_cloudwatch_event_rule.to_notifier.arn], aws_cloudwatch_event_rule.datasync_to_notifier[*].arn)
    }
    adhoc = {
      service     = "s3.amazonaws.com"
      source_arns = [aws_s3_bucket.runs.arn]
    }
  }
}

data "aws_iam_policy_document" "queue" {
  for_each = local.queues

  statement {
    sid       = "AllowDeliveryFromItsSources"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.work[each.key].arn]

    principals {
      type        = "Service"
      identifiers = [local.queue_senders[each.key].service]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.queue_senders[each.key].source_arns
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.work[each.key].arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "work" {
  for_each = local.queues

  queue_url = aws_sqs_queue.work[each.key].id
  policy    = data.aws_iam_policy_document.queue[each.key].json
}
