//! Objects in an S3 bucket: PutObject for ordinary files, multipart upload for large ones.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{Listed, ObjectError, ObjectStore, Part};
use crate::aws;

/// Objects larger than this are uploaded in parts (S3 allows 5 GiB in one PutObject, but parts
/// retry independently and keep each request small).
const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Size of each part but the last (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

pub struct S3ObjectStore {
    client: Client,
    bucket: String,
}

impl S3ObjectStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    async fn put_multipart(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        let mut upload = Multipart::create(self, key, content_type).await?;
        for chunk in body.chunks(PART_SIZE) {
            upload.send(body.slice_ref(chunk)).await?;
        }
        upload.complete().await
    }
}

/// A multipart upload under way: its parts so far. A failed part aborts it, so no parts are
/// left behind (they are billed until aborted).
struct Multipart<'a> {
    store: &'a S3ObjectStore,
    key: &'a str,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl<'a> Multipart<'a> {
    async fn create(
        store: &'a S3ObjectStore,
        key: &'a str,
        content_type: &str,
    ) -> Result<Self, ObjectError> {
        let created = store
            .client
            .create_multipart_upload()
            .bucket(&store.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| request_error("CreateMultipartUpload", key, e))?;
        Ok(Self {
            store,
            key,
            upload_id: created.upload_id().unwrap_or_default().to_owned(),
            parts: Vec::new(),
        })
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), ObjectError> {
        let number = self.parts.len() as i32 + 1;
        let uploaded = self
            .store
            .client
            .upload_part()
            .bucket(&self.store.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(chunk))
            .send()
            .await;
        match uploaded {
            Ok(part) => {
                self.parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag)
                        .build(),
                );
                Ok(())
            }
            Err(error) => {
                self.abort().await;
                Err(request_error("UploadPart", self.key, error))
            }
        }
    }

    async fn complete(self) -> Result<(), ObjectError> {
        let completed = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        if let Err(error) = completed {
            self.abort().await;
            return Err(request_error("CompleteMultipartUpload", self.key, error));
        }
        Ok(())
    }

    async fn abort(&self) {
        let _ = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
    }
}

fn request_error<E>(
    operation: &'static str,
    key: &str,
    error: SdkError<E, HttpResponse>,
) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    ObjectError::Request {
        operation,
        key: key.to_owned(),
        retryable: aws::is_retryable(&error),
        message: aws::describe(&error),
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectError> {
        if body.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, body, content_type).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| request_error("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, ObjectError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => {
                let body = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| ObjectError::Request {
                        operation: "GetObject",
                        key: key.to_owned(),
                        retryable: true,
                        message: e.to_string(),
                    })?;
                Ok(Some(body.into_bytes()))
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) => Err(request_error("GetObject", key, error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| request_error("DeleteObject", key, e))?;
        Ok(())
    }

    /// Parts are gathered to 8 MiB; an object that ends below 16 MiB goes up in one PutObject,
    /// a larger one as a multipart upload begun once that much has come, so a part or two is
    /// held at a time, never the object.
    async fn put_parts(
        &self,
        key: &str,
        content_type: &str,
        mut parts: tokio::sync::mpsc::Receiver<Part>,
    ) -> Result<(), ObjectError> {
        let mut pending: Vec<u8> = Vec::new();
        let mut upload: Option<Multipart<'_>> = None;
        loop {
            match parts.recv().await {
                Some(Part::Data(data)) => pending.extend_from_slice(&data),
                Some(Part::End) => break,
                None => {
                    if let Some(upload) = upload {
                        upload.abort().await;
                    }
                    return Err(ObjectError::unfinished(key));
                }
            }
            let started = upload.is_some();
            if pending.len() >= PART_SIZE && (started || pending.len() > MULTIPART_THRESHOLD) {
                if upload.is_none() {
                    upload = Some(Multipart::create(self, key, content_type).await?);
                }
                let full = pending.len() - pending.len() % PART_SIZE;
                let rest = pending.split_off(full);
                let full = Bytes::from(std::mem::replace(&mut pending, rest));
                let multipart = upload.as_mut().expect("just created");
                for chunk in full.chunks(PART_SIZE) {
                    multipart.send(full.slice_ref(chunk)).await?;
                }
            }
        }
        match upload {
            None => self.put(key, Bytes::from(pending), content_type).await,
            Some(mut upload) => {
                if !pending.is_empty() {
                    upload.send(Bytes::from(pending)).await?;
                }
                upload.complete().await
            }
        }
    }

    async fn list_sized(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        let mut listed = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| request_error("ListObjectsV2", prefix, e))?;
            listed.extend(page.contents().iter().filter_map(|object| {
                Some(Listed {
                    key: object.key()?.to_owned(),
                    bytes: u64::try_from(object.size().unwrap_or(0)).unwrap_or(0),
                })
            }));
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let listed = self.list_sized(prefix).await?;
        Ok(listed.into_iter().map(|object| object.key).collect())
    }
}
