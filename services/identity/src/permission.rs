//! Module permissions and the built-in roles that grant them (seed 000 系统设置). Handlers
//! ask for a [`Permission`]; they never compare role names themselves.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See the school's staff-facing pages.
    StaffArea,
    /// Manage accounts, roles and memberships of the school.
    ManageUsers,
    /// Import and edit classes, pupils, guardians and staff.
    ManageRoster,
    TakeAttendance,
    ApproveLeave,
    SendNotices,
    /// See one's own children's records (parents).
    OwnChildren,
    GateScan,
    Repairs,
    /// Search the school's audit log.
    ViewAudit,
    /// See pupils' records (class lists, contact details).
    PupilRecords,
    /// Reveal pupils' ID numbers, blood types and medical notes (each read is logged).
    PupilSensitive,
}

impl Permission {
    /// Every permission, in the order the role editor lists them.
    pub const ALL: [Permission; 12] = [
        P::StaffArea,
        P::ManageUsers,
        P::ManageRoster,
        P::PupilRecords,
        P::PupilSensitive,
        P::TakeAttendance,
        P::ApproveLeave,
        P::SendNotices,
        P::GateScan,
        P::Repairs,
        P::ViewAudit,
        P::OwnChildren,
    ];

    /// The stable code stored in `school_roles.permissions`.
    pub fn code(self) -> &'static str {
        match self {
            P::StaffArea => "staff_area",
            P::ManageUsers => "manage_users",
            P::ManageRoster => "manage_roster",
            P::TakeAttendance => "take_attendance",
            P::ApproveLeave => "approve_leave",
            P::SendNotices => "send_notices",
            P::OwnChildren => "own_children",
            P::GateScan => "gate_scan",
            P::Repairs => "repairs",
            P::ViewAudit => "view_audit",
            P::PupilRecords => "pupil_records",
            P::PupilSensitive => "pupil_sensitive",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// (Chinese, English) names for the role editor.
    pub fn names(self) -> (&'static str, &'static str) {
        match self {
            P::StaffArea => ("教职工工作台", "Staff area"),
            P::ManageUsers => ("用户与角色管理", "Users and roles"),
            P::ManageRoster => ("花名册导入导出", "Roster import and export"),
            P::TakeAttendance => ("考勤点名", "Take attendance"),
            P::ApproveLeave => ("审批请假", "Approve leave"),
            P::SendNotices => ("发布通知", "Send notices"),
            P::OwnChildren => ("查看自己孩子", "Own children"),
            P::GateScan => ("门卫出入登记", "Gate entry and exit"),
            P::Repairs => ("报修与后勤", "Repairs and logistics"),
            P::ViewAudit => ("查看审计日志", "Audit log"),
            P::PupilRecords => ("查看学生档案", "Pupil records"),
            P::PupilSensitive => (
                "查看敏感信息（身份证、血型、病史）",
                "Sensitive pupil fields",
            ),
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// A set of permissions: what one person may do in one school.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    /// The union of the built-in roles among `roles` and the given custom grants.
    pub fn of_roles<'a>(roles: &[String], custom: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for p in roles
            .iter()
            .filter_map(|r| builtin(r))
            .flat_map(|r| r.permissions.iter().copied())
        {
            set.insert(p);
        }
        for p in custom.into_iter().filter_map(Permission::from_code) {
            set.insert(p);
        }
        set
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

/// A role every school has.
#[derive(Clone, Copy, Debug)]
pub struct BuiltinRole {
    pub code: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub permissions: &'static [Permission],
}

use Permission as P;

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        code: "school_admin",
        name_zh: "学校管理员",
        name_en: "School admin",
        permissions: &[
            P::StaffArea,
            P::ManageUsers,
            P::ManageRoster,
            P::PupilRecords,
            P::PupilSensitive,
            P::TakeAttendance,
            P::ApproveLeave,
            P::SendNotices,
            P::GateScan,
            P::Repairs,
            P::ViewAudit,
        ],
    },
    BuiltinRole {
        code: "principal",
        name_zh: "校长",
        name_en: "Principal",
        permissions: &[
            P::StaffArea,
            P::PupilRecords,
            P::PupilSensitive,
            P::ApproveLeave,
            P::SendNotices,
            P::ViewAudit,
            P::Repairs,
        ],
    },
    BuiltinRole {
        code: "teacher",
        name_zh: "教师",
        name_en: "Teacher",
        permissions: &[
            P::StaffArea,
            P::PupilRecords,
            P::TakeAttendance,
            P::SendNotices,
        ],
    },
    BuiltinRole {
        code: "head_teacher",
        name_zh: "班主任",
        name_en: "Head teacher",
        permissions: &[
            P::StaffArea,
            P::PupilRecords,
            P::PupilSensitive,
            P::TakeAttendance,
            P::SendNotices,
            P::ApproveLeave,
        ],
    },
    BuiltinRole {
        code: "grade_leader",
        name_zh: "年级组长",
        name_en: "Grade leader",
        permissions: &[
            P::StaffArea,
            P::PupilRecords,
            P::TakeAttendance,
            P::SendNotices,
            P::ApproveLeave,
        ],
    },
    BuiltinRole {
        code: "guard",
        name_zh: "门卫",
        name_en: "Guard",
        permissions: &[P::StaffArea, P::GateScan],
    },
    BuiltinRole {
        code: "logistics",
        name_zh: "后勤",
        name_en: "Logistics",
        permissions: &[P::StaffArea, P::Repairs],
    },
    BuiltinRole {
        code: "supplier",
        name_zh: "供应商",
        name_en: "Supplier",
        permissions: &[P::Repairs],
    },
    BuiltinRole {
        code: "parent",
        name_zh: "家长",
        name_en: "Parent",
        permissions: &[P::OwnChildren],
    },
];

pub fn builtin(code: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.code == code)
}

/// Whether any of the built-in `roles` grants `permission`.
pub fn granted(roles: &[String], permission: Permission) -> bool {
    PermissionSet::of_roles(roles, []).contains(permission)
}

/// Role names for display, Chinese first (custom roles show their code here; the
/// extractor passes their names through [`crate::member::Standing`]).
pub fn role_names(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| builtin(r).map_or(r.as_str(), |b| b.name_zh))
        .collect::<Vec<_>>()
        .join("、")
}

/// Role names for display in English.
pub fn role_names_en(roles: &[String]) -> String {
    roles
        .iter()
        .map(|r| builtin(r).map_or(r.as_str(), |b| b.name_en))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_see_their_children_and_nothing_of_the_staff_area() {
        let parent = vec!["parent".to_owned()];
        assert!(granted(&parent, Permission::OwnChildren));
        assert!(!granted(&parent, Permission::StaffArea));
        assert!(!granted(&parent, Permission::ManageUsers));
    }

    #[test]
    fn roles_combine_and_unknown_roles_grant_nothing() {
        let both = vec!["teacher".to_owned(), "parent".to_owned()];
        assert!(
            granted(&both, Permission::TakeAttendance) && granted(&both, Permission::OwnChildren)
        );
        assert!(!granted(&["made_up".to_owned()], Permission::StaffArea));
        assert_eq!(role_names(&both), "教师、家长");
    }

    #[test]
    fn permission_codes_round_trip_and_custom_grants_add_up() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_code(p.code()), Some(p));
        }
        assert_eq!(Permission::from_code("root"), None);
        let guard = vec!["guard".to_owned()];
        let set = PermissionSet::of_roles(&guard, ["view_audit", "unknown"]);
        assert!(set.contains(Permission::GateScan) && set.contains(Permission::ViewAudit));
        assert!(!set.contains(Permission::ManageUsers));
        assert_eq!(set.iter().count(), 3);
    }

    #[test]
    fn builtin_role_codes_are_unique() {
        let mut codes: Vec<_> = BUILTIN_ROLES.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), BUILTIN_ROLES.len());
    }
}
