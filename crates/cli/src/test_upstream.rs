//! The test upstream as a child process: the Medplum-based FHIR R4 server in
//! `tests/upstream/server.mjs`, loaded with a fixture practice, listening on a free port on
//! 127.0.0.1, with its fault-injection and request-statistics endpoints. It exits when this
//! handle is dropped, and by itself if this process dies (it watches its stdin). A handle
//! can also reach one already running elsewhere (`connect`), on another machine, say.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub struct TestUpstream {
    /// The server's process, when this handle started it.
    child: Option<Child>,
    /// FHIR base URL, e.g. `http://127.0.0.1:41234/fhir`.
    pub base_url: String,
    /// Server root, for the control endpoints.
    pub root: String,
    /// Resources loaded at start, by type.
    pub loaded: Value,
    http: reqwest::Client,
}

/// The repository's root (where `tests/upstream` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the cli crate sits two levels below the repository root")
        .to_path_buf()
}

impl TestUpstream {
    /// Starts the server on `fixtures` (a folder of NDJSON files) and waits until it is ready.
    pub fn start(fixtures: &Path) -> Result<Self, String> {
        Self::start_at(fixtures, None)
    }

    /// As `start`, with the clock the GP Connect "past" rule uses starting at `now` (it then
    /// ticks on): a practice generated for a fixed anchor day is bookable "on" that day.
    pub fn start_at(fixtures: &Path, now: Option<DateTime<Utc>>) -> Result<Self, String> {
        let server = repo_root().join("tests/upstream/server.mjs");
        if !repo_root()
            .join("tests/upstream/node_modules/@medplum")
            .exists()
        {
            return Err(
                "the test upstream's packages are not installed: run `npm ci` in tests/upstream (scripts/test does it)"
                    .into(),
            );
        }
        let mut child = Command::new("node")
            .arg(&server)
            .arg("--fixtures")
            .arg(fixtures)
            .args(["--port", "0", "--exit-with-stdin"])
            .args(
                now.map(|t| ["--now".to_string(), instant(t)])
                    .into_iter()
                    .flatten(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start node for the test upstream: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or("no stdout from the test upstream")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading the test upstream's ready line: {e}"))?;
        let ready: Value = serde_json::from_str(&line).map_err(|_| {
            let _ = child.kill();
            format!("the test upstream did not start (its first line was {line:?})")
        })?;
        let base_url = ready["base"]
            .as_str()
            .ok_or("ready line without base")?
            .to_string();
        let root = base_url.trim_end_matches("/fhir").to_string();
        lifeboat_upstream::install_crypto_provider();
        Ok(Self {
            child: Some(child),
            base_url,
            root,
            loaded: ready["loaded"].clone(),
            http: control_client()?,
        })
    }

    /// A handle on a test upstream already running at `root` (e.g. `http://10.0.0.2:8080`),
    /// checked to be one: it must answer its request statistics, which no clinical
    /// system does. What it loaded is not known here.
    pub async fn connect(root: &str) -> Result<Self, String> {
        let root = root.trim_end_matches('/').to_string();
        lifeboat_upstream::install_crypto_provider();
        let up = Self {
            child: None,
            base_url: format!("{root}/fhir"),
            root,
            loaded: Value::Null,
            http: control_client()?,
        };
        // What answered is not echoed: if it is not the test upstream, it may be anything,
        // a clinical system included.
        let not_one = |why: String| {
            format!(
                "{} did not answer as a test upstream (tests/upstream/server.mjs) does: {why}",
                up.root
            )
        };
        let answer = up
            .http
            .get(format!("{}/$stats", up.root))
            .send()
            .await
            .map_err(|e| not_one(format!("no answer ({e})")))?;
        if !answer.status().is_success() {
            return Err(not_one(format!("/$stats gave HTTP {}", answer.status())));
        }
        let stats: Value = answer.json().await.unwrap_or(Value::Null);
        if !(stats["requests"].is_u64() && stats["recent"].is_array()) {
            return Err(not_one("its /$stats are not request statistics".into()));
        }
        Ok(up)
    }

    async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}/{path}", self.root));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("control {path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("control {path}: {status} {v}"));
        }
        Ok(v)
    }

    /// The server's process id (to read its CPU time, say), when it runs here.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sets the fault mode, e.g. `{"mode": "error", "status": 503, "count": 2}`.
    pub async fn fault(&self, setting: Value) -> Result<Value, String> {
        self.control(reqwest::Method::POST, "$fault", Some(setting))
            .await
    }

    /// Waits (up to `within`) until no request is held by `hang`: once a client has given
    /// up, the server notices its closed connection a moment later. Healing before then
    /// would answer, and so carry out, a request its client no longer waits for.
    pub async fn until_nothing_hangs(&self, within: std::time::Duration) -> Result<(), String> {
        let started = std::time::Instant::now();
        loop {
            let state = self.control(reqwest::Method::GET, "$fault", None).await?;
            if state["hanging"].as_u64() == Some(0) {
                return Ok(());
            }
            if started.elapsed() > within {
                return Err(format!("requests still hanging after {within:?}: {state}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Back to normal service.
    pub async fn heal(&self) -> Result<Value, String> {
        self.fault(serde_json::json!({"mode": "none"})).await
    }

    /// Requests served since the last reset: `{"requests": n, "byPath": {...}, "recent": [...]}`.
    pub async fn stats(&self) -> Result<Value, String> {
        self.control(reqwest::Method::GET, "$stats", None).await
    }

    pub async fn reset_stats(&self) -> Result<Value, String> {
        self.control(reqwest::Method::POST, "$stats/reset", None)
            .await
    }

    /// Moves the clock the GP Connect "past" rule uses to `now` (it ticks on from there).
    pub async fn set_clock(&self, now: DateTime<Utc>) -> Result<Value, String> {
        self.control(
            reqwest::Method::POST,
            "$clock",
            Some(serde_json::json!({ "now": instant(now) })),
        )
        .await
    }

    /// A plain FHIR call, as the practice's own system would make it (not through Lifeboat).
    pub async fn fhir(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.fhir_with(method, path, body, &[]).await
    }

    /// The practice's own clinical system writing (`X-Bypass-GP-Connect: true`): GP Connect's
    /// appointment rules, which bind consumers such as Lifeboat, do not apply to it.
    pub async fn practice_fhir(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.fhir_with(method, path, body, &[("X-Bypass-GP-Connect", "true")])
            .await
    }

    /// A plain FHIR call with extra headers (e.g. `If-Match`).
    pub async fn fhir_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), String> {
        let mut req = self
            .http
            .request(
                method,
                format!("{}/{}", self.base_url, path.trim_start_matches('/')),
            )
            .header("Accept", "application/fhir+json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/fhir+json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|e| format!("FHIR {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| e.to_string())?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn control_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
