//! Sync progress: bars redrawn in place on a terminal, one finished line per type in a log,
//! then a summary.

use std::io::{IsTerminal, Stderr, Write};
use std::time::Duration;

use lifeboat_app::desk::{DeskEvent, SyncSummary};
use lifeboat_app::{AppError, Desk};
use lifeboat_engine::sync::STREAMS;
use lifeboat_engine::{PassKind, SyncProgress};
use lifeboat_model::ResourceKind;
use tokio::sync::{broadcast, oneshot};

pub async fn sync(desk: &Desk, watch: bool) -> Result<(), AppError> {
    let every = Duration::from_secs(desk.config().sync.interval_minutes.max(1) * 60);
    loop {
        let (finished, finish) = oneshot::channel();
        let bar = tokio::spawn(draw(desk.subscribe(), finish));
        let result = desk.sync_now().await;
        let _ = finished.send(());
        let _ = bar.await;
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

/// Shows a sync's progress until `finish`. On a terminal one line is redrawn in place (see
/// `Live`); written anywhere else (a log, when `--watch` runs as a service) each type's
/// pass gets one line of its own, when it is done, and nothing is redrawn.
async fn draw(mut events: broadcast::Receiver<DeskEvent>, mut finish: oneshot::Receiver<()>) {
    let mut err = std::io::stderr();
    let mut out: Box<dyn Show> = if err.is_terminal() {
        Box::<Live>::default()
    } else {
        Box::<Log>::default()
    };
    loop {
        let event = tokio::select! {
            biased;
            event = events.recv() => event,
            _ = &mut finish => break,
        };
        match event {
            Ok(DeskEvent::SyncProgress(p)) => out.show(&mut err, p),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => break,
        }
        let _ = err.flush();
    }
    // What was sent before the sync returned is still to be shown.
    while let Ok(event) = events.try_recv() {
        if let DeskEvent::SyncProgress(p) = event {
            out.show(&mut err, p);
        }
    }
    out.end(&mut err);
    let _ = err.flush();
}

trait Show: Send {
    fn show(&mut self, err: &mut Stderr, p: SyncProgress);
    fn end(&mut self, err: &mut Stderr);
}

/// The line shows a type for each of the sync's `STREAMS`, the ones updated last; a type's
/// line is printed for good once another has taken its place.
#[derive(Default)]
struct Live {
    active: Vec<SyncProgress>,
    width: usize,
}

impl Show for Live {
    fn show(&mut self, err: &mut Stderr, p: SyncProgress) {
        // Latest last: the one left behind is the type whose stream has moved on.
        self.active.retain(|a| key(a) != key(&p));
        self.active.push(p);
        let width = self.width;
        if self.active.len() > STREAMS {
            let done = self.active.remove(0);
            let _ = writeln!(err, "\r{:<width$}", entry(&done, 30));
        }
        let line = self
            .active
            .iter()
            .map(|a| entry(a, 12))
            .collect::<Vec<_>>()
            .join("  ");
        let _ = write!(err, "\r{line:<width$}");
        self.width = width.max(line.chars().count());
    }

    fn end(&mut self, err: &mut Stderr) {
        let _ = writeln!(err);
    }
}

/// One line for each type's pass: when it has done all it expected, or else at the end.
#[derive(Default)]
struct Log {
    /// Every pass seen, in order, with its latest progress and whether its line is out.
    passes: Vec<(SyncProgress, bool)>,
}

impl Show for Log {
    fn show(&mut self, err: &mut Stderr, p: SyncProgress) {
        let (latest, printed) = match self.passes.iter().position(|(a, _)| key(a) == key(&p)) {
            Some(i) => {
                self.passes[i].0 = p;
                &mut self.passes[i]
            }
            None => {
                self.passes.push((p, false));
                self.passes.last_mut().expect("just pushed")
            }
        };
        if !*printed && latest.total.is_some_and(|t| latest.done >= t) {
            *printed = true;
            let _ = writeln!(err, "{}", entry(latest, 30));
        }
    }

    fn end(&mut self, err: &mut Stderr) {
        for (p, _) in self.passes.iter().filter(|(_, printed)| !printed) {
            let _ = writeln!(err, "{}", entry(p, 30));
        }
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

/// `  Patient             first copy   [####----]   2000 / 10000`, with a bar `bar` wide.
fn entry(p: &SyncProgress, bar: u64) -> String {
    if p.pass == PassKind::Priority {
        return format!("  {:<32} {}", "Booked patients first", p.kind);
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
                "  {label:<19} {pass:<12} [{}{}] {:>6} / {total}",
                "#".repeat(filled as usize),
                "-".repeat((bar - filled) as usize),
                p.done
            )
        }
        None => format!("  {label:<19} {pass:<12} {:>6}", p.done),
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
