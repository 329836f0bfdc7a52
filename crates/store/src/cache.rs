//! Cached upstream resources: one table per group, the raw JSON kept beside indexed columns,
//! and the sync bookkeeping (per-type progress and refused resources) written in the same
//! transactions as the data it describes.

use chrono::{DateTime, Utc};
use lifeboat_model::ResourceKind;
use lifeboat_model::fhir::{CachedResource, Indexed};
use lifeboat_model::names::fold_name;
use rusqlite::types::{ToSqlOutput, Value as Sql};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::compressed::{CompressedJson, stored_json};
use crate::{Result, Store, StoreError, parse_ts, ts};

/// Where each kind lives. Clinical entries share one table, keyed by (kind, id).
pub(crate) fn table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Patient => "patient",
        ResourceKind::Practitioner => "practitioner",
        ResourceKind::Location => "location",
        ResourceKind::Schedule => "schedule",
        ResourceKind::Slot => "slot",
        ResourceKind::Appointment => "appointment",
        _ => "clinical_entry",
    }
}

/// Slots and appointments are kept for a window of days; other kinds are not windowed.
fn windowed_table(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Slot => "slot",
        ResourceKind::Appointment => "appointment",
        other => panic!("{other} is not kept for a window of days"),
    }
}

/// Counts a window's slots or appointments from an index holding their start times, never
/// from the rows with their JSON: for slots (no index by start alone) the whole index by
/// schedule and start, a small fraction of the table.
fn count_starting_between_sql(kind: ResourceKind) -> String {
    let index = match kind {
        ResourceKind::Slot => "slot_by_schedule",
        _ => "appointment_by_start",
    };
    format!(
        "SELECT count(*) FROM {} INDEXED BY {index} WHERE start >= ?1 AND start < ?2",
        windowed_table(kind)
    )
}

/// `WHERE` clause selecting one resource of `kind`, with `?1` = id and `?2` = kind.
fn key_clause(kind: ResourceKind) -> &'static str {
    if kind.is_clinical() {
        "id = ?1 AND kind = ?2"
    } else {
        "id = ?1 AND ?2 IS NOT NULL"
    }
}

/// A column's value: borrowed from the resource where it holds it as is (a sync writes
/// tens of thousands of rows; copying each text only to bind it showed in its profile).
type Column<'a> = ToSqlOutput<'a>;

const NULL: Column<'static> = ToSqlOutput::Owned(Sql::Null);

fn text(s: &str) -> Column<'_> {
    ToSqlOutput::from(s)
}

fn owned(s: String) -> Column<'static> {
    ToSqlOutput::Owned(Sql::Text(s))
}

fn opt(s: &Option<String>) -> Column<'_> {
    s.as_deref().map_or(NULL, text)
}

fn opt_ts(t: &Option<DateTime<Utc>>) -> Column<'static> {
    t.map_or(NULL, |t| owned(ts(t)))
}

/// A patient's family and given names folded as a search folds what is typed: the
/// `family_norm` and `given_norm` columns, and what the name index holds (schema 8).
fn folded_names(ix: &Indexed) -> Option<(String, String)> {
    match ix {
        Indexed::Patient(p) => Some((fold_name(&p.family), fold_name(&p.given))),
        _ => None,
    }
}

/// The indexed columns of a resource, named as in the schema; `folded` is
/// `folded_names(ix)`.
fn indexed_columns<'c>(
    kind: ResourceKind,
    ix: &'c Indexed,
    folded: Option<&'c (String, String)>,
) -> Vec<(&'static str, Column<'c>)> {
    match ix {
        Indexed::Patient(p) => vec![
            (
                "nhs_number",
                p.nhs_number.map_or(NULL, |n| owned(n.as_digits())),
            ),
            ("title", opt(&p.title)),
            ("family", text(&p.family)),
            ("given", text(&p.given)),
            (
                "family_norm",
                folded.map_or(NULL, |(family, _)| text(family)),
            ),
            ("given_norm", folded.map_or(NULL, |(_, given)| text(given))),
            (
                "birth_date",
                p.birth_date.map_or(NULL, |d| owned(d.to_string())),
            ),
            ("sex", opt(&p.sex)),
            ("address_line", opt(&p.address_line)),
            ("postcode", opt(&p.postcode)),
            ("phone", opt(&p.phone)),
            ("gp_id", opt(&p.gp_id)),
            ("deceased", ToSqlOutput::from(p.deceased)),
        ],
        Indexed::Practitioner(p) => vec![("name", text(&p.name))],
        Indexed::Location(l) => vec![("name", text(&l.name))],
        Indexed::Schedule(s) => vec![
            ("practitioner_id", opt(&s.practitioner_id)),
            ("location_id", opt(&s.location_id)),
            ("service_type", opt(&s.service_type)),
        ],
        Indexed::Slot(s) => vec![
            ("schedule_id", text(&s.schedule_id)),
            ("start", owned(ts(s.start))),
            ("\"end\"", owned(ts(s.end))),
            ("status", text(&s.status)),
            ("service_type", opt(&s.service_type)),
        ],
        Indexed::Appointment(a) => vec![
            ("status", text(&a.status)),
            ("slot_id", opt(&a.slot_id)),
            ("patient_id", opt(&a.patient_id)),
            ("practitioner_id", opt(&a.practitioner_id)),
            ("location_id", opt(&a.location_id)),
            ("start", opt_ts(&a.start)),
            ("\"end\"", opt_ts(&a.end)),
            ("description", opt(&a.description)),
            ("comment", opt(&a.comment)),
        ],
        Indexed::Clinical(c) => vec![
            ("kind", text(kind.as_str())),
            ("patient_id", text(&c.patient_id)),
            ("status", opt(&c.status)),
            ("text", text(&c.text)),
            ("detail", opt(&c.detail)),
            ("date", opt(&c.date)),
        ],
    }
}

/// The upsert statement of a kind (its columns depend on the kind only).
fn upsert_sql(kind: ResourceKind, cols: &[(&'static str, Column<'_>)]) -> String {
    let names: Vec<&str> = ["id", "version_id", "last_updated", "synced_at", "raw"]
        .into_iter()
        .chain(cols.iter().map(|(n, _)| *n))
        .collect();
    let conflict = if kind.is_clinical() { "kind, id" } else { "id" };
    let placeholders = (1..=names.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let updates = names[1..]
        .iter()
        .filter(|n| **n != "kind")
        .map(|n| format!("{n} = excluded.{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {} ({}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO UPDATE SET {updates}",
        table(kind),
        names.join(", "),
    )
}

/// A cached resource as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    pub id: String,
    pub version_id: String,
    pub last_updated: DateTime<Utc>,
    pub synced_at: DateTime<Utc>,
    pub raw: String,
}

/// Progress of one resource type's sync, as persisted with each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub kind: ResourceKind,
    /// e.g. "initial", "complete"; owned by the sync engine.
    pub phase: String,
    /// The next page to fetch when resuming an interrupted pass.
    pub next_url: Option<String>,
    /// Highest upstream `meta.lastUpdated` seen: the incremental sync's checkpoint.
    pub high_water: Option<DateTime<Utc>>,
    pub done: u64,
    pub total: Option<u64>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A recorded change of mode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModeChange {
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub cause: String,
    pub actor: String,
}

/// Resources written one after another in one transaction (`CacheTx::upserts`), each
/// inserted or replaced (matched by kind and upstream id). Consecutive resources of a kind
/// share one prepared statement, and all of them one `synced_at`: a sync writes tens of
/// thousands of rows, and looking the statement up by its text and formatting the same
/// time again for each row showed in its profile.
pub struct Upserts<'t, 'a> {
    cache: &'t CacheTx<'a>,
    synced_at: String,
    statement: Option<(ResourceKind, rusqlite::CachedStatement<'t>)>,
}

impl Upserts<'_, '_> {
    /// Writes `r`, its raw JSON already compressed (`CompressedJson::of(r)`).
    pub fn upsert(&mut self, r: &CachedResource, raw: &CompressedJson) -> Result<()> {
        let folded = folded_names(&r.indexed);
        let cols = indexed_columns(r.kind, &r.indexed, folded.as_ref());
        let statement = match &mut self.statement {
            Some((kind, statement)) if *kind == r.kind => statement,
            other => {
                let sql = upsert_sql(r.kind, &cols);
                &mut other
                    .insert((r.kind, self.cache.tx.prepare_cached(&sql)?))
                    .1
            }
        };
        let last_updated = ts(r.last_updated);
        let values: Vec<&dyn rusqlite::ToSql> = [
            &r.id as &dyn rusqlite::ToSql,
            &r.version_id,
            &last_updated,
            &self.synced_at,
            &raw.0,
        ]
        .into_iter()
        .chain(cols.iter().map(|(_, v)| v as &dyn rusqlite::ToSql))
        .collect();
        let before = self.cache.indexed_names(r.kind, &r.id)?;
        statement.execute(values.as_slice())?;
        if let Some((family, given)) = folded {
            let unchanged = before.as_ref().is_some_and(|(_, was_family, was_given)| {
                *was_family == family && *was_given == given
            });
            if !unchanged {
                // An updated row keeps its key; a new row's is the one just inserted.
                let pk = before
                    .as_ref()
                    .map_or_else(|| self.cache.tx.last_insert_rowid(), |(pk, ..)| *pk);
                let after = (pk, family, given);
                self.cache.reindex_names(before.as_ref(), Some(&after))?;
            }
        }
        Ok(())
    }
}

/// One write transaction on the cache. Dropped without `commit`, it changes nothing.
pub struct CacheTx<'a> {
    pub(crate) tx: Transaction<'a>,
}

impl<'a> CacheTx<'a> {
    pub(crate) fn new(tx: Transaction<'a>) -> Self {
        Self { tx }
    }

    /// Inserts or replaces a resource (matched by kind and upstream id).
    pub fn upsert_resource(&self, r: &CachedResource, synced_at: DateTime<Utc>) -> Result<()> {
        self.upserts(synced_at).upsert(r, &CompressedJson::of(r)?)
    }

    /// Writes many resources, all synced at `synced_at` (a page, a batch): see `Upserts`.
    pub fn upserts(&self, synced_at: DateTime<Utc>) -> Upserts<'_, 'a> {
        Upserts {
            cache: self,
            synced_at: ts(synced_at),
            statement: None,
        }
    }

    /// Removes a resource the upstream no longer has. Returns whether it was cached.
    pub fn remove_resource(&self, kind: ResourceKind, id: &str) -> Result<bool> {
        let before = self.indexed_names(kind, id)?;
        let sql = format!("DELETE FROM {} WHERE {}", table(kind), key_clause(kind));
        let n = self
            .tx
            .prepare_cached(&sql)?
            .execute(params![id, kind.as_str()])?;
        self.reindex_names(before.as_ref(), None)?;
        Ok(n > 0)
    }

    /// A patient's row key and names as the name index holds them, folded as a search folds
    /// what is typed (schema 8; other kinds: none).
    ///
    /// The name index (FTS5, external content) is kept here rather than by triggers: a
    /// trigger gives every patient write a savepoint of its own, and FTS5 writes its
    /// pending index to disk at every savepoint, so a first sync wrote the index one
    /// patient at a time. Plain single-row statements need no savepoint.
    fn indexed_names(&self, kind: ResourceKind, id: &str) -> Result<Option<(i64, String, String)>> {
        if kind != ResourceKind::Patient {
            return Ok(None);
        }
        Ok(self
            .tx
            .prepare_cached("SELECT pk, family_norm, given_norm FROM patient WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    /// Moves the name index from a patient's old names to the new (either may be absent).
    fn reindex_names(
        &self,
        old: Option<&(i64, String, String)>,
        new: Option<&(i64, String, String)>,
    ) -> Result<()> {
        if let Some((pk, family, given)) = old {
            self.tx
                .prepare_cached(
                    "INSERT INTO patient_name_fts (patient_name_fts, rowid, family_norm, given_norm)
                     VALUES ('delete', ?1, ?2, ?3)",
                )?
                .execute(params![pk, family, given])?;
        }
        if let Some((pk, family, given)) = new {
            self.tx
                .prepare_cached(
                    "INSERT INTO patient_name_fts (rowid, family_norm, given_norm) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![pk, family, given])?;
        }
        Ok(())
    }

    /// Drops slots or appointments that start before `t` (out of the kept window).
    pub fn remove_starting_before(&self, kind: ResourceKind, t: DateTime<Utc>) -> Result<u64> {
        let sql = format!("DELETE FROM {} WHERE start < ?1", windowed_table(kind));
        Ok(self.tx.prepare_cached(&sql)?.execute([ts(t)])? as u64)
    }

    pub fn save_sync_state(&self, s: &SyncState) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO sync_state (resource_type, phase, next_url, high_water, done, total, started_at, completed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (resource_type) DO UPDATE SET phase = excluded.phase,
                   next_url = excluded.next_url, high_water = excluded.high_water, done = excluded.done,
                   total = excluded.total, started_at = excluded.started_at, completed_at = excluded.completed_at",
            )?
            .execute(params![
                s.kind.as_str(),
                s.phase,
                s.next_url,
                s.high_water.map(ts),
                s.done as i64,
                s.total.map(|t| t as i64),
                s.started_at.map(ts),
                s.completed_at.map(ts),
            ])?;
        Ok(())
    }

    /// Records a resource the upstream sent that Lifeboat refused, and why.
    pub fn record_rejection(
        &self,
        kind: ResourceKind,
        id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO sync_rejection (resource_type, resource_id, reason, seen_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (resource_type, resource_id) DO UPDATE SET reason = excluded.reason, seen_at = excluded.seen_at",
            )?
            .execute(params![kind.as_str(), id, reason, ts(at)])?;
        Ok(())
    }

    /// Whether any resource of `kind` stands refused.
    pub fn has_rejections(&self, kind: ResourceKind) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sync_rejection WHERE resource_type = ?1)",
            )?
            .query_row([kind.as_str()], |r| r.get(0))?)
    }

    /// A resource that now arrives well-formed is no longer a rejection.
    pub fn clear_rejection(&self, kind: ResourceKind, id: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "DELETE FROM sync_rejection WHERE resource_type = ?1 AND resource_id = ?2",
            )?
            .execute(params![kind.as_str(), id])?;
        Ok(())
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.tx.execute(
            "INSERT INTO setting (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .tx
            .query_row("SELECT value FROM setting WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn record_mode_change(
        &self,
        from: &str,
        to: &str,
        cause: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        self.tx.execute(
            "INSERT INTO mode_change (at, from_mode, to_mode, cause, actor) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![ts(at), from, to, cause, actor],
        )?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        Ok(self.tx.commit()?)
    }
}

impl Store {
    /// One cached resource, by kind and upstream id.
    pub fn resource(&self, kind: ResourceKind, id: &str) -> Result<Option<StoredResource>> {
        let sql = format!(
            "SELECT version_id, last_updated, synced_at, raw FROM {} WHERE {}",
            table(kind),
            key_clause(kind)
        );
        let row = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![id, kind.as_str()], |r| {
                let raw = stored_json(kind, r.get_ref(3)?);
                let (version_id, last_updated, synced_at): (String, String, String) =
                    (r.get(0)?, r.get(1)?, r.get(2)?);
                Ok(raw.map(|raw| StoredResource {
                    id: id.to_string(),
                    version_id,
                    last_updated: parse_ts(&last_updated).unwrap_or_default(),
                    synced_at: parse_ts(&synced_at).unwrap_or_default(),
                    raw,
                }))
            })
            .optional()?;
        row.transpose().map_err(|reason| StoreError::Unreadable {
            kind,
            id: id.to_string(),
            reason,
        })
    }

    pub fn count(&self, kind: ResourceKind) -> Result<u64> {
        let sql = if kind.is_clinical() {
            "SELECT count(*) FROM clinical_entry WHERE kind = ?1".to_string()
        } else {
            format!("SELECT count(*) FROM {} WHERE ?1 IS NOT NULL", table(kind))
        };
        let n: i64 = self
            .conn
            .prepare_cached(&sql)?
            .query_row([kind.as_str()], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// Every cached id of a kind, sorted: compared with the upstream's ids to find deletions.
    pub fn ids(&self, kind: ResourceKind) -> Result<Vec<String>> {
        let sql = if kind.is_clinical() {
            "SELECT id FROM clinical_entry WHERE kind = ?1 ORDER BY id".to_string()
        } else {
            format!(
                "SELECT id FROM {} WHERE ?1 IS NOT NULL ORDER BY id",
                table(kind)
            )
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let ids = stmt
            .query_map([kind.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// How many of `kind` the cache holds in a sync's scope: slots and appointments
    /// starting in `[from, to)`, every other kind whole.
    pub fn count_in_scope(
        &self,
        kind: ResourceKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<u64> {
        if !kind.is_windowed() {
            return self.count(kind);
        }
        let n: i64 = self
            .conn
            .prepare_cached(&count_starting_between_sql(kind))?
            .query_row([ts(from), ts(to)], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The ids of `kind` the cache holds in a sync's scope (as `count_in_scope`), sorted.
    pub fn ids_in_scope(
        &self,
        kind: ResourceKind,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        if !kind.is_windowed() {
            return self.ids(kind);
        }
        let sql = format!(
            "SELECT id FROM {} WHERE start >= ?1 AND start < ?2 ORDER BY id",
            windowed_table(kind)
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let ids = stmt
            .query_map([ts(from), ts(to)], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Patients with a live appointment starting in `[from, to)`, soonest first.
    pub fn patients_booked_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT patient_id FROM appointment
             WHERE start >= ?1 AND start < ?2 AND patient_id IS NOT NULL
               AND status NOT IN ('cancelled', 'entered-in-error', 'noshow')
             GROUP BY patient_id ORDER BY min(start)",
        )?;
        let ids = stmt
            .query_map([ts(from), ts(to)], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    pub fn sync_states(&self) -> Result<Vec<SyncState>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resource_type, phase, next_url, high_water, done, total, started_at, completed_at FROM sync_state",
        )?;
        let rows = stmt.query_map([], |r| {
            let ts_col = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                Ok(r.get::<_, Option<String>>(i)?.as_deref().and_then(parse_ts))
            };
            Ok((
                r.get::<_, String>(0)?,
                SyncState {
                    kind: ResourceKind::Patient,
                    phase: r.get(1)?,
                    next_url: r.get(2)?,
                    high_water: ts_col(3)?,
                    done: r.get::<_, i64>(4)? as u64,
                    total: r.get::<_, Option<i64>>(5)?.map(|t| t as u64),
                    started_at: ts_col(6)?,
                    completed_at: ts_col(7)?,
                },
            ))
        })?;
        let mut states = Vec::new();
        for row in rows {
            let (name, mut state) = row?;
            // A type this version does not know is skipped, not fatal.
            if let Ok(kind) = name.parse() {
                state.kind = kind;
                states.push(state);
            }
        }
        states.sort_by_key(|s| s.kind);
        Ok(states)
    }

    pub fn sync_state(&self, kind: ResourceKind) -> Result<Option<SyncState>> {
        Ok(self.sync_states()?.into_iter().find(|s| s.kind == kind))
    }

    /// Mode changes, newest first: (at, from, to, cause, actor).
    pub fn mode_history(&self, limit: usize) -> Result<Vec<ModeChange>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, from_mode, to_mode, cause, actor FROM mode_change ORDER BY seq DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit as i64], |r| {
                Ok(ModeChange {
                    at: parse_ts(&r.get::<_, String>(0)?).unwrap_or_default(),
                    from: r.get(1)?,
                    to: r.get(2)?,
                    cause: r.get(3)?,
                    actor: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Ids of `kind` standing refused, sorted.
    pub fn rejected_ids(&self, kind: ResourceKind) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resource_id FROM sync_rejection WHERE resource_type = ?1 ORDER BY resource_id",
        )?;
        let ids = stmt
            .query_map([kind.as_str()], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Refused resources: (type, id, reason, when).
    pub fn rejections(&self) -> Result<Vec<(String, String, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT resource_type, resource_id, reason, seen_at FROM sync_rejection ORDER BY resource_type, resource_id",
        )?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use lifeboat_fixtures::{PracticeSpec, generate};

    fn now() -> DateTime<Utc> {
        "2024-07-19T08:00:00Z".parse().unwrap()
    }

    /// Every kind the generator makes, parsed the way a sync parses upstream resources.
    fn sample_practice() -> Vec<CachedResource> {
        let spec = PracticeSpec {
            patients: 30,
            ..PracticeSpec::default()
        };
        let mut out = Vec::new();
        generate(&spec, &mut |_, json| {
            out.push(CachedResource::from_json(&json).expect("fixture parses"))
        });
        out
    }

    /// A cache holding the sample practice (its directory, which must outlive it), and
    /// the practice.
    fn cached_sample_practice() -> (tempfile::TempDir, Store, Vec<CachedResource>) {
        let (dir, mut store) = open_temp();
        let practice = sample_practice();
        let tx = store.transaction().unwrap();
        for r in &practice {
            tx.upsert_resource(r, now()).unwrap();
        }
        tx.commit().unwrap();
        (dir, store, practice)
    }

    #[test]
    fn a_window_of_slots_or_appointments_is_counted_from_an_index_alone() {
        let (_dir, store, practice) = cached_sample_practice();
        let start = |r: &CachedResource| match &r.indexed {
            Indexed::Slot(s) => Some(s.start),
            Indexed::Appointment(a) => a.start,
            _ => None,
        };
        for kind in [ResourceKind::Slot, ResourceKind::Appointment] {
            let mut starts: Vec<_> = practice.iter().filter_map(start).collect();
            starts.sort();
            // A window around the middle of what the practice has, so some fall outside.
            let middle = starts[starts.len() / 2];
            let (from, to) = (
                middle - chrono::Duration::days(1),
                middle + chrono::Duration::days(1),
            );
            let mut expected: Vec<String> = practice
                .iter()
                .filter(|r| r.kind == kind && start(r).is_some_and(|s| s >= from && s < to))
                .map(|r| r.id.clone())
                .collect();
            expected.sort();
            assert!(!expected.is_empty(), "{kind}");
            assert!(expected.len() < practice.iter().filter(|r| r.kind == kind).count());
            assert_eq!(store.ids_in_scope(kind, from, to).unwrap(), expected);
            assert_eq!(
                store.count_in_scope(kind, from, to).unwrap(),
                expected.len() as u64
            );
            let plan: Vec<String> = store
                .conn
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN {}",
                    count_starting_between_sql(kind)
                ))
                .unwrap()
                .query_map([ts(from), ts(to)], |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                plan.iter().any(|p| p.contains("USING COVERING INDEX")),
                "{kind}: {plan:?}"
            );
        }
    }

    #[test]
    fn the_raw_json_is_stored_compressed_and_text_from_before_schema_7_still_reads() {
        let (_dir, store, practice) = cached_sample_practice();
        let kinds: std::collections::BTreeMap<ResourceKind, &CachedResource> =
            practice.iter().map(|r| (r.kind, r)).collect();
        for (kind, r) in kinds {
            let select = format!(
                "SELECT typeof(raw), length(raw) FROM {} WHERE {}",
                table(kind),
                key_clause(kind)
            );
            let (stored_as, stored_bytes): (String, i64) = store
                .conn
                .query_row(&select, params![r.id, kind.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap();
            assert_eq!(stored_as, "blob", "{kind}");
            assert!(
                stored_bytes < r.raw.len() as i64,
                "{kind}: {stored_bytes} bytes"
            );
            // As an older Lifeboat wrote it: the JSON as text.
            store
                .conn
                .execute(
                    &format!(
                        "UPDATE {} SET raw = ?3 WHERE {}",
                        table(kind),
                        key_clause(kind)
                    ),
                    params![r.id, kind.as_str(), r.raw],
                )
                .unwrap();
            assert_eq!(store.resource(kind, &r.id).unwrap().unwrap().raw, r.raw);
        }
    }

    #[test]
    fn a_damaged_stored_resource_is_an_error_naming_it_not_an_empty_record() {
        let (_dir, store, practice) = cached_sample_practice();
        let patient = practice
            .iter()
            .find(|r| r.kind == ResourceKind::Patient)
            .unwrap();
        store
            .conn
            .execute(
                "UPDATE patient SET raw = substr(raw, 1, length(raw) - 9) WHERE id = ?1",
                [&patient.id],
            )
            .unwrap();
        let err = store
            .resource(ResourceKind::Patient, &patient.id)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "the cached Patient {} cannot be read back",
                patient.id
            )),
            "{err}"
        );
        let Indexed::Patient(p) = &patient.indexed else {
            unreachable!()
        };
        assert!(!err.contains(&p.family), "{err}");
    }

    #[test]
    fn every_cached_type_round_trips_with_its_raw_json_untouched() {
        let (_dir, store, practice) = cached_sample_practice();
        let mut kinds_seen = std::collections::BTreeSet::new();
        for r in &practice {
            let got = store.resource(r.kind, &r.id).unwrap().expect("cached");
            assert_eq!(got.raw, r.raw, "{}/{}", r.kind, r.id);
            assert_eq!(got.version_id, r.version_id);
            assert_eq!(got.last_updated, r.last_updated);
            assert_eq!(got.synced_at, now());
            kinds_seen.insert(r.kind);
        }
        // The generator covers every kind but MedicationRequest; that one has its own test.
        assert!(
            kinds_seen.len() >= ResourceKind::ALL.len() - 1,
            "{kinds_seen:?}"
        );
        for kind in kinds_seen {
            let expected = practice.iter().filter(|r| r.kind == kind).count() as u64;
            assert_eq!(store.count(kind).unwrap(), expected, "{kind}");
        }
    }

    #[test]
    fn resources_of_every_kind_interleaved_through_one_upserts_land_once_each() {
        let (_dir, mut store) = open_temp();
        let practice = sample_practice();
        // Kinds taking turns, so the statement changes at nearly every row; written twice
        // (the second time a later sync), so the second pass replaces.
        let mut interleaved: Vec<&CachedResource> = Vec::new();
        for i in 0..practice.len() {
            let at = if i % 2 == 0 {
                i / 2
            } else {
                practice.len() - 1 - i / 2
            };
            interleaved.push(&practice[at]);
        }
        let later = now() + chrono::Duration::hours(1);
        for synced_at in [now(), later] {
            let tx = store.transaction().unwrap();
            let mut upserts = tx.upserts(synced_at);
            for r in &interleaved {
                upserts.upsert(r, &CompressedJson::of(r).unwrap()).unwrap();
            }
            drop(upserts);
            tx.commit().unwrap();
        }
        for r in &practice {
            let got = store.resource(r.kind, &r.id).unwrap().expect("cached");
            assert_eq!((got.raw.as_str(), got.synced_at), (r.raw.as_str(), later));
        }
        for kind in ResourceKind::ALL {
            let expected = practice.iter().filter(|r| r.kind == kind).count() as u64;
            assert_eq!(store.count(kind).unwrap(), expected, "{kind}");
        }
        // The name index holds exactly the names written.
        store
            .conn
            .execute_batch(
                "INSERT INTO patient_name_fts (patient_name_fts) VALUES ('integrity-check')",
            )
            .unwrap();
    }

    #[test]
    fn a_medication_request_round_trips() {
        let (_dir, mut store) = open_temp();
        let json = r#"{"resourceType":"MedicationRequest","id":"m1","meta":{"versionId":"2","lastUpdated":"2024-07-01T10:00:00Z"},"status":"active","intent":"order","medicationCodeableConcept":{"text":"Metformin 500mg tablets"},"subject":{"reference":"Patient/p1"},"authoredOn":"2024-06-01","dosageInstruction":[{"text":"One twice a day"}],"unknownExtension":{"kept":true}}"#;
        let r = CachedResource::from_json(json).unwrap();
        let tx = store.transaction().unwrap();
        tx.upsert_resource(&r, now()).unwrap();
        tx.commit().unwrap();
        let got = store
            .resource(ResourceKind::MedicationRequest, "m1")
            .unwrap()
            .unwrap();
        assert_eq!(got.raw, json);
        // Same id, other kind: not found (ids are unique per type only).
        assert!(
            store
                .resource(ResourceKind::Condition, "m1")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_update_replaces_and_a_removal_deletes() {
        let (_dir, mut store) = open_temp();
        let practice = sample_practice();
        let patient = practice
            .iter()
            .find(|r| r.kind == ResourceKind::Patient)
            .unwrap();
        let tx = store.transaction().unwrap();
        tx.upsert_resource(patient, now()).unwrap();
        let mut newer = patient.clone();
        newer.version_id = "2".into();
        newer.raw = newer
            .raw
            .replace("\"versionId\":\"1\"", "\"versionId\":\"2\"");
        tx.upsert_resource(&newer, now()).unwrap();
        tx.commit().unwrap();
        assert_eq!(store.count(ResourceKind::Patient).unwrap(), 1);
        assert_eq!(
            store
                .resource(ResourceKind::Patient, &patient.id)
                .unwrap()
                .unwrap()
                .version_id,
            "2"
        );
        let tx = store.transaction().unwrap();
        assert!(
            tx.remove_resource(ResourceKind::Patient, &patient.id)
                .unwrap()
        );
        assert!(
            !tx.remove_resource(ResourceKind::Patient, &patient.id)
                .unwrap()
        );
        tx.commit().unwrap();
        assert_eq!(store.count(ResourceKind::Patient).unwrap(), 0);
    }

    #[test]
    fn an_uncommitted_transaction_changes_nothing() {
        let (_dir, mut store) = open_temp();
        let practice = sample_practice();
        {
            let tx = store.transaction().unwrap();
            for r in &practice {
                tx.upsert_resource(r, now()).unwrap();
            }
            tx.save_sync_state(&SyncState {
                kind: ResourceKind::Patient,
                phase: "initial".into(),
                next_url: Some("http://x/next".into()),
                high_water: None,
                done: 10,
                total: Some(30),
                started_at: Some(now()),
                completed_at: None,
            })
            .unwrap();
        }
        assert_eq!(store.count(ResourceKind::Patient).unwrap(), 0);
        assert!(store.sync_states().unwrap().is_empty());
    }

    #[test]
    fn sync_state_and_rejections_persist() {
        let (_dir, mut store) = open_temp();
        let state = SyncState {
            kind: ResourceKind::Slot,
            phase: "initial".into(),
            next_url: Some("http://127.0.0.1/fhir/Slot?_offset=100".into()),
            high_water: Some(now()),
            done: 100,
            total: Some(5000),
            started_at: Some(now()),
            completed_at: None,
        };
        let tx = store.transaction().unwrap();
        tx.save_sync_state(&state).unwrap();
        tx.record_rejection(
            ResourceKind::Patient,
            "p9",
            "Patient/p9: name.family is missing",
            now(),
        )
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(store.sync_state(ResourceKind::Slot).unwrap(), Some(state));
        assert_eq!(store.rejections().unwrap().len(), 1);
        let tx = store.transaction().unwrap();
        tx.clear_rejection(ResourceKind::Patient, "p9").unwrap();
        tx.commit().unwrap();
        assert!(store.rejections().unwrap().is_empty());
    }
}
