//! Point 6: the school-scoped transaction is the only door to a school's tables, and it
//! never leaks: not into the next use of a pooled connection, not across schools, not even
//! with schema-qualified SQL.

use campus_tenant::{Db, Slug};
use sqlx::postgres::PgPoolOptions;
use sqlx::Row;

use crate::helpers::{add_pupils, TestApp};

/// SQLSTATE for "insufficient privilege".
const DENIED: &str = "42501";

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
}

#[tokio::test]
async fn a_pooled_connection_never_carries_a_schools_scope_into_the_next_use() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    // One connection, so every transaction below reuses the same server session.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&app.db.url)
        .await
        .unwrap();
    let db = Db::new(pool.clone());

    let mut tx = db.school(&a).await.unwrap();
    let (schema, user): (String, String) =
        sqlx::query_as("select current_schema(), current_user::text")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(schema, "school_school_a");
    assert_eq!(user, a.role_name());
    tx.commit().await.unwrap();

    let (path, user): (String, String) =
        sqlx::query_as("select current_setting('search_path'), current_user::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        path, "\"$user\", public",
        "search_path leaked out of a committed school transaction"
    );
    assert_eq!(
        user, "postgres",
        "role leaked out of a committed school transaction"
    );

    // A transaction that fails half-way is rolled back, and its scope with it.
    let mut tx = db.school(&b).await.unwrap();
    let err = sqlx::query("select * from no_such_table")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no_such_table"));
    drop(tx);
    let user: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        user, "postgres",
        "role leaked out of a rolled-back school transaction"
    );

    // The next school's transaction on the same session sees only its own schema.
    let mut tx = db.school(&b).await.unwrap();
    let schema: String = sqlx::query_scalar("select current_schema()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(schema, "school_school_b");
    tx.rollback().await.unwrap();
    pool.close().await;
    app.stop().await;
}

/// A connection kept for the school it last served (so that school's plans stay valid)
/// may be handed to another school when nothing else is free: that school sees only its
/// own scope and its own rows, even through a statement the connection prepared for the
/// first school.
#[tokio::test]
async fn a_connection_parked_by_one_school_serves_another_with_only_its_own_scope() {
    use campus_tenant::affinity::Source;
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    add_pupils(&app.services, &a, "a", 3).await;
    add_pupils(&app.services, &b, "b", 5).await;
    // School transactions on a pool of two connections: one may be parked.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&app.db.url)
        .await
        .unwrap();
    let db = Db::with_affinity(pool.clone(), app.services.pool.clone());
    let count = "select count(*) from students";

    let mut tx = db.school(&a).await.unwrap();
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 3);
    tx.commit().await.unwrap();
    assert_eq!(
        db.parked(),
        1,
        "a committed transaction parks its connection"
    );

    let mut tx = db.school(&a).await.unwrap();
    assert_eq!(tx.connection_source(), Source::Same);
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 3);
    tx.commit().await.unwrap();

    // The other connection is busy: school B can only get the one A parked.
    let held = pool.acquire().await.unwrap();
    assert_eq!(pool.num_idle(), 0);
    let mut tx = db.school(&b).await.unwrap();
    assert_eq!(tx.connection_source(), Source::Stolen);
    let (schema, user): (String, String) =
        sqlx::query_as("select current_schema(), current_user::text")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(schema, "school_school_b");
    assert_eq!(user, b.role_name());
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(
        n, 5,
        "a statement prepared for school A must read school B's rows"
    );
    sqlx::query("insert into grades (level, name) values (9, '九年级')")
        .execute(&mut *tx)
        .await
        .unwrap();
    // Dropped without commit: rolled back, and the connection is not kept for B.
    drop(tx);
    assert_eq!(db.parked(), 0);
    drop(held);

    let mut tx = db.school(&b).await.unwrap();
    assert_eq!(tx.connection_source(), Source::Pool);
    let grades: i64 = sqlx::query_scalar("select count(*) from grades where level = 9")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(grades, 0, "the dropped transaction's write was rolled back");
    let n: i64 = sqlx::query_scalar(count).fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 5);
    tx.commit().await.unwrap();
    // `PgPool::close` waits for every connection: the parking hands its one back.
    assert_eq!(db.parked(), 1);
    tokio::time::timeout(std::time::Duration::from_secs(10), pool.close())
        .await
        .expect("closing the pool gets the parked connection back");
    app.stop().await;
}

/// While a school transaction waits for a connection, a finishing one hands its
/// connection to the pool instead of keeping it for its school.
#[tokio::test]
async fn a_waiting_transaction_gets_a_finishing_ones_connection_instead_of_it_being_parked() {
    use campus_tenant::affinity::Source;
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let c = app.onboard("school-c", "丙校").await.tenant;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&app.db.url)
        .await
        .unwrap();
    let db = Db::with_affinity(pool.clone(), app.services.pool.clone());
    let tx_a = db.school(&a).await.unwrap();
    let tx_b = db.school(&b).await.unwrap();
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.school(&c).await.unwrap();
            let schema: String = sqlx::query_scalar("select current_schema()")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let source = tx.connection_source();
            tx.commit().await.unwrap();
            (schema, source)
        })
    };
    for _ in 0..200 {
        if db.waiting_for_connection() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(db.waiting_for_connection(), 1, "school C waits on the pool");
    tx_a.commit().await.unwrap();
    assert_eq!(
        db.parked(),
        0,
        "the connection went to the waiting transaction"
    );
    let (schema, source) = tokio::time::timeout(std::time::Duration::from_secs(30), waiter)
        .await
        .expect("school C got a connection")
        .unwrap();
    assert_eq!(schema, "school_school_c");
    assert_eq!(source, Source::Pool);
    assert_eq!(db.waiting_for_connection(), 0);
    tx_b.rollback().await.unwrap();
    db.close().await;
    app.stop().await;
}

#[tokio::test]
async fn school_a_cannot_read_or_change_school_b_even_with_schema_qualified_sql() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    add_pupils(&app.services, &a, "a", 3).await;
    add_pupils(&app.services, &b, "b", 5).await;
    let db = &app.services.db;

    let mut tx = db.school(&a).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from students")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 3, "a school sees exactly its own pupils");
    tx.commit().await.unwrap();

    for sql in [
        "select count(*) from school_school_b.students",
        "select count(*) from \"school_school_b\".students",
        "update school_school_b.students set name = 'x'",
        "delete from school_school_b.students",
        "insert into school_school_b.grades (level, name) values (9, 'x')",
        "select count(*) from public.tenants",
        "select count(*) from public.admin_tokens",
    ] {
        let mut tx = db.school(&a).await.unwrap();
        let err = sqlx::query(sql).execute(&mut *tx).await.expect_err(sql);
        assert_eq!(sqlstate(&err).as_deref(), Some(DENIED), "{sql}: {err}");
    }

    // School B's pupils are untouched.
    let mut tx = db.school(&b).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("select name from students order by name")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(names, ["b-0", "b-1", "b-2", "b-3", "b-4"]);
    tx.commit().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn a_query_outside_any_school_finds_no_school_tables() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "a", 2).await;
    // The shared pool has no school on its search_path: forgetting the scope is an error,
    // never another school's rows.
    let err = sqlx::query("select count(*) from students")
        .execute(app.services.db.shared())
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err).as_deref(), Some("42P01"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn each_school_schema_is_owned_by_its_own_role_and_closed_to_others() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let row = sqlx::query(
        "select n.nspname, pg_get_userbyid(n.nspowner) as owner, has_schema_privilege('public', n.oid, 'usage') as public_usage,
                (select bool_and(pg_get_userbyid(c.relowner) = $2) from pg_class c where c.relnamespace = n.oid) as owns_all
           from pg_namespace n where n.nspname = $1",
    )
    .bind(a.schema_name())
    .bind(a.role_name())
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("owner"), a.role_name());
    assert!(
        !row.get::<bool, _>("public_usage"),
        "PUBLIC must not use a school's schema"
    );
    assert!(
        row.get::<bool, _>("owns_all"),
        "every table of the school belongs to its role"
    );
    let can_login: bool = sqlx::query_scalar("select rolcanlogin from pg_roles where rolname = $1")
        .bind(a.role_name())
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert!(
        !can_login,
        "school roles cannot log in; only the platform can assume them"
    );
    app.stop().await;
}

#[test]
fn slugs_that_are_not_valid_identifiers_never_reach_sql() {
    for bad in ["school_a", "a;drop", "A", "a\"b", "ab", "-ab", "a b"] {
        assert!(Slug::parse(bad).is_err(), "{bad:?}");
    }
}
