output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Subnets for the load balancer and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Subnets for the platform's tasks (no public addresses; outbound through NAT)."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Subnets for Postgres (no route to the internet)."
  value       = aws_subnet.database[*].id
}

output "nat_public_ips" {
  description = "Public addresses outbound traffic leaves from (give them to the SMS/WeChat provider's allow-list)."
  value       = aws_eip.nat[*].public_ip
}
