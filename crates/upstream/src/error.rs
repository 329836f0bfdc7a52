//! What can go wrong talking to the upstream, in terms a practice manager and the engine can
//! act on. Messages name the request (method and path, never the query) and the status or
//! FHIR issue code; never a body, which may hold patient data.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// "GET /fhir/Patient": the request without its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request(String);

impl Request {
    pub(crate) fn describe(method: &Method, url: &str) -> Self {
        let without_query = url.split(['?', '#']).next().unwrap_or_default();
        let path = without_query
            .find("://")
            .and_then(|i| {
                without_query[i + 3..]
                    .find('/')
                    .map(|j| &without_query[i + 3 + j..])
            })
            .unwrap_or(without_query);
        Self(format!("{method} {path}"))
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream client set-up: {0}")]
    Config(&'static str),
    #[error("the upstream did not answer {request} in time")]
    Timeout { request: Request },
    #[error("the upstream cannot be reached ({request})")]
    Unreachable { request: Request },
    #[error("the upstream's answer to {request} was cut off")]
    CutOff { request: Request },
    #[error("the upstream's answer to {request} is not valid FHIR JSON")]
    Malformed { request: Request },
    #[error("the upstream is busy or failing: {status} to {request}")]
    Unavailable {
        request: Request,
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the upstream has no such resource ({request})")]
    NotFound { request: Request },
    /// 412, or 409 without a more specific code: the resource changed since the version
    /// the change was based on. GP Connect answers 409 where plain FHIR answers 412.
    #[error("the record changed upstream since it was read ({request})")]
    VersionConflict { request: Request },
    /// 409 `DUPLICATE_REJECTED`: e.g. the slot has been booked meanwhile.
    #[error("the upstream refused a duplicate ({request}): the slot or record is already taken")]
    Duplicate { request: Request },
    #[error("the upstream refused {request}: {status}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Refused {
        request: Request,
        status: u16,
        /// The FHIR issue code or GP Connect error code, never free text.
        code: Option<String>,
    },
}

impl UpstreamError {
    pub(crate) fn from_transport(request: Request, e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout { request }
        } else if e.is_connect() {
            Self::Unreachable { request }
        } else {
            Self::CutOff { request }
        }
    }

    /// A failure while reading the body after the headers arrived.
    pub(crate) fn into_cut_off(self) -> Self {
        match self {
            Self::Unreachable { request } => Self::CutOff { request },
            other => other,
        }
    }

    pub(crate) fn from_status(
        request: Request,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Self {
        let code = error_code(body);
        match status.as_u16() {
            429 | 500 | 502 | 503 | 504 => Self::Unavailable {
                request,
                status: status.as_u16(),
                retry_after: headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            404 | 410 => Self::NotFound { request },
            412 => Self::VersionConflict { request },
            409 if code.as_deref() == Some("DUPLICATE_REJECTED") => Self::Duplicate { request },
            409 => Self::VersionConflict { request },
            s => Self::Refused {
                request,
                status: s,
                code,
            },
        }
    }

    /// Whether the same request may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Unreachable { .. }
                | Self::CutOff { .. }
                | Self::Malformed { .. }
                | Self::Unavailable { .. }
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable code for screens, logs and the journal's outcome column.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Timeout { .. } => "timeout",
            Self::Unreachable { .. } => "unreachable",
            Self::CutOff { .. } => "cut_off",
            Self::Malformed { .. } => "malformed",
            Self::Unavailable { .. } => "unavailable",
            Self::NotFound { .. } => "not_found",
            Self::VersionConflict { .. } => "version_conflict",
            Self::Duplicate { .. } => "duplicate",
            Self::Refused { .. } => "refused",
        }
    }
}

/// The machine-readable code of an OperationOutcome: a GP Connect / Spine error code from
/// `issue[0].details.coding[0].code` if present, else the FHIR `issue[0].code`.
fn error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let issue = v.get("issue")?.get(0)?;
    issue
        .pointer("/details/coding/0/code")
        .or_else(|| issue.get("code"))
        .and_then(Value::as_str)
        .filter(|c| {
            c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_requests_without_their_query() {
        let r = Request::describe(
            &Method::GET,
            "http://127.0.0.1:8080/fhir/Patient?identifier=x|9434765919&_count=5",
        );
        assert_eq!(r.to_string(), "GET /fhir/Patient");
    }

    #[test]
    fn maps_statuses_to_what_the_engine_does_next() {
        let req = || Request("POST /fhir/Appointment".into());
        let h = HeaderMap::new();
        let dup = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"duplicate","details":{"coding":[{"code":"DUPLICATE_REJECTED"}]}}]}"#;
        assert!(matches!(
            UpstreamError::from_status(req(), StatusCode::CONFLICT, &h, dup),
            UpstreamError::Duplicate { .. }
        ));
        assert!(matches!(
            UpstreamError::from_status(req(), StatusCode::CONFLICT, &h, b""),
            UpstreamError::VersionConflict { .. }
        ));
        assert!(matches!(
            UpstreamError::from_status(req(), StatusCode::PRECONDITION_FAILED, &h, b""),
            UpstreamError::VersionConflict { .. }
        ));
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        let e = UpstreamError::from_status(req(), StatusCode::SERVICE_UNAVAILABLE, &h, b"");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = UpstreamError::from_status(
            req(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &h,
            br#"{"issue":[{"code":"invalid","diagnostics":"Mr Smith"}]}"#,
        );
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "the upstream refused POST /fhir/Appointment: 422 (invalid)"
        );
    }
}
