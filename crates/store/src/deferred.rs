//! Secondary indexes a first sync leaves until its rows are in (schema 6).
//!
//! Upstream ids are random, so rows written one by one land all over these indexes, and
//! each commit of a sync writes and encrypts again most of their pages. Into empty tables,
//! a first sync drops them (`Store::defer_indexes`) and builds each once its table is
//! complete (`Store::build_deferred_indexes`), from sorted rows: at 100,000 patients that
//! took over a quarter off the CPU of a sync and over a third off what it wrote. Queries
//! still answer (the planner scans instead), and a sync killed in between finds the
//! definitions waiting in `deferred_index`; the next sync builds them when it ends, whether
//! it succeeds or not. Unique indexes (which a sync's upserts rely on), the name index, and
//! indexes a query names (`INDEXED BY`) are never deferred.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use lifeboat_model::ResourceKind;

use crate::{Result, Store, cache::table};

/// The indexes a first sync may defer: none unique, none named by a query.
const DEFERRABLE: [&str; 6] = [
    "patient_nhs_number",
    "patient_birth_date",
    "slot_by_status",
    "appointment_by_patient",
    "appointment_by_slot",
    "clinical_entry_by_patient",
];

impl Store {
    /// Drops each deferrable index whose table is empty, keeping its definition in
    /// `deferred_index`, all in one transaction. Returns how many it dropped. An index
    /// deferred by a sync that never finished stays deferred.
    pub fn defer_indexes(&mut self) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut dropped = 0;
        for name in DEFERRABLE {
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((table, sql)) = found else {
                continue; // deferred already
            };
            let empty: bool = tx.query_row(
                &format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"),
                [],
                |r| r.get(0),
            )?;
            if empty {
                tx.execute(
                    "INSERT INTO deferred_index (name, tbl, sql) VALUES (?1, ?2, ?3)",
                    params![name, table, sql],
                )?;
                tx.execute_batch(&format!("DROP INDEX {name}"))?;
                dropped += 1;
            }
        }
        tx.commit()?;
        Ok(dropped)
    }

    /// Builds the deferred indexes of the table that holds `of` (of every table with
    /// `None`), in one transaction. Returns how many it built.
    pub fn build_deferred_indexes(&mut self, of: Option<ResourceKind>) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let built = build(&tx, of.map(table))?;
        tx.commit()?;
        Ok(built)
    }

    /// The names of the indexes waiting to be built, in name order.
    pub fn deferred_indexes(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM deferred_index ORDER BY name")?;
        let names = stmt.query_map([], |r| r.get(0))?;
        Ok(names.collect::<rusqlite::Result<_>>()?)
    }
}

/// Builds the deferred indexes of `table` (of every table with `None`) on `conn`, inside
/// the caller's transaction. The schema's migrations build them all before any later
/// migration runs, which may expect them.
pub(crate) fn build(conn: &Connection, table: Option<&str>) -> Result<usize> {
    let waiting: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM deferred_index WHERE ?1 IS NULL OR tbl = ?1")?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, sql) in &waiting {
        conn.execute_batch(sql)?;
        conn.execute("DELETE FROM deferred_index WHERE name = ?1", [name])?;
    }
    Ok(waiting.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn indexes(store: &Store) -> Vec<(String, String)> {
        let mut stmt = store
            .conn
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn plan(store: &Store, sql: &str) -> String {
        let mut stmt = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("; ")
    }

    #[test]
    fn indexes_of_empty_tables_are_deferred_and_built_again_exactly() {
        let (_dir, mut store) = open_temp();
        let before = indexes(&store);
        store
            .conn
            .execute_batch(
                "INSERT INTO slot (id, version_id, last_updated, synced_at, raw, schedule_id, start, \"end\", status)
                 VALUES ('s1', '1', 't', 't', '{}', 'sc', 'a', 'b', 'free');",
            )
            .unwrap();
        // The slot table has a row: its index stays; the five others go.
        assert_eq!(store.defer_indexes().unwrap(), 5);
        assert_eq!(
            store.deferred_indexes().unwrap(),
            [
                "appointment_by_patient",
                "appointment_by_slot",
                "clinical_entry_by_patient",
                "patient_birth_date",
                "patient_nhs_number"
            ]
        );
        let lookup = "SELECT id FROM clinical_entry WHERE patient_id = 'p1'";
        assert!(!plan(&store, lookup).contains("clinical_entry_by_patient"));
        // Asked again (a resumed first sync), nothing more goes and nothing is lost.
        assert_eq!(store.defer_indexes().unwrap(), 0);
        assert_eq!(store.deferred_indexes().unwrap().len(), 5);

        // One table's: every clinical type shares one table and one index.
        let medications = Some(ResourceKind::MedicationStatement);
        assert_eq!(store.build_deferred_indexes(medications).unwrap(), 1);
        assert!(plan(&store, lookup).contains("clinical_entry_by_patient"));
        assert_eq!(store.build_deferred_indexes(medications).unwrap(), 0);
        assert_eq!(store.deferred_indexes().unwrap().len(), 4);

        assert_eq!(store.build_deferred_indexes(None).unwrap(), 4);
        assert_eq!(
            indexes(&store),
            before,
            "every index back, as the schema made it"
        );
        assert!(store.deferred_indexes().unwrap().is_empty());
        assert_eq!(store.build_deferred_indexes(None).unwrap(), 0);
    }

    #[test]
    fn deferral_outlives_the_connection_that_made_it() {
        let (dir, mut store) = open_temp();
        assert_eq!(store.defer_indexes().unwrap(), DEFERRABLE.len());
        drop(store); // as a sync killed before its end
        let mut again = Store::open(dir.path().join("cache.db"), &key()).unwrap();
        assert_eq!(again.deferred_indexes().unwrap().len(), DEFERRABLE.len());
        assert_eq!(
            again.build_deferred_indexes(None).unwrap(),
            DEFERRABLE.len()
        );
        assert!(again.deferred_indexes().unwrap().is_empty());
    }
}
