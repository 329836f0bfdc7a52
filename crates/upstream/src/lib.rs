//! The FHIR R4 client for the practice's upstream clinical system.
//!
//! Owns HTTP: base URL and bearer token, timeouts, retry with exponential backoff and jitter
//! on 429, 5xx, connection failures, cut-off and garbled answers (honouring `Retry-After`),
//! search paging through Bundle `next` links, and conditional writes (`If-None-Exist`,
//! `If-Match`). Errors say what failed (method and path, status, FHIR issue code) and never
//! carry patient data: no query strings, no bodies.

mod error;

use error::Request;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

pub use error::UpstreamError;

const FHIR_JSON: &str = "application/fhir+json";

/// How to reach the upstream and how patient to be with it.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// FHIR base, e.g. `https://gp.example.nhs.uk/fhir` (no trailing slash needed).
    pub base_url: String,
    pub bearer_token: Option<String>,
    /// Whole-request limit: a hung upstream is given up on after this.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Tries per request, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl UpstreamConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            bearer_token: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 4,
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
        }
    }
}

/// One answer from the upstream, body parsed.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// Version from the `ETag` header (`W/"3"` -> `3`), if any.
    pub etag_version: Option<String>,
    /// The upstream's own clock (`Date` header): checkpoints use it, never ours.
    pub server_time: Option<DateTime<Utc>>,
}

/// One page of a search.
#[derive(Debug)]
pub struct SearchPage {
    /// Each resource's JSON text exactly as the upstream sent it.
    pub resources: Vec<Box<RawValue>>,
    pub next: Option<String>,
    pub total: Option<u64>,
    pub server_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Bundle<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'a str,
    total: Option<u64>,
    #[serde(default)]
    link: Vec<Link>,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Link {
    relation: String,
    url: String,
}

#[derive(Deserialize)]
struct Entry {
    resource: Option<Box<RawValue>>,
}

/// A conditional-write precondition.
#[derive(Debug, Clone, Copy)]
pub enum Precondition<'a> {
    None,
    /// `If-None-Exist: <search>`: create only if nothing matches (exactly-once creates).
    IfNoneExist(&'a str),
    /// `If-Match: W/"<versionId>"`: update only the version the change was based on.
    IfMatch(&'a str),
}

pub struct Upstream {
    http: reqwest::Client,
    config: UpstreamConfig,
    jitter: AtomicU64,
}

/// rustls needs one crypto provider per process; ring avoids the aws-lc C build. Call before
/// building any other HTTP client in the process.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, UpstreamError> {
        install_crypto_provider();
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(FHIR_JSON));
        if let Some(token) = &config.bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                UpstreamError::Config("the bearer token has characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(8)
            .build()
            .map_err(|_| UpstreamError::Config("the HTTP client could not be built"))?;
        let seed = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        Ok(Self {
            http,
            config,
            jitter: AtomicU64::new(seed),
        })
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// `<base>/<path>`; `path` may carry a query.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.config.base_url, path.trim_start_matches('/'))
    }

    /// Fetches one search page (a `searchset` Bundle) from a full URL, as given by `url`
    /// or a previous page's `next`.
    pub async fn search_page(&self, url: &str) -> Result<SearchPage, UpstreamError> {
        self.with_retries(
            Method::GET,
            url,
            None,
            Precondition::None,
            |_, bytes, headers| {
                let bundle: Bundle = serde_json::from_slice(bytes).ok()?;
                if bundle.resource_type != "Bundle" {
                    return None;
                }
                Some(SearchPage {
                    resources: bundle
                        .entry
                        .into_iter()
                        .filter_map(|e| e.resource)
                        .collect(),
                    next: bundle
                        .link
                        .into_iter()
                        .find(|l| l.relation == "next")
                        .map(|l| l.url),
                    total: bundle.total,
                    server_time: server_time(headers),
                })
            },
        )
        .await
    }

    /// Reads one resource (`GET <base>/<Type>/<id>`).
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<Answer, UpstreamError> {
        let url = self.url(&format!("{resource_type}/{id}"));
        self.send(Method::GET, &url, None, Precondition::None).await
    }

    /// The upstream's CapabilityStatement: the cheap health probe.
    pub async fn capabilities(&self) -> Result<Answer, UpstreamError> {
        self.send(Method::GET, &self.url("metadata"), None, Precondition::None)
            .await
    }

    /// `POST <base>/<Type>`, conditional on `If-None-Exist` where given, so a retried or
    /// replayed create returns the first one instead of making a duplicate.
    pub async fn create(
        &self,
        resource_type: &str,
        body: &Value,
        precondition: Precondition<'_>,
    ) -> Result<Answer, UpstreamError> {
        let url = self.url(resource_type);
        self.send(Method::POST, &url, Some(body), precondition)
            .await
    }

    /// `PUT <base>/<Type>/<id>`, conditional on `If-Match` where given.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        body: &Value,
        precondition: Precondition<'_>,
    ) -> Result<Answer, UpstreamError> {
        let url = self.url(&format!("{resource_type}/{id}"));
        self.send(Method::PUT, &url, Some(body), precondition).await
    }

    /// Sends one request (with retries) and parses its JSON answer.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        precondition: Precondition<'_>,
    ) -> Result<Answer, UpstreamError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|_| UpstreamError::Config("the request body could not be written"))?;
        self.with_retries(method, url, body, precondition, |status, bytes, headers| {
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(bytes).ok()?
            };
            Some(Answer {
                status,
                body,
                etag_version: headers
                    .get(ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim_start_matches("W/").trim_matches('"').to_string()),
                server_time: server_time(headers),
            })
        })
        .await
    }

    /// One request with the retry policy: connection failures, timeouts, 429 and 5xx, and a
    /// cut-off or unreadable 2xx body are tried again after a backoff (or `Retry-After`);
    /// any other status is final. `decode` turns a 2xx body into `T`, or `None` if garbled.
    async fn with_retries<T>(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        precondition: Precondition<'_>,
        decode: impl Fn(u16, &[u8], &HeaderMap) -> Option<T>,
    ) -> Result<T, UpstreamError> {
        let what = Request::describe(&method, url);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self
                .attempt(&method, url, body.as_deref(), precondition, &what, &decode)
                .await;
            let error = match outcome {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if !error.is_retryable() || attempt >= self.config.max_attempts {
                return Err(error);
            }
            let wait = match error.retry_after() {
                Some(after) => after.min(self.config.backoff_max * 6),
                None => self.backoff(attempt),
            };
            tracing::warn!(request = %what, attempt, error = %error, wait_ms = wait.as_millis() as u64, "upstream request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<T>(
        &self,
        method: &Method,
        url: &str,
        body: Option<&[u8]>,
        precondition: Precondition<'_>,
        what: &Request,
        decode: &impl Fn(u16, &[u8], &HeaderMap) -> Option<T>,
    ) -> Result<T, UpstreamError> {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, FHIR_JSON).body(body.to_vec());
        }
        request = match precondition {
            Precondition::None => request,
            Precondition::IfNoneExist(search) => request.header("If-None-Exist", search),
            Precondition::IfMatch(version) => {
                request.header("If-Match", format!("W/\"{version}\""))
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| UpstreamError::from_transport(what.clone(), &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| UpstreamError::from_transport(what.clone(), &e).into_cut_off())?;
        if !status.is_success() {
            return Err(UpstreamError::from_status(
                what.clone(),
                status,
                &headers,
                &bytes,
            ));
        }
        decode(status.as_u16(), &bytes, &headers).ok_or_else(|| UpstreamError::Malformed {
            request: what.clone(),
        })
    }

    /// Full jitter: a random wait up to base * 2^(attempt-1), capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.config.backoff_max);
        // xorshift64*: jitter only needs to spread clients apart, not to be secret.
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter.store(x, Ordering::Relaxed);
        let fraction = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(fraction.max(0.1))
    }
}

/// The `Date` header as UTC.
fn server_time(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let text = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
