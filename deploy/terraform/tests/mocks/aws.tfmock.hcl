# Mocked AWS provider of the offline tests: fixed account and well-formed ARNs where the provider validates them
# (other computed values are random strings).

mock_data "aws_caller_identity" {
  defaults = { account_id = "123456789012" }
}

mock_data "aws_partition" {
  defaults = { partition = "aws" }
}

mock_data "aws_iam_policy_document" {
  defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
}

mock_resource "aws_sqs_queue" {
  defaults = { arn = "arn:aws:sqs:eu-west-1:123456789012:mocked", url = "https://sqs.eu-west-1.amazonaws.com/123456789012/mocked" }
}

mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:eu-west-1:123456789012:lab-notifications" }
}

mock_resource "aws_kms_key" {
  defaults = { arn = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000000", key_id = "00000000-0000-0000-0000-000000000000" }
}

mock_resource "aws_cloudwatch_event_bus" {
  defaults = { arn = "arn:aws:events:eu-west-1:123456789012:event-bus/lab" }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = { arn = "arn:aws:events:eu-west-1:123456789012:rule/lab/mocked" }
}

mock_resource "aws_dynamodb_table" {
  defaults = { arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/lab-state" }
}

mock_resource "aws_iam_role" {
  defaults = { arn = "arn:aws:iam::123456789012:role/mocked" }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = { arn = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/datasync/lab" }
}

mock_resource "aws_datasync_location_nfs" {
  defaults = { arn = "arn:aws:datasync:eu-west-1:123456789012:location/loc-0123456789abcdef0" }
}

mock_resource "aws_datasync_location_smb" {
  defaults = { arn = "arn:aws:datasync:eu-west-1:123456789012:location/loc-0123456789abcdef2" }
}

mock_resource "aws_datasync_agent" {
  defaults = { arn = "arn:aws:datasync:eu-west-1:123456789012:agent/agent-0123456789abcdef3" }
}

mock_resource "aws_datasync_location_s3" {
  defaults = { arn = "arn:aws:datasync:eu-west-1:123456789012:location/loc-0123456789abcdef1" }
}

mock_resource "aws_datasync_task" {
  defaults = { arn = "arn:aws:datasync:eu-west-1:123456789012:task/task-0123456789abcdef0" }
}

mock_resource "aws_s3_bucket" {
  defaults = { arn = "arn:aws:s3:::lab-runs" }
}
