output "address" {
  description = "Host name of the Postgres endpoint (follows failover)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the Postgres endpoint."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Database the platform uses."
  value       = aws_db_instance.this.db_name
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
  description = "Security group of the database."
  value       = aws_security_group.db.id
}
