//! What a send is made of: who receives it, what kind of message it is, and its text.

use serde::{Deserialize, Serialize};

/// A person of the school who can receive messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    Staff(i64),
    Guardian(i64),
}

impl Recipient {
    /// The recipient a signed-in membership reads as (staff first: a teacher who is also
    /// a guardian at the same school reads the staff inbox and the guardian inbox both).
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

    pub fn parse(kind: &str, id: i64) -> Option<Self> {
        match kind {
            "staff" => Some(Self::Staff(id)),
            "guardian" => Some(Self::Guardian(id)),
            _ => None,
        }
    }
}

/// Who a message goes to. Stored with an outbox job, so the workers expand exactly the
/// audience the sender chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", content = "ids", rename_all = "snake_case")]
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
    /// `campus_identity::member::holders_of_roles`); inactive staff and unknown ids are
    /// skipped.
    RoleHolders {
        staff: Vec<i64>,
        guardians: Vec<i64>,
    },
}

/// Kinds of message: they decide the lane (what is delivered first), the default
/// channels and whether quiet hours apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Safety,
    Attendance,
    Notices,
    Messages,
    General,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Self::Safety,
        Self::Attendance,
        Self::Notices,
        Self::Messages,
        Self::General,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Safety => "safety",
            Self::Attendance => "attendance",
            Self::Notices => "notices",
            Self::Messages => "messages",
            Self::General => "general",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Chinese and English names, for pages.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Safety => (
                "安全提醒（到校、离校、未到校）",
                "Safety (arrivals, departures, absences)",
            ),
            Self::Attendance => ("考勤与请假", "Attendance and leave"),
            Self::Notices => ("通知", "Notices"),
            Self::Messages => ("消息与信箱", "Messages and mailbox"),
            Self::General => ("其他", "Other"),
        }
    }

    /// Inbox ordering: safety alerts first, then attendance, then the rest.
    pub fn priority(self) -> i16 {
        match self {
            Self::Safety => 100,
            Self::Attendance => 50,
            Self::Messages => 20,
            Self::Notices | Self::General => 0,
        }
    }

    /// The delivery lane; workers always serve a lower lane first.
    pub fn lane(self) -> Lane {
        match self {
            Self::Safety => Lane(0),
            Self::Attendance => Lane(1),
            Self::Messages => Lane(2),
            Self::Notices | Self::General => Lane(3),
        }
    }

    /// Safety alerts are delivered at night too; everything else waits for the morning.
    pub fn respects_quiet_hours(self) -> bool {
        self != Self::Safety
    }

    /// Channels used when a person has not chosen: SMS costs the school money, so only
    /// safety and attendance alerts use it unless a person asks for it.
    pub fn default_channels(self) -> &'static [Channel] {
        match self {
            Self::Safety | Self::Attendance => &[Channel::Email, Channel::Sms, Channel::Wechat],
            Self::Notices | Self::Messages => &[Channel::Email, Channel::Wechat],
            Self::General => &[Channel::Wechat],
        }
    }
}

/// A delivery lane: 0 (safety) is always served before 1, 2 and 3 (bulk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lane(pub i16);

impl Lane {
    pub const ALL: [Lane; 4] = [Lane(0), Lane(1), Lane(2), Lane(3)];

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "safety",
            1 => "attendance",
            2 => "messages",
            _ => "bulk",
        }
    }
}

/// Channels beyond the in-app inbox (which every message reaches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Wechat,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Self::Email, Self::Sms, Self::Wechat];

    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Wechat => "wechat",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Email => ("邮件", "Email"),
            Self::Sms => ("短信", "SMS"),
            Self::Wechat => ("微信", "WeChat"),
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
    /// Same key, same recipient: sent once (inbox and every other channel).
    pub dedupe_key: Option<&'a str>,
    /// English title and body, for people who read in English (see [`Language`]); without
    /// them everyone gets the Chinese.
    pub en: Option<(&'a str, &'a str)>,
}

/// The language a person reads their messages in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    #[default]
    Zh,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "zh" => Some(Self::Zh),
            "en" => Some(Self::En),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_survive_the_outbox() {
        for a in [
            Audience::People(vec![Recipient::Staff(3), Recipient::Guardian(9)]),
            Audience::GuardiansOfClasses(vec![1, 2]),
            Audience::AllGuardians,
            Audience::AllStaff,
        ] {
            let json = serde_json::to_value(&a).unwrap();
            assert_eq!(serde_json::from_value::<Audience>(json).unwrap(), a);
        }
    }

    #[test]
    fn safety_is_served_first_and_ignores_quiet_hours() {
        assert!(Category::Safety.lane() < Category::Notices.lane());
    }

    #[test]
    fn pupil_audience_matches_the_shape_built_in_sql() {
        // `send_each_to_guardians` writes this JSON with jsonb_build_object.
        assert_eq!(
            serde_json::to_value(Audience::GuardiansOfStudents(vec![7])).unwrap(),
            serde_json::json!({"to": "guardians_of_students", "ids": [7]})
        );
        assert!(!Category::Safety.respects_quiet_hours());
        assert!(Category::General.respects_quiet_hours());
        assert!(!Category::Notices.default_channels().contains(&Channel::Sms));
    }
}
