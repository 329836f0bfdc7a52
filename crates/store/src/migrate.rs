//! The schema runner: numbered SQL files from `migrations/`, embedded at build, applied in
//! order inside one immediate transaction, the version kept in `PRAGMA user_version`.
//! A fresh cache replays the same chain as an upgraded one, so there is one path, no drift.

use rusqlite::{Connection, TransactionBehavior};

use crate::{Result, StoreError, deferred};

/// Each entry upgrades the schema from its index to its index + 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/0001_cache.sql"),
    include_str!("../../../migrations/0002_accounts.sql"),
    include_str!("../../../migrations/0003_offline.sql"),
    include_str!("../../../migrations/0004_downtime_pack.sql"),
    include_str!("../../../migrations/0005_patient_names_by_code.sql"),
    include_str!("../../../migrations/0006_deferred_indexes.sql"),
    include_str!("../../../migrations/0007_compressed_raw.sql"),
    include_str!("../../../migrations/0008_folded_name_index.sql"),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS)
}

fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let known = migrations.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    // A later migration may rely on an index a first sync left to build: build them first
    // (asked only when there is a migration to run, not at every open).
    if found < known {
        let deferring: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deferred_index')",
            [],
            |r| r.get(0),
        )?;
        if deferring {
            deferred::build(&tx, None)?;
        }
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use crate::testing::*;

    #[test]
    fn a_fresh_cache_gets_every_migration() {
        let (_dir, store) = open_temp();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let tables: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN
                 ('patient','slot','appointment','clinical_entry','journal','audit','sync_state')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 7);
    }

    /// A cache file at schema 1 only, as an older Lifeboat left it.
    fn cache_at_schema_1(dir: &tempfile::TempDir) -> Connection {
        cache_at_schema(dir, 1)
    }

    /// A cache file at `schema`, as an older Lifeboat left it.
    fn cache_at_schema(dir: &tempfile::TempDir, schema: usize) -> Connection {
        let mut conn = Connection::open(dir.path().join("old.db")).unwrap();
        conn.execute_batch(&format!("PRAGMA key = {};", key().pragma_value()))
            .unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..schema]).unwrap();
        conn
    }

    #[test]
    fn names_indexed_as_written_before_schema_8_are_found_folded_after() {
        let dir = tempfile::tempdir().unwrap();
        let conn = cache_at_schema(&dir, 7);
        // As schema 7 kept a patient: the name index held the names as written.
        conn.execute_batch(
            "INSERT INTO patient (pk, id, version_id, last_updated, synced_at, raw, family, given,
                                  family_norm, given_norm)
             VALUES (1, 'p1', '1', '2024-07-01T08:00:00.000Z', '2024-07-01T08:00:00.000Z', '{}',
                     'Wróblewski', 'Michał', 'wroblewski', 'michal');
             INSERT INTO patient_name_fts (rowid, family, given) VALUES (1, 'Wróblewski', 'Michał');",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path().join("old.db"), &key()).unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2024, 7, 19).unwrap();
        for typed in ["Michał", "michal", "Wróblewski Michał", "wrob mich"] {
            let found = store.search_patients(typed, 10, today).unwrap();
            assert_eq!(found.len(), 1, "{typed}");
        }
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// Runs every migration and then `later`, as a future Lifeboat would.
    fn migrate_to_one_later(conn: &mut Connection, later: &str) {
        let chain: Vec<&str> = MIGRATIONS.iter().copied().chain([later]).collect();
        migrate_with(conn, &chain).unwrap();
        assert_eq!(version(conn), chain.len() as i64);
    }

    #[test]
    fn an_older_cache_is_upgraded_in_order_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = cache_at_schema_1(&dir);
        assert_eq!(version(&conn), 1);
        conn.execute_batch("INSERT INTO setting VALUES ('kept', 'yes');")
            .unwrap();
        let extra = "CREATE TABLE later (x TEXT); INSERT INTO later VALUES ('from the last');";
        migrate_to_one_later(&mut conn, extra);
        let kept: String = conn
            .query_row("SELECT value FROM setting WHERE key = 'kept'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kept, "yes");
        let x: String = conn
            .query_row("SELECT x FROM later", [], |r| r.get(0))
            .unwrap();
        assert_eq!(x, "from the last");
        // Running the chain again changes nothing.
        migrate_to_one_later(&mut conn, extra);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM later", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn indexes_a_first_sync_left_to_build_are_built_before_a_later_migration() {
        let (dir, mut store) = open_temp();
        assert!(store.defer_indexes().unwrap() > 0);
        drop(store);
        let mut conn = Connection::open(dir.path().join("cache.db")).unwrap();
        let layout = crate::CIPHER.pragmas("main");
        conn.execute_batch(&format!("PRAGMA key = {}; {layout}", key().pragma_value()))
            .unwrap();
        migrate_to_one_later(&mut conn, "DROP INDEX clinical_entry_by_patient;");
        let waiting: i64 = conn
            .query_row("SELECT count(*) FROM deferred_index", [], |r| r.get(0))
            .unwrap();
        assert_eq!(waiting, 0);
    }

    #[test]
    fn a_newer_schema_is_refused_and_left_unchanged() {
        let (dir, store) = open_temp();
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let err = Store::open(dir.path().join("cache.db"), &key())
            .err()
            .expect("refused");
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, known } if known == SCHEMA_VERSION),
            "{err}"
        );
        assert!(err.to_string().contains("newer Lifeboat"));
    }

    #[test]
    fn a_failing_migration_leaves_the_schema_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = cache_at_schema_1(&dir);
        let broken = "CREATE TABLE half (x); THIS IS NOT SQL;";
        assert!(migrate_with(&mut conn, &[MIGRATIONS[0], broken]).is_err());
        assert_eq!(version(&conn), 1);
        let half: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'half'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half, 0);
    }
}
