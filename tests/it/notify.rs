//! The in-app notification interface: every audience expands set-based inside the school's
//! schema, a repeated send with the same key adds nothing, and unread counts follow.

use campus_school::notify::{self, Audience, Category, Message, Recipient};

use crate::helpers::{add_pupils, TestApp};

#[tokio::test]
async fn audiences_expand_to_the_right_people_once() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "A", 3).await;
    let mut tx = app.services.db.school(&a).await.unwrap();
    let staff: i64 =
        sqlx::query_scalar("insert into staff (staff_no, name) values ('T1', '老师') returning id")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    sqlx::query("update classes set head_teacher_id = $1")
        .bind(staff)
        .execute(&mut *tx)
        .await
        .unwrap();
    let class: i64 = sqlx::query_scalar("select id from classes")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    // Two guardians for pupil 0, one for pupil 1, none for pupil 2.
    sqlx::query(
        "with g as (insert into guardians (name) values ('g1'), ('g2'), ('g3') returning id, name)
         insert into student_guardians (student_id, guardian_id)
         select s.id, g.id from g join students s on s.student_no = case g.name when 'g3' then 'A-1' else 'A-0' end",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let msg = |key: Option<&'static str>| Message {
        category: Category::Notices,
        title: "家长会",
        body: "周五下午三点",
        link: Some("/notices/1"),
        source: "notice:1",
        dedupe_key: key,
        en: None,
    };
    let n = notify::send(
        &mut tx,
        &Audience::GuardiansOfClasses(vec![class]),
        &msg(Some("n1")),
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let again = notify::send(&mut tx, &Audience::AllGuardians, &msg(Some("n1")))
        .await
        .unwrap();
    assert_eq!(again, 0, "same key: nobody gets it twice");
    assert_eq!(
        notify::send(&mut tx, &Audience::AllStaff, &msg(None))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        notify::send(
            &mut tx,
            &Audience::HeadTeachersOfClasses(vec![class]),
            &msg(Some("h"))
        )
        .await
        .unwrap(),
        1
    );
    let pupil: i64 = sqlx::query_scalar("select id from students where student_no = 'A-1'")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        notify::send(
            &mut tx,
            &Audience::GuardiansOfStudents(vec![pupil]),
            &msg(Some("s"))
        )
        .await
        .unwrap(),
        1
    );
    let grade: i64 = sqlx::query_scalar("select id from grades")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        notify::send(
            &mut tx,
            &Audience::GuardiansOfGrades(vec![grade]),
            &msg(Some("g"))
        )
        .await
        .unwrap(),
        3
    );
    let me = Recipient::Staff(staff);
    assert_eq!(
        notify::send(&mut tx, &Audience::People(vec![me]), &msg(Some("p")))
            .await
            .unwrap(),
        1
    );
    assert_eq!(notify::unread(&mut tx, &[me]).await.unwrap(), 3);
    tx.commit().await.unwrap();
    app.stop().await;
}
