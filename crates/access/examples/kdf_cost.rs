//! How long one key-slot unwrap takes on this machine: what a login or unlock costs a
//! member of staff, and roughly what each offline password guess costs an attacker (per
//! core, on this CPU). Run in release: `cargo run --release -p lifeboat-access --example
//! kdf_cost [iterations]`.

use std::num::NonZeroU32;
use std::time::Instant;

fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::new(lifeboat_access::DEFAULT_KDF_ITERATIONS).expect("not zero"));
    let mut out = [0u8; 32];
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            b"sixteen byte salt",
            b"a password of reasonable length",
            &mut out,
        );
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "PBKDF2-HMAC-SHA256, {iterations} iterations: median {:.0} ms (min {:.0}, max {:.0}) over {} runs",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}
