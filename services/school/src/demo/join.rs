//! Pending join applications for a demo school, so its review page has work on it: a
//! parent whose child's name matches one pupil, a parent whose spelling matches none (the
//! reviewer picks the pupil), and a teacher.

use rand::rngs::StdRng;
use rand::SeedableRng;

use campus_tenant::{Db, Tenant};

use super::names;
use crate::join::{self, Kind};

/// Adds the demo applications unless the school already has any; returns how many were
/// added. `password_hash` is the hash of the password the applicants "chose".
pub async fn seed_join_requests(
    db: &Db,
    tenant: &Tenant,
    password_hash: &str,
) -> anyhow::Result<usize> {
    let mut rng = StdRng::seed_from_u64(7_919 * tenant.id.0.unsigned_abs());
    let mut tx = db.school(tenant).await?;
    let any: bool = sqlx::query_scalar("select exists(select 1 from join_requests)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(0);
    }
    let parent_link = join::links::ensure_active(&mut tx, Kind::Parent).await?;
    let staff_link = join::links::ensure_active(&mut tx, Kind::Staff).await?;
    let pupils: Vec<(String, i64)> = sqlx::query_as(
        "select s.name, s.class_id from students s join classes c on c.id = s.class_id
          where s.left_on is null order by c.id, s.id limit 2",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut added = 0;
    let insert = "insert into join_requests (link_id, kind, status_token, name, phone, relation,
                        child_name, class_id, staff_title, staff_subject, note, password_hash,
                        phone_proven_at)
                  select l.id, l.kind, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now()
                    from join_links l where l.token = $1
                  on conflict (phone, kind) where status = 'pending' do nothing";
    for (i, (child, class_id)) in pupils.iter().enumerate() {
        // The second applicant misspells the child's name (one character dropped).
        let child = if i == 0 {
            child.clone()
        } else {
            child
                .chars()
                .take(child.chars().count().max(2) - 1)
                .collect()
        };
        let surname = names::surname_of(&child).to_owned();
        let parent = names::person(&mut rng, i == 0);
        let parent = format!("{surname}{}", parent.chars().skip(1).collect::<String>());
        added += sqlx::query(insert)
            .bind(&parent_link)
            .bind(join::random_token())
            .bind(&parent)
            .bind(names::phone(&mut rng))
            .bind(if i == 0 { "mother" } else { "grandfather" })
            .bind(&child)
            .bind(class_id)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
    }
    added += sqlx::query(insert)
        .bind(&staff_link)
        .bind(join::random_token())
        .bind(names::person(&mut rng, true))
        .bind(names::phone(&mut rng))
        .bind(None::<&str>)
        .bind(None::<&str>)
        .bind(None::<i64>)
        .bind("教师")
        .bind("数学")
        .bind("新调入教师")
        .bind(password_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected() as usize;
    tx.commit().await?;
    Ok(added)
}
