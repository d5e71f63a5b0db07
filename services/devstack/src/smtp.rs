//! An SMTP server on loopback that keeps what it receives: the demo's mail sink (read on
//! its dev page) and the server the tests deliver real mail to. It speaks enough of
//! RFC 5321 for a real client — EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET,
//! NOOP, QUIT, and AUTH PLAIN when [`SmtpSink::require_login`] asks for it — over plain
//! TCP, with many connections at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One message as received.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), line endings as received.
    pub data: String,
}

impl Mail {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push_str(line.trim_start());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    found = Some(v.trim().to_owned());
                }
            }
        }
        found
    }
}

impl Mail {
    /// The body of a single-part message, decoded from base64 or quoted-printable.
    pub fn text(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "base64" => {
                let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, clean)
                    .unwrap_or_default()
            }
            "quoted-printable" => quoted_printable(body),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn quoted_printable(body: &str) -> Vec<u8> {
    let b = body.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            if b[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A running sink. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mail: Arc<Mutex<Vec<Mail>>>,
    /// Recipients containing one of these are refused at RCPT TO (550), as a server refuses
    /// an unknown mailbox.
    refused: Arc<Mutex<Vec<String>>>,
    /// When set, MAIL needs a successful `AUTH PLAIN` with this user name and password.
    login: Arc<Mutex<Option<(String, String)>>>,
    /// Connections accepted so far.
    connections: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on 127.0.0.1 at `port` (0: any free port).
    pub async fn start(port: u16) -> std::io::Result<Self> {
        Self::start_with_spool(port, None).await
    }

    /// Like [`SmtpSink::start`], but writes each message to `spool` as
    /// `<unix time>-<n>.eml`, which any mail program opens (the demo's mail folder),
    /// instead of keeping it in memory ([`SmtpSink::mail`] stays empty).
    pub async fn start_with_spool(port: u16, spool: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &spool {
            std::fs::create_dir_all(dir)?;
        }
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let mail = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let store = mail.clone();
        let refusals = refused.clone();
        let login = Arc::new(Mutex::new(None));
        let logins = login.clone();
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let connections = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let accepted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let store = store.clone();
                let rules = Rules {
                    refused: refusals.clone(),
                    login: logins.lock().expect("login lock").clone(),
                };
                let spool = spool.clone();
                let received = received.clone();
                tokio::spawn(async move {
                    if let Err(e) = session(stream, store, rules, spool, received).await {
                        tracing::debug!(error = %e, "SMTP sink session ended");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            mail,
            refused,
            login,
            connections,
            task,
        })
    }

    /// How many connections the sink has accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From the next connection on, asks for `AUTH PLAIN` as `user`/`password` before
    /// MAIL (530 without it, 535 for a wrong password).
    pub fn require_login(&self, user: &str, password: &str) {
        *self.login.lock().expect("login lock") = Some((user.to_owned(), password.to_owned()));
    }

    /// `smtp://127.0.0.1:<port>` for the platform's `smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Everything received so far.
    pub fn mail(&self) -> Vec<Mail> {
        self.mail.lock().expect("mail lock").clone()
    }

    /// Refuses, from now on, every recipient address containing `part` (550 at RCPT TO).
    pub fn refuse(&self, part: &str) {
        self.refused
            .lock()
            .expect("refusal lock")
            .push(part.to_owned());
    }

    /// A handle on the received mail that outlives borrowing the sink.
    pub fn mailbox(&self) -> Arc<Mutex<Vec<Mail>>> {
        self.mail.clone()
    }
}

/// What one connection is held to.
struct Rules {
    refused: Arc<Mutex<Vec<String>>>,
    login: Option<(String, String)>,
}

/// Whether an `AUTH PLAIN` response (base64 of `authzid NUL user NUL password`) names
/// `user` and `password`.
fn plain_login_matches(response: &str, (user, password): &(String, String)) -> bool {
    let Ok(decoded) =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, response.trim())
    else {
        return false;
    };
    let mut parts = decoded.split(|b| *b == 0).skip(1);
    parts.next() == Some(user.as_bytes()) && parts.next() == Some(password.as_bytes())
}

async fn session(
    stream: TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
    rules: Rules,
    spool: Option<PathBuf>,
    received: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write
        .write_all(b"220 campus-smtp-sink ESMTP ready\r\n")
        .await?;
    let mut from = String::new();
    let mut to: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut signed_in = rules.login.is_none();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end();
        let upper = cmd.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            write.write_all(b"250-campus-smtp-sink\r\n").await?;
            if rules.login.is_some() {
                write.write_all(b"250-AUTH PLAIN\r\n").await?;
            }
            b"250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n"
        } else if upper.starts_with("HELO") {
            b"250 campus-smtp-sink\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            let mut response = cmd[10..].trim().to_owned();
            if response.is_empty() {
                write.write_all(b"334 \r\n").await?;
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                response = line.trim().to_owned();
            }
            match &rules.login {
                Some(login) if plain_login_matches(&response, login) => {
                    signed_in = true;
                    b"235 2.7.0 authentication successful\r\n"
                }
                Some(_) => b"535 5.7.8 authentication credentials invalid\r\n",
                None => b"503 5.5.1 authentication not enabled\r\n",
            }
        } else if upper.starts_with("MAIL FROM:") && !signed_in {
            b"530 5.7.0 authentication required\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&cmd[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = address(&cmd[8..]);
            if from.is_empty() {
                b"503 MAIL first\r\n"
            } else if rules
                .refused
                .lock()
                .expect("refusal lock")
                .iter()
                .any(|part| rcpt.contains(part.as_str()))
            {
                b"550 5.1.1 mailbox unavailable\r\n"
            } else {
                to.push(rcpt);
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            if to.is_empty() {
                write.write_all(b"554 no valid recipients\r\n").await?;
                continue;
            }
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Dot-stuffing: a leading dot was doubled by the client.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let mail = Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            };
            if let Some(dir) = &spool {
                // A long-running demo receives mail all day: the folder keeps it, memory
                // does not.
                let n = received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let name = format!("{secs}-{n:05}.eml");
                if let Err(e) = tokio::fs::write(dir.join(name), mail.data.as_bytes()).await {
                    tracing::warn!(error = %e, "writing a received message to the mail folder failed");
                }
            } else {
                store.lock().expect("mail lock").push(mail);
            }
            b"250 OK queued\r\n"
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 command not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// `<a@b>` or `<a@b> SIZE=123` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(s), Some(e)) if s < e => arg[s + 1..e].to_owned(),
        _ => arg.split_whitespace().next().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A client's whole conversation; returns what the server answered.
    async fn converse(addr: SocketAddr, lines: &[&str]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        for line in lines {
            stream.write_all(line.as_bytes()).await.unwrap();
            stream.write_all(b"\r\n").await.unwrap();
        }
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn spools_mail_to_files_and_refuses_chosen_mailboxes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("mail");
        let sink = SmtpSink::start_with_spool(0, Some(spool.clone()))
            .await
            .unwrap();
        sink.refuse("blocked@");
        let said = converse(
            sink.addr,
            &[
                "EHLO test",
                "MAIL FROM:<school@example.cn>",
                "RCPT TO:<blocked@example.cn>",
                "RCPT TO:<parent@example.cn>",
                "DATA",
                "Subject: hello",
                "",
                "..a dotted line",
                ".",
                "QUIT",
            ],
        )
        .await;
        assert!(said.contains("550 5.1.1"), "{said}");
        assert!(
            sink.mail().is_empty(),
            "a spooling sink keeps nothing in memory"
        );
        let files: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
        assert_eq!(files.len(), 1);
        let kept = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(
            kept.contains("Subject: hello") && kept.contains("\n.a dotted line"),
            "{kept}"
        );
    }
}
