//! What a person types to sign in: a mainland mobile number or a username.

use std::fmt;

/// A parsed login identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    Phone(String),
    Username(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("请输入手机号或用户名 (enter a mobile number or a username)")]
    Empty,
    #[error("手机号应为 11 位数字，以 1 开头 (a mobile number has 11 digits starting with 1)")]
    Phone,
    #[error("用户名为 3–32 位小写字母、数字或 . _ -，以字母开头 (usernames are 3–32 of a–z, 0–9, . _ -, starting with a letter)")]
    Username,
}

impl Login {
    /// Accepts `138 0013 8000`, `+86 13800138000`, `13800138000` or a username.
    pub fn parse(raw: &str) -> Result<Self, LoginError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(LoginError::Empty);
        }
        let compact: String = trimmed
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = compact.strip_prefix("+86").unwrap_or(&compact);
        if digits.chars().all(|c| c.is_ascii_digit()) {
            let ok = digits.len() == 11
                && digits.starts_with('1')
                && matches!(digits.as_bytes()[1], b'3'..=b'9');
            return if ok {
                Ok(Self::Phone(digits.to_owned()))
            } else {
                Err(LoginError::Phone)
            };
        }
        let name = trimmed.to_ascii_lowercase();
        let ok = (3..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            });
        if ok {
            Ok(Self::Username(name))
        } else {
            Err(LoginError::Username)
        }
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Phone(p) => f.write_str(p),
            Self::Username(u) => f.write_str(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised() {
        for raw in ["13800138000", "138 0013 8000", "+86 138-0013-8000"] {
            assert_eq!(
                Login::parse(raw),
                Ok(Login::Phone("13800138000".into())),
                "{raw}"
            );
        }
    }

    #[test]
    fn malformed_input_is_refused_with_a_reason() {
        assert_eq!(Login::parse(""), Err(LoginError::Empty));
        assert_eq!(Login::parse("1380013800"), Err(LoginError::Phone));
        assert_eq!(Login::parse("12800138000"), Err(LoginError::Phone));
        assert_eq!(Login::parse("a"), Err(LoginError::Username));
        assert_eq!(Login::parse("张三"), Err(LoginError::Username));
        assert_eq!(
            Login::parse("Teacher.Wang"),
            Ok(Login::Username("teacher.wang".into()))
        );
    }
}
