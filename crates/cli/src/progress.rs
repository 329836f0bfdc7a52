//! What `lifeboat sync` and `lifeboat status` print: a progress bar per resource type while
//! a sync runs, then a summary; the cache's state with its data age.

use std::io::Write;
use std::time::Duration;

use lifeboat_app::{App, AppError, Status};
use lifeboat_engine::{PassKind, SyncProgress, SyncReport};
use tokio::sync::mpsc;

pub async fn sync(app: &App, watch: bool) -> Result<(), AppError> {
    let every = Duration::from_secs(app.config().sync.interval_minutes.max(1) * 60);
    loop {
        let (tx, rx) = mpsc::unbounded_channel();
        let bar = tokio::spawn(draw(rx));
        let result = app.sync(Some(tx)).await;
        let _ = bar.await;
        match result {
            Ok(report) => print_report(&report),
            Err(e) if watch => eprintln!("lifeboat: {e} (will try again)"),
            Err(e) => return Err(e),
        }
        if !watch {
            return Ok(());
        }
        eprintln!(
            "Next sync in {} min (Ctrl-C to stop).",
            every.as_secs() / 60
        );
        tokio::time::sleep(every).await;
    }
}

async fn draw(mut rx: mpsc::UnboundedReceiver<SyncProgress>) {
    let mut current: Option<(String, PassKind)> = None;
    let mut err = std::io::stderr();
    while let Some(p) = rx.recv().await {
        let label = p.kind.to_string();
        if current.as_ref() != Some(&(label.clone(), p.pass)) {
            if current.is_some() {
                let _ = writeln!(err);
            }
            current = Some((label.clone(), p.pass));
        }
        let pass = match p.pass {
            PassKind::Initial => "first copy",
            PassKind::Priority => "booked first",
            PassKind::Incremental => "changes",
            PassKind::Deletions => "deletions",
        };
        let line = match p.total.filter(|t| *t > 0) {
            Some(total) => {
                let filled = ((p.done.min(total) * 30) / total) as usize;
                format!(
                    "  {label:<20} {pass:<13} [{}{}] {:>7} / {total}",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    p.done
                )
            }
            None => format!("  {label:<20} {pass:<13} {:>7}", p.done),
        };
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
    }
    if current.is_some() {
        let _ = writeln!(err);
    }
}

fn print_report(report: &SyncReport) {
    let t = report.total();
    println!(
        "Sync finished in {:.1} s: {} resources fetched in {} requests, {} written, {} refused, {} removed.",
        report.elapsed_ms as f64 / 1000.0,
        t.fetched,
        t.requests,
        t.written,
        t.rejected,
        t.removed
    );
    if t.rejected > 0 {
        println!("Refused resources are listed by `lifeboat status`.");
    }
}

pub fn print_status(s: &Status) {
    println!("Cache: {}", s.data_as_of);
    if let Some(e) = &s.last_error {
        println!("Last sync failed: {e}");
    }
    println!(
        "\n{:<20} {:>9}  {:<9} Last complete pass",
        "Type", "Cached", "Sync"
    );
    for k in &s.kinds {
        let phase = match (k.phase.as_deref(), k.total) {
            (Some("initial"), Some(total)) => format!("{}/{}", k.done, total),
            (Some(p), _) => p.to_string(),
            (None, _) => "never".into(),
        };
        println!(
            "{:<20} {:>9}  {:<9} {}",
            k.kind.to_string(),
            k.cached,
            phase,
            k.last_completed.as_deref().unwrap_or("-")
        );
    }
    if s.rejected.is_empty() {
        println!("\nNo resources refused.");
    } else {
        println!("\nRefused from the upstream ({}):", s.rejected.len());
        for r in &s.rejected {
            println!("  {}/{}: {}", r.kind, r.id, r.reason);
        }
    }
}
