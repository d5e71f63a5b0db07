output "address" {
  description = "Host name of the Postgres endpoint the platform uses: the RDS instance (follows failover), or the Citus coordinator when `citus_coordinator` is set."
  value       = local.endpoint.host
}

output "port" {
  description = "Port of the Postgres endpoint the platform uses."
  value       = local.endpoint.port
}

output "database_name" {
  description = "Database the platform uses."
  value       = local.endpoint.database_name
}

output "rds_address" {
  description = "Host name of the RDS instance itself (the source of a move to Citus, and of point-in-time restores)."
  value       = aws_db_instance.this.address
}

output "username" {
  description = "Platform user."
  value       = aws_db_instance.this.username
}

output "instance_id" {
  description = "RDS instance identifier (for alarms and for `aws rds restore-db-instance-to-point-in-time`)."
  value       = aws_db_instance.this.identifier
}

output "security_group_id" {
  description = "Security group of the database (give it to `aws rds restore-db-instance-to-point-in-time --vpc-security-group-ids`)."
  value       = aws_security_group.db.id
}

output "subnet_group_name" {
  description = "DB subnet group of the instance (for `--db-subnet-group-name` of a restore into the same subnets)."
  value       = aws_db_subnet_group.this.name
}

output "parameter_group_name" {
  description = "Parameter group of the instance (for `--db-parameter-group-name` of a restore, so the restored copy has the same settings)."
  value       = aws_db_parameter_group.this.name
}
