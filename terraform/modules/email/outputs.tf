output "smtp_url" {
  description = "Value for `smtp_url`: SES's SMTP endpoint with STARTTLS required and the SMTP credentials."
  value       = "smtp://${urlencode(aws_iam_access_key.smtp.id)}:${urlencode(aws_iam_access_key.smtp.ses_smtp_password_v4)}@email-smtp.${local.region}.amazonaws.com:587?tls=required"
  sensitive   = true
}

output "smtp_from" {
  description = "Value for `smtp_from`."
  value       = "${var.from_display_name} <${var.from_local_part}@${var.domain}>"
}

output "identity_arn" {
  description = "ARN of the SES domain identity."
  value       = aws_sesv2_email_identity.this.arn
}
