//! Progress bars for long work: a line per resource type while a sync runs, then a summary.

use std::io::Write;
use std::time::Duration;

use lifeboat_app::desk::{DeskEvent, SyncSummary};
use lifeboat_app::{AppError, Desk};
use lifeboat_engine::{PassKind, SyncProgress};
use tokio::sync::broadcast;

pub async fn sync(desk: &Desk, watch: bool) -> Result<(), AppError> {
    let every = Duration::from_secs(desk.config().sync.interval_minutes.max(1) * 60);
    loop {
        let bar = tokio::spawn(draw(desk.subscribe()));
        let result = desk.sync_now().await;
        bar.abort();
        eprintln!();
        match result {
            Ok(summary) => print_summary(&summary),
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

async fn draw(mut events: broadcast::Receiver<DeskEvent>) {
    let mut current: Option<(String, PassKind)> = None;
    let mut err = std::io::stderr();
    loop {
        let p: SyncProgress = match events.recv().await {
            Ok(DeskEvent::SyncProgress(p)) => p,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
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
}

pub fn print_summary(s: &SyncSummary) {
    println!(
        "Sync finished in {:.1} s: {} resources fetched in {} requests, {} written, {} refused, {} removed.",
        s.elapsed_ms as f64 / 1000.0,
        s.fetched,
        s.requests,
        s.written,
        s.rejected,
        s.removed
    );
    if s.rejected > 0 {
        println!("Refused resources are listed by `lifeboat status`.");
    }
}
