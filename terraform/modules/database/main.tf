# Managed Postgres for the whole county: the shared `public` schema and one schema per
# school. Encrypted, backed up daily with point-in-time recovery, Multi-AZ by default,
# deletion-protected, reachable only from the platform's tasks.

locals {
  # Where the platform connects: RDS, or a Citus coordinator once one server is outgrown
  # (variable citus_coordinator, README "When one server is outgrown: Citus").
  endpoint = var.citus_coordinator == null ? {
    host          = aws_db_instance.this.address
    port          = aws_db_instance.this.port
    database_name = aws_db_instance.this.db_name
    } : {
    host          = var.citus_coordinator.host
    port          = var.citus_coordinator.port
    database_name = var.citus_coordinator.database_name
  }
}

resource "aws_db_subnet_group" "this" {
  name_prefix = "${var.name}-"
  subnet_ids  = var.subnet_ids
  tags        = var.tags
}

resource "aws_security_group" "db" {
  name_prefix = "${var.name}-db-"
  description = "Postgres of ${var.name}: reachable from the platform's tasks only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

# count, not for_each: the group ids are not known until the groups exist.
resource "aws_vpc_security_group_ingress_rule" "from_clients" {
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.db.id
  referenced_security_group_id = var.client_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  description                  = "Postgres from the platform's tasks"
}

# Settings that matter for a schema-per-school platform: many relations (every school has
# the same few dozen tables), slow-query logging for the runbook, pg_stat_statements for
# finding them.
resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.name}-pg${var.engine_major_version}-"
  family      = "postgres${var.engine_major_version}"
  description = "campus platform settings"
  tags        = var.tags

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.log_min_duration_ms)
  }
  parameter {
    name  = "log_lock_waits"
    value = "1"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "idle_in_transaction_session_timeout"
    value = "60000"
  }
  # Clients must use TLS: `campus` verifies the server against the RDS CA bundle its
  # image carries (`sslmode=verify-full`, written into DATABASE_URL by the secrets module).
  parameter {
    name  = "rds.force_ssl"
    value = var.force_ssl ? "1" : "0"
  }
}

resource "aws_iam_role" "monitoring" {
  name_prefix        = "${var.name}-rds-mon-"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier_prefix = "${var.name}-"
  engine            = "postgres"
  engine_version    = var.engine_version
  instance_class    = var.instance_class
  multi_az          = var.multi_az

  db_name  = var.database_name
  username = var.username
  password = var.password
  port     = 5432

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  # Daily snapshots plus continuous WAL archiving: any second of the retention window can
  # be restored (point-in-time recovery), which the runbook uses to recover one school.
  backup_retention_period   = var.backup_retention_days
  backup_window             = var.backup_window
  maintenance_window        = var.maintenance_window
  apply_immediately         = var.apply_immediately
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn

  tags = var.tags

  lifecycle {
    # The password is rotated through the secrets module; an engine upgrade is a planned
    # change (infra/RUNBOOK.md), never a side effect of a provider default.
    ignore_changes = [final_snapshot_identifier]
  }
}

# Off-site copies of the automated backups in the replica region (seed 003: 异地容灾):
# the whole database can be restored there to any point of the copied window.
resource "aws_db_instance_automated_backups_replication" "offsite" {
  count                  = var.offsite_backups ? 1 : 0
  provider               = aws.replica
  source_db_instance_arn = aws_db_instance.this.arn
  kms_key_id             = var.offsite_backup_kms_key_arn
  retention_period       = var.backup_retention_days
}
