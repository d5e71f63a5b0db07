//! pgbench running the statements one request of the platform ran: the transaction, the
//! school scope (`set_config` of the schema path and role, as `Db::school` sends it) and the
//! page's queries with the values the request bound, each client in a closed loop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// A pgbench script file and the variables (`-D name=value`) its statements use.
pub struct Script {
    pub text: String,
    pub defines: Vec<(String, String)>,
    /// The page's own queries (without BEGIN, the scope and COMMIT).
    pub queries: usize,
}

/// The highest `$n` in `sql` (0 without parameters).
fn max_param(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    for (i, _) in sql.match_indices('$') {
        let digits: String = b[i + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .map(|&c| c as char)
            .collect();
        if let Ok(n) = digits.parse::<usize>() {
            max = max.max(n);
        }
    }
    max
}

/// `sql` for a pgbench script: `$n` becomes the variable `:q<query>p<n>`, and string
/// literals with a colon followed by a name character are split around the colon
/// (`'HH24:MI'` → `('HH24' || ':' || 'MI')`), because pgbench would read `:MI` as a
/// variable even inside quotes. Postgres folds the split literal back into a constant
/// when it plans the statement.
fn pgbench_sql(sql: &str, query: usize) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // A literal runs to the next quote that is not doubled.
            let mut j = i + 1;
            let mut body = String::new();
            while j < chars.len() {
                if chars[j] == '\'' {
                    if chars.get(j + 1) == Some(&'\'') {
                        body.push_str("''");
                        j += 2;
                        continue;
                    }
                    break;
                }
                body.push(chars[j]);
                j += 1;
            }
            let needs_split = body.char_indices().any(|(k, ch)| {
                ch == ':' && body[k + 1..].starts_with(|n: char| n.is_alphanumeric() || n == '_')
            });
            if needs_split {
                let parts: Vec<String> = body.split(':').map(|p| format!("'{p}'")).collect();
                out.push('(');
                out.push_str(&parts.join(" || ':' || "));
                out.push(')');
            } else {
                out.push('\'');
                out.push_str(&body);
                out.push('\'');
            }
            i = j + 1;
            continue;
        }
        if c == '$' && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let n: String = chars[i + 1..j].iter().collect();
            out.push_str(&format!(":q{query}p{n}"));
            i = j;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The script for the statements of one request (the scope, the queries and `COMMIT`,
/// as recorded, in the transaction `Db::school` begins) with `params[i]` the values bound to query `i`'s `$1, $2, …`.
pub fn script(statements: &[String], params: &[Vec<String>]) -> Result<Script> {
    let listing = || statements.join("\n---\n");
    // `Db::school` opens the transaction and sets the scope in one query, `begin; select
    // set_config(…)`, recorded as one statement (older builds: the scope alone after an
    // unrecorded BEGIN); the COMMIT is recorded. pgbench gets them as two commands, since
    // its prepared mode cannot send two in one.
    let scope_at = statements
        .iter()
        .position(|s| {
            s.starts_with("select set_config(") || s.starts_with("begin; select set_config(")
        })
        .with_context(|| format!("no school scope among the statements:\n{}", listing()))?;
    let commit = statements
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("commit"))
        .filter(|c| *c > scope_at)
        .with_context(|| format!("no COMMIT after the scope:\n{}", listing()))?;
    let scope = statements[scope_at]
        .strip_prefix("begin; ")
        .unwrap_or(&statements[scope_at]);
    let queries = &statements[scope_at + 1..commit];
    anyhow::ensure!(
        queries.len() == params.len(),
        "the request ran {} queries but the benchmark knows the parameters of {}; update \
         the benchmark to the page's queries:\n{}",
        queries.len(),
        params.len(),
        listing()
    );
    let mut text = format!("BEGIN;\n{scope};\n");
    let mut defines = Vec::new();
    for (i, (q, values)) in queries.iter().zip(params).enumerate() {
        anyhow::ensure!(
            max_param(q) == values.len(),
            "query {} has {} parameters, the benchmark binds {}: {q}",
            i + 1,
            max_param(q),
            values.len()
        );
        text.push_str(&pgbench_sql(q, i + 1));
        text.push_str(";\n");
        for (n, v) in values.iter().enumerate() {
            defines.push((format!("q{}p{}", i + 1, n + 1), v.clone()));
        }
    }
    text.push_str("COMMIT;\n");
    Ok(Script {
        text,
        defines,
        queries: queries.len(),
    })
}

/// The pgbench of the machine's Postgres installation.
pub fn find() -> Result<PathBuf> {
    let bins = campus_devstack::PgBinaries::find()
        .context("finding the Postgres binaries (pgbench comes with them)")?;
    let path = bins.tool("pgbench");
    anyhow::ensure!(path.exists(), "no pgbench at {}", path.display());
    Ok(path)
}

/// Runs `script` for `duration` with `clients` connections on one pgbench thread, with
/// prepared statements as the platform's client uses; the transactions per second
/// (without connection time).
pub async fn run(
    pgbench: &Path,
    url: &str,
    script: &Script,
    file: &Path,
    clients: usize,
    duration: Duration,
) -> Result<f64> {
    std::fs::write(file, &script.text)?;
    let mut cmd = tokio::process::Command::new(pgbench);
    cmd.arg("-n")
        .args(["-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", "1"])
        .args(["-T", &duration.as_secs().max(1).to_string()])
        .arg("-f")
        .arg(file);
    for (k, v) in &script.defines {
        cmd.arg("-D").arg(format!("{k}={v}"));
    }
    cmd.arg(url);
    let out = cmd.output().await.context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(
        out.status.success() && !stderr.contains("error"),
        "pgbench failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let failed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    anyhow::ensure!(
        failed == 0,
        "pgbench: {failed} transactions failed:\n{stdout}"
    );
    stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .filter(|r| r.contains("without initial connection time"))
        })
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no tps in pgbench's output:\n{stdout}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_variables_and_colons_in_literals_are_split() {
        assert_eq!(
            pgbench_sql(
                "select to_char(x at time zone 'UTC', 'HH24:MI'), y::date from t where a = $1 and b = $12 and c = 'it''s: 1'",
                2
            ),
            "select to_char(x at time zone 'UTC', ('HH24' || ':' || 'MI')), y::date from t where a = :q2p1 and b = :q2p12 and c = 'it''s: 1'"
        );
        assert_eq!(max_param("select $1, $3, $2"), 3);
        assert_eq!(max_param("select 1"), 0);
    }

    #[test]
    fn a_script_splits_the_recorded_begin_and_scope() {
        let statements: Vec<String> = [
            "begin; select set_config('path', '\"s\"', true), set_config('who', 'r', true)",
            "select 1",
            "COMMIT",
        ]
        .map(String::from)
        .to_vec();
        let s = script(&statements, &[vec![]]).unwrap();
        assert_eq!(
            s.text,
            "BEGIN;\nselect set_config('path', '\"s\"', true), set_config('who', 'r', true);\n\
             select 1;\nCOMMIT;\n"
        );
    }

    #[test]
    fn a_script_wraps_the_queries_in_the_recorded_transaction() {
        let statements: Vec<String> = [
            "select set_config('path', '\"s\"', true), set_config('who', 'r', true)",
            "select * from a where id = $1",
            "select now()",
            "COMMIT",
        ]
        .map(String::from)
        .to_vec();
        let s = script(&statements, &[vec!["7".into()], vec![]]).unwrap();
        assert_eq!(
            s.text,
            "BEGIN;\nselect set_config('path', '\"s\"', true), set_config('who', 'r', true);\n\
             select * from a where id = :q1p1;\nselect now();\nCOMMIT;\n"
        );
        assert_eq!(s.defines, [("q1p1".to_owned(), "7".to_owned())]);
        assert!(script(&statements, &[vec![]]).is_err(), "wrong query count");
        assert!(
            script(&statements, &[vec![], vec![]]).is_err(),
            "wrong parameter count"
        );
    }
}
