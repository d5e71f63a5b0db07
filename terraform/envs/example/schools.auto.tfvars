# The county's schools: slug = { name, plan (small | standard | large), hostnames }.
# Each school answers on https://<slug>.<domain>; `hostnames` adds the school's own domain
# names (point their DNS at the load balancer). Removing a line deletes the school softly:
# it can be resumed for `delete_grace_days` (30) days with `campus tenant resume <slug>`.
schools = {
  xinyi     = { name = "平昌县信义小学", plan = "large", hostnames = ["www.xinyi-school.cn"] }
  tongzhou  = { name = "平昌县同州小学" }
  jiangkou  = { name = "平昌县江口小学" }
  shiyan    = { name = "平昌县实验小学", plan = "large" }
  dongsheng = { name = "平昌县东升初级中学" }
  xixing    = { name = "平昌县西兴小学", plan = "small" }
}
