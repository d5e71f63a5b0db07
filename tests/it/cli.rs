//! The real `campus` binary: `--help` everywhere, the `tenant` commands for scripts
//! (`--json`), `migrate` with per-school status, and `export`.

use std::path::Path;
use std::process::Output;

use campus_devstack::EmbeddedS3;
use serde_json::Value;

use crate::helpers::{start_s3, TestDb, BASE, S3_KEY, S3_SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_campus");

struct Cli {
    db: TestDb,
    s3: EmbeddedS3,
    _dir: tempfile::TempDir,
}

impl Cli {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let s3 = start_s3(dir.path()).await;
        let cli = Self {
            db: TestDb::new().await,
            s3,
            _dir: dir,
        };
        // The bucket exists in production (Terraform); here the first command creates it.
        let cfg = crate::helpers::config(&cli.db, &cli.s3);
        let client = campus::runtime::s3_client(&cfg).await;
        campus_tenant::ObjectStore::new(client, cfg.s3_bucket)
            .ensure_bucket()
            .await
            .unwrap();
        cli
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }

    /// [`Self::run`] with more settings in the environment.
    async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        tokio::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(env.iter().copied())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("CAMPUS_ROLE_PREFIX", &self.db.role_prefix)
            .env("CAMPUS_BASE_DOMAIN", BASE)
            .env("CAMPUS_S3_ENDPOINT", self.s3.endpoint())
            .env("CAMPUS_S3_ACCESS_KEY", S3_KEY)
            .env("CAMPUS_S3_SECRET_KEY", S3_SECRET)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "campus {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[tokio::test]
async fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["migrate", "--help"],
        vec!["tenant", "--help"],
        vec!["tenant", "create", "--help"],
        vec!["tenant", "list", "--help"],
        vec!["tenant", "show", "--help"],
        vec!["tenant", "update", "--help"],
        vec!["tenant", "suspend", "--help"],
        vec!["tenant", "resume", "--help"],
        vec!["tenant", "delete", "--help"],
        vec!["tenant", "purge", "--help"],
        vec!["tenant", "export", "--help"],
        vec!["tenant", "invite", "--help"],
        vec!["admin-token", "--help"],
        vec!["admin-token", "create", "--help"],
        vec!["jobs", "--help"],
        vec!["jobs", "run-due", "--help"],
    ] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: campus"),
            "{args:?}"
        );
    }
}

#[tokio::test]
async fn schools_are_managed_from_the_command_line() {
    let cli = Cli::new().await;
    let created: Value = serde_json::from_str(
        &cli.ok(&[
            "tenant",
            "create",
            "xinyi",
            "--name",
            "青川县信义小学",
            "--hostname",
            "www.xinyi.cn",
            "--json",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(created["created"], true);
    assert!(created["invitation"]["url"]
        .as_str()
        .unwrap()
        .contains("/invite/"));
    // Idempotent: the same command again changes nothing.
    let again: Value = serde_json::from_str(
        &cli.ok(&[
            "tenant",
            "create",
            "xinyi",
            "--name",
            "青川县信义小学",
            "--hostname",
            "www.xinyi.cn",
            "--json",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["tenant"]["id"], created["tenant"]["id"]);
    cli.ok(&[
        "tenant",
        "create",
        "shiyan",
        "--name",
        "青川县实验小学",
        "--plan",
        "small",
    ])
    .await;

    let list: Value = serde_json::from_str(&cli.ok(&["tenant", "list", "--json"]).await).unwrap();
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["shiyan", "xinyi"]);

    let shown = cli.ok(&["tenant", "show", "xinyi"]).await;
    assert!(
        shown.contains("青川县信义小学")
            && shown.contains("www.xinyi.cn")
            && shown.contains("schools/xinyi/"),
        "{shown}"
    );

    cli.ok(&[
        "tenant",
        "update",
        "shiyan",
        "--plan",
        "large",
        "--requests-per-second",
        "500",
    ])
    .await;
    let t: Value =
        serde_json::from_str(&cli.ok(&["tenant", "show", "shiyan", "--json"]).await).unwrap();
    assert_eq!(
        (t["plan"].as_str(), t["requests_per_second"].as_i64()),
        (Some("large"), Some(500))
    );

    assert!(cli
        .ok(&["tenant", "suspend", "shiyan", "--reason", "期末检修"])
        .await
        .contains("suspended"));
    let t: Value =
        serde_json::from_str(&cli.ok(&["tenant", "show", "shiyan", "--json"]).await).unwrap();
    assert_eq!(t["status"], "suspended");
    cli.ok(&["tenant", "resume", "shiyan"]).await;
    assert!(cli
        .ok(&["tenant", "delete", "shiyan"])
        .await
        .contains("purged after"));
    let list: Value = serde_json::from_str(&cli.ok(&["tenant", "list", "--json"]).await).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let all: Value =
        serde_json::from_str(&cli.ok(&["tenant", "list", "--json", "--all"]).await).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert!(cli
        .ok(&["tenant", "purge", "shiyan"])
        .await
        .contains("grace period"));
    assert!(cli
        .ok(&["tenant", "purge", "shiyan", "--force"])
        .await
        .contains("purged"));
    let all: Value =
        serde_json::from_str(&cli.ok(&["tenant", "list", "--json", "--all"]).await).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 1);
    cli.db.drop_all().await;
}

#[tokio::test]
async fn bad_input_on_the_command_line_gets_a_clear_message_and_a_failing_exit() {
    let cli = Cli::new().await;
    for (args, needle) in [
        (vec!["tenant", "create", "Bad_Slug", "--name", "x"], "slug"),
        (
            vec!["tenant", "create", "good", "--name", "x", "--plan", "gold"],
            "unknown plan",
        ),
        (
            vec![
                "tenant",
                "create",
                "good",
                "--name",
                "x",
                "--hostname",
                "a..b",
            ],
            "hostname",
        ),
        (vec!["tenant", "show", "nosuch"], "no school"),
        (vec!["tenant", "resume", "nosuch"], "no school"),
    ] {
        let out = cli.run(&args).await;
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let list: Value = serde_json::from_str(&cli.ok(&["tenant", "list", "--json"]).await).unwrap();
    assert_eq!(list, serde_json::json!([]));
    cli.db.drop_all().await;
}

#[tokio::test]
async fn migrate_prints_the_status_of_every_school() {
    let cli = Cli::new().await;
    cli.ok(&["tenant", "create", "alpha", "--name", "甲"]).await;
    cli.ok(&["tenant", "create", "bravo", "--name", "乙"]).await;
    let out = cli.ok(&["migrate"]).await;
    assert!(
        out.contains("alpha") && out.contains("bravo") && out.contains("up to date"),
        "{out}"
    );
    assert!(
        out.contains("2 schools: 0 migrated, 2 up to date, 0 failed"),
        "{out}"
    );
    let lines = cli.ok(&["migrate", "--json", "--verify"]).await;
    let parsed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 2);
    assert!(parsed.iter().all(|o| o["status"] == "up_to_date"));
    cli.db.drop_all().await;
}

#[tokio::test]
async fn export_writes_the_schema_dump_and_the_files() {
    let cli = Cli::new().await;
    cli.ok(&["tenant", "create", "alpha", "--name", "甲校"])
        .await;
    // Put a pupil and a file into the school.
    let cfg = crate::helpers::config(&cli.db, &cli.s3);
    let services = campus::Services::connect(cfg).await.unwrap();
    let tenant = campus_tenant::registry::get(
        &services.pool,
        &campus_tenant::Slug::parse("alpha").unwrap(),
    )
    .await
    .unwrap();
    crate::helpers::add_pupils(&services, &tenant, "pupil", 1).await;
    services
        .store
        .for_tenant(&tenant)
        .put(
            &campus_tenant::ObjectKey::parse("notices/通知.txt").unwrap(),
            bytes::Bytes::from_static("明天放假".as_bytes()),
            "text/plain",
        )
        .await
        .unwrap();
    services.pool.close().await;

    let out_dir = tempfile::tempdir().unwrap();
    let out = cli
        .ok(&[
            "tenant",
            "export",
            "alpha",
            "--out",
            out_dir.path().to_str().unwrap(),
        ])
        .await;
    assert!(out.contains("exported alpha"), "{out}");
    let export = std::fs::read_dir(out_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dump = std::fs::read_to_string(export.join("schema.sql")).unwrap();
    assert!(
        dump.contains("CREATE TABLE \"school_alpha\".\"students\""),
        "the dump holds the school's tables"
    );
    assert!(dump.contains("pupil-0"), "the dump holds the school's rows");
    assert!(
        !dump.contains("admin_tokens"),
        "the dump holds nothing of the shared schema"
    );
    assert_eq!(
        std::fs::read_to_string(export.join("files/notices/通知.txt")).unwrap(),
        "明天放假"
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(export.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["slug"], "alpha");
    assert_eq!(manifest["files"], 2, "the note and the storage marker");
    assert!(Path::new(&export.join("files").join(campus_tenant::store::MARKER)).exists());
    cli.db.drop_all().await;
}

#[tokio::test]
async fn admin_tokens_are_created_listed_and_revoked() {
    let cli = Cli::new().await;
    let token = cli
        .ok(&["admin-token", "create", "--name", "terraform"])
        .await;
    assert!(
        token.trim().starts_with("cct_") && token.trim().len() == 68,
        "{token}"
    );
    let list = cli.ok(&["admin-token", "list"]).await;
    assert!(
        list.contains("terraform") && list.contains("active") && !list.contains(token.trim()),
        "{list}"
    );
    cli.ok(&["admin-token", "revoke", "1"]).await;
    assert!(cli.ok(&["admin-token", "list"]).await.contains("revoked"));
    assert!(!cli
        .run(&["admin-token", "revoke", "1"])
        .await
        .status
        .success());
    cli.db.drop_all().await;
}

#[tokio::test]
async fn placeholder_secrets_from_the_example_files_stop_every_command() {
    let cli = Cli::new().await;
    for (name, value, setting) in [
        (
            "CAMPUS_ADMIN_TOKEN",
            "CHANGE-ME-TO-48-RANDOM-CHARACTERS-0123456789abcdef",
            "admin_token",
        ),
        ("CAMPUS_ADMIN_TOKEN", "", "admin_token"),
        (
            "CAMPUS_ADMIN_TOKEN",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "admin_token",
        ),
        (
            "CAMPUS_NOTIFY_SECRET_KEY",
            "abababababababababababababababababababababababababababababababab",
            "notify_secret_key",
        ),
    ] {
        let out = cli.run_with(&["migrate"], &[(name, value)]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value:?} was accepted");
        assert!(stderr.contains(setting), "{name}={value:?}: {stderr}");
        assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");
    }
    // A generated token is accepted.
    let out = cli
        .run_with(
            &["migrate"],
            &[(
                "CAMPUS_ADMIN_TOKEN",
                "3f9c1e0b7a52d4e8c6b1f0a9d3e7c2b5a8f4d1e6c9b0a3f7",
            )],
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cli.db.drop_all().await;
}

#[tokio::test]
async fn export_with_a_password_keeps_it_off_pg_dumps_command_line() {
    use std::os::unix::fs::PermissionsExt;
    // A cluster of our own whose `exporter` role must give its password over TCP.
    let dir = tempfile::tempdir().unwrap();
    let pg = campus_devstack::PrivatePostgres::start(&dir.path().join("pg")).unwrap();
    let admin = sqlx::PgPool::connect(&pg.url("postgres")).await.unwrap();
    const PASSWORD: &str = "Exp0rt:pa@ss\\word";
    sqlx::query(&format!(
        "create role exporter login superuser password '{PASSWORD}'"
    ))
    .execute(&admin)
    .await
    .unwrap();
    let hba = pg.data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("host all exporter 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .unwrap();
    sqlx::query("select pg_reload_conf()")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let port = pg.port();
    let without = format!("postgres://exporter@127.0.0.1:{port}/postgres");
    assert!(
        sqlx::PgPool::connect(&without).await.is_err(),
        "the role cannot connect without its password"
    );
    let with = format!("postgres://exporter:Exp0rt%3Apa%40ss%5Cword@127.0.0.1:{port}/postgres");

    // pg_dump as a script that notes its arguments and password file, then runs the real one.
    let bins = tempfile::tempdir().unwrap();
    let real = pg.binaries().clone();
    for tool in ["initdb", "pg_ctl", "postgres"] {
        std::os::unix::fs::symlink(real.tool(tool), bins.path().join(tool)).unwrap();
    }
    let notes = bins.path().join("notes");
    let script = bins.path().join("pg_dump");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {notes}.args\nprintf '%s\\n' \"$PGPASSFILE\" > {notes}.file\nstat -c %a \"$PGPASSFILE\" > {notes}.mode\nexec {real} \"$@\"\n",
            notes = notes.display(),
            real = real.tool("pg_dump").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let s3_dir = tempfile::tempdir().unwrap();
    let s3 = start_s3(s3_dir.path()).await;
    let cfg = campus::config::Config {
        database_url: Some(pg.url("postgres")),
        s3_endpoint: Some(s3.endpoint()),
        s3_access_key: Some(S3_KEY.into()),
        s3_secret_key: Some(S3_SECRET.into()),
        ..campus::config::Config::default()
    };
    campus_tenant::ObjectStore::new(
        campus::runtime::s3_client(&cfg).await,
        cfg.s3_bucket.clone(),
    )
    .ensure_bucket()
    .await
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", pg.url("postgres"))
            .env("CAMPUS_DATABASE_DIRECT_URL", &with)
            .env("CAMPUS_PG_BINDIR", bins.path())
            .env("CAMPUS_BASE_DOMAIN", BASE)
            .env("CAMPUS_S3_ENDPOINT", s3.endpoint())
            .env("CAMPUS_S3_ACCESS_KEY", S3_KEY)
            .env("CAMPUS_S3_SECRET_KEY", S3_SECRET)
            .env("RUST_LOG", "warn");
        cmd
    };
    let out = run(&["tenant", "create", "alpha", "--name", "甲校"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let services = campus::Services::connect(cfg).await.unwrap();
    let tenant = campus_tenant::registry::get(
        &services.pool,
        &campus_tenant::Slug::parse("alpha").unwrap(),
    )
    .await
    .unwrap();
    crate::helpers::add_pupils(&services, &tenant, "pupil", 1).await;
    services.pool.close().await;

    let out_dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "tenant",
        "export",
        "alpha",
        "--out",
        out_dir.path().to_str().unwrap(),
    ])
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the export works with the password: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args = std::fs::read_to_string(notes.with_extension("args")).unwrap();
    assert!(
        !args.contains("Exp0rt") && !args.contains("pa@ss") && !args.contains("pa%40ss"),
        "no password on pg_dump's command line: {args}"
    );
    assert!(args.contains(&format!("postgres://exporter@127.0.0.1:{port}/postgres")));
    assert_eq!(
        std::fs::read_to_string(notes.with_extension("mode"))
            .unwrap()
            .trim(),
        "600",
        "the password file is private"
    );
    let passfile = std::fs::read_to_string(notes.with_extension("file")).unwrap();
    assert!(
        !Path::new(passfile.trim()).exists(),
        "the password file is gone after the export"
    );
    let export = std::fs::read_dir(out_dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dump = std::fs::read_to_string(export.join("schema.sql")).unwrap();
    assert!(dump.contains("pupil-0"), "the dump holds the school's rows");
}

#[tokio::test]
async fn a_plan_can_require_a_second_factor_of_its_schools_user_managers() {
    let cli = Cli::new().await;
    cli.ok(&["migrate"]).await;
    let required = || async {
        let pool = sqlx::PgPool::connect(&cli.db.url).await.unwrap();
        let on: bool = sqlx::query_scalar(
            "select require_second_factor from public.plans where code = 'standard'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        on
    };
    assert!(!required().await, "off until the county says so");
    let out = cli
        .ok(&[
            "tenant",
            "plan-limits",
            "standard",
            "--require-second-factor",
            "true",
        ])
        .await;
    assert!(out.contains("must"), "{out}");
    assert!(required().await);
    cli.ok(&[
        "tenant",
        "plan-limits",
        "standard",
        "--require-second-factor",
        "false",
    ])
    .await;
    assert!(!required().await);
    let out = cli
        .run(&[
            "tenant",
            "plan-limits",
            "no-such-plan",
            "--require-second-factor",
            "true",
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-plan"));
    cli.db.drop_all().await;
}
