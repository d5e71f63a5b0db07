//! Embeds `migrations/public/*.sql` and `migrations/tenant/*.sql` into the crate, so the
//! `campus` binary carries its schema and adding a migration needs no code change.

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    // Read at run time, not with `env!`: a compiled build script is reused by checkouts at
    // other paths that share the target directory, and must read *their* migrations.
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../migrations");
    let mut out = String::new();
    for set in ["public", "tenant"] {
        let dir = root.join(set);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        files.sort();
        writeln!(
            out,
            "pub(crate) const {}: &[(&str, &str)] = &[",
            set.to_uppercase()
        )
        .unwrap();
        for file in files {
            println!("cargo:rerun-if-changed={}", file.display());
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let path = fs::canonicalize(&file).unwrap();
            writeln!(
                out,
                "    ({name:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("embedded_migrations.rs");
    fs::write(dest, out).unwrap();
}
