//! Lifeboat's domain: what a GP practice's cache holds, in the practice's own words.
//!
//! This crate owns the validated value types (NHS number, resource keys), the mapping
//! from FHIR R4 (UK Core / GP Connect shaped) resources to the columns the cache indexes,
//! and how times are shown to people (Europe/London, UK style). It does no I/O.

pub mod fhir;
pub mod names;
pub mod nhs_number;
pub mod time;
mod wire;

pub use fhir::{CachedResource, FhirError, Indexed, ResourceKind};
pub use nhs_number::{NhsNumber, NhsNumberError, display_nhs_number};
pub use time::{Clock, DataAge, FixedClock, SystemClock};
