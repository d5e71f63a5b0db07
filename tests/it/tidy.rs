//! Architecture invariants checked on the source tree: every module says what it is for,
//! and only the tenant crate may touch `search_path`, `ROLE` or build a schema name.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["tenant/src", "services", "loadtest/src", "tests/it"] {
        let d = root().join(dir);
        if d.exists() {
            rust_files(&d, &mut files);
        }
    }
    files
}

#[test]
fn every_module_starts_with_a_doc_comment_saying_what_it_is_for() {
    let missing: Vec<_> = all_sources()
        .into_iter()
        .filter(|p| {
            !std::fs::read_to_string(p)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! line: {missing:?}"
    );
}

/// `needle` in `text`, not followed by another identifier character ("set roles = …" is a
/// column update, not `SET ROLE`).
fn contains_word(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn the_word_check_ignores_longer_words() {
    assert!(contains_word("x; set role y", "set role"));
    assert!(!contains_word("update m set roles = 1", "set role"));
}

#[test]
fn only_the_tenant_crate_sets_the_search_path_or_the_role() {
    let offenders: Vec<_> = all_sources()
        .into_iter()
        .filter(|p| {
            p.starts_with(root().join("services")) || p.starts_with(root().join("loadtest"))
        })
        .filter(|p| {
            // Code only: comments may explain the rule.
            let text: String = std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n")
                .to_lowercase();
            [
                "search_path",
                "set role",
                "set local role",
                "reset role",
                "set_config('role'",
            ]
            .iter()
            .any(|n| contains_word(&text, n))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "school scope may only be set by campus_tenant::scope: {offenders:?}"
    );
}
