output "urls" {
  description = "Where the platform answers."
  value = {
    schools   = "https://<slug>.${var.domain}"
    county    = "https://county.${var.domain}"
    admin_api = "https://admin.${var.domain}/admin/v1/tenants"
    openapi   = "https://admin.${var.domain}/api/openapi.json"
  }
}

output "repository_url" {
  description = "Push images here: `<url>:<version>` and `<url>:<version>-preview`."
  value       = module.compute.repository_url
}

output "cluster_name" {
  description = "ECS cluster (for `aws ecs run-task` and `aws ecs update-service`)."
  value       = module.compute.cluster_name
}

output "service_names" {
  description = "Role → ECS service."
  value       = module.compute.service_names
}

output "cli_task_definition" {
  description = "Task definition for one-off `campus` commands."
  value       = module.compute.cli_task_definition
}

output "run_task_network" {
  description = "`--network-configuration` value for `aws ecs run-task`."
  value       = module.compute.run_task_network
}

output "database_instance_id" {
  description = "RDS instance (point-in-time restores start from it)."
  value       = module.database.instance_id
}

output "database_subnet_group" {
  description = "DB subnet group (`--db-subnet-group-name` of a point-in-time restore beside the live instance)."
  value       = module.database.subnet_group_name
}

output "database_security_group_id" {
  description = "Security group of the database (`--vpc-security-group-ids` of such a restore)."
  value       = module.database.security_group_id
}

output "database_parameter_group" {
  description = "Parameter group of the database (`--db-parameter-group-name` of such a restore)."
  value       = module.database.parameter_group_name
}

output "bucket_name" {
  description = "The files bucket (`s3_bucket`)."
  value       = module.storage.bucket_name
}

output "replica_bucket_name" {
  description = "The off-site copy of the files bucket."
  value       = module.storage.replica_bucket_name
}

output "name_servers" {
  description = "Name servers to delegate the domain to (when `create_dns_zone`)."
  value       = module.edge.name_servers
}

output "nat_public_ips" {
  description = "Addresses the platform's outbound traffic comes from (for providers' allow-lists)."
  value       = module.network.nat_public_ips
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "admin_token" {
  description = "The admin API token (`terraform output -raw admin_token`)."
  value       = module.secrets.admin_token
  sensitive   = true
}

output "first_admin_invitations" {
  description = "Slug → first school-admin invitation link of schools created by this configuration (`terraform output -json first_admin_invitations`)."
  value       = module.schools.first_admin_invitations
  sensitive   = true
}
