//! The one interface every module sends notifications through. For now it writes in-app
//! inbox rows in the caller's transaction, so a notification exists exactly when the
//! change that caused it commits; the notification service (durable outbox, email, SMS,
//! WeChat) will implement the same calls later.
//!
//! Audiences expand set-based — one `INSERT … SELECT` per send, whatever the number of
//! recipients — and a `dedupe_key` makes a repeated send a no-op per recipient.

use campus_tenant::SchoolTx;

/// A person of the school who can receive messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    Staff(i64),
    Guardian(i64),
}

impl Recipient {
    /// The recipient a signed-in membership reads as (staff first: a teacher who is also
    /// a guardian at the same school reads the staff inbox and the guardian inbox both
    /// through [`Recipient::all_of`]).
    pub fn all_of(staff_id: Option<i64>, guardian_id: Option<i64>) -> Vec<Recipient> {
        staff_id
            .map(Recipient::Staff)
            .into_iter()
            .chain(guardian_id.map(Recipient::Guardian))
            .collect()
    }

    pub fn kind(self) -> &'static str {
        match self {
            Self::Staff(_) => "staff",
            Self::Guardian(_) => "guardian",
        }
    }

    pub fn id(self) -> i64 {
        match self {
            Self::Staff(id) | Self::Guardian(id) => id,
        }
    }
}

/// Who a message goes to.
#[derive(Clone, Debug)]
pub enum Audience {
    People(Vec<Recipient>),
    /// Every guardian of the given pupils.
    GuardiansOfStudents(Vec<i64>),
    /// Every guardian of pupils currently in the given classes.
    GuardiansOfClasses(Vec<i64>),
    /// Every guardian of pupils currently in the given grades.
    GuardiansOfGrades(Vec<i64>),
    /// Every guardian of every current pupil.
    AllGuardians,
    /// The head teachers of the given classes.
    HeadTeachersOfClasses(Vec<i64>),
    /// Every active member of staff.
    AllStaff,
    /// The staff and guardian rows linked to members holding chosen roles (resolved by
    /// `campus_identity::member::holders_of_roles`); stopped staff and unknown ids are
    /// skipped.
    RoleHolders {
        staff: Vec<i64>,
        guardians: Vec<i64>,
    },
}

/// Kinds of message, which decide channels and quiet hours once the notification service
/// exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    Safety,
    Attendance,
    Notices,
    Messages,
    General,
}

impl Category {
    pub fn code(self) -> &'static str {
        match self {
            Self::Safety => "safety",
            Self::Attendance => "attendance",
            Self::Notices => "notices",
            Self::Messages => "messages",
            Self::General => "general",
        }
    }

    /// Safety alerts first, then attendance, then the rest.
    pub fn priority(self) -> i16 {
        match self {
            Self::Safety => 100,
            Self::Attendance => 50,
            Self::Messages => 20,
            Self::Notices | Self::General => 0,
        }
    }
}

/// What is sent.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub category: Category,
    pub title: &'a str,
    pub body: &'a str,
    /// A path on the school's site to open, e.g. `/notices/12`.
    pub link: Option<&'a str>,
    /// What caused it, e.g. `notice:12`.
    pub source: &'a str,
    /// Same key, same recipient: sent once.
    pub dedupe_key: Option<&'a str>,
}

/// Puts `msg` in the inbox of everyone in `audience`; returns how many rows were added.
pub async fn send(tx: &mut SchoolTx, audience: &Audience, msg: &Message<'_>) -> sqlx::Result<u64> {
    // $1.. are the message; the audience's own parameters follow from $7.
    let recipients = match audience {
        Audience::People(_) => "select k, i from unnest($7::text[], $8::bigint[]) as r(k, i)",
        Audience::GuardiansOfStudents(_) => {
            "select distinct 'guardian', sg.guardian_id from student_guardians sg where sg.student_id = any($7)"
        }
        Audience::GuardiansOfClasses(_) => {
            "select distinct 'guardian', sg.guardian_id from student_guardians sg
               join students s on s.id = sg.student_id
              where s.class_id = any($7) and s.left_on is null"
        }
        Audience::GuardiansOfGrades(_) => {
            "select distinct 'guardian', sg.guardian_id from student_guardians sg
               join students s on s.id = sg.student_id join classes c on c.id = s.class_id
              where c.grade_id = any($7) and s.left_on is null"
        }
        Audience::AllGuardians => {
            "select distinct 'guardian', sg.guardian_id from student_guardians sg
               join students s on s.id = sg.student_id where s.left_on is null"
        }
        Audience::HeadTeachersOfClasses(_) => {
            "select distinct 'staff', c.head_teacher_id from classes c
              where c.id = any($7) and c.head_teacher_id is not null"
        }
        Audience::AllStaff => "select 'staff', s.id from staff s where s.active",
        Audience::RoleHolders { .. } => {
            "select 'staff', s.id from staff s where s.id = any($7) and s.active
             union all
             select 'guardian', g.id from guardians g where g.id = any($8)"
        }
    };
    let sql = format!(
        "insert into inbox_items (recipient_kind, recipient_id, category, priority, title, body, link, source, dedupe_key)
         select r.k, r.i, $1, $2, $3, $4, $5, $6, $9
           from ({recipients}) as r(k, i)
         on conflict (recipient_kind, recipient_id, dedupe_key) do nothing"
    );
    let (kinds, ids): (Vec<&str>, Vec<i64>) = match audience {
        Audience::People(people) => people.iter().map(|p| (p.kind(), p.id())).unzip(),
        _ => (Vec::new(), Vec::new()),
    };
    let list: &[i64] = match audience {
        Audience::GuardiansOfStudents(v)
        | Audience::GuardiansOfClasses(v)
        | Audience::GuardiansOfGrades(v)
        | Audience::HeadTeachersOfClasses(v) => v,
        _ => &[],
    };
    let query = sqlx::query(&sql)
        .bind(msg.category.code())
        .bind(msg.category.priority())
        .bind(msg.title)
        .bind(msg.body)
        .bind(msg.link)
        .bind(msg.source);
    let query = match audience {
        Audience::People(_) => query.bind(kinds).bind(ids),
        Audience::RoleHolders { staff, guardians } => query.bind(staff).bind(guardians),
        _ => query.bind(list).bind(Vec::<i64>::new()),
    };
    Ok(query
        .bind(msg.dedupe_key)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}

/// Unread inbox rows of these recipients.
pub async fn unread(tx: &mut SchoolTx, who: &[Recipient]) -> sqlx::Result<i64> {
    let (kinds, ids): (Vec<&str>, Vec<i64>) = who.iter().map(|p| (p.kind(), p.id())).unzip();
    sqlx::query_scalar(
        "select count(*) from inbox_items i
           join unnest($1::text[], $2::bigint[]) as r(k, id) on i.recipient_kind = r.k and i.recipient_id = r.id
          where i.read_at is null",
    )
    .bind(kinds)
    .bind(ids)
    .fetch_one(&mut **tx)
    .await
}
