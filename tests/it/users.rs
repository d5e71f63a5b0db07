//! User and role management by a school's admin: custom roles granting module permissions,
//! adding members, disabling them and validity periods, the guards that keep a school from
//! locking itself out, the audit trail of role changes, sign-in rate limits and the
//! language switch — and that none of it reaches into another school.

use reqwest::StatusCode;

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    let r = v.sign_in(&host(slug), login, PW).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{login} signs in at {slug}"
    );
    v
}

async fn post(
    v: &mut Visitor<'_>,
    slug: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = v.csrf(&host(slug), "/admin/users").await;
    let mut fields = form.to_vec();
    fields.push(("csrf", &csrf));
    v.post(&host(slug), path, &fields).await
}

async fn role_code(app: &TestApp, tenant_id: i64, name: &str) -> String {
    sqlx::query_scalar("select code from public.school_roles where tenant_id = $1 and name = $2")
        .bind(tenant_id)
        .bind(name)
        .fetch_one(&app.services.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_custom_role_grants_exactly_its_permissions_and_changes_take_effect_at_once() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let clerk = person(
        &app.services,
        "clerk.a",
        "陈干事",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut admin = signed_in(&app, "school-a", "admin.a").await;
    let mut staff = signed_in(&app, "school-a", "clerk.a").await;
    assert_eq!(
        staff.get(&host("school-a"), "/admin/users").await.status(),
        StatusCode::FORBIDDEN,
        "a teacher does not manage users"
    );

    let r = post(
        &mut admin,
        "school-a",
        "/admin/roles",
        &[
            ("name", "人事专员"),
            ("permission", "manage_users"),
            ("permission", "staff_area"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = role_code(&app, a.id.0, "人事专员").await;
    let roles = admin
        .get(&host("school-a"), "/admin/roles")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        roles.contains("人事专员") && roles.contains("用户与角色管理"),
        "{roles}"
    );

    let path = format!("/admin/users/{clerk}");
    let r = post(
        &mut admin,
        "school-a",
        &path,
        &[("role", "teacher"), ("role", &code), ("status", "active")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = staff.get(&host("school-a"), "/admin/users").await;
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the custom role grants user management"
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("陈干事 · 教师、人事专员"),
        "the header names the custom role: {page}"
    );

    // Taking the permission out of the role takes it from its holders.
    let r = post(
        &mut admin,
        "school-a",
        &format!("/admin/roles/{code}"),
        &[("name", "人事专员"), ("permission", "staff_area")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        staff.get(&host("school-a"), "/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
    // A role still held cannot be deleted; once released it can.
    let r = post(
        &mut admin,
        "school-a",
        &format!("/admin/roles/{code}/delete"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    post(
        &mut admin,
        "school-a",
        &path,
        &[("role", "teacher"), ("status", "active")],
    )
    .await;
    let r = post(
        &mut admin,
        "school-a",
        &format!("/admin/roles/{code}/delete"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Role changes are audited with who made them.
    let events: Vec<(String, Option<i64>)> = sqlx::query_as(
        "select event, actor_account_id from public.auth_events
          where tenant_id = $1 and event like 'role_%' order by id",
    )
    .bind(a.id.0)
    .fetch_all(&app.services.pool)
    .await
    .unwrap();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "role_created",
            "role_changed",
            "role_updated",
            "role_changed",
            "role_deleted"
        ]
    );
    assert!(events.iter().all(|(_, actor)| actor.is_some()));
    app.stop().await;
}

#[tokio::test]
async fn bad_role_forms_are_refused_with_reasons_and_change_nothing() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let t = person(
        &app.services,
        "teacher.a",
        "甲老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut admin = signed_in(&app, "school-a", "admin.a").await;
    for (form, status) in [
        (
            vec![("name", ""), ("permission", "staff_area")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (vec![("name", "只读")], StatusCode::UNPROCESSABLE_ENTITY),
        (
            vec![("name", "超级"), ("permission", "root")],
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            vec![("name", "教师"), ("permission", "staff_area")],
            StatusCode::CONFLICT,
        ),
    ] {
        let r = post(&mut admin, "school-a", "/admin/roles", &form).await;
        assert_eq!(r.status(), status, "{form:?}");
        assert!(r.text().await.unwrap().contains("form-error"));
    }
    let path = format!("/admin/users/{t}");
    for form in [
        vec![("status", "active")],
        vec![("role", "wizard"), ("status", "active")],
        vec![("role", "teacher"), ("status", "gone")],
        vec![
            ("role", "teacher"),
            ("status", "active"),
            ("valid_from", "2026-13-01"),
        ],
        vec![
            ("role", "teacher"),
            ("status", "active"),
            ("valid_from", "2026-09-01"),
            ("valid_until", "2026-08-01"),
        ],
    ] {
        let r = post(&mut admin, "school-a", &path, &form).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
    }
    // Without the CSRF token nothing happens.
    let r = admin
        .post(
            &host("school-a"),
            &path,
            &[("role", "school_admin"), ("status", "active")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let roles: Vec<String> =
        sqlx::query_scalar("select roles from public.memberships where account_id = $1")
            .bind(t)
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(roles, ["teacher"]);
    let custom: i64 = sqlx::query_scalar("select count(*) from public.school_roles")
        .fetch_one(&app.services.pool)
        .await
        .unwrap();
    assert_eq!(custom, 0);
    app.stop().await;
}

#[tokio::test]
async fn disabling_a_member_or_ending_their_validity_closes_the_school_to_them() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let admin_id = person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    let t = person(
        &app.services,
        "teacher.zhou",
        "周老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut admin = signed_in(&app, "school-a", "admin.a").await;
    let mut teacher = signed_in(&app, "school-a", "teacher.zhou").await;
    assert_eq!(
        teacher.get(&host("school-a"), "/me").await.status(),
        StatusCode::OK
    );

    let path = format!("/admin/users/{t}");
    let r = post(
        &mut admin,
        "school-a",
        &path,
        &[("role", "teacher"), ("status", "disabled")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        teacher.get(&host("school-a"), "/me").await.status(),
        StatusCode::FORBIDDEN,
        "the open session stops working at once"
    );
    let list = admin
        .get(&host("school-a"), "/admin/users?status=disabled")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("周老师") && list.contains("已停用"), "{list}");

    // Enabled again but with a validity period that ended yesterday.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    post(
        &mut admin,
        "school-a",
        &path,
        &[
            ("role", "teacher"),
            ("status", "active"),
            ("valid_until", &yesterday),
        ],
    )
    .await;
    assert_eq!(
        teacher.get(&host("school-a"), "/me").await.status(),
        StatusCode::FORBIDDEN
    );
    let mut fresh = Visitor::new(&app);
    assert_eq!(
        fresh
            .sign_in(&host("school-a"), "teacher.zhou", PW)
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "nor can they sign in"
    );
    post(
        &mut admin,
        "school-a",
        &path,
        &[("role", "teacher"), ("status", "active")],
    )
    .await;
    assert_eq!(
        teacher.get(&host("school-a"), "/me").await.status(),
        StatusCode::OK
    );

    // The only admin cannot disable themselves or drop their own admin role.
    let own = format!("/admin/users/{admin_id}");
    for form in [
        vec![("role", "school_admin"), ("status", "disabled")],
        vec![("role", "teacher"), ("status", "active")],
    ] {
        let r = post(&mut admin, "school-a", &own, &form).await;
        assert_eq!(r.status(), StatusCode::CONFLICT, "{form:?}");
    }
    let events: i64 = sqlx::query_scalar(
        "select count(*) from public.auth_events where tenant_id = $1 and account_id = $2
            and event = 'membership_changed' and actor_account_id = $3",
    )
    .bind(a.id.0)
    .bind(t)
    .bind(admin_id)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(events, 3);
    app.stop().await;
}

#[tokio::test]
async fn an_admin_invites_members_and_never_chooses_their_password() {
    let app = TestApp::spawn_with_sms(|_| {}).await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    person(
        &app.services,
        "teacher.b",
        "乙老师",
        PW,
        &[(&b, &["teacher"])],
    )
    .await;
    let mut admin = signed_in(&app, "school-a", "admin.a").await;

    let add = |name: &'static str, login: &'static str, role: &'static str| {
        vec![
            ("display_name", name),
            ("login", login),
            // Ignored: there is no password field any more.
            ("password", "Gate2026ok"),
            ("role", role),
        ]
    };
    for (form, message) in [
        (add("门卫老张", "1380013", "guard"), ""),
        (add("", "13800138000", "guard"), "请填写姓名"),
        (add("门卫老张", "13800138000", "no_such_role"), "不存在"),
        (
            add("门卫老张", "nobody.here", "guard"),
            "没有使用此用户名的账号",
        ),
    ] {
        let r = post(&mut admin, "school-a", "/admin/users", &form).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(r.text().await.unwrap().contains(message), "{message}");
    }
    let counts: (i64, i64) = sqlx::query_as(
        "select (select count(*) from public.accounts), (select count(*) from public.member_invitations)",
    )
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(counts, (2, 0), "nothing half-written");

    // A phone: an invitation is texted; no account exists and nobody can sign in with
    // anything the admin typed.
    let r = post(
        &mut admin,
        "school-a",
        "/admin/users",
        &add("门卫老张", "138 0013 8000", "guard"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("门卫老张") && page.contains("138****8000"),
        "{page}"
    );
    let text = app.sms.as_ref().unwrap().last_to("13800138000").unwrap();
    assert!(
        text.text
            .contains("http://school-a.campus.test/invitation?t="),
        "{}",
        text.text
    );
    let accounts: i64 =
        sqlx::query_scalar("select count(*) from public.accounts where phone = '13800138000'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(accounts, 0);
    let mut guard = Visitor::new(&app);
    assert_eq!(
        guard
            .sign_in(&host("school-a"), "13800138000", "Gate2026ok")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Inviting the same person again is a conflict.
    let r = post(
        &mut admin,
        "school-a",
        "/admin/users",
        &add("门卫老张", "13800138000", "guard"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let invited: i64 = sqlx::query_scalar(
        "select count(*) from public.auth_events where tenant_id = $1 and event = 'member_invited'",
    )
    .bind(a.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(invited, 1, "the invitation is in the audit trail");

    // An existing username-only account (a teacher at school B) is invited; it joins only
    // when its owner accepts, signed in, and its password is never touched.
    let r = post(
        &mut admin,
        "school-a",
        "/admin/users",
        &add("乙老师", "teacher.b", "teacher"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut tb = Visitor::new(&app);
    assert_eq!(
        tb.sign_in(&host("school-a"), "teacher.b", PW)
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "not a member before accepting"
    );
    assert_eq!(
        tb.sign_in(&host("school-b"), "teacher.b", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let me = tb.get(&host("school-b"), "/me").await.text().await.unwrap();
    assert!(me.contains("甲校"), "{me}");
    let id: i64 = sqlx::query_scalar(
        "select id from public.member_invitations where tenant_id = $1 and account_id is not null",
    )
    .bind(a.id.0)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    let csrf = tb.csrf(&host("school-b"), "/me").await;
    let r = tb
        .post(
            &host("school-b"),
            &format!("/me/invitations/{id}/accept"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut tb = Visitor::new(&app);
    assert_eq!(
        tb.sign_in(&host("school-a"), "teacher.b", PW)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

#[tokio::test]
async fn one_schools_admin_cannot_see_or_change_another_schools_people_or_roles() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    person(
        &app.services,
        "admin.a",
        "甲管理员",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;
    person(
        &app.services,
        "admin.b",
        "乙管理员",
        PW,
        &[(&b, &["school_admin"])],
    )
    .await;
    let only_b = person(
        &app.services,
        "teacher.b",
        "乙老师",
        PW,
        &[(&b, &["teacher"])],
    )
    .await;
    let mut admin_b = signed_in(&app, "school-b", "admin.b").await;
    post(
        &mut admin_b,
        "school-b",
        "/admin/roles",
        &[("name", "乙校专员"), ("permission", "staff_area")],
    )
    .await;
    let b_role = role_code(&app, b.id.0, "乙校专员").await;

    let mut admin_a = signed_in(&app, "school-a", "admin.a").await;
    let list = admin_a.get(&host("school-a"), "/api/v1/users").await;
    assert_eq!(list.status(), StatusCode::OK);
    let list: serde_json::Value = list.json().await.unwrap();
    assert_eq!(list["total"], 1, "{list}");
    assert!(!list.to_string().contains("乙老师"));
    let roles = admin_a
        .get(&host("school-a"), "/api/v1/roles")
        .await
        .text()
        .await
        .unwrap();
    assert!(!roles.contains("乙校专员"));

    // B's member, addressed through A's host: not a member here.
    let path = format!("/admin/users/{only_b}");
    assert_eq!(
        admin_a.get(&host("school-a"), &path).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = post(
        &mut admin_a,
        "school-a",
        &path,
        &[("role", "school_admin"), ("status", "active")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // B's custom role cannot be given or edited from A.
    let r = post(
        &mut admin_a,
        "school-a",
        "/admin/users",
        &[
            ("display_name", "x"),
            ("login", "13800138123"),
            ("role", &b_role),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = post(
        &mut admin_a,
        "school-a",
        &format!("/admin/roles/{b_role}"),
        &[("name", "改名"), ("permission", "manage_users")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(
        &mut admin_a,
        "school-a",
        &format!("/admin/roles/{b_role}/delete"),
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // A's session cookie replayed at B's host is no session there.
    let token = admin_a.cookie(&host("school-a"), "campus_session").unwrap();
    admin_a.set_cookie(&host("school-b"), "campus_session", &token);
    let r = admin_a.get(&host("school-b"), "/admin/users").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let b_state: (Vec<String>, String, Vec<String>) = sqlx::query_as(
        "select m.roles, r.name, r.permissions from public.memberships m, public.school_roles r
          where m.account_id = $1 and m.tenant_id = $2 and r.code = $3",
    )
    .bind(only_b)
    .bind(b.id.0)
    .bind(&b_role)
    .fetch_one(&app.services.pool)
    .await
    .unwrap();
    assert_eq!(
        b_state,
        (
            vec!["teacher".into()],
            "乙校专员".into(),
            vec!["staff_area".into()]
        )
    );
    app.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_address_with_retry_after() {
    let app = TestApp::spawn_with(|c| c.login_attempts_per_minute = 4).await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    person(
        &app.services,
        "teacher.a",
        "甲老师",
        PW,
        &[(&a, &["teacher"])],
    )
    .await;
    let mut v = Visitor::new(&app);
    for i in 0..4 {
        let r = v
            .sign_in(&host("school-a"), &format!("nobody{i}"), "x")
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The right password, but the address has used up its attempts for now.
    let r = v.sign_in(&host("school-a"), "teacher.a", PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("登录尝试过于频繁"));
    let limited: i64 =
        sqlx::query_scalar("select count(*) from public.auth_events where event = 'rate_limited'")
            .fetch_one(&app.services.pool)
            .await
            .unwrap();
    assert_eq!(limited, 1);
    app.stop().await;
}

#[tokio::test]
async fn pages_switch_to_english_and_back() {
    let app = TestApp::spawn().await;
    app.onboard("school-a", "甲校").await;
    let mut v = Visitor::new(&app);
    let zh = v
        .get(&host("school-a"), "/login?local=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        zh.contains("lang=\"zh-CN\"") && zh.contains(">English<"),
        "{zh}"
    );
    let r = v
        .get(&host("school-a"), "/lang/en?next=/login?local=1")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("campus_lang=en"));
    let en = v.follow(r).await.text().await.unwrap();
    assert!(
        en.contains("lang=\"en\"") && en.contains("Mobile number or username"),
        "{en}"
    );
    assert!(!en.contains("手机号或用户名"));
    // Only paths on this site are followed back.
    let r = v
        .get(&host("school-a"), "/lang/zh?next=//evil.example/")
        .await;
    assert_eq!(r.headers()["location"], "/");
    app.stop().await;
}

#[tokio::test]
async fn the_language_switch_returns_only_to_paths_on_the_same_site() {
    let app = TestApp::spawn().await;
    app.onboard("school-a", "甲校").await;
    let h = host("school-a");
    for bad in [
        "/%09/evil.example",
        "/%5Cevil.example",
        "/%5cevil.example",
        "/%255Cevil.example",
        "%2F%2Fevil.example",
        "/%2F/evil.example",
        "/%0D%0ALocation:%20//evil.example",
        "/%0A/evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
    ] {
        let r = app
            .get(&h, &format!("/lang/zh?next={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{bad}");
        assert_eq!(r.headers()["location"], "/", "{bad}");
    }
    // A same-host Referer whose path would leave the site is not followed either.
    let r = app
        .get(&h, "/lang/en")
        .header("referer", format!("http://{h}/\\evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    // Real pages still are.
    let r = app
        .get(&h, "/lang/en?next=/notices%3Fpage%3D2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/notices?page=2");
    let r = app
        .get(&h, "/lang/en")
        .header("referer", format!("http://{h}/login?local=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login?local=1");
    app.stop().await;
}
