//! Progress bars for long work: a line per resource type while a sync runs, then a summary.

use std::io::Write;
use std::time::Duration;

use lifeboat_app::desk::{DeskEvent, SyncSummary};
use lifeboat_app::{AppError, Desk};
use lifeboat_engine::sync::STREAMS;
use lifeboat_engine::{PassKind, SyncProgress};
use lifeboat_model::ResourceKind;
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

/// The line shows a type for each of the sync's `STREAMS`, the ones updated last; a type's line is printed
/// for good once another has taken its place.
async fn draw(mut events: broadcast::Receiver<DeskEvent>) {
    let mut active: Vec<SyncProgress> = Vec::new();
    let mut err = std::io::stderr();
    let mut width = 0;
    loop {
        let p: SyncProgress = match events.recv().await {
            Ok(DeskEvent::SyncProgress(p)) => p,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        // Latest last: the one left behind is the type whose stream has moved on.
        active.retain(|a| key(a) != key(&p));
        active.push(p);
        if active.len() > STREAMS {
            let done = active.remove(0);
            let _ = writeln!(err, "\r{:<width$}", entry(&done, 30));
        }
        let line = active
            .iter()
            .map(|a| entry(a, 12))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = write!(err, "\r{line:<width$}");
        width = width.max(line.chars().count());
        let _ = err.flush();
    }
}

/// What a line is about: a type's pass, or the booked patients' summaries as one (that pass
/// goes through the types once for every few patients).
fn key(p: &SyncProgress) -> (Option<ResourceKind>, PassKind) {
    (
        Some(p.kind).filter(|_| p.pass != PassKind::Priority),
        p.pass,
    )
}

/// `  Patient              first copy    [####----] 2000 / 10000`, with a bar `bar` wide.
fn entry(p: &SyncProgress, bar: u64) -> String {
    if p.pass == PassKind::Priority {
        return format!("  {:<31} {}", "Booked patients first", p.kind);
    }
    let label = p.kind.to_string();
    let pass = match p.pass {
        PassKind::Initial => "first copy",
        PassKind::Priority => "booked first",
        PassKind::Incremental => "changes",
        PassKind::Deletions => "deletions",
    };
    match p.total.filter(|t| *t > 0) {
        Some(total) => {
            let filled = (p.done.min(total) * bar) / total;
            format!(
                "  {label:<18} {pass:<12} [{}{}] {:>6} / {total}",
                "#".repeat(filled as usize),
                "-".repeat((bar - filled) as usize),
                p.done
            )
        }
        None => format!("  {label:<18} {pass:<12} {:>6}", p.done),
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
