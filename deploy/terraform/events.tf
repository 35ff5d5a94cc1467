# The custom bus that carries seqferry's events, and the rules that route them to the services' queues.

resource "aws_cloudwatch_event_bus" "main" {
  name = local.bus
}

resource "aws_cloudwatch_event_rule" "to_executor" {
  name           = local.rules.to_executor
  description    = "seqferry: deliver to ${local.queues.executor}"
  event_bus_name = aws_cloudwatch_event_bus.main.name
  # Windows only from the scheduler; requests (the public contract) from any source but an AWS service's.
  event_pattern = jsonencode({
    "$or" = [
      { source = [local.scheduler_source], "detail-type" = [local.transfer_window_opened] },
      { source = [{ "anything-but" = { prefix = local.aws_source_prefix } }], "detail-type" = [local.transfer_requested] },
    ]
  })
}

resource "aws_cloudwatch_event_target" "to_executor" {
  rule           = aws_cloudwatch_event_rule.to_executor.name
  event_bus_name = aws_cloudwatch_event_bus.main.name
  target_id      = "queue"
  arn            = aws_sqs_queue.work["executor"].arn
}

resource "aws_cloudwatch_event_rule" "to_notifier" {
  name           = local.rules.to_notifier
  description    = "seqferry: deliver to ${local.queues.notifier}"
  event_bus_name = aws_cloudwatch_event_bus.main.name
  event_pattern = jsonencode({
    source        = [local.executor_source]
    "detail-type" = [local.transfer_execution_state_changed]
  })
}

resource "aws_cloudwatch_event_target" "to_notifier" {
  rule           = aws_cloudwatch_event_rule.to_notifier.name
  event_bus_name = aws_cloudwatch_event_bus.main.name
  target_id      = "queue"
  arn            = aws_sqs_queue.work["notifier"].arn
}

# DataSync publishes its state changes on the account's default bus, for every task in the account. Only this
# install's tasks are delivered (an event's resources hold the execution ARN, '<task ARN>/execution/exec-...'):
# other tasks' events would only make the notifier describe executions its role may not read.
locals {
  datasync_task_arns = concat(local.datasync_enabled ? [aws_datasync_task.sequencers[0].arn] : [], var.additional_datasync_task_arns)
}

resource "aws_cloudwatch_event_rule" "datasync_to_notifier" {
  count = length(local.datasync_task_arns) > 0 ? 1 : 0

  name           = local.rules.datasync_to_notifier
  description    = "seqferry: deliver this install's DataSync task executions to ${local.queues.notifier}"
  event_bus_name = "default"
  event_pattern = jsonencode({
    source        = [local.datasync_source]
    "detail-type" = [local.datasync_detail_type]
    resources     = [for arn in local.datasync_task_arns : { prefix = "${arn}/execution/" }]
  })
}

resource "aws_cloudwatch_event_target" "datasync_to_notifier" {
  count = length(aws_cloudwatch_event_rule.datasync_to_notifier)

  rule           = aws_cloudwatch_event_rule.datasync_to_notifier[0].name
  event_bus_name = "default"
  target_id      = "queue"
  arn            = aws_sqs_queue.work["notifier"].arn
}
