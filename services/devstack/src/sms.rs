//! An SMS provider's receiving end on loopback: the demo's text-message sink and the one
//! the tests read one-time codes from. It accepts the platform's provider webhook (a JSON
//! POST with `to`, `title` and `text`, see `campus_notify::channels::Webhook`), keeps each
//! message in memory, optionally writes it to a spool folder as `<time>-<n>-<phone>.txt`
//! and prints it on standard output (the demo's console). Signatures are not checked: it
//! is a sink, not a provider.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One text message as received.
#[derive(Clone, Debug)]
pub struct Text {
    pub id: String,
    pub to: String,
    pub title: String,
    pub text: String,
}

impl Text {
    /// The first run of exactly six digits in the text (a one-time code).
    pub fn code(&self) -> Option<String> {
        let chars: Vec<char> = self.text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                if i - start == 6 {
                    return Some(chars[start..i].iter().collect());
                }
            } else {
                i += 1;
            }
        }
        None
    }
}

#[derive(Clone, Debug)]
struct Shared {
    texts: Arc<Mutex<Vec<Text>>>,
    spool: Option<PathBuf>,
    echo: bool,
    count: Arc<AtomicU64>,
}

/// A running sink; stops accepting when dropped.
#[derive(Debug)]
pub struct SmsSink {
    pub addr: std::net::SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmsSink {
    /// Listens on 127.0.0.1 (any free port). With `spool`, each message is also written
    /// there; with `echo`, printed on standard output.
    pub async fn start(spool: Option<PathBuf>, echo: bool) -> std::io::Result<Self> {
        if let Some(dir) = &spool {
            std::fs::create_dir_all(dir)?;
        }
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            texts: Arc::default(),
            spool,
            echo,
            count: Arc::default(),
        };
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, &s).await {
                        tracing::warn!(error = %e, "SMS sink: a request failed");
                    }
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The webhook URL to configure as `notify_webhook_url`.
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// Every message received so far, oldest first.
    pub fn texts(&self) -> Vec<Text> {
        self.shared.texts.lock().expect("texts").clone()
    }

    /// The newest message to `phone`.
    pub fn last_to(&self, phone: &str) -> Option<Text> {
        self.texts().into_iter().rev().find(|t| t.to == phone)
    }

    /// The one-time code in the newest message to `phone`.
    pub fn last_code(&self, phone: &str) -> Option<String> {
        self.last_to(phone).and_then(|t| t.code())
    }
}

async fn serve(stream: TcpStream, s: &Shared) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let post = line.starts_with("POST ");
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            break;
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).await?;
    let status = if post {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => {
                keep(s, &v)?;
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        }
    } else {
        "405 Method Not Allowed"
    };
    let mut stream = reader.into_inner();
    stream
        .write_all(
            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    stream.shutdown().await.ok();
    Ok(())
}

fn keep(s: &Shared, v: &serde_json::Value) -> anyhow::Result<()> {
    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let text = Text {
        id: field("id"),
        to: field("to"),
        title: field("title"),
        text: field("text"),
    };
    let n = s.count.fetch_add(1, Ordering::Relaxed);
    if let Some(dir) = &s.spool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let digits: String = text.to.chars().filter(char::is_ascii_digit).collect();
        std::fs::write(
            dir.join(format!("{now}-{n}-{digits}.txt")),
            format!("To: {}\nTitle: {}\n\n{}\n", text.to, text.title, text.text),
        )?;
    }
    if s.echo {
        println!("  SMS to {}: {}", text.to, text.text);
    }
    s.texts.lock().expect("texts").push(text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_and_spools_each_message() {
        let dir = tempfile::tempdir().unwrap();
        let sink = SmsSink::start(Some(dir.path().join("sms")), false)
            .await
            .unwrap();
        let body = r#"{"id":"otp:1","to":"13800138000","title":"验证码","text":"验证码 042917，5 分钟内有效"}"#;
        let mut stream = TcpStream::connect(sink.addr).await.unwrap();
        stream
            .write_all(
                format!(
                    "POST /sms HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(sink.last_code("13800138000").as_deref(), Some("042917"));
        let files: Vec<_> = std::fs::read_dir(dir.path().join("sms")).unwrap().collect();
        assert_eq!(files.len(), 1);
    }
}
