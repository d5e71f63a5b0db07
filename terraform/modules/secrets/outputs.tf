output "kms_key_arn" {
  description = "ARN of the platform's KMS key (database, bucket, logs, secrets)."
  value       = aws_kms_key.platform.arn
}

output "database_password" {
  description = "The platform user's Postgres password (feeds the database module)."
  value       = random_password.database.result
  sensitive   = true
}

output "admin_token" {
  description = "The admin API token (feeds the restapi provider of the schools map)."
  value       = random_password.admin_token.result
  sensitive   = true
}

output "secret_arns" {
  description = "Setting name → secret ARN, for the container definitions (`DATABASE_URL`, `CAMPUS_ADMIN_TOKEN`, …)."
  value = merge(
    {
      DATABASE_URL             = aws_secretsmanager_secret.database_url.arn
      CAMPUS_ADMIN_TOKEN       = aws_secretsmanager_secret.admin_token.arn
      CAMPUS_NOTIFY_SECRET_KEY = aws_secretsmanager_secret.notify_secret_key.arn
    },
    { for k, s in aws_secretsmanager_secret.optional : "CAMPUS_${upper(k)}" => s.arn },
  )
}
