//! Per-school object storage over the real `aws-sdk-s3` client.
//!
//! A [`TenantStore`] takes only [`ObjectKey`]s — keys relative to the school's prefix that
//! have been checked for traversal (`..`), absolute paths, backslashes, percent-encoded
//! tricks and control characters — so no caller can name an object outside its school.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::error::{Result, TenantError};
use crate::registry::Tenant;

/// A key relative to a school's prefix, e.g. `notices/2026/11/plan.pdf`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("object key is empty")]
    Empty,
    #[error("object key is longer than 900 bytes")]
    TooLong,
    #[error("object key must be relative (it starts with '/')")]
    Absolute,
    #[error("object key may not contain '..', '.' or empty path segments")]
    Traversal,
    #[error("object key may not contain backslashes, '%' escapes or control characters")]
    Character,
}

impl ObjectKey {
    pub fn parse(raw: &str) -> Result<Self, KeyError> {
        if raw.is_empty() {
            return Err(KeyError::Empty);
        }
        if raw.len() > 900 {
            return Err(KeyError::TooLong);
        }
        if raw.starts_with('/') {
            return Err(KeyError::Absolute);
        }
        // '%' is refused outright: keys are never URL-decoded here, but a proxy, browser or
        // another tool might decode `%2e%2e%2f` into `../` later.
        if raw.chars().any(|c| c == '\\' || c == '%' || c.is_control()) {
            return Err(KeyError::Character);
        }
        if raw
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(KeyError::Traversal);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The bucket the platform uses, shared by every school; only [`TenantStore`] reaches it
/// for school data.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl ObjectStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The store for one school.
    pub fn for_tenant(&self, tenant: &Tenant) -> TenantStore {
        TenantStore {
            store: self.clone(),
            prefix: tenant.s3_prefix.clone(),
        }
    }

    /// Whether the bucket answers (readiness probe).
    pub async fn ping(&self) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| storage("head bucket", e))?;
        Ok(())
    }

    /// Creates the bucket if it does not exist (demo and tests; production buckets come
    /// from Terraform).
    pub async fn ensure_bucket(&self) -> Result<()> {
        if self.ping().await.is_ok() {
            return Ok(());
        }
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| storage("create bucket", e))?;
        Ok(())
    }

    pub(crate) fn tenant_prefix(&self, prefix: &str) -> TenantStore {
        TenantStore {
            store: self.clone(),
            prefix: prefix.to_owned(),
        }
    }
}

fn storage(what: &str, e: impl std::error::Error) -> TenantError {
    // The SDK's Display is terse ("service error"); the source chain says what happened.
    let mut msg = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    TenantError::Storage(msg)
}

/// One school's view of the bucket: every key is prefixed with `schools/<slug>/`.
#[derive(Clone, Debug)]
pub struct TenantStore {
    store: ObjectStore,
    prefix: String,
}

/// Where a school's marker object lives; writing it "reserves" the prefix at onboarding.
pub const MARKER: &str = ".campus-school.json";

impl TenantStore {
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full bucket key for a relative key.
    pub fn full_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    pub async fn put(&self, key: &ObjectKey, body: Bytes, content_type: &str) -> Result<()> {
        self.store
            .client
            .put_object()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| storage("put object", e))?;
        Ok(())
    }

    /// Reads a whole object; `None` if it does not exist.
    pub async fn get(&self, key: &ObjectKey) -> Result<Option<(Bytes, Option<String>)>> {
        let out = self
            .store
            .client
            .get_object()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match out {
            Ok(out) => {
                let content_type = out.content_type().map(str::to_owned);
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| storage("read object", e))?;
                Ok(Some((body.into_bytes(), content_type)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(storage("get object", e)),
        }
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.store
            .client
            .delete_object()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| storage("delete object", e))?;
        Ok(())
    }

    /// Reads an object as a stream (for proxied downloads of large files); `None` if it
    /// does not exist. Also returns the object's length.
    pub async fn get_stream(&self, key: &ObjectKey) -> Result<Option<(ByteStream, Option<i64>)>> {
        let out = self
            .store
            .client
            .get_object()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .send()
            .await;
        match out {
            Ok(out) => {
                let len = out.content_length();
                Ok(Some((out.body, len)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(storage("get object", e)),
        }
    }

    /// Starts a multipart upload (large files are sent in parts of at least 5 MB, so no
    /// caller needs to hold a whole file in memory); returns the upload id.
    pub async fn create_multipart(&self, key: &ObjectKey, content_type: &str) -> Result<String> {
        let out = self
            .store
            .client
            .create_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| storage("create multipart upload", e))?;
        out.upload_id()
            .map(str::to_owned)
            .ok_or_else(|| TenantError::Storage("create multipart upload: no upload id".into()))
    }

    /// Sends part `number` (from 1) of a multipart upload; returns its ETag.
    pub async fn upload_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<String> {
        let out = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| storage("upload part", e))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    /// Joins the parts (number, ETag) into the object.
    pub async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[(i32, String)],
    ) -> Result<()> {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let parts = parts
            .iter()
            .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
            .collect();
        self.store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| storage("complete multipart upload", e))?;
        Ok(())
    }

    /// Abandons a multipart upload and frees its parts.
    pub async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<()> {
        self.store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| storage("abort multipart upload", e))?;
        Ok(())
    }

    /// Relative keys of every object of the school (including the marker).
    pub async fn list(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut pages = self
            .store
            .client
            .list_objects_v2()
            .bucket(&self.store.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| storage("list objects", e))?;
            for obj in page.contents() {
                if let Some(k) = obj.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(k.to_owned());
                }
            }
        }
        Ok(keys)
    }

    /// A short-lived URL a browser can GET the object from directly.
    pub async fn presign_get(&self, key: &ObjectKey, ttl: Duration) -> Result<String> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| storage("presign", e))?;
        let req = self
            .store
            .client
            .get_object()
            .bucket(&self.store.bucket)
            .key(self.full_key(key))
            .presigned(config)
            .await
            .map_err(|e| storage("presign", e))?;
        Ok(req.uri().to_owned())
    }

    /// Deletes every object under the prefix (purge after the grace period).
    pub async fn delete_all(&self) -> Result<usize> {
        let keys = self.list().await?;
        for key in &keys {
            self.store
                .client
                .delete_object()
                .bucket(&self.store.bucket)
                .key(format!("{}{key}", self.prefix))
                .send()
                .await
                .map_err(|e| storage("delete object", e))?;
        }
        Ok(keys.len())
    }

    /// Writes the marker object that claims the prefix for this school.
    pub(crate) async fn reserve(&self, body: String) -> Result<()> {
        let key = ObjectKey::parse(MARKER).expect("marker key is valid");
        self.put(&key, Bytes::from(body), "application/json").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_accepted() {
        for good in [
            "a",
            "notices/2026/计划.pdf",
            "x/y.z/..a",
            "a...b",
            "branding/badge.svg",
        ] {
            assert!(
                ObjectKey::parse(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
    }

    #[test]
    fn keys_that_try_to_escape_the_prefix_are_rejected() {
        let cases = [
            ("", KeyError::Empty),
            ("/etc/passwd", KeyError::Absolute),
            ("../other-school/secret", KeyError::Traversal),
            ("a/../../b", KeyError::Traversal),
            ("a/./b", KeyError::Traversal),
            ("a//b", KeyError::Traversal),
            ("a/", KeyError::Traversal),
            ("..", KeyError::Traversal),
            ("%2e%2e/b", KeyError::Character),
            ("a%2fb", KeyError::Character),
            ("..%2F..%2Fb", KeyError::Character),
            ("a\\..\\b", KeyError::Character),
            ("a\nb", KeyError::Character),
            ("a\0b", KeyError::Character),
        ];
        for (raw, want) in cases {
            assert_eq!(ObjectKey::parse(raw), Err(want), "{raw:?}");
        }
        assert_eq!(ObjectKey::parse(&"a".repeat(901)), Err(KeyError::TooLong));
    }
}
