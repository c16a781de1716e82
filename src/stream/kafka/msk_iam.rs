//! Amazon MSK's IAM access control over SASL/OAUTHBEARER: the token is a presigned SigV4 URL of
//! the `kafka-cluster:Connect` action (service `kafka-cluster`, valid 15 minutes), signed with the
//! task's credentials and base64url-encoded without padding, as AWS's MSK IAM signer libraries
//! build it. A token is made for each connection's handshake; the SDK caches the credentials.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use futures::FutureExt;
use rskafka::client::OauthCallback;

/// How long a token is valid (what MSK expects).
const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
const USER_AGENT: &str = concat!("kinetick/", env!("CARGO_PKG_VERSION"));

/// The callback the Kafka client asks for a token at each SASL handshake.
pub fn token_callback(sdk: &aws_config::SdkConfig) -> anyhow::Result<OauthCallback> {
    let region = sdk
        .region()
        .ok_or_else(|| anyhow::anyhow!("aws-msk-iam needs an AWS region (AWS_REGION)"))?
        .to_string();
    let provider: SharedCredentialsProvider = sdk
        .credentials_provider()
        .ok_or_else(|| anyhow::anyhow!("aws-msk-iam needs AWS credentials"))?;
    Ok(Arc::new(move || {
        let (provider, region) = (provider.clone(), region.clone());
        async move {
            let credentials = provider.provide_credentials().await?;
            Ok(token(&credentials, &region, SystemTime::now())?)
        }
        .boxed()
    }))
}

/// The token for `region` at `now`.
pub fn token(credentials: &Credentials, region: &str, now: SystemTime) -> anyhow::Result<String> {
    let host = format!("kafka.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=kafka-cluster%3AConnect");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_LIFETIME);
    let identity = credentials.clone().into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kafka-cluster")
        .time(now)
        .settings(settings)
        .build()?
        .into();
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(&[]),
    )?;
    let (instructions, _signature) = sign(request, &params)?.into_parts();
    let mut signed = url::Url::parse(&url)?;
    {
        let mut query = signed.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
        query.append_pair("User-Agent", USER_AGENT);
    }
    Ok(base64_simd::URL_SAFE_NO_PAD.encode_to_string(signed.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_the_presigned_connect_url_in_base64url() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01
        let token = token(&credentials, "eu-west-1", at).unwrap();
        assert!(
            !token.contains(['=', '+', '/']),
            "base64url without padding"
        );
        let url = base64_simd::URL_SAFE_NO_PAD.decode_to_vec(&token).unwrap();
        let url = url::Url::parse(std::str::from_utf8(&url).unwrap()).unwrap();
        assert_eq!(url.host_str(), Some("kafka.eu-west-1.amazonaws.com"));
        let query: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["Action"], "kafka-cluster:Connect");
        assert_eq!(query["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(
            query["X-Amz-Credential"],
            "AKIDEXAMPLE/20260101/eu-west-1/kafka-cluster/aws4_request"
        );
        assert_eq!(query["X-Amz-Date"], "20260101T000000Z");
        assert_eq!(query["X-Amz-Expires"], "900");
        assert_eq!(query["X-Amz-SignedHeaders"], "host");
        assert_eq!(query["X-Amz-Signature"].len(), 64);
        assert!(query["User-Agent"].starts_with("kinetick/"));
        // The signature depends on the secret: another key signs differently.
        let other = Credentials::new("AKIDEXAMPLE", "other", None, None, "test");
        assert_ne!(token, super::token(&other, "eu-west-1", at).unwrap());
    }
}
