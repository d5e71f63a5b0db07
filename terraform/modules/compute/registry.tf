# Where the county's images live: one repository for the `campus` image and its preview
# variant (tag `<version>` and `<version>-preview`). Tags are immutable, so a deployed
# version can never silently change; pushed images are scanned.

resource "aws_ecr_repository" "campus" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  tags                 = var.tags

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "campus" {
  repository = aws_ecr_repository.campus.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 30 images (about a year of releases and their previews)"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}
