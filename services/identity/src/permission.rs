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
        permissions: &[P::StaffArea, P::TakeAttendance, P::SendNotices],
    },
    BuiltinRole {
        code: "head_teacher",
        name_zh: "班主任",
        name_en: "Head teacher",
        permissions: &[
            P::StaffArea,
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

/// Whether any of `roles` grants `permission`.
pub fn granted(roles: &[String], permission: Permission) -> bool {
    roles
        .iter()
        .filter_map(|r| builtin(r))
        .any(|r| r.permissions.contains(&permission))
}

/// Role names for display, Chinese first.
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
    fn builtin_role_codes_are_unique() {
        let mut codes: Vec<_> = BUILTIN_ROLES.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), BUILTIN_ROLES.len());
    }
}
