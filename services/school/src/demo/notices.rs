//! Demo notices for a seeded school, so that demo logins find notices in their inbox and
//! the principal finds receipts: a school-wide parents' notice asking for confirmation and
//! a staff notice, each with part of its audience having read or confirmed it.

use campus_tenant::{Db, Tenant};

use crate::notify::{self, Audience, Category, Message};

/// Who the demo notices are from: an account of the school linked to a staff row.
#[derive(Debug, Clone)]
pub struct DemoSender<'a> {
    pub account_id: i64,
    pub name: &'a str,
    pub staff_id: i64,
}

/// Adds the demo notices unless the school already has notices; returns how many.
pub async fn seed_notices(
    db: &Db,
    tenant: &Tenant,
    sender: &DemoSender<'_>,
) -> anyhow::Result<usize> {
    let mut tx = db.school(tenant).await?;
    let any: bool = sqlx::query_scalar("select exists(select 1 from notices)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(0);
    }
    let notices = [
        (
            "关于开展秋季防溺水安全教育的通知",
            "<p>各位家长：</p><p>近期气温回升，请家长加强对孩子的安全教育，做到<strong>不私自下水游泳</strong>、不到无安全设施的水域玩耍。</p><p>请阅读后点击“确认收到”。</p>",
            serde_json::json!({"kind": "guardians"}),
            "confirm",
            "select 'guardian', sg.guardian_id, min(s.class_id) from student_guardians sg
               join students s on s.id = sg.student_id where s.left_on is null group by sg.guardian_id",
            Audience::AllGuardians,
        ),
        (
            "本周五下午教职工大会",
            "<p>本周五 15:30 在学校会议室召开全体教职工大会，请准时参加。</p>",
            serde_json::json!({"kind": "staff"}),
            "read",
            "select 'staff', s.id, null::bigint from staff s where s.active",
            Audience::AllStaff,
        ),
    ];
    for (i, (title, body, audience_json, mode, select, audience)) in notices.into_iter().enumerate()
    {
        let id: i64 = sqlx::query_scalar(
            "insert into notices (sender_account_id, sender_name, sender_staff_id, title, body_html, audience, mode, created_at)
             values ($1, $2, $3, $4, $5, $6, $7, now() - make_interval(days => $8)) returning id",
        )
        .bind(sender.account_id)
        .bind(sender.name)
        .bind(sender.staff_id)
        .bind(title)
        .bind(body)
        .bind(audience_json)
        .bind(mode)
        .bind(2 - i as i32)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "insert into notice_recipients (notice_id, recipient_kind, recipient_id, class_id)
             select $1, r.k, r.i, r.c from ({select}) as r(k, i, c) on conflict do nothing"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let source = format!("notice:{id}");
        let link = format!("/notices/{id}");
        notify::send(
            &mut tx,
            &audience,
            &Message {
                category: Category::Notices,
                title,
                body: "",
                link: Some(&link),
                source: &source,
                dedupe_key: Some(&source),
                en: None,
            },
        )
        .await?;
        // About two in three have read it; half of those confirmed.
        sqlx::query(
            "update notice_recipients set read_at = now() - interval '1 day',
                    confirmed_at = case when $2 <> 'read' and recipient_id % 2 = 0 then now() - interval '1 day' end
              where notice_id = $1 and recipient_id % 3 <> 0",
        )
        .bind(id)
        .bind(mode)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update inbox_items i set read_at = r.read_at from notice_recipients r
              where i.source = $2 and r.notice_id = $1 and r.read_at is not null
                and i.recipient_kind = r.recipient_kind and i.recipient_id = r.recipient_id",
        )
        .bind(id)
        .bind(&source)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(2)
}
