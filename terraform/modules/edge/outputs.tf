output "alb_arn_suffix" {
  description = "Load balancer's ARN suffix (dimension of its CloudWatch metrics)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (the wildcard record points here)."
  value       = aws_lb.this.dns_name
}

output "alb_security_group_id" {
  description = "Security group of the load balancer (the web tasks accept traffic from it)."
  value       = aws_security_group.alb.id
}

# ECS refuses a service whose target group is not yet attached to a load balancer, and
# the HTTPS listener waits for the certificate's validation: consumers of the target group
# (the web service, request-count autoscaling) must wait for the listener too.
output "target_group_arn" {
  description = "Target group the web service registers its tasks in (available once the HTTPS listener forwards to it)."
  value       = aws_lb_target_group.web.arn
  depends_on  = [aws_lb_listener.https]
}

output "target_group_arn_suffix" {
  description = "Target group's ARN suffix (dimension of its CloudWatch metrics and of request-count autoscaling)."
  value       = aws_lb_target_group.web.arn_suffix
  depends_on  = [aws_lb_listener.https]
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener."
  value       = aws_lb_listener.https.arn
}

output "zone_id" {
  description = "Route 53 zone of the domain."
  value       = local.zone_id
}

output "name_servers" {
  description = "Name servers of the created zone (give them to the registrar); empty when an existing zone is used."
  value       = flatten(aws_route53_zone.this[*].name_servers)
}
