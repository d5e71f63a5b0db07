# A county's whole platform: network, Postgres, the bucket and its off-site copy, the
# container services, the load balancer with the wildcard certificate and DNS, mail,
# secrets and alarms. Schools are in schools.tf and schools.auto.tfvars.

data "aws_caller_identity" "current" {}

locals {
  tags = merge({ Project = "county-campus-cloud", Environment = var.name }, var.tags)
  # Bucket names are global: the account id keeps the default unique.
  bucket_name = coalesce(var.bucket_name, "${var.name}-files-${data.aws_caller_identity.current.account_id}")
  smtp_from   = var.enable_ses ? one(module.email[*].smtp_from) : coalesce(var.smtp_from, "县域智慧校园云平台 <noreply@${var.domain}>")

  # Secret settings that exist only when configured (an empty setting stops `campus`).
  secret_settings = merge(
    var.enable_ses ? { smtp_url = one(module.email[*].smtp_url) } : {},
    !var.enable_ses && var.smtp_relay_url != null ? { smtp_url = var.smtp_relay_url } : {},
    var.notify_webhook_url != null ? {
      notify_webhook_url    = var.notify_webhook_url
      notify_webhook_secret = var.notify_webhook_secret
    } : {},
  )
}

module "secrets" {
  source           = "../../modules/secrets"
  name             = var.name
  database_address = module.database.address
  database_port    = module.database.port
  database_name    = module.database.database_name
  settings         = local.secret_settings
  tags             = local.tags
}

module "network" {
  source             = "../../modules/network"
  name               = var.name
  cidr_block         = var.vpc_cidr_block
  az_count           = 2
  single_nat_gateway = true
  kms_key_arn        = module.secrets.kms_key_arn
  tags               = local.tags
}

module "database" {
  source = "../../modules/database"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  name                       = var.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.database_subnet_ids
  client_security_group_ids  = [module.compute.task_security_group_id]
  instance_class             = var.db_instance_class
  multi_az                   = var.db_multi_az
  apply_immediately          = var.db_apply_immediately
  allocated_storage_gb       = var.db_storage_gb
  password                   = module.secrets.database_password
  kms_key_arn                = module.secrets.kms_key_arn
  offsite_backups            = var.offsite_database_backups
  offsite_backup_kms_key_arn = module.storage.replica_kms_key_arn
  citus_coordinator          = var.citus_coordinator
  tags                       = local.tags
}

module "storage" {
  source = "../../modules/storage"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  name        = var.name
  bucket_name = local.bucket_name
  kms_key_arn = module.secrets.kms_key_arn
  tags        = local.tags
}

module "edge" {
  source                      = "../../modules/edge"
  name                        = var.name
  domain                      = var.domain
  create_zone                 = var.create_dns_zone
  certificate_arn             = var.certificate_arn
  additional_certificate_arns = var.school_certificate_arns
  vpc_id                      = module.network.vpc_id
  vpc_cidr_block              = module.network.vpc_cidr_block
  public_subnet_ids           = module.network.public_subnet_ids
  access_log_bucket           = module.storage.access_log_bucket_name
  kms_key_arn                 = module.secrets.kms_key_arn
  tags                        = local.tags
}

module "email" {
  source               = "../../modules/email"
  count                = var.enable_ses ? 1 : 0
  name                 = var.name
  domain               = var.domain
  zone_id              = module.edge.zone_id
  dmarc_report_address = var.dmarc_report_address
  tags                 = local.tags
}

module "compute" {
  source                             = "../../modules/compute"
  name                               = var.name
  image_tag                          = var.image_tag
  base_domain                        = var.domain
  bucket_name                        = module.storage.bucket_name
  bucket_arn                         = module.storage.bucket_arn
  smtp_from                          = local.smtp_from
  secret_arns                        = module.secrets.secret_arns
  kms_key_arn                        = module.secrets.kms_key_arn
  log_group_names                    = module.observability.log_group_names
  vpc_id                             = module.network.vpc_id
  vpc_cidr_block                     = module.network.vpc_cidr_block
  private_subnet_ids                 = module.network.private_subnet_ids
  alb_security_group_id              = module.edge.alb_security_group_id
  target_group_arn                   = module.edge.target_group_arn
  alb_arn_suffix                     = module.edge.alb_arn_suffix
  target_group_arn_suffix            = module.edge.target_group_arn_suffix
  web_min                            = var.web_min_tasks
  web_max                            = var.web_max_tasks
  worker_max                         = var.worker_max_tasks
  preview_max                        = var.preview_max_tasks
  preview_enabled                    = var.preview_enabled
  metrics_scraper_security_group_ids = var.prometheus_security_group_ids
  tags                               = local.tags
}

module "observability" {
  source                  = "../../modules/observability"
  name                    = var.name
  kms_key_arn             = module.secrets.kms_key_arn
  alarm_emails            = var.alarm_emails
  cluster_name            = module.compute.cluster_name
  service_names           = module.compute.service_names
  alb_arn_suffix          = module.edge.alb_arn_suffix
  target_group_arn_suffix = module.edge.target_group_arn_suffix
  db_instance_id          = module.database.instance_id
  bucket_name             = module.storage.bucket_name
  replica_bucket_name     = module.storage.replica_bucket_name
  tags                    = local.tags
}
