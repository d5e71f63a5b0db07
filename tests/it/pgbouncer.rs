//! Point 6 (d): everything in `isolation` still holds when the platform reaches Postgres
//! through PgBouncer in transaction pooling mode — where a session-level SET, a cached
//! prepared statement or a forgotten RESET leaks one school's state into another school's
//! request, because many client connections share few server connections.

use std::sync::Arc;

use campus_devstack::PgBouncer;
use campus_tenant::Db;
use sqlx::postgres::PgPoolOptions;

use crate::helpers::{add_pupils, TestApp};

async fn bouncer_for(app: &TestApp) -> PgBouncer {
    let url = url::Url::parse(&app.db.url).unwrap();
    // Two server connections for dozens of clients: maximal sharing, maximal chance to leak.
    PgBouncer::start(url.host_str().unwrap(), url.port().unwrap_or(5432), 2)
        .await
        .expect("pgbouncer")
}

#[tokio::test]
async fn schools_stay_apart_under_concurrent_load_through_pgbouncer() {
    let app = TestApp::spawn().await;
    let schools = [
        app.onboard("school-a", "甲校").await.tenant,
        app.onboard("school-b", "乙校").await.tenant,
        app.onboard("school-c", "丙校").await.tenant,
    ];
    for (i, s) in schools.iter().enumerate() {
        add_pupils(&app.services, s, s.slug.as_str(), i + 2).await;
    }
    let bouncer = bouncer_for(&app).await;
    let opts = campus::runtime::pg_options(&bouncer.url(&app.db.name), true).unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .connect_with(opts)
        .await
        .unwrap();
    let db = Db::behind_pgbouncer(pool.clone(), app.services.pool.clone());
    let schools = Arc::new(schools);

    let mut tasks = Vec::new();
    for worker in 0..24usize {
        let db = db.clone();
        let pool = pool.clone();
        let schools = Arc::clone(&schools);
        tasks.push(tokio::spawn(async move {
            for round in 0..40usize {
                let i = (worker + round) % 3;
                let school = &schools[i];
                let mut tx = db.school(school).await.unwrap();
                let (schema, user, pupils): (String, String, i64) = sqlx::query_as(
                    "select current_schema(), current_user::text, (select count(*) from students)",
                )
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                assert_eq!(
                    schema,
                    school.schema_name(),
                    "worker {worker} round {round}"
                );
                assert_eq!(user, school.role_name(), "worker {worker} round {round}");
                assert_eq!(
                    pupils,
                    i as i64 + 2,
                    "worker {worker} saw another school's pupils"
                );
                let names: Vec<String> = sqlx::query_scalar("select student_no from students")
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
                assert!(
                    names.iter().all(|n| n.starts_with(school.slug.as_str())),
                    "{names:?} in {}",
                    school.slug
                );
                if round % 3 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                }
                // Between school transactions, a fresh transaction on the pooler (which may get
                // the very server connection a school just used) sees no school at all.
                // (Every transaction through the pooler starts by dropping statements other
                // clients left on the server connection, as `Db::school` does.)
                let mut plain = pool.begin().await.unwrap();
                sqlx::Executor::execute(&mut *plain, "deallocate all")
                    .await
                    .unwrap();
                let (path, user): (String, String) =
                    sqlx::query_as("select current_setting('search_path'), current_user::text")
                        .fetch_one(&mut *plain)
                        .await
                        .unwrap();
                plain.commit().await.unwrap();
                assert_eq!(
                    path, "\"$user\", public",
                    "search_path leaked through PgBouncer"
                );
                assert_eq!(user, "postgres", "role leaked through PgBouncer");
            }
        }));
    }
    for t in tasks {
        t.await.expect("a worker saw a leak");
    }
    pool.close().await;
    drop(bouncer);
    app.stop().await;
}

#[tokio::test]
async fn the_platform_serves_schools_through_pgbouncer() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "a", 3).await;
    let bouncer = bouncer_for(&app).await;
    // A second instance configured as in production: school work through the pooler.
    let mut cfg = (*app.services.cfg).clone();
    cfg.database_url = Some(bouncer.url(&app.db.name));
    cfg.database_direct_url = Some(app.db.url.clone());
    cfg.database_pgbouncer = true;
    let services = campus::Services::connect(cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(campus::app::serve(services.clone(), listener, async {
        let _ = stopped.await;
    }));
    let mut requests = Vec::new();
    for _ in 0..40 {
        let http = app.http.clone();
        requests.push(tokio::spawn(async move {
            http.get(format!("http://{addr}/api/v1/school"))
                .header("host", "school-a.campus.test")
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }));
    }
    for r in requests {
        assert_eq!(r.await.unwrap()["students"], 3);
    }
    let _ = stop.send(());
    let _ = server.await;
    services.db.close().await;
    drop(bouncer);
    app.stop().await;
}

#[tokio::test]
async fn schema_qualified_reads_are_denied_through_pgbouncer_too() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    add_pupils(&app.services, &b, "b", 2).await;
    let bouncer = bouncer_for(&app).await;
    let opts = campus::runtime::pg_options(&bouncer.url(&app.db.name), true).unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .unwrap();
    let db = Db::behind_pgbouncer(pool.clone(), app.services.pool.clone());
    for _ in 0..10 {
        let mut tx = db.school(&a).await.unwrap();
        let err = sqlx::query(&format!(
            "select count(*) from \"{}\".students",
            b.schema_name()
        ))
        .execute(&mut *tx)
        .await
        .unwrap_err();
        let code = err
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{err}");
    }
    pool.close().await;
    drop(bouncer);
    app.stop().await;
}
