//! A cached resource's raw JSON as the cache file holds it: compressed with LZ4, each
//! resource on its own (so one is read without its neighbours), against a dictionary of
//! its type's usual shape.
//!
//! The raw JSON is most of what a sync writes and most of the cache file; each byte of it is
//! encrypted and authenticated once in the write-ahead log and copied again into the file.
//! A resource alone (400-1,000 bytes) hardly compresses: its repetitions are the keys,
//! profile and code-system addresses every resource of its type carries. The dictionaries
//! (`dictionaries/<type>.ndjson`) are those: one or two resources of each type in the UK
//! Core shape the upstream serves, every value blanked except `resourceType`, `system`,
//! `url`, `profile`, `use` and `status`. They hold no patient's data.
//!
//! A stored value is `FORMAT`, the JSON's length in bytes (4, little-endian) and the LZ4
//! block. The dictionaries are part of the format: a value written with them can only be
//! read with exactly them, so they never change; a better set would come with a new
//! format byte, the old one still read. Rows written before schema 7 hold their JSON as
//! text, read as it is.

use lifeboat_model::{CachedResource, ResourceKind};
use lz4_flex::block;
use rusqlite::types::ValueRef;

use crate::StoreError;

/// The first byte of every compressed value: LZ4 block, dictionaries of schema 7.
const FORMAT: u8 = 1;
/// The format byte and the JSON's length.
const HEADER: usize = 5;
/// Nothing the upstream sends is near this; a larger length read back means a damaged value.
const LARGEST: usize = 64 << 20;

fn dictionary(kind: ResourceKind) -> &'static [u8] {
    match kind {
        ResourceKind::Practitioner => include_bytes!("../dictionaries/Practitioner.ndjson"),
        ResourceKind::Location => include_bytes!("../dictionaries/Location.ndjson"),
        ResourceKind::Patient => include_bytes!("../dictionaries/Patient.ndjson"),
        ResourceKind::Schedule => include_bytes!("../dictionaries/Schedule.ndjson"),
        ResourceKind::Slot => include_bytes!("../dictionaries/Slot.ndjson"),
        ResourceKind::Appointment => include_bytes!("../dictionaries/Appointment.ndjson"),
        ResourceKind::Flag => include_bytes!("../dictionaries/Flag.ndjson"),
        ResourceKind::AllergyIntolerance => {
            include_bytes!("../dictionaries/AllergyIntolerance.ndjson")
        }
        ResourceKind::MedicationStatement => {
            include_bytes!("../dictionaries/MedicationStatement.ndjson")
        }
        // No sample of this type's shape yet: compressed on its own.
        ResourceKind::MedicationRequest => b"",
        ResourceKind::Condition => include_bytes!("../dictionaries/Condition.ndjson"),
        ResourceKind::Observation => include_bytes!("../dictionaries/Observation.ndjson"),
        ResourceKind::Immunization => include_bytes!("../dictionaries/Immunization.ndjson"),
        ResourceKind::Encounter => include_bytes!("../dictionaries/Encounter.ndjson"),
    }
}

/// A resource's raw JSON compressed, ready to be stored (`Upserts::upsert`).
/// Made before the write, e.g. while the next page downloads, so the cache's single writer
/// does not also compress.
pub struct CompressedJson(pub(crate) Vec<u8>);

impl CompressedJson {
    /// `r`'s raw JSON compressed; refused only if it is larger than any resource can be.
    pub fn of(r: &CachedResource) -> Result<Self, StoreError> {
        compress(r.kind, &r.raw)
            .map(Self)
            .map_err(|reason| StoreError::Unstorable {
                kind: r.kind,
                id: r.id.clone(),
                reason,
            })
    }
}

/// `json` compressed, as the cache stores it. Refuses only JSON longer than `LARGEST`.
fn compress(kind: ResourceKind, json: &str) -> Result<Vec<u8>, String> {
    let input = json.as_bytes();
    let length = u32::try_from(input.len())
        .ok()
        .filter(|_| input.len() <= LARGEST)
        .ok_or_else(|| format!("{} bytes of JSON is too large to cache", input.len()))?;
    let mut out = vec![0; HEADER + block::get_maximum_output_size(input.len())];
    out[0] = FORMAT;
    out[1..HEADER].copy_from_slice(&length.to_le_bytes());
    let written = block::compress_into_with_dict(input, &mut out[HEADER..], dictionary(kind))
        .map_err(|e| e.to_string())?;
    out.truncate(HEADER + written);
    Ok(out)
}

/// The JSON a `raw` column holds: text in rows written before schema 7, compressed since.
/// A damaged or unknown value is an error saying what is wrong with it (never its content).
pub(crate) fn stored_json(kind: ResourceKind, stored: ValueRef<'_>) -> Result<String, String> {
    let bytes = match stored {
        ValueRef::Text(json) => json.to_vec(),
        ValueRef::Blob(compressed) => decompress(kind, compressed)?,
        other => return Err(format!("it is {:?}, not JSON", other.data_type())),
    };
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

/// The bytes `compress` was given.
fn decompress(kind: ResourceKind, stored: &[u8]) -> Result<Vec<u8>, String> {
    let (&format, rest) = stored.split_first().ok_or("it is empty")?;
    if format != FORMAT {
        return Err(format!(
            "it is in format {format}, which this version of Lifeboat does not know"
        ));
    }
    let (length, block) = rest
        .split_first_chunk::<4>()
        .ok_or("it ends before its length")?;
    let length = usize::try_from(u32::from_le_bytes(*length)).unwrap_or(usize::MAX);
    if length > LARGEST {
        return Err(format!("it claims {length} bytes, more than any resource"));
    }
    let json = block::decompress_with_dict(block, length, dictionary(kind))
        .map_err(|e| format!("it does not decompress ({e})"))?;
    if json.len() != length {
        return Err(format!("it holds {} bytes, not {length}", json.len()));
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compressed value read back as a cached row's is.
    fn read(kind: ResourceKind, stored: &[u8]) -> Result<String, String> {
        stored_json(kind, ValueRef::Blob(stored))
    }

    /// Every resource of a generated practice, as JSON.
    fn practice_resources() -> Vec<(ResourceKind, String)> {
        let spec = lifeboat_fixtures::PracticeSpec {
            patients: 200,
            ..Default::default()
        };
        let mut out = Vec::new();
        lifeboat_fixtures::generate(&spec, &mut |kind, json| out.push((kind, json)));
        out
    }

    #[test]
    fn every_resource_of_the_practice_comes_back_byte_for_byte_and_smaller() {
        let resources = practice_resources();
        assert!(resources.len() > 3000, "{} resources", resources.len());
        let (mut json_bytes, mut stored_bytes) = (0, 0);
        for (kind, json) in &resources {
            let stored = compress(*kind, json).unwrap();
            assert_eq!(read(*kind, &stored).unwrap(), *json, "{kind}");
            json_bytes += json.len();
            stored_bytes += stored.len();
        }
        // The dictionaries carry each type's repeated keys and addresses: without them
        // LZ4 takes off about a fifth.
        assert!(
            stored_bytes * 2 < json_bytes,
            "{stored_bytes} bytes stored for {json_bytes} of JSON"
        );
    }

    #[test]
    fn json_of_any_shape_and_script_comes_back() {
        for json in [
            "",
            "{}",
            r#"{"resourceType":"Patient","name":[{"family":"Ó Séaghdha","given":["Zoë"]}]}"#,
            &"x".repeat(100_000),
        ] {
            for kind in ResourceKind::ALL {
                assert_eq!(read(kind, &compress(kind, json).unwrap()).unwrap(), json);
            }
        }
    }

    #[test]
    fn json_larger_than_any_resource_is_refused_not_truncated() {
        let huge = "x".repeat(LARGEST + 1);
        let err = compress(ResourceKind::Patient, &huge).unwrap_err();
        assert_eq!(
            err,
            format!("{} bytes of JSON is too large to cache", LARGEST + 1)
        );
        let largest = &huge[..LARGEST];
        let stored = compress(ResourceKind::Patient, largest).unwrap();
        assert_eq!(read(ResourceKind::Patient, &stored).unwrap(), largest);
    }

    #[test]
    fn a_damaged_value_is_refused_with_what_is_wrong_and_none_of_its_content() {
        let json = r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Smith"}]}"#;
        let good = compress(ResourceKind::Patient, json).unwrap();
        let mut unknown = good.clone();
        unknown[0] = 9;
        let mut too_long = good.clone();
        too_long[1..HEADER].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut wrong_length = good.clone();
        wrong_length[1..HEADER].copy_from_slice(&((json.len() + 3) as u32).to_le_bytes());
        let holds_fewer = format!("holds {} bytes, not {}", json.len(), json.len() + 3);
        let cut = &good[..good.len() - 4];
        for (damaged, says) in [
            (&[][..], "empty"),
            (&unknown[..], "format 9"),
            (&good[..3], "ends before its length"),
            (&too_long[..], "more than any resource"),
            (&wrong_length[..], holds_fewer.as_str()),
            (cut, "decompress"),
        ] {
            let err = read(ResourceKind::Patient, damaged).unwrap_err();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("Smith"), "{err}");
        }
        // Read with another type's dictionary, the same bytes are not the same JSON.
        assert_ne!(read(ResourceKind::Slot, &good).ok().as_deref(), Some(json));
    }

    /// What is already stored can only be read with exactly these dictionaries.
    #[test]
    fn the_dictionaries_of_format_1_never_change() {
        let all: Vec<u8> = ResourceKind::ALL
            .into_iter()
            .flat_map(|kind| dictionary(kind).iter().copied())
            .collect();
        let digest = ring::digest::digest(&ring::digest::SHA256, &all);
        assert_eq!(
            crate::hex::hex(digest.as_ref()),
            "955007d80b527f7e08af5fcd7b0af2bfab3c954514a954de484ee131432364b0",
            "a dictionary changed: values already cached need the old one; add a new FORMAT"
        );
    }
}
