terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    restapi = {
      source  = "Mastercard/restapi"
      version = "~> 3.0"
    }
  }

  # State holds the admin token, the database password and first-admin invitation links:
  # keep it in an encrypted, versioned bucket with locking, never on a laptop. Create the
  # bucket once by hand (infra/RUNBOOK.md, "First deployment"), then uncomment.
  # backend "s3" {
  #   bucket       = "qingchuan-campus-tfstate"
  #   key          = "campus/example.tfstate"
  #   region       = "cn-northwest-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = local.tags
  }
}

# The off-site region: replica bucket and copies of the database backups.
provider "aws" {
  alias  = "replica"
  region = var.replica_region
  default_tags {
    tags = local.tags
  }
}
