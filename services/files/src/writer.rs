//! Writes an object of unknown length to S3 as it arrives, holding at most a few parts in
//! memory: bytes collect into an 8 MB part; each full part is sent as one part of a
//! multipart upload while the next one fills, and the filling waits whenever
//! [`IN_FLIGHT`] parts are on the wire. The buffer of a part that has been sent is reused
//! for a later one, so an upload needs [`IN_FLIGHT`] part buffers (16 MB) whatever its
//! size. A file smaller than one part is a single PUT. The first bytes are sniffed
//! before anything is stored.
//!
//! Reusing the buffers matters beyond the count: with a fresh 8 MB buffer per part, glibc's
//! malloc (in processes without the `campus` binary's mimalloc, such as the benchmarks)
//! kept freed part buffers resident in its per-thread arenas while new ones were carved
//! out elsewhere, and a 100 MB upload grew the process by about 42 MB instead of 18.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use campus_tenant::{ObjectKey, TenantStore};
use tokio::task::JoinHandle;

use crate::error::Fail;
use crate::sniff::{self, Detected};

/// Size of every part but the last (S3 wants at least 5 MB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts on the wire at most; also the most part buffers one upload holds.
pub const IN_FLIGHT: usize = 2;

/// A part's number and ETag, and its bytes back for reuse.
type PartTask = JoinHandle<Result<(i32, String, Bytes), Fail>>;

/// An object being written; call [`ObjectWriter::finish`] or [`ObjectWriter::abort`].
pub struct ObjectWriter {
    store: TenantStore,
    key: ObjectKey,
    buf: BytesMut,
    detected: Option<Detected>,
    upload_id: Option<String>,
    next_part: i32,
    sending: VecDeque<PartTask>,
    /// Buffers of parts already sent, to fill again.
    spare: Vec<BytesMut>,
    parts: Vec<(i32, String)>,
    written: u64,
}

impl ObjectWriter {
    pub fn new(store: TenantStore, key: ObjectKey) -> Self {
        Self {
            store,
            key,
            buf: BytesMut::with_capacity(PART_SIZE),
            detected: None,
            upload_id: None,
            next_part: 1,
            sending: VecDeque::new(),
            spare: Vec::new(),
            parts: Vec::new(),
            written: 0,
        }
    }

    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// Bytes accepted so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// What the first bytes are, once known.
    pub fn detected(&self) -> Option<&Detected> {
        self.detected.as_ref()
    }

    /// Takes the next piece of the file.
    pub async fn write(&mut self, mut chunk: Bytes) -> Result<(), Fail> {
        self.written += chunk.len() as u64;
        while !chunk.is_empty() {
            let room = PART_SIZE - self.buf.len();
            let take = room.min(chunk.len());
            self.buf.extend_from_slice(&chunk.split_to(take));
            if self.detected.is_none() && self.buf.len() >= sniff::SNIFF_LEN {
                self.sniff()?;
            }
            if self.buf.len() == PART_SIZE {
                self.send_part().await?;
            }
        }
        Ok(())
    }

    fn sniff(&mut self) -> Result<(), Fail> {
        let head = &self.buf[..self.buf.len().min(sniff::SNIFF_LEN)];
        let d = sniff::detect(head).map_err(|_| {
            Fail::Unsupported("不能上传可执行程序。", "Programs may not be uploaded.")
        })?;
        self.detected = Some(d);
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), Fail> {
        let content_type = self
            .detected
            .as_ref()
            .map(|d| d.content_type.clone())
            .unwrap_or_else(|| "application/octet-stream".into());
        if self.upload_id.is_none() {
            self.upload_id = Some(
                self.store
                    .create_multipart(&self.key, &content_type)
                    .await?,
            );
        }
        let body = std::mem::take(&mut self.buf).freeze();
        let (store, key) = (self.store.clone(), self.key.clone());
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let n = self.next_part;
        self.next_part += 1;
        self.sending.push_back(tokio::spawn(async move {
            let etag = store.upload_part(&key, &upload_id, n, body.clone()).await?;
            Ok((n, etag, body))
        }));
        while self.sending.len() >= IN_FLIGHT {
            self.wait_oldest().await?;
        }
        // Fill a buffer whose part is done if there is one (see the module comment).
        self.buf = match self.spare.pop() {
            Some(buf) => buf,
            None => BytesMut::with_capacity(PART_SIZE),
        };
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<(), Fail> {
        if let Some(task) = self.sending.pop_front() {
            let (n, etag, body) = task
                .await
                .map_err(|e| Fail::Unavailable(format!("part upload task: {e}")))??;
            self.parts.push((n, etag));
            // The SDK has let go of the bytes once the part is stored; if it has not, the
            // buffer is simply freed and a new one made.
            if let Ok(mut buf) = body.try_into_mut() {
                if buf.capacity() >= PART_SIZE {
                    buf.clear();
                    self.spare.push(buf);
                }
            }
        }
        Ok(())
    }

    /// Stores what is left and completes the object; returns what the file is.
    pub async fn finish(mut self) -> Result<Detected, Fail> {
        let result = self.finish_inner().await;
        if result.is_err() {
            self.abort().await;
        }
        result
    }

    async fn finish_inner(&mut self) -> Result<Detected, Fail> {
        if self.detected.is_none() {
            self.sniff()?;
        }
        let detected = self.detected.clone().expect("sniffed above");
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buf).freeze();
            self.store
                .put(&self.key, body, &detected.content_type)
                .await?;
            return Ok(detected);
        }
        if !self.buf.is_empty() {
            self.send_part().await?;
        }
        while !self.sending.is_empty() {
            self.wait_oldest().await?;
        }
        let upload_id = self.upload_id.clone().unwrap_or_default();
        self.store
            .complete_multipart(&self.key, &upload_id, &self.parts)
            .await?;
        Ok(detected)
    }

    /// Gives up: stops parts on the wire and frees what was stored.
    pub async fn abort(&mut self) {
        for task in self.sending.drain(..) {
            task.abort();
        }
        if let Some(id) = self.upload_id.take() {
            if let Err(e) = self.store.abort_multipart(&self.key, &id).await {
                tracing::warn!(error = %e, key = self.key.as_str(), "abandoned multipart upload not aborted");
            }
        }
        self.buf = BytesMut::new();
        self.spare.clear();
    }
}
