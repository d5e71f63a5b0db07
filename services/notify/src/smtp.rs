//! The pool of SMTP connections the email channel sends through.
//!
//! lettre speaks SMTP on each connection ([`AsyncSmtpConnection`]); this module opens,
//! keeps and reuses the connections. lettre's own pool cannot do two things a fast sender
//! needs:
//! - **`TCP_NODELAY`.** lettre writes a message's body and its closing `<CRLF>.<CRLF>` as
//!   two writes. Under Nagle's algorithm the second waits for the server to acknowledge
//!   the first, and the server delays that acknowledgement (about 40 ms on Linux) because
//!   it has nothing to answer yet. That caps a connection near 25 messages a second.
//! - **NOOP only after a pause.** lettre checks a pooled connection with NOOP before every
//!   reuse, one more round trip per message; here only a connection idle for a while is
//!   checked.
//!
//! The URL is lettre's: `smtp://host[:25]`, `smtp://user:pass@host[:587]?tls=required`
//! (STARTTLS, refused without it), `?tls=opportunistic` (STARTTLS when offered),
//! `smtps://user:pass@host[:465]` (TLS from the first byte), and an optional path as the
//! EHLO name.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// An idle connection unused for longer than this is checked with NOOP before it is used.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(5);
/// An idle connection unused for longer than this is closed instead (servers drop idle
/// clients after a few minutes; RFC 5321 asks them to wait at least 5).
const CLOSE_AFTER_IDLE: Duration = Duration::from_secs(60);

/// How the connection is protected.
#[derive(Clone)]
enum Security {
    Plain,
    /// STARTTLS when the server offers it, plain otherwise.
    Opportunistic(TlsParameters),
    /// STARTTLS, or no mail at all.
    Required(TlsParameters),
    /// TLS from the first byte (port 465).
    Wrapper(
        Arc<tokio_rustls::TlsConnector>,
        rustls::pki_types::ServerName<'static>,
    ),
}

/// Where and how to connect, from the `smtp_url` setting.
#[derive(Clone)]
struct Server {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
}

/// Why a send did not go through.
#[derive(Debug)]
pub enum SmtpError {
    /// The server answered with a permanent (5xx) reply: sending again will not help.
    Permanent(String),
    /// Anything else: a transient reply, a broken or refused connection, a timeout.
    Transient(String),
}

impl From<lettre::transport::smtp::Error> for SmtpError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        if e.is_permanent() {
            Self::Permanent(e.to_string())
        } else {
            Self::Transient(e.to_string())
        }
    }
}

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// At most `size` connections to one SMTP server, reused across messages.
pub struct SmtpPool {
    server: Server,
    timeout: Duration,
    slots: Semaphore,
    /// Most recently used last: the warmest connection is taken first and the coldest
    /// ones age out.
    idle: Mutex<Vec<Idle>>,
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.server.host)
            .field("port", &self.server.port)
            .finish_non_exhaustive()
    }
}

impl SmtpPool {
    /// A pool for `url` (see the module's documentation) of at most `size` connections;
    /// each connection, command and message must complete within `timeout`.
    pub fn new(url: &str, size: u32, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            server: Server::from_url(url)?,
            timeout,
            slots: Semaphore::new(size.max(1) as usize),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends one message (`email` is the formatted RFC 5322 text) on a pooled connection.
    pub async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), SmtpError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| SmtpError::Transient("the mail pool is closed".into()))?;
        let attempt = async {
            let mut conn = self.connection().await?;
            // lettre aborts the connection on any error (a refused recipient included),
            // so only a connection that sent its message goes back to the pool.
            conn.send(envelope, email).await?;
            Ok::<_, SmtpError>(conn)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(conn)) => {
                self.put_back(conn);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SmtpError::Transient(format!(
                "the mail server did not answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn connection(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        while let Some(idle) = self.take_idle() {
            let mut conn = idle.conn;
            if idle.since.elapsed() < CHECK_AFTER_IDLE || conn.test_connected().await {
                return Ok(conn);
            }
        }
        self.server.connect().await
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = self.idle.lock().expect("smtp idle lock");
        // The coldest are at the front; close those the server has probably dropped.
        let stale = idle
            .iter()
            .take_while(|i| i.since.elapsed() >= CLOSE_AFTER_IDLE)
            .count();
        idle.drain(..stale);
        idle.pop()
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        self.idle.lock().expect("smtp idle lock").push(Idle {
            conn,
            since: Instant::now(),
        });
    }
}

impl Server {
    fn from_url(raw: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| anyhow::anyhow!("smtp_url {raw:?} is not usable: {why}");
        let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("it names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let starttls = || TlsParameters::new(host.clone()).map_err(|e| bad(&e.to_string()));
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::Required(starttls()?), 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic(starttls()?), 587),
            ("smtps", None | Some("wrapper")) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| bad(&e.to_string()))?;
                (Security::Wrapper(Arc::new(tls_connector()), name), 465)
            }
            (scheme, tls) => {
                return Err(bad(&format!(
                    "the scheme must be smtp or smtps and tls= required or opportunistic, not {scheme:?} and {tls:?}"
                )))
            }
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| bad(&e.to_string()))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None if !url.username().is_empty() => {
                return Err(bad("it has a user name but no password"))
            }
            None => None,
        };
        let path = url.path().trim_matches('/');
        let hello = if path.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(path.to_owned())
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials,
            hello,
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                SmtpError::Transient(format!(
                    "cannot connect to the mail server {}:{}: {e}",
                    self.host, self.port
                ))
            })?;
        tcp.set_nodelay(true)
            .map_err(|e| SmtpError::Transient(format!("cannot set TCP_NODELAY: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Wrapper(connector, name) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    SmtpError::Transient(format!("TLS with the mail server failed: {e}"))
                })?;
                Box::new(Tls(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        match &self.security {
            Security::Opportunistic(tls) if conn.can_starttls() => {
                conn.starttls(tls.clone(), &self.hello).await?
            }
            Security::Required(tls) => conn.starttls(tls.clone(), &self.hello).await?,
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }
}

/// TLS from the first byte, as lettre's client wants a stream: its trait asks for the
/// peer's address besides reading and writing.
#[derive(Debug)]
struct Tls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for Tls {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for Tls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The trust lettre's STARTTLS uses too: the Mozilla roots (webpki-roots), TLS 1.2 and 1.3.
fn tls_connector() -> tokio_rustls::TlsConnector {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_lettre_reads_them() {
        let s = Server::from_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 2525));
        assert!(matches!(s.security, Security::Plain));
        assert!(s.credentials.is_none());

        let s =
            Server::from_url("smtp://bot%40school.cn:p%40ss@mail.school.cn?tls=required").unwrap();
        assert_eq!(s.port, 587);
        assert!(matches!(s.security, Security::Required(_)));
        assert_eq!(
            s.credentials,
            Some(Credentials::new("bot@school.cn".into(), "p@ss".into()))
        );

        let s = Server::from_url("smtps://u:p@smtp.exmail.qq.com/campus.example").unwrap();
        assert_eq!(s.port, 465);
        assert!(matches!(s.security, Security::Wrapper(..)));
        assert_eq!(s.hello, ClientId::Domain("campus.example".into()));

        let s = Server::from_url("smtp://[::1]:25?tls=opportunistic").unwrap();
        assert_eq!(s.host, "::1");
        assert!(matches!(s.security, Security::Opportunistic(_)));
    }

    #[test]
    fn unusable_urls_say_why() {
        for (url, why) in [
            ("http://mail.example", "scheme"),
            ("smtp://mail.example?tls=always", "tls="),
            ("smtp://user@mail.example", "no password"),
            ("not a url", "not usable"),
        ] {
            let e = Server::from_url(url).err().expect("refused").to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }
}
