output "bucket_name" {
  description = "The platform's bucket (`s3_bucket`)."
  value       = aws_s3_bucket.primary.id
}

output "bucket_arn" {
  description = "ARN of the platform's bucket (for the task role's policy)."
  value       = aws_s3_bucket.primary.arn
}

output "replica_bucket_name" {
  description = "The off-site copy in the replica region."
  value       = aws_s3_bucket.replica.id
}

output "replica_kms_key_arn" {
  description = "KMS key in the replica region (also used for off-site database backups)."
  value       = aws_kms_key.replica.arn
}

output "access_log_bucket_name" {
  description = "Bucket receiving S3 and load-balancer access logs (load balancer under `alb/`)."
  value       = aws_s3_bucket.access_logs.id
}
