//! A member's standing in one school: their roles (built-in and the school's custom ones),
//! the permissions those grant, and the staff or guardian record they are linked to.
//! Looked up once per request by the extractor, so it is cached for a few seconds; changes
//! made through this instance drop the cached entry at once, other instances see them
//! within the cache's time to live.

use std::sync::Arc;
use std::time::Duration;

use sqlx::types::Json;
use sqlx::PgPool;

use crate::permission::{self, PermissionSet};

/// How long another instance may act on a superseded standing.
pub const CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Standing {
    pub roles: Vec<String>,
    pub permissions: PermissionSet,
    /// Role names for the page header: (Chinese, English).
    pub names: (String, String),
    pub staff_id: Option<i64>,
    pub guardian_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct StandingRow {
    roles: Vec<String>,
    staff_id: Option<i64>,
    guardian_id: Option<i64>,
    /// (code, name, permission codes) of the custom roles among `roles`.
    custom: Json<Vec<(String, String, Vec<String>)>>,
}

impl From<StandingRow> for Standing {
    fn from(r: StandingRow) -> Self {
        let custom = &r.custom.0;
        let permissions = PermissionSet::of_roles(
            &r.roles,
            custom
                .iter()
                .flat_map(|(_, _, perms)| perms.iter().map(String::as_str)),
        );
        let name = |code: &str, en: bool| -> String {
            if let Some(b) = permission::builtin(code) {
                return if en { b.name_en } else { b.name_zh }.to_owned();
            }
            custom
                .iter()
                .find(|(c, ..)| c == code)
                .map_or_else(|| code.to_owned(), |(_, n, _)| n.clone())
        };
        let zh = r.roles.iter().map(|c| name(c, false)).collect::<Vec<_>>();
        let en = r.roles.iter().map(|c| name(c, true)).collect::<Vec<_>>();
        Self {
            permissions,
            names: (zh.join("、"), en.join(", ")),
            roles: r.roles,
            staff_id: r.staff_id,
            guardian_id: r.guardian_id,
        }
    }
}

/// Cached standings, keyed by (account, school).
#[derive(Clone, Debug)]
pub struct Members {
    pool: PgPool,
    cache: moka::future::Cache<(i64, i64), Option<Arc<Standing>>>,
}

impl Members {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            cache: moka::future::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }

    /// The account's standing in the school today; `None` without an active, currently
    /// valid membership.
    pub async fn standing(
        &self,
        account_id: i64,
        tenant_id: i64,
    ) -> sqlx::Result<Option<Arc<Standing>>> {
        let pool = self.pool.clone();
        self.cache
            .try_get_with((account_id, tenant_id), async move {
                sqlx::query_as::<_, StandingRow>(
                    "select m.roles, m.staff_id, m.guardian_id,
                            coalesce((select json_agg(json_build_array(r.code, r.name, r.permissions) order by r.code)
                                        from public.school_roles r
                                       where r.tenant_id = m.tenant_id and r.code = any(m.roles)), '[]') as custom
                       from public.memberships m
                      where m.account_id = $1 and m.tenant_id = $2 and m.status = 'active'
                        and (m.valid_from is null or m.valid_from <= current_date)
                        and (m.valid_until is null or m.valid_until >= current_date)",
                )
                .bind(account_id)
                .bind(tenant_id)
                .fetch_optional(&pool)
                .await
                .map(|row| row.map(|r| Arc::new(Standing::from(r))))
            })
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))
    }

    /// Forget one member's cached standing (after their roles or status changed).
    pub async fn forget(&self, account_id: i64, tenant_id: i64) {
        self.cache.invalidate(&(account_id, tenant_id)).await;
    }

    /// Forget every cached standing (after a custom role's permissions changed).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}

/// The staff and guardian rows linked to a school's members who hold any of `roles` today
/// (active membership and account, within its validity). Members linked to neither have no
/// inbox and are left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleHolders {
    pub staff: Vec<i64>,
    pub guardians: Vec<i64>,
}

/// One query for all of `roles`; the caller expands the rows set-based in the school.
pub async fn holders_of_roles(
    pool: &PgPool,
    tenant_id: i64,
    roles: &[String],
) -> sqlx::Result<RoleHolders> {
    let (staff, guardians): (Vec<i64>, Vec<i64>) = sqlx::query_as(
        "select coalesce(array_agg(distinct m.staff_id) filter (where m.staff_id is not null), '{}'),
                coalesce(array_agg(distinct m.guardian_id) filter (where m.guardian_id is not null), '{}')
           from public.memberships m join public.accounts a on a.id = m.account_id
          where m.tenant_id = $1 and m.roles && $2 and m.status = 'active' and a.status = 'active'
            and (m.valid_from is null or m.valid_from <= current_date)
            and (m.valid_until is null or m.valid_until >= current_date)",
    )
    .bind(tenant_id)
    .bind(roles)
    .fetch_one(pool)
    .await?;
    Ok(RoleHolders { staff, guardians })
}
