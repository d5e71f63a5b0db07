//! The wording of a message on each channel: the school's template for the kind of
//! message and channel if it has one, else the platform's.

use crate::model::{Category, Channel};

/// `{school}`, `{title}`, `{body}` and `{link}` are replaced.
pub fn default_template(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Email => ("{title}", "{body}\n\n{link}\n\n{school}"),
        Channel::Sms => ("", "【{school}】{title}：{body}"),
        Channel::Wechat => ("{title}", "{title}\n{body}\n{link}"),
    }
}

/// The platform's wording for people who read English (school templates are Chinese).
pub fn english_template(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::Email => ("{title}", "{body}\n\n{link}\n\n{school}"),
        Channel::Sms => ("", "[{school}] {title}: {body}"),
        Channel::Wechat => ("{title}", "{title}\n{body}\n{link}"),
    }
}

/// (subject, text) of one message in English.
pub fn render_english(channel: Channel, p: &Parts<'_>) -> (String, String) {
    let (subject, body) = english_template(channel);
    let subject = if subject.is_empty() {
        "{title}"
    } else {
        subject
    };
    (fill(subject, p), fill(body, p))
}

pub struct Parts<'a> {
    pub school: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub link: &'a str,
}

/// Fills a template in one pass, so text inside a value is never itself expanded.
pub fn fill(template: &str, p: &Parts<'_>) -> String {
    let mut out = String::with_capacity(template.len() + p.body.len() + p.title.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let value = [
            ("{school}", p.school),
            ("{title}", p.title),
            ("{body}", p.body),
            ("{link}", p.link),
        ]
        .into_iter()
        .find(|(name, _)| after.starts_with(name));
        match value {
            Some((name, v)) => {
                out.push_str(v);
                rest = &after[name.len()..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

/// A school template: subject and body.
#[derive(Clone, Debug)]
pub struct Template {
    pub category: Category,
    pub channel: Channel,
    pub subject: String,
    pub body: String,
}

/// (subject, text) for one message.
pub fn render(
    templates: &[Template],
    category: Category,
    channel: Channel,
    p: &Parts<'_>,
) -> (String, String) {
    let (subject, body) = templates
        .iter()
        .find(|t| t.category == category && t.channel == channel)
        .map(|t| (t.subject.as_str(), t.body.as_str()))
        .unwrap_or_else(|| default_template(channel));
    let subject = if subject.is_empty() {
        "{title}"
    } else {
        subject
    };
    (fill(subject, p), fill(body, p))
}

/// Placeholders a template may use; anything else in braces is refused when saving.
pub fn check_template(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let end = after.find('}').ok_or_else(|| "未闭合的 {".to_string())?;
        let name = &after[..=end];
        if !["{school}", "{title}", "{body}", "{link}"].contains(&name) {
            return Err(format!(
                "不认识的占位符 {name}（可用 {{school}} {{title}} {{body}} {{link}}）"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_not_expanded_twice() {
        let p = Parts {
            school: "城关小学",
            title: "放假 {body}",
            body: "明天放假",
            link: "",
        };
        assert_eq!(
            fill("【{school}】{title}：{body}", &p),
            "【城关小学】放假 {body}：明天放假"
        );
        assert_eq!(fill("{unknown} {title", &p), "{unknown} {title");
    }

    #[test]
    fn school_templates_win_and_are_checked() {
        let t = vec![Template {
            category: Category::Safety,
            channel: Channel::Sms,
            subject: String::new(),
            body: "{school}提醒：{body}".into(),
        }];
        let p = Parts {
            school: "一中",
            title: "到校",
            body: "小明 07:42 到校",
            link: "",
        };
        assert_eq!(
            render(&t, Category::Safety, Channel::Sms, &p).1,
            "一中提醒：小明 07:42 到校"
        );
        assert_eq!(
            render(&t, Category::Notices, Channel::Sms, &p).1,
            "【一中】到校：小明 07:42 到校"
        );
        assert!(check_template("{school}{body}").is_ok());
        assert!(check_template("{name}").is_err());
        assert!(check_template("{body").is_err());
    }
}
