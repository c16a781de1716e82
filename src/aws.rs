//! What the AWS implementations of the ports share: the SDK configuration from the default
//! chain, and how an SDK error is judged and described.
//!
//! Region, credentials and endpoints come from the SDK's default chain only (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, the ECS task role): no custom credential
//! handling.

use std::sync::Arc;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
// The same types are re-exported by every SDK crate; S3's names are used for all of them.
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::config::CallTimeout;
use crate::failure::Failure;
use crate::metrics::{Counter, Metrics};

/// The SDK configuration of this process (region, credentials, endpoints, retries).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The timeouts of one kind of call on top of `sdk`'s (whose connect timeout is kept): a call
/// that never answers ends as a timeout error, which [`is_retryable`] retries like a 5xx.
pub fn timeouts(sdk: &SdkConfig, call: CallTimeout) -> TimeoutConfig {
    let connect = sdk.timeout_config().and_then(|t| t.connect_timeout());
    let mut builder = TimeoutConfig::builder()
        .operation_attempt_timeout(call.attempt)
        .operation_timeout(call.operation);
    builder.set_connect_timeout(connect);
    builder.build()
}

/// Throttling, timeouts, connection failures and 5xx are worth retrying; the rest is not.
pub fn is_retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or_default();
            status >= 500
                || status == 429
                || code.contains("Throttl")
                || code.contains("ProvisionedThroughputExceeded")
                || matches!(
                    code,
                    "SlowDown" | "RequestTimeout" | "LimitExceededException" | "InternalFailure"
                )
        }
        _ => false,
    }
}

/// How the policy of [`crate::failure`] handles `error`. Refusals of one item are the codes a
/// service gives for a request it finds invalid; anything else that is not worth retrying is
/// taken as a refusal of every call (permissions, a missing resource), never as a reason to exit.
pub fn failure<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> Failure {
    if is_retryable(error) {
        return Failure::Transient;
    }
    match error {
        SdkError::ServiceError(service)
            if matches!(
                service.err().code(),
                Some("ValidationException" | "InvalidParameter" | "InvalidParameterValue")
            ) =>
        {
            Failure::ItemRefused
        }
        _ => Failure::Refused,
    }
}

/// The error with its whole chain of causes, for logs and error messages.
pub fn describe<E: std::error::Error + 'static>(error: &SdkError<E, HttpResponse>) -> String {
    DisplayErrorContext(error).to_string()
}

/// Counts every HTTP request of one service's client into `counter`, retries included, so the
/// request metrics (and the cost they imply) are what AWS sees.
#[derive(Debug)]
pub struct CountRequests {
    metrics: Arc<Metrics>,
    counter: Counter,
}

impl CountRequests {
    pub fn new(metrics: &Arc<Metrics>, counter: Counter) -> Self {
        Self {
            metrics: metrics.clone(),
            counter,
        }
    }
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.metrics.add(self.counter, 1);
        Ok(())
    }
}
