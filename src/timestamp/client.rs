//! The RFC 3161 HTTP client used at signing time (digest §5 "Creating a timestamp").

use std::time::{Duration, SystemTime};

use der::asn1::{Int, OctetString, Uint};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

use crate::crypto::HashAlgorithm;
use crate::envelope::Timestamper;
use crate::x509::Certificate;

use super::asn1::{self, TimeStampResp};
use super::token::{parse_tst_info, verify_token};
use super::{
    rfc3339, sigalg, TimestampError, TimestampInfo, MAX_REPLY_BYTES, TIMESTAMP_QUERY_MEDIA_TYPE,
    TIMESTAMP_REPLY_MEDIA_TYPE,
};

/// Default limit for the whole exchange, connection to last body byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How far a genTime may lie ahead of our clock.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Obtains RFC 3161 timestamps from a TSA over HTTP(S) and verifies each token before it is
/// embedded, so a misbehaving TSA fails signing instead of producing an unverifiable
/// signature.
#[derive(Clone)]
pub struct HttpTimestamper {
    url: url::Url,
    tsa_roots: Vec<Certificate>,
    client: reqwest::Client,
    max_clock_skew: Duration,
}

impl std::fmt::Debug for HttpTimestamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTimestamper")
            .field("url", &self.url.as_str())
            .field("tsa_roots", &self.tsa_roots.len())
            .finish()
    }
}

/// reqwest client on rustls with the aws-lc-rs provider and the webpki roots; no redirects
/// (a redirected POST would turn into a GET, and the configured URL should be the endpoint).
pub(crate) fn default_client(timeout: Duration) -> Result<reqwest::Client, TimestampError> {
    crate::net::https_client(timeout).map_err(|e| TimestampError::Client(e.to_string()))
}

impl HttpTimestamper {
    /// A timestamper for the TSA at `url` (http or https) whose tokens must chain to one
    /// of `tsa_roots`.
    pub fn new(url: &str, tsa_roots: Vec<Certificate>) -> Result<Self, TimestampError> {
        let parsed = url::Url::parse(url).map_err(|e| TimestampError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TimestampError::Url {
                url: url.to_string(),
                reason: "only http and https TSA URLs are supported".into(),
            });
        }
        if tsa_roots.is_empty() {
            return Err(TimestampError::Url {
                url: url.to_string(),
                reason: "no TSA root certificate given; the TSA's answer could not be verified"
                    .into(),
            });
        }
        Ok(HttpTimestamper {
            url: parsed,
            tsa_roots,
            client: default_client(DEFAULT_TIMEOUT)?,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        })
    }

    /// Replace the overall request timeout (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, TimestampError> {
        self.client = default_client(timeout)?;
        Ok(self)
    }

    /// Replace how far genTime may be ahead of the local clock (default 60 s).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Request, check and verify a token over `hash(signature)`. Returns the DER
    /// TimeStampToken and what it asserts.
    pub async fn request_token(
        &self,
        signature: &[u8],
        hash: HashAlgorithm,
    ) -> Result<(Vec<u8>, TimestampInfo), TimestampError> {
        let url = self.url.to_string();
        let digest = hash.digest(signature);
        let (request, nonce) = build_request(hash, &digest)?;
        let body = self.post(&url, request).await?;
        let token = extract_token(&url, &body)?;

        let tst = parse_tst_info(&token).map_err(|e| TimestampError::BadResponse {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let mismatch = |reason: String| TimestampError::ResponseMismatch {
            url: url.clone(),
            reason,
        };
        match &tst.nonce {
            Some(n) if *n == nonce => {}
            Some(n) => {
                return Err(mismatch(format!(
                    "its nonce {} is not the nonce {} we sent (a replayed or misrouted answer)",
                    hex::encode(n.as_bytes()),
                    hex::encode(nonce.as_bytes())
                )))
            }
            None => return Err(mismatch("it carries no nonce, although we sent one".into())),
        }
        let imprint = &tst.message_imprint;
        if imprint.hash_algorithm.oid != sigalg::hash_oid(hash)
            || imprint.hashed_message.as_bytes() != digest.as_slice()
        {
            return Err(mismatch(format!(
                "its message imprint ({} {}) is not the {} {} we asked to timestamp",
                sigalg::name(&imprint.hash_algorithm),
                hex::encode(imprint.hashed_message.as_bytes()),
                hash.name(),
                hex::encode(&digest)
            )));
        }
        let gen_time = tst.gen_time.time;
        if gen_time > SystemTime::now() + self.max_clock_skew {
            return Err(mismatch(format!(
                "its genTime {} is in the future (more than {} s ahead of this machine's clock)",
                rfc3339(gen_time),
                self.max_clock_skew.as_secs()
            )));
        }

        let info = verify_token(&token, signature, &self.tsa_roots).map_err(|e| {
            TimestampError::TokenRejected {
                url: url.clone(),
                summary: summarise(&token),
                source: Box::new(e),
            }
        })?;
        Ok((token, info))
    }

    async fn post(&self, url: &str, request: Vec<u8>) -> Result<Vec<u8>, TimestampError> {
        let transport = |e: reqwest::Error| TimestampError::Transport {
            url: url.to_string(),
            reason: if e.is_timeout() {
                "the request timed out".to_string()
            } else {
                error_chain(&e)
            },
        };
        let mut response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, TIMESTAMP_QUERY_MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, TIMESTAMP_REPLY_MEDIA_TYPE)
            .body(request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            let detail = match response.headers().get(reqwest::header::LOCATION) {
                Some(loc) if status.is_redirection() => format!(
                    " (redirect to {:?}; configure that URL instead)",
                    loc.to_str().unwrap_or("?")
                ),
                _ => status
                    .canonical_reason()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
            };
            return Err(TimestampError::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
                detail,
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case(TIMESTAMP_REPLY_MEDIA_TYPE) {
            return Err(TimestampError::ContentType {
                url: url.to_string(),
                content_type,
            });
        }
        let too_large = || TimestampError::TooLarge {
            url: url.to_string(),
            limit: MAX_REPLY_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_REPLY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[async_trait::async_trait]
impl Timestamper for HttpTimestamper {
    async fn timestamp(&self, signature: &[u8], hash: HashAlgorithm) -> Result<Vec<u8>, String> {
        self.request_token(signature, hash)
            .await
            .map(|(token, _)| token)
            .map_err(|e| e.to_string())
    }
}

/// DER TimeStampReq v1 with NULL hash parameters, certReq and a random 160-bit nonce.
pub(crate) fn build_request(
    hash: HashAlgorithm,
    digest: &[u8],
) -> Result<(Vec<u8>, Int), TimestampError> {
    let internal = |e: der::Error| TimestampError::Client(format!("cannot encode request: {e}"));
    let mut random = [0u8; 20];
    aws_lc_rs::rand::fill(&mut random)
        .map_err(|_| TimestampError::Client("the system random generator failed".into()))?;
    let nonce = Int::from(Uint::new(&random).map_err(internal)?);
    let request = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier {
                oid: sigalg::hash_oid(hash),
                parameters: Some(Any::null()),
            },
            hashed_message: OctetString::new(digest).map_err(internal)?,
        },
        req_policy: None,
        nonce: Some(nonce.clone()),
        cert_req: true,
        extensions: None,
    };
    Ok((request.to_der().map_err(internal)?, nonce))
}

/// The DER TimeStampToken out of a TimeStampResp, or the TSA's refusal.
fn extract_token(url: &str, body: &[u8]) -> Result<Vec<u8>, TimestampError> {
    let bad = |reason: String| TimestampError::BadResponse {
        url: url.to_string(),
        reason,
    };
    let response = TimeStampResp::from_der(body).map_err(|e| {
        bad(format!(
            "{e} ({} bytes{})",
            body.len(),
            if body.is_empty() { ", empty body" } else { "" }
        ))
    })?;
    let status = &response.status;
    let mut details = Vec::new();
    if let Some(bits) = &status.fail_info {
        let names = asn1::fail_info_names(bits);
        if !names.is_empty() {
            details.push(format!("failInfo {}", names.join(", ")));
        }
    }
    if let Some(text) = &status.status_string {
        let text: Vec<String> = text
            .iter()
            .map(|s| format!("{:?}", s.as_str().chars().take(200).collect::<String>()))
            .collect();
        if !text.is_empty() {
            details.push(format!("TSA says {}", text.join(" ")));
        }
    }
    if status.status > 1 {
        return Err(TimestampError::Rejected {
            url: url.to_string(),
            status: format!("{} ({})", status.status, asn1::status_name(status.status)),
            details: if details.is_empty() {
                String::new()
            } else {
                format!(": {}", details.join("; "))
            },
        });
    }
    let token = response
        .time_stamp_token
        .ok_or_else(|| bad("status granted but no TimeStampToken".into()))?;
    token
        .to_der()
        .map_err(|e| bad(format!("cannot re-encode the token: {e}")))
}

/// One line about a token for error messages (what the TSA answered).
fn summarise(token: &[u8]) -> String {
    match super::parse_token_info(token) {
        Ok(info) => format!(
            "genTime {}, policy {}, serial {}, TSA certificate {}",
            rfc3339(info.gen_time),
            info.policy,
            info.serial,
            if info.tsa_subject.is_empty() {
                "absent".to_string()
            } else {
                format!("{:?}", info.tsa_subject)
            }
        ),
        Err(e) => format!("unparsable: {e}"),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_v1_with_null_params_cert_req_and_160_bit_nonce() {
        let digest = HashAlgorithm::Sha384.digest(b"sig");
        let (der, nonce) = build_request(HashAlgorithm::Sha384, &digest).unwrap();
        let req = TimeStampReq::from_der(&der).unwrap();
        assert_eq!(req.version, TspVersion::V1);
        assert!(req.cert_req);
        assert_eq!(
            req.message_imprint.hash_algorithm.oid,
            sigalg::hash_oid(HashAlgorithm::Sha384)
        );
        assert_eq!(
            req.message_imprint.hash_algorithm.parameters,
            Some(Any::null())
        );
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), digest);
        assert_eq!(req.nonce.as_ref(), Some(&nonce));
        // Positive, at most 160 bits (+ sign byte).
        let bytes = nonce.as_bytes();
        assert!(bytes.len() <= 21);
        assert!(bytes[0] & 0x80 == 0);
        let (_, other) = build_request(HashAlgorithm::Sha384, &digest).unwrap();
        assert_ne!(nonce, other, "nonces must be random");
    }

    #[test]
    fn rejects_non_http_urls_and_missing_roots() {
        assert!(matches!(
            HttpTimestamper::new("ftp://tsa.example", Vec::new()),
            Err(TimestampError::Url { .. })
        ));
        assert!(matches!(
            HttpTimestamper::new("http://tsa.example", Vec::new()),
            Err(TimestampError::Url { .. })
        ));
    }
}
