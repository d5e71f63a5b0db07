# The platform's key and secrets. One customer-managed KMS key encrypts the database,
# the bucket, the logs and the secrets; the secrets hold whole setting values so that the
# container service can hand them to `campus` as `DATABASE_URL` and `CAMPUS_*` variables.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
}

data "aws_iam_policy_document" "key" {
  # A key policy's "*" resource means "this key"; the statements below are scoped by
  # principal (the account, the logs service of this account) instead.
  #checkov:skip=CKV_AWS_111:key policy: the resource "*" is the key itself
  #checkov:skip=CKV_AWS_356:key policy: the resource "*" is the key itself
  #checkov:skip=CKV_AWS_109:key policy: only the account root administers the key, as AWS's default key policy does
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid = "CloudWatchLogsEncrypt"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account}:*"]
    }
  }
  statement {
    sid       = "AlarmTopicPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "platform" {
  description             = "${var.name}: database, bucket, logs and secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.platform.key_id
}

# The database password. Rotate with
# `terraform apply -replace=module.secrets.random_password.database` (see infra/RUNBOOK.md).
resource "random_password" "database" {
  length  = 40
  special = false
}

# The admin API token Terraform itself uses for the schools map; `campus serve` makes sure
# it exists (setting `admin_token`). Long and alphanumeric: it goes into a header.
resource "random_password" "admin_token" {
  length  = 48
  special = false
}

# 32 random bytes, written as the 64 hex digits `notify_secret_key` expects.
resource "random_id" "notify_secret_key" {
  byte_length = 32
}

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:the URL embeds the password; rotation is a Terraform replace plus a redeploy (infra/RUNBOOK.md, "Rotate secrets"), not a Lambda
  name_prefix             = "${var.name}/database-url-"
  description             = "DATABASE_URL of the campus platform"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgres://${var.database_username}:${random_password.database.result}@${var.database_address}:${var.database_port}/${var.database_name}?${var.database_tls}"
}

resource "aws_secretsmanager_secret" "admin_token" {
  #checkov:skip=CKV2_AWS_57:rotated by replacing the random_password and redeploying; old tokens are revoked with `campus admin-token revoke`
  name_prefix             = "${var.name}/admin-token-"
  description             = "CAMPUS_ADMIN_TOKEN: the admin API token used by Terraform's schools map"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "admin_token" {
  secret_id     = aws_secretsmanager_secret.admin_token.id
  secret_string = random_password.admin_token.result
}

resource "aws_secretsmanager_secret" "notify_secret_key" {
  #checkov:skip=CKV2_AWS_57:this key seals schools' stored provider secrets; rotating it needs every school to re-enter them, so it is rotated only by hand
  name_prefix             = "${var.name}/notify-secret-key-"
  description             = "CAMPUS_NOTIFY_SECRET_KEY: seals schools' own SMS/WeChat provider secrets"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "notify_secret_key" {
  secret_id     = aws_secretsmanager_secret.notify_secret_key.id
  secret_string = random_id.notify_secret_key.hex
}

resource "aws_secretsmanager_secret" "optional" {
  #checkov:skip=CKV2_AWS_57:provider credentials are issued by the provider; rotate them there and update the variable
  # Keys are known at plan time even when values (an SES password) are not.
  for_each                = nonsensitive(toset(keys(var.settings)))
  name_prefix             = "${var.name}/${replace(each.key, "_", "-")}-"
  description             = "CAMPUS_${upper(each.key)}"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "optional" {
  for_each      = aws_secretsmanager_secret.optional
  secret_id     = each.value.id
  secret_string = var.settings[each.key]
}
