//! Loading a practice from FHIR R4 NDJSON files (one per resource type, as the fixture
//! generator and bulk exports write them) into the cache, with the validation a sync applies:
//! a resource that does not parse is refused and reported, the rest land.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use lifeboat_model::{CachedResource, ResourceKind};

use crate::{CompressedJson, Store, StoreError};

/// Written in batches so a 100k-patient practice does not sit in one huge transaction.
const BATCH: usize = 5_000;

#[derive(Default)]
pub struct ImportReport {
    pub counts: Vec<(ResourceKind, u64)>,
    pub refused: Vec<String>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.counts.iter().map(|(_, n)| n).sum();
        writeln!(f, "Imported {total} resources:")?;
        for (kind, n) in &self.counts {
            writeln!(f, "  {kind:<20} {n:>8}")?;
        }
        if self.refused.is_empty() {
            write!(f, "Nothing refused.")
        } else {
            writeln!(f, "Refused {} resources:", self.refused.len())?;
            for r in &self.refused {
                writeln!(f, "  {r}")?;
            }
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} is not a folder of NDJSON files")]
    NotAFolder(String),
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Imports every `<ResourceType>.ndjson` in `dir`, in dependency order.
    pub fn import_ndjson_dir(
        &mut self,
        dir: &Path,
        now: DateTime<Utc>,
    ) -> Result<ImportReport, ImportError> {
        import_dir(self, dir, now)
    }
}

fn import_dir(
    store: &mut Store,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<ImportReport, ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::NotAFolder(dir.display().to_string()));
    }
    let mut report = ImportReport::default();
    for kind in ResourceKind::ALL {
        let path = dir.join(format!("{kind}.ndjson"));
        if !path.exists() {
            continue;
        }
        let read_error = |source| ImportError::Read {
            file: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(read_error)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut n = 0u64;
        for (line_no, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(read_error)?;
            if line.trim().is_empty() {
                continue;
            }
            match CachedResource::from_json(&line) {
                Ok(r) if r.kind == kind => match CompressedJson::of(&r) {
                    Ok(raw) => batch.push((r, raw)),
                    Err(e) => {
                        report
                            .refused
                            .push(format!("{}:{}: {e}", path.display(), line_no + 1))
                    }
                },
                Ok(r) => report.refused.push(format!(
                    "{}:{}: a {} in the {kind} file",
                    path.display(),
                    line_no + 1,
                    r.kind
                )),
                Err(e) => report
                    .refused
                    .push(format!("{}:{}: {e}", path.display(), line_no + 1)),
            }
            if batch.len() == BATCH {
                n += write_batch(store, &mut batch, now)?;
            }
        }
        n += write_batch(store, &mut batch, now)?;
        report.counts.push((kind, n));
    }
    Ok(report)
}

fn write_batch(
    store: &mut Store,
    batch: &mut Vec<(CachedResource, CompressedJson)>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let tx = store.transaction()?;
    let mut upserts = tx.upserts(now);
    for (r, raw) in batch.iter() {
        upserts.upsert(r, raw)?;
    }
    drop(upserts);
    tx.commit()?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

#[cfg(test)]
mod tests {
    use crate::testing::open_temp;
    use lifeboat_model::ResourceKind;

    #[test]
    fn a_resource_too_large_to_cache_is_refused_and_the_rest_of_its_file_imported() {
        let (dir, mut store) = open_temp();
        let files = dir.path().join("practice");
        std::fs::create_dir(&files).unwrap();
        let location = |id: &str, note: &str| {
            serde_json::json!({
                "resourceType": "Location", "id": id,
                "meta": {"versionId": "1", "lastUpdated": "2024-07-01T08:00:00.000Z"},
                "name": "Main surgery", "description": note
            })
            .to_string()
        };
        let lines = [
            location("first", "ground floor"),
            location("huge", &"x".repeat(64 << 20)),
            location("last", "first floor"),
        ];
        std::fs::write(files.join("Location.ndjson"), lines.join("\n")).unwrap();
        let report = store
            .import_ndjson_dir(&files, "2024-07-19T08:00:00Z".parse().unwrap())
            .unwrap();
        assert_eq!(report.counts, vec![(ResourceKind::Location, 2)]);
        assert_eq!(report.refused.len(), 1, "{:?}", report.refused);
        let expected = format!(
            "Location.ndjson:2: the Location huge cannot be cached: {} bytes of JSON is too large to cache",
            lines[1].len()
        );
        assert!(
            report.refused[0].ends_with(&expected),
            "{}",
            report.refused[0]
        );
        assert_eq!(
            store.ids(ResourceKind::Location).unwrap(),
            ["first", "last"]
        );
    }
}
