output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "Role → ECS service name (`web`, `worker`, `preview`)."
  value       = { for k, s in aws_ecs_service.this : k => s.name }
}

output "task_security_group_id" {
  description = "Security group of the tasks (the database admits it)."
  value       = aws_security_group.tasks.id
}

output "cli_task_definition" {
  description = "Task definition for one-off commands (`campus migrate`, `campus tenant …`)."
  value       = aws_ecs_task_definition.this["cli"].family
}

output "run_task_network" {
  description = "The `--network-configuration` argument for `aws ecs run-task` with the cli task definition."
  value       = "awsvpcConfiguration={subnets=[${join(",", var.private_subnet_ids)}],securityGroups=[${aws_security_group.tasks.id}],assignPublicIp=DISABLED}"
}

output "task_role_arn" {
  description = "Role the platform runs as (bucket access)."
  value       = aws_iam_role.task.arn
}

output "repository_url" {
  description = "Image repository to push `campus` images to (`docker push <url>:<version>`)."
  value       = aws_ecr_repository.campus.repository_url
}
