# Mail for notifications: an SES domain identity for the county's domain with DKIM and a
# custom MAIL FROM, and SMTP credentials that become the platform's `smtp_url`.

data "aws_region" "current" {}

locals {
  mail_from = "mail.${var.domain}"
  region    = data.aws_region.current.name
}

resource "aws_sesv2_email_identity" "this" {
  email_identity = var.domain
  tags           = var.tags
}

resource "aws_route53_record" "dkim" {
  count   = 3
  zone_id = var.zone_id
  name    = "${aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens[count.index]}._domainkey.${var.domain}"
  type    = "CNAME"
  ttl     = 1800
  records = ["${aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens[count.index]}.dkim.amazonses.com"]
}

resource "aws_sesv2_email_identity_mail_from_attributes" "this" {
  email_identity         = aws_sesv2_email_identity.this.email_identity
  mail_from_domain       = local.mail_from
  behavior_on_mx_failure = "USE_DEFAULT_VALUE"
}

resource "aws_route53_record" "mail_from_mx" {
  zone_id = var.zone_id
  name    = local.mail_from
  type    = "MX"
  ttl     = 1800
  records = ["10 feedback-smtp.${local.region}.amazonses.com"]
}

resource "aws_route53_record" "mail_from_spf" {
  zone_id = var.zone_id
  name    = local.mail_from
  type    = "TXT"
  ttl     = 1800
  records = ["v=spf1 include:amazonses.com -all"]
}

resource "aws_route53_record" "dmarc" {
  zone_id = var.zone_id
  name    = "_dmarc.${var.domain}"
  type    = "TXT"
  ttl     = 1800
  records = ["v=DMARC1; p=quarantine; rua=mailto:${var.dmarc_report_address}"]
}

# SES's SMTP interface authenticates with an IAM user's access key converted into an SMTP
# password; nothing else can use this user.
resource "aws_iam_user" "smtp" {
  #checkov:skip=CKV_AWS_273:SES SMTP authentication needs an IAM user's access key; this user can only send mail from the county's domain
  name = "${var.name}-ses-smtp"
  tags = var.tags
}

resource "aws_iam_group" "smtp" {
  name = "${var.name}-ses-smtp"
}

resource "aws_iam_group_membership" "smtp" {
  name  = "${var.name}-ses-smtp"
  group = aws_iam_group.smtp.name
  users = [aws_iam_user.smtp.name]
}

data "aws_iam_policy_document" "send" {
  statement {
    actions   = ["ses:SendRawEmail"]
    resources = [aws_sesv2_email_identity.this.arn]
    condition {
      test     = "StringLike"
      variable = "ses:FromAddress"
      values   = ["*@${var.domain}"]
    }
  }
}

resource "aws_iam_group_policy" "send" {
  name   = "send-from-${replace(var.domain, ".", "-")}"
  group  = aws_iam_group.smtp.name
  policy = data.aws_iam_policy_document.send.json
}

# Rotate with `terraform apply -replace=module.email[0].aws_iam_access_key.smtp`.
resource "aws_iam_access_key" "smtp" {
  user = aws_iam_user.smtp.name
}
