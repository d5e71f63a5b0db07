//! An S3 server embedded in the process (the `s3s` protocol layer over the `s3s-fs`
//! file-system backend), on loopback. The platform reaches it through the real
//! `aws-sdk-s3` client, signatures and all.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running embedded S3 server; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedS3 {
    addr: SocketAddr,
    pub access_key: String,
    pub secret_key: String,
    stop: CancellationToken,
}

impl EmbeddedS3 {
    /// Serves the objects under `root` (created if missing) on `bind` (port 0 for any).
    pub async fn start(
        root: &Path,
        bind: SocketAddr,
        access_key: &str,
        secret_key: &str,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
        let service = {
            let mut b = S3ServiceBuilder::new(fs);
            b.set_auth(SimpleAuth::from_single(access_key, secret_key));
            b.build()
        };
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("binding the embedded S3 server to {bind}"))?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let socket = tokio::select! {
                    res = listener.accept() => match res {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            tracing::warn!(error = %e, "embedded S3: accept failed");
                            continue;
                        }
                    },
                    () = token.cancelled() => break,
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                let token = token.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            stop,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
