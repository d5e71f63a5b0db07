# The platform on ECS Fargate: one image, one task definition per role, one service per
# role so that each scales on its own signal. `campus serve --roles web` behind the load
# balancer; `--roles maintenance,notify` as the background worker; `--roles preview` (the
# preview image, with LibreOffice and poppler) converting attachments; and a `cli` task
# definition for one-off commands (`campus migrate`, `campus tenant …`) and the operator's
# shell, both started by infra/bin/campus-ecs (see infra/RUNBOOK.md).

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region = data.aws_region.current.name

  environment = merge(
    {
      CAMPUS_BASE_DOMAIN              = var.base_domain
      CAMPUS_PUBLIC_SCHEME            = "https"
      CAMPUS_S3_BUCKET                = var.bucket_name
      CAMPUS_S3_REGION                = local.region
      CAMPUS_S3_FORCE_PATH_STYLE      = "false"
      CAMPUS_LOG_FORMAT               = "json"
      CAMPUS_SMTP_FROM                = var.smtp_from
      CAMPUS_DELETE_GRACE_DAYS        = tostring(var.delete_grace_days)
      CAMPUS_DATABASE_MAX_CONNECTIONS = tostring(var.database_max_connections)
      RUST_LOG                        = var.rust_log
    },
    var.extra_environment,
  )

  # Everything that runs the platform: role name → what it needs.
  roles = {
    web = {
      command = ["serve", "--roles", "web"]
      image   = "${aws_ecr_repository.campus.repository_url}:${var.image_tag}"
      cpu     = var.web_cpu
      memory  = var.web_memory
      # The balancer (inside the VPC) appends the client's address to X-Forwarded-For;
      # only peers in the VPC's range are believed, so nothing else can pick an address.
      env     = { CAMPUS_TRUSTED_PROXIES = jsonencode([var.vpc_cidr_block]) }
      enabled = true
    }
    worker = {
      command = ["serve", "--roles", "maintenance,notify"]
      image   = "${aws_ecr_repository.campus.repository_url}:${var.image_tag}"
      cpu     = var.worker_cpu
      memory  = var.worker_memory
      env     = {}
      enabled = true
    }
    preview = {
      command = ["serve", "--roles", "preview"]
      image   = "${aws_ecr_repository.campus.repository_url}:${var.image_tag}-preview"
      cpu     = var.preview_cpu
      memory  = var.preview_memory
      # One conversion per vCPU the task is given: the task may see more cores than it
      # pays for, and conversions sharing a core run into `preview_timeout_secs`.
      env     = { CAMPUS_PREVIEW_WORKERS = tostring(max(1, floor(var.preview_cpu / 1024))) }
      enabled = var.preview_enabled
    }
    cli = {
      command = ["--help"]
      image   = "${aws_ecr_repository.campus.repository_url}:${var.image_tag}"
      cpu     = 512
      memory  = 1024
      env     = {}
      enabled = true
    }
  }

  services = {
    web     = { desired = var.web_min, min = var.web_min, max = var.web_max }
    worker  = { desired = var.worker_min, min = var.worker_min, max = var.worker_max }
    preview = { desired = var.preview_min, min = var.preview_min, max = var.preview_max }
  }
  enabled_services = { for k, v in local.services : k => v if local.roles[k].enabled }
}

# ---------------------------------------------------------------- cluster

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = var.kms_key_arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = var.log_group_names["exec"]
      }
    }
  }
}

# ---------------------------------------------------------------- network access

resource "aws_security_group" "tasks" {
  name_prefix = "${var.name}-tasks-"
  description = "Tasks of ${var.name}: HTTP from the load balancer only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = var.alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  description                  = "HTTP from the load balancer"
}

# Prometheus (or another scraper) inside the VPC reads `/metrics` of each task on its
# address (web, worker and preview); the load balancer hides that path from the internet.
resource "aws_vpc_security_group_ingress_rule" "metrics" {
  count                        = length(var.metrics_scraper_security_group_ids)
  security_group_id            = aws_security_group.tasks.id
  referenced_security_group_id = var.metrics_scraper_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  description                  = "Prometheus scraping /metrics"
}

# Outbound: Postgres in the VPC, S3 through the gateway endpoint, and HTTPS/SMTP to SES,
# Secrets Manager, the image registry and the SMS/WeChat provider through NAT.
resource "aws_vpc_security_group_egress_rule" "postgres" {
  security_group_id = aws_security_group.tasks.id
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  description       = "Postgres"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.tasks.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "HTTPS: S3, Secrets Manager, image registry, SMS/WeChat provider"
}

resource "aws_vpc_security_group_egress_rule" "smtp" {
  security_group_id = aws_security_group.tasks.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 587
  to_port           = 587
  description       = "SMTP submission (SES or the county's relay)"
}

# ---------------------------------------------------------------- roles

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# What ECS itself needs to start a task: pull the image, write logs, read the secrets.
resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = values(var.secret_arns)
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# What `campus` may do: read and write its one bucket (schools live under `schools/`),
# and open ECS Exec sessions for the runbook.
resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.bucket_arn]
  }
  statement {
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${var.bucket_arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    #checkov:skip=CKV_AWS_356:ssmmessages actions have no resource-level permissions
    resources = ["*"]
  }
  statement {
    actions = ["logs:DescribeLogGroups"]
    #checkov:skip=CKV_AWS_356:DescribeLogGroups has no resource-level permissions (ECS Exec checks its log group exists)
    resources = ["*"]
  }
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:${data.aws_partition.current.partition}:logs:${local.region}:${data.aws_caller_identity.current.account_id}:log-group:${var.log_group_names["exec"]}:*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "campus"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------- task definitions

resource "aws_ecs_task_definition" "this" {
  for_each                 = { for k, v in local.roles : k => v if v.enabled }
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root filesystem is read-only; conversions and exports get a scratch /tmp.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name      = "campus"
      image     = each.value.image
      command   = each.value.command
      essential = true
      # The cli task also serves as the operator's shell (ECS Exec), whose agent needs a
      # writable root filesystem; the services' root filesystems are read-only. Every
      # service listens on 8080: workers answer only /healthz, /readyz and /metrics there.
      readonlyRootFilesystem = each.key != "cli"
      user                   = "10001:10001"
      stopTimeout            = 30
      portMappings           = each.key == "cli" ? [] : [{ containerPort = 8080, protocol = "tcp" }]
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      # extra_environment last: a county's own value wins over the role's default.
      environment = [
        for k, v in merge(local.environment, each.value.env, var.extra_environment) : { name = k, value = v }
      ]
      secrets = [
        for k, arn in var.secret_arns : { name = k, valueFrom = arn }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_names[each.key]
          awslogs-region        = local.region
          awslogs-stream-prefix = each.key
        }
      }
      linuxParameters = {
        initProcessEnabled = true
      }
    }
  ])
}

# ---------------------------------------------------------------- services

resource "aws_ecs_service" "this" {
  for_each                           = local.enabled_services
  name                               = each.key
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this[each.key].arn
  desired_count                      = each.value.desired
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = each.key == "web" ? 60 : null
  tags                               = var.tags

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  dynamic "load_balancer" {
    for_each = each.key == "web" ? [1] : []
    content {
      target_group_arn = var.target_group_arn
      container_name   = "campus"
      container_port   = 8080
    }
  }

  lifecycle {
    # Autoscaling owns the running count once the service exists.
    ignore_changes = [desired_count]
  }
}

# ---------------------------------------------------------------- autoscaling

resource "aws_appautoscaling_target" "this" {
  for_each           = local.enabled_services
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.min
  max_capacity       = each.value.max
}

resource "aws_appautoscaling_policy" "cpu" {
  for_each           = local.enabled_services
  name               = "${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.this[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.this[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

# Web tasks also scale on requests per task: the morning rush (gate events, roll call,
# parents opening the notice) arrives faster than CPU averages move.
resource "aws_appautoscaling_policy" "requests" {
  name               = "web-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this["web"].service_namespace
  resource_id        = aws_appautoscaling_target.this["web"].resource_id
  scalable_dimension = aws_appautoscaling_target.this["web"].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.web_requests_per_task_per_minute
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
  }
}
