//! The sandbox preview conversions run in, with the machine's bubblewrap, LibreOffice and
//! shell: a document that links a picture on the network makes LibreOffice fetch it
//! without the sandbox and fetches nothing with it (through the real preview worker); a
//! step cannot read the worker's environment (not even through bwrap's own pid 1), its
//! configuration file or reach the network; two jobs cannot see each other's files; and a
//! step that outlives its time is killed with everything it started. Each check is also run
//! without the sandbox (`preview_sandbox = "none"`) to show it would catch a leak.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use campus_files::preview::sandbox::{self, Inside, Isolation, Sandbox, Step};
use campus_files::preview::{convert, PreviewSettings, Tools};

use crate::files::{id, school, settled, signed_in, uploaded};
use crate::helpers::TestApp;

/// A loopback listener that counts the connections made to it.
async fn listener() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

/// An OpenDocument text whose picture is linked, not embedded: LibreOffice fetches it from
/// `url` when it opens the document.
fn odt_linking(url: &str) -> Vec<u8> {
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2"><office:body><office:text><text:p>家长会通知<draw:frame draw:name="logo" text:anchor-type="as-char" svg:width="2cm" svg:height="2cm"><draw:image xlink:href="{url}" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p></office:text></office:body></office:document-content>"#
    );
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("mimetype", stored).unwrap();
    w.write_all(b"application/vnd.oasis.opendocument.text")
        .unwrap();
    w.start_file("content.xml", deflated).unwrap();
    w.write_all(content.as_bytes()).unwrap();
    w.start_file("META-INF/manifest.xml", deflated).unwrap();
    w.write_all(manifest.as_bytes()).unwrap();
    w.finish().unwrap().into_inner()
}

fn tools(isolation: Isolation) -> Tools {
    let tools = Tools::detect(isolation);
    if isolation == Isolation::Bwrap {
        assert!(
            matches!(tools.sandbox, Sandbox::Bwrap(_)),
            "bwrap works on this machine: {:?}",
            tools.sandbox
        );
    }
    tools
}

/// A job's folder as the worker makes them: a fresh temporary folder per job.
fn job(scratch: &Path) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("job-")
        .tempdir_in(scratch)
        .unwrap()
}

/// Runs `script` with `sh -c` as a conversion step of `job`; returns what it wrote to
/// `out` in its folder.
async fn shell(tools: &Tools, s: &PreviewSettings, job: &Path, script: &str) -> String {
    let work = sandbox::fresh_folder(job, "step").unwrap();
    let step = Step {
        program: Path::new("/usr/bin/sh"),
        input: None,
        work: &work,
    };
    let script = script.to_owned();
    sandbox::run(tools, s, step, |inside: &Inside| {
        let out = inside.work.join("out");
        vec![
            "-c".into(),
            OsString::from(format!("({script}) > {} 2>&1", out.display())),
        ]
    })
    .await
    .unwrap();
    std::fs::read_to_string(work.join("out")).unwrap_or_default()
}

#[tokio::test]
async fn a_linked_picture_is_fetched_without_the_sandbox_and_not_with_it() {
    let (port, fetched) = listener().await;
    let odt = odt_linking(&format!("http://127.0.0.1:{port}/logo.png"));

    // Without the sandbox, LibreOffice asks the listener for the picture.
    let scratch = tempfile::tempdir().unwrap();
    let open = job(scratch.path());
    let input = open.path().join("document.odt");
    std::fs::write(&input, &odt).unwrap();
    let settings = PreviewSettings::default();
    let pdf = convert::office_to_pdf(&tools(Isolation::None), &settings, open.path(), &input)
        .await
        .expect("LibreOffice converts the document");
    assert!(pdf.is_file());
    assert!(
        fetched.load(Ordering::SeqCst) > 0,
        "without a sandbox LibreOffice fetched the linked picture"
    );

    // The preview worker (sandboxed by default) converts the same document, fetching nothing.
    let (port, fetched) = listener().await;
    let odt = odt_linking(&format!("http://127.0.0.1:{port}/logo.png"));
    let app = TestApp::spawn().await;
    school(&app, "sbx-a", "sa").await;
    let mut teacher = signed_in(&app, "sbx-a", "sa.teacher").await;
    let f = uploaded(&mut teacher, "sbx-a", "通知.odt", odt).await;
    assert_eq!(f["kind"], "office");
    let f = settled(&mut teacher, "sbx-a", id(&f)).await;
    assert_eq!(f["preview_status"], "ready", "{f}");
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "the sandboxed conversion made no connection"
    );
    app.stop().await;
}

/// `KEY=value` entries of this process's environment worth keeping secret (everything but
/// what a converter is given anyway).
fn own_environment() -> Vec<String> {
    std::env::vars()
        .filter(|(k, v)| !matches!(k.as_str(), "PATH" | "LANG" | "TMPDIR") && v.len() >= 4)
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[tokio::test]
async fn a_conversion_reads_no_environment_no_config_file_and_has_no_network() {
    let secrets = tempfile::tempdir().unwrap();
    let config = secrets.path().join("campus.toml");
    std::fs::write(
        &config,
        "s3_secret_key = \"CONFIG-SECRET-4f1c9a\"\ndatabase_url = \"postgres://campus:pw@db/campus\"\n",
    )
    .unwrap();
    let env = own_environment();
    assert!(!env.is_empty(), "the test process has an environment");
    let (port, connected) = listener().await;
    let script = format!(
        "cat /proc/1/environ; echo; cat /proc/self/environ; echo; cat /proc/$PPID/environ; echo; \
         cat /proc/{me}/environ; echo; for f in /proc/[0-9]*/environ; do cat $f; echo; done; \
         cat {config}; \
         if bash -c 'echo hello > /dev/tcp/127.0.0.1/{port}'; then echo NETWORK-REACHED; else echo NETWORK-REFUSED; fi",
        me = std::process::id(),
        config = config.display(),
    );
    let scratch = tempfile::tempdir().unwrap();
    let settings = PreviewSettings {
        timeout: Duration::from_secs(20),
        ..PreviewSettings::default()
    };

    // Without the sandbox the same step shows what there is to protect.
    let open_job = job(scratch.path());
    let open = shell(&tools(Isolation::None), &settings, open_job.path(), &script).await;
    assert!(open.contains("CONFIG-SECRET-4f1c9a"), "{open}");
    assert!(
        env.iter().any(|e| open.contains(e.as_str())),
        "without a sandbox the worker's environment is readable"
    );
    assert!(open.contains("NETWORK-REACHED"), "{open}");
    let reached = connected.load(Ordering::SeqCst);
    assert!(reached > 0);

    let boxed_job = job(scratch.path());
    let boxed = shell(
        &tools(Isolation::Bwrap),
        &settings,
        boxed_job.path(),
        &script,
    )
    .await;
    assert!(!boxed.contains("CONFIG-SECRET"), "{boxed}");
    assert!(!boxed.contains("postgres://"), "{boxed}");
    for e in &env {
        assert!(
            !boxed.contains(e.as_str()),
            "the worker's {e:?} is visible in the sandbox"
        );
    }
    assert!(
        boxed.contains("PATH=/usr/local/bin:/usr/bin:/bin"),
        "the step ran and read its own environment: {boxed}"
    );
    assert!(boxed.contains("NETWORK-REFUSED"), "{boxed}");
    assert_eq!(
        connected.load(Ordering::SeqCst),
        reached,
        "no connection from the sandbox"
    );
}

#[tokio::test]
async fn two_jobs_cannot_see_each_others_files() {
    let scratch = tempfile::tempdir().unwrap();
    let settings = PreviewSettings {
        timeout: Duration::from_secs(20),
        ..PreviewSettings::default()
    };
    for (isolation, separate) in [(Isolation::None, false), (Isolation::Bwrap, true)] {
        let tools = tools(isolation);
        let (a, b) = (job(scratch.path()), job(scratch.path()));
        let a_work: PathBuf = a.path().join("step");
        // Job A leaves a note in its folder, home and /tmp and stays running a while.
        let writer = shell(
            &tools,
            &settings,
            a.path(),
            "echo note-of-job-a > note; echo note-of-job-a > \"$HOME/home-note\"; \
             echo note-of-job-a > /tmp/campus-job-a-note; sleep 3",
        );
        // Job B looks for it by A's host path, through A's processes and in shared places.
        let reader = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            shell(
                &tools,
                &settings,
                b.path(),
                &format!(
                    "cat {a}/note {a}/home-note; cat /proc/[0-9]*/cwd/note; \
                     cat /tmp/campus-job-a-note; ls -a . \"$HOME\" /tmp",
                    a = a_work.display()
                ),
            )
            .await
        };
        let (_, seen) = tokio::join!(writer, reader);
        assert_eq!(
            !seen.contains("note-of-job-a"),
            separate,
            "{isolation:?}: {seen}"
        );
        let _ = std::fs::remove_file("/tmp/campus-job-a-note");
    }
}

#[tokio::test]
async fn a_step_past_its_time_is_killed_with_everything_it_started() {
    let scratch = tempfile::tempdir().unwrap();
    let settings = PreviewSettings {
        timeout: Duration::from_secs(1),
        ..PreviewSettings::default()
    };
    let j = job(scratch.path());
    let work = sandbox::fresh_folder(j.path(), "step").unwrap();
    let started = Instant::now();
    let result = sandbox::run(
        &tools(Isolation::Bwrap),
        &settings,
        Step {
            program: Path::new("/usr/bin/sh"),
            input: None,
            work: &work,
        },
        |_| {
            vec![
                "-c".into(),
                "trap '' TERM; sleep 97.25 & sleep 97.5; wait".into(),
            ]
        },
    )
    .await;
    assert!(
        result.as_ref().is_err_and(|e| e.contains("did not finish")),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("sleep 97.25") || c.contains("sleep 97.5"))
        .collect();
    assert!(left.is_empty(), "processes outlived the step: {left:?}");
}
