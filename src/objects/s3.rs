//! Objects in an S3 bucket: PutObject for ordinary files, multipart upload for large ones.
//!
//! The upload primitives of the port are S3's multipart upload calls, one each; `put` of a large
//! object and `put_parts` are built on them.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{Listed, ObjectError, ObjectStore, Part, Precondition, Upload, UploadedPart};
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
        let upload = self.begin_upload(key, content_type).await?;
        let mut sent = Vec::new();
        let put = async {
            self.send_parts(&upload, &mut sent, body).await?;
            self.complete_upload(&upload, &sent).await
        };
        let put = put.await;
        self.abort_if_failed(&upload, put).await
    }

    /// Uploads `body` as the next parts of `upload`, [`PART_SIZE`] each but the last.
    async fn send_parts(
        &self,
        upload: &Upload,
        sent: &mut Vec<UploadedPart>,
        body: Bytes,
    ) -> Result<(), ObjectError> {
        for chunk in body.chunks(PART_SIZE) {
            let number = sent.len() as i32 + 1;
            sent.push(
                self.upload_part(upload, number, body.slice_ref(chunk))
                    .await?,
            );
        }
        Ok(())
    }

    /// Aborts `upload` if `outcome` is a failure, so that no parts are left behind (they are
    /// billed until aborted); the failure is what the caller hears of.
    async fn abort_if_failed<T>(
        &self,
        upload: &Upload,
        outcome: Result<T, ObjectError>,
    ) -> Result<T, ObjectError> {
        if outcome.is_err() {
            let _ = self.abort_upload(upload).await;
        }
        outcome
    }

    /// The work of [`ObjectStore::put_parts`]; the upload it begins, if any, is left in `upload`
    /// for the caller to abort on failure.
    async fn put_parts_into(
        &self,
        key: &str,
        content_type: &str,
        parts: &mut tokio::sync::mpsc::Receiver<Part>,
        upload: &mut Option<(Upload, Vec<UploadedPart>)>,
    ) -> Result<(), ObjectError> {
        let mut pending: Vec<u8> = Vec::new();
        loop {
            match parts.recv().await {
                Some(Part::Data(data)) => pending.extend_from_slice(&data),
                Some(Part::End) => break,
                None => return Err(ObjectError::unfinished(key)),
            }
            if pending.len() >= PART_SIZE
                && (upload.is_some() || pending.len() > MULTIPART_THRESHOLD)
            {
                if upload.is_none() {
                    *upload = Some((self.begin_upload(key, content_type).await?, Vec::new()));
                }
                let (begun, sent) = upload.as_mut().expect("just begun");
                let full = pending.len() - pending.len() % PART_SIZE;
                let rest = pending.split_off(full);
                let full = Bytes::from(std::mem::replace(&mut pending, rest));
                self.send_parts(begun, sent, full).await?;
            }
        }
        match upload {
            None => self.put(key, Bytes::from(pending), content_type).await,
            Some((begun, sent)) => {
                if !pending.is_empty() {
                    self.send_parts(begun, sent, Bytes::from(pending)).await?;
                }
                self.complete_upload(begun, sent).await
            }
        }
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

/// Like [`request_error`], but S3's `NoSuchUpload` (the upload was completed or aborted) is
/// [`ObjectError::UploadGone`].
fn upload_error<E>(
    operation: &'static str,
    upload: &Upload,
    error: SdkError<E, HttpResponse>,
) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error.code() {
        Some("NoSuchUpload") => ObjectError::upload_gone(operation, upload),
        _ => request_error(operation, &upload.key, error),
    }
}

/// The HTTP status of S3's refusal, if `error` is one.
fn status<E>(error: &SdkError<E, HttpResponse>) -> Option<u16> {
    match error {
        SdkError::ServiceError(service) => Some(service.raw().status().as_u16()),
        _ => None,
    }
}

/// Like [`request_error`], but 409 (`ConditionalRequestConflict`: another conditional write of
/// the key was under way at once) is worth another try, as S3 says.
fn conditional_error<E>(
    operation: &'static str,
    key: &str,
    error: SdkError<E, HttpResponse>,
) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let conflict = status(&error) == Some(409);
    let mut error = request_error(operation, key, error);
    if let ObjectError::Request { retryable, .. } = &mut error {
        *retryable |= conflict;
    }
    error
}

/// An answer without a field S3 always sends.
fn unanswered(operation: &'static str, key: &str, missing: &str) -> ObjectError {
    ObjectError::Request {
        operation,
        key: key.to_owned(),
        message: format!("the answer has no {missing}"),
        retryable: false,
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

    async fn get_tagged(&self, key: &str) -> Result<Option<(Bytes, String)>, ObjectError> {
        const OPERATION: &str = "GetObject";
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(error) => return Err(request_error(OPERATION, key, error)),
        };
        let tag = object
            .e_tag
            .ok_or_else(|| unanswered(OPERATION, key, "ETag"))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Request {
                operation: OPERATION,
                key: key.to_owned(),
                retryable: true,
                message: e.to_string(),
            })?;
        Ok(Some((body.into_bytes(), tag)))
    }

    /// One PutObject with `If-None-Match: *` or `If-Match`, whatever the size (a conditional
    /// write is of small objects: a lock, a marker).
    async fn put_if(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        precondition: Precondition,
    ) -> Result<Option<String>, ObjectError> {
        const OPERATION: &str = "PutObject";
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let request = match precondition {
            Precondition::Absent => request.if_none_match("*"),
            Precondition::Tagged(tag) => request.if_match(tag),
        };
        match request.send().await {
            Ok(put) => Ok(Some(
                put.e_tag
                    .ok_or_else(|| unanswered(OPERATION, key, "ETag"))?,
            )),
            Err(error) if status(&error) == Some(412) => Ok(None),
            Err(error) => Err(conditional_error(OPERATION, key, error)),
        }
    }

    async fn delete_if(&self, key: &str, tag: &str) -> Result<bool, ObjectError> {
        let deleted = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(tag)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(true),
            // Another tag (412), or no object at all (404).
            Err(error) if matches!(status(&error), Some(412 | 404)) => Ok(false),
            Err(error) => Err(conditional_error("DeleteObject", key, error)),
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
    /// a larger one as an upload in parts begun once that much has come, so a part or two is
    /// held at a time, never the object. A failure, or the sender going away, aborts the upload.
    async fn put_parts(
        &self,
        key: &str,
        content_type: &str,
        mut parts: tokio::sync::mpsc::Receiver<Part>,
    ) -> Result<(), ObjectError> {
        let mut upload = None;
        let put = self
            .put_parts_into(key, content_type, &mut parts, &mut upload)
            .await;
        match upload {
            Some((upload, _)) => self.abort_if_failed(&upload, put).await,
            None => put,
        }
    }

    async fn begin_upload(&self, key: &str, content_type: &str) -> Result<Upload, ObjectError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(|e| request_error("CreateMultipartUpload", key, e))?;
        let id = created
            .upload_id
            .ok_or_else(|| unanswered("CreateMultipartUpload", key, "upload id"))?;
        Ok(Upload {
            key: key.to_owned(),
            id,
        })
    }

    async fn upload_part(
        &self,
        upload: &Upload,
        number: i32,
        body: Bytes,
    ) -> Result<UploadedPart, ObjectError> {
        const OPERATION: &str = "UploadPart";
        let uploaded = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| upload_error(OPERATION, upload, e))?;
        let tag = uploaded
            .e_tag
            .ok_or_else(|| unanswered(OPERATION, &upload.key, "ETag"))?;
        Ok(UploadedPart { number, tag })
    }

    async fn complete_upload(
        &self,
        upload: &Upload,
        parts: &[UploadedPart],
    ) -> Result<(), ObjectError> {
        let parts = parts
            .iter()
            .map(|part| {
                CompletedPart::builder()
                    .part_number(part.number)
                    .e_tag(&part.tag)
                    .build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| upload_error("CompleteMultipartUpload", upload, e))?;
        Ok(())
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&upload.key)
            .upload_id(&upload.id)
            .send()
            .await;
        match aborted.map_err(|e| upload_error("AbortMultipartUpload", upload, e)) {
            Err(error) if !error.is_upload_gone() => Err(error),
            _ => Ok(()),
        }
    }

    /// S3 lists uploads by key, then oldest first; its pages are followed to the end.
    async fn unfinished_uploads(&self, prefix: &str) -> Result<Vec<Upload>, ObjectError> {
        let mut uploads = Vec::new();
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(markers.0.take())
                .set_upload_id_marker(markers.1.take())
                .send()
                .await
                .map_err(|e| request_error("ListMultipartUploads", prefix, e))?;
            uploads.extend(page.uploads().iter().filter_map(|upload| {
                Some(Upload {
                    key: upload.key()?.to_owned(),
                    id: upload.upload_id()?.to_owned(),
                })
            }));
            // Without a key marker the next page would start over.
            match (page.is_truncated(), page.next_key_marker) {
                (Some(true), Some(key_marker)) => {
                    markers = (Some(key_marker), page.next_upload_id_marker);
                }
                _ => return Ok(uploads),
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

#[cfg(test)]
mod tests {
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn answer(status: u16, code: &str) -> SdkError<CompleteMultipartUploadError, HttpResponse> {
        let error =
            CompleteMultipartUploadError::generic(ErrorMetadata::builder().code(code).build());
        let status = status.try_into().expect("a status code");
        SdkError::service_error(error, HttpResponse::new(status, SdkBody::empty()))
    }

    /// The emulator answers a completion of an aborted upload with a 500, not S3's
    /// `NoSuchUpload`, so the judgement of S3's answers is tested here.
    #[test]
    fn no_such_upload_is_the_upload_gone_and_other_answers_are_judged_as_before() {
        let upload = Upload {
            key: "k".into(),
            id: "id".into(),
        };
        let judge =
            |status, code| upload_error("CompleteMultipartUpload", &upload, answer(status, code));
        let gone = judge(404, "NoSuchUpload");
        assert!(gone.is_upload_gone() && !gone.is_retryable(), "{gone}");
        let busy = judge(503, "SlowDown");
        assert!(!busy.is_upload_gone() && busy.is_retryable(), "{busy}");
        let refused = judge(400, "InvalidPart");
        assert!(
            !refused.is_upload_gone() && !refused.is_retryable(),
            "{refused}"
        );
    }
}
