//! The encrypted cache: one SQLCipher file holding what Lifeboat has copied from the
//! upstream, the offline journal and the audit log.
//!
//! This crate owns opening the file (key, pragmas, migrations), the cached-resource tables,
//! patient search and the sync bookkeeping tables. It knows nothing of HTTP, roles or screens.
//! The data key is always passed in by the caller: key slots live in the access layer.

mod accounts;
mod audit;
mod cache;
mod compressed;
mod deferred;
pub mod hex;
mod import;
mod journal;
mod migrate;
mod offline;
mod packs;
mod search;
mod worklist;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use lifeboat_model::ResourceKind;
use rusqlite::{Connection, OpenFlags};

pub use accounts::StoredAccount;
pub use audit::{
    AuditAction, AuditEntry, AuditFilter, AuditProblem, AuditRecord, AuditVerification, ChainHead,
    GENESIS_HASH, HeadCheck, TamperKind, search_shape,
};
pub use cache::{CacheTx, ModeChange, StoredResource, SyncState, Upserts};
pub use compressed::CompressedJson;
pub use import::{ImportError, ImportReport};
pub use journal::{JournalEntry, JournalKind, JournalState, NewJournalEntry};
pub use migrate::SCHEMA_VERSION;
pub use offline::{
    AppointmentSource, AppointmentView, DiaryLine, NewOfflineBooking, OfflineNote, PatientBrief,
    SlotQuery, SlotView, SummaryLine,
};
pub use packs::{PackKind, SavedPack};
pub use search::{PatientMatch, SearchError};
pub use worklist::WorkItem;

/// How a cache file is laid out for SQLCipher: the page size, and the HMAC that proves each
/// page unaltered. Cipher (AES-256) and key are the same whatever the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherLayout {
    pub page_size: u32,
    pub hmac: &'static str,
}

impl CipherLayout {
    /// The pragmas that select this layout on `schema` (`main`, or an attached copy); they
    /// follow `PRAGMA key` and come before the first read.
    pub fn pragmas(self, schema: &str) -> String {
        format!(
            "PRAGMA {schema}.cipher_page_size = {}; PRAGMA {schema}.cipher_hmac_algorithm = {};",
            self.page_size, self.hmac
        )
    }
}

/// The layout of new caches. Each page is encrypted and authenticated on its own: 16 KiB
/// pages (SQLCipher's default is 4 KiB) cut the per-page work of writing a large sync by
/// about a sixth, and HMAC-SHA256 (SQLCipher's default is SHA512) is computed in hardware
/// on current processors, where SHA512 was most of the time a sync spent encrypting.
/// A 256-bit HMAC is ample for detecting a page changed without the key.
pub const CIPHER: CipherLayout = CipherLayout {
    page_size: 16384,
    hmac: "HMAC_SHA256",
};

/// Layouts of caches made before `CIPHER`, newest first: still opened as they are.
const OLDER_CIPHERS: [CipherLayout; 2] = [
    CipherLayout {
        page_size: 16384,
        hmac: "HMAC_SHA512",
    },
    CipherLayout {
        page_size: 4096,
        hmac: "HMAC_SHA512",
    },
];

/// The 256-bit data key the cache file is encrypted with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SQLCipher's raw-key form, `x'<64 hex digits>'`: the key is used as is, with no
    /// passphrase derivation at open (the access layer already derived and unwrapped it).
    fn pragma_value(&self) -> String {
        format!("\"x'{}'\"", hex::hex(&self.0))
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the cache file {0} cannot be opened with this key: the key is wrong or the file is not a Lifeboat cache"
    )]
    WrongKeyOrNotACache(PathBuf),
    #[error(
        "the cache file was written by a newer Lifeboat (schema {found}; this version knows up to {known}); update Lifeboat, the file has not been changed"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the cached {kind} {id} cannot be read back: {reason}")]
    Unreadable {
        kind: ResourceKind,
        id: String,
        reason: String,
    },
    #[error("the {kind} {id} cannot be cached: {reason}")]
    Unstorable {
        kind: ResourceKind,
        id: String,
        reason: String,
    },
    #[error("cache database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How each commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is on disk before it returns: the default, and what every offline
    /// change and audit entry needs.
    Full,
    /// Commits survive Lifeboat being killed, but the last few may be rolled back by a power
    /// cut or an operating system crash (the file stays consistent; the next commit made
    /// with `Full` on the file makes them durable too). Only for records that can be
    /// redone from elsewhere, such as what reconciliation has already written upstream.
    Deferred,
}

/// The cache file and the log and shared-memory files SQLite keeps beside it.
pub fn cache_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        db.with_file_name(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Removes a cache file and the files SQLite keeps beside it, those that are there.
pub fn remove_cache_files(db: &Path) {
    for file in cache_files(db) {
        let _ = std::fs::remove_file(file);
    }
}

/// An open cache file. One connection; open another `Store` on the same file for another
/// thread (WAL lets readers carry on while a sync writes).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    key: CacheKey,
}

impl Store {
    /// Opens (creating if absent) the cache at `path` with `key`, and brings its schema up
    /// to date. A wrong key, a plain SQLite file or a newer schema is refused, unchanged.
    pub fn open(path: impl AsRef<Path>, key: &CacheKey) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // A cache made before the current layout opens with the one it was made with.
        let mut conn = None;
        for layout in std::iter::once(CIPHER).chain(OLDER_CIPHERS) {
            conn = Self::connect(&path, key, layout)?;
            if conn.is_some() {
                break;
            }
        }
        let conn = conn.ok_or_else(|| StoreError::WrongKeyOrNotACache(path.clone()))?;
        // A 32 MiB page cache: every page read from disk must be decrypted again.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 10000;
             PRAGMA cache_size = -32768;",
        )?;
        let mut store = Self {
            conn,
            path,
            key: key.clone(),
        };
        migrate::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// A connection to `path` keyed with `key` in `layout`, if that opens it: the first read
    /// is what proves key and layout (a wrong one, or a plain file, fails there).
    fn connect(path: &Path, key: &CacheKey, layout: CipherLayout) -> Result<Option<Connection>> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // SQLCipher reports decryption failures on stderr by default; the caller gets a
        // typed error instead, so keep stderr clean.
        let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
        conn.execute_batch(&format!(
            "PRAGMA key = {}; {}",
            key.pragma_value(),
            layout.pragmas("main")
        ))?;
        let readable = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok();
        Ok(readable.then_some(conn))
    }

    /// For a connection that writes only what can be fetched again (a sync): commits are
    /// not waited for on disk. WAL keeps the file consistent after a crash or power cut;
    /// at worst the last pages are fetched again. Offline changes never use this.
    ///
    /// Nor does this connection copy the log back into the file when it grows: that ends
    /// by flushing the file to disk, and a large sync's writer would wait for it. Another
    /// connection's `checkpoint` does (the sync's checkpointer), and the last connection
    /// to close copies what is left.
    pub fn relax_durability_for_refetchable_data(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")?;
        Ok(())
    }

    /// Lets this connection keep up to `bytes` of pages in memory (32 MiB otherwise).
    pub fn keep_in_memory(&self, bytes: u64) -> Result<()> {
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{};", bytes >> 10))?;
        Ok(())
    }

    /// The cache file's size in bytes, as this connection sees it (the log included).
    pub fn size(&self) -> Result<u64> {
        let bytes: i64 = self.conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Copies what the write-ahead log holds back into the cache file, as far as readers
    /// allow (never waiting for them). Returns the log's length in bytes: once all of it is
    /// copied back, the next write transaction starts it again from its beginning.
    pub fn checkpoint(&self) -> Result<u64> {
        // Columns: busy, pages in the log, pages copied back (-1, -1 outside WAL mode).
        let pages: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
        // (SQLCipher answers `PRAGMA page_size` itself, with text.)
        let page_size: i64 = self.conn.query_row(
            "SELECT CAST(page_size AS INTEGER) FROM pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(pages.max(0) * page_size).unwrap_or(0))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes an encrypted copy of the whole cache, under the same key, to `to` (which must
    /// not exist): a drill's practice copy.
    pub fn copy_to(&self, to: &Path) -> Result<()> {
        self.conn.execute(
            &format!("ATTACH DATABASE ?1 AS copy KEY {}", self.key.pragma_value()),
            [to.to_string_lossy()],
        )?;
        self.conn.execute_batch(&CIPHER.pragmas("copy"))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let copied = self
            .conn
            .query_row("SELECT sqlcipher_export('copy')", [], |_| Ok(()))
            .and_then(|()| {
                self.conn
                    .execute_batch(&format!("PRAGMA copy.user_version = {version};"))
            });
        let detached = self.conn.execute_batch("DETACH DATABASE copy;");
        copied?;
        detached?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Starts a write transaction (IMMEDIATE: takes the write lock now, so two writers
    /// queue instead of failing halfway).
    pub fn transaction(&mut self) -> Result<CacheTx<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(CacheTx::new(tx))
    }

    /// How this connection's commits reach the disk (each connection has its own).
    pub fn set_durability(&self, durability: Durability) -> Result<()> {
        self.conn.execute_batch(match durability {
            Durability::Full => "PRAGMA synchronous = FULL;",
            Durability::Deferred => "PRAGMA synchronous = NORMAL;",
        })?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM setting WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }
}

/// How times are written to the cache: fixed-width UTC so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn key() -> CacheKey {
        CacheKey::from_bytes([7; 32])
    }

    pub fn open_temp() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("cache.db"), &key()).expect("open cache");
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    /// Writes `n` settings of 200 KB each in one transaction, named from `first` on.
    fn write_big(store: &mut Store, first: usize, n: usize) {
        let tx = store.transaction().unwrap();
        let big = "x".repeat(200_000);
        for n in first..first + n {
            tx.set_setting(&format!("big {n}"), &big).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn size_counts_what_another_connection_committed() {
        let (dir, mut writing) = open_temp();
        let reading = Store::open(dir.path().join("cache.db"), &key()).unwrap();
        let empty = reading.size().unwrap();
        assert!(empty > 0);
        write_big(&mut writing, 0, 10);
        let grown = reading.size().unwrap();
        assert!(grown >= empty + 2_000_000, "{empty} -> {grown}");
    }

    #[test]
    fn a_connection_keeps_as_much_in_memory_as_it_is_given() {
        let (_dir, store) = open_temp();
        let kib = |store: &Store| -> i64 {
            store
                .conn
                .query_row("PRAGMA cache_size", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(kib(&store), -32 * 1024);
        store.keep_in_memory(128 << 20).unwrap();
        assert_eq!(kib(&store), -128 * 1024);
    }

    #[test]
    fn a_checkpoint_gives_the_log_length_until_a_transaction_starts_it_again() {
        let (dir, mut writing) = open_temp();
        writing.relax_durability_for_refetchable_data().unwrap();
        let copying = Store::open(dir.path().join("cache.db"), &key()).unwrap();
        write_big(&mut writing, 0, 10);
        let grown = copying.checkpoint().unwrap();
        assert!(grown >= 2_000_000, "{grown}");
        // Copied back already: the log keeps its length until the next write.
        assert_eq!(copying.checkpoint().unwrap(), grown);
        write_big(&mut writing, 10, 1);
        let again = copying.checkpoint().unwrap();
        assert!(again < 1_000_000, "{grown} -> {again}");
    }

    #[test]
    fn opens_a_new_cache_and_reopens_it_with_the_same_key() {
        let (dir, store) = open_temp();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        drop(store);
        let again = Store::open(dir.path().join("cache.db"), &key()).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
    }

    fn layout(store: &Store) -> (i64, String) {
        let pragma = |name: &str| {
            store
                .conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, String>(0))
                .unwrap()
        };
        (
            pragma("cipher_page_size").parse().unwrap(),
            pragma("cipher_hmac_algorithm"),
        )
    }

    #[test]
    fn new_caches_and_copies_use_the_current_layout_and_older_caches_still_open() {
        let current = (i64::from(CIPHER.page_size), CIPHER.hmac.to_string());
        let (dir, store) = open_temp();
        assert_eq!(layout(&store), current);
        let copy = dir.path().join("copy.db");
        store.copy_to(&copy).unwrap();
        assert_eq!(layout(&Store::open(&copy, &key()).unwrap()), current);
        assert_eq!(current, (16384, "HMAC_SHA256".to_string()));

        // Caches as Lifeboat made them before: SQLCipher's defaults (4 KiB pages, SHA512),
        // then 16 KiB pages.
        for (i, older) in OLDER_CIPHERS.into_iter().enumerate() {
            let old = dir.path().join(format!("old-{i}.db"));
            let conn = Connection::open(&old).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA key = {}; {} CREATE TABLE kept (v TEXT); INSERT INTO kept VALUES ('yes');",
                key().pragma_value(),
                older.pragmas("main")
            ))
            .unwrap();
            drop(conn);
            let reopened = Store::open(&old, &key()).unwrap();
            assert_eq!(
                layout(&reopened),
                (i64::from(older.page_size), older.hmac.to_string())
            );
            let kept: String = reopened
                .conn
                .query_row("SELECT v FROM kept", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kept, "yes");
            assert_eq!(reopened.schema_version().unwrap(), SCHEMA_VERSION);
            drop(reopened);
            assert!(matches!(
                Store::open(&old, &CacheKey::from_bytes([1; 32])),
                Err(StoreError::WrongKeyOrNotACache(_))
            ));
        }
        assert_eq!(OLDER_CIPHERS[1].page_size, 4096, "SQLCipher's default");
    }

    #[test]
    fn a_copy_opens_with_the_same_key_and_holds_the_same_data() {
        let (dir, mut store) = open_temp();
        let tx = store.transaction().unwrap();
        tx.set_setting("practice", "The Surgery").unwrap();
        tx.commit().unwrap();
        let copy_path = dir.path().join("copy.db");
        store.copy_to(&copy_path).unwrap();
        let copy = Store::open(&copy_path, &key()).unwrap();
        assert_eq!(
            copy.setting("practice").unwrap().as_deref(),
            Some("The Surgery")
        );
        assert_eq!(copy.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(Store::open(&copy_path, &CacheKey::from_bytes([1; 32])).is_err());
    }

    #[test]
    fn durability_can_be_deferred_and_restored_per_connection() {
        let (dir, store) = open_temp();
        let synchronous = |s: &Store| -> i64 {
            s.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(synchronous(&store), 2, "FULL by default");
        store.set_durability(Durability::Deferred).unwrap();
        assert_eq!(synchronous(&store), 1, "NORMAL");
        let other = Store::open(dir.path().join("cache.db"), &key()).unwrap();
        assert_eq!(synchronous(&other), 2, "another connection is unaffected");
        store.set_durability(Durability::Full).unwrap();
        assert_eq!(synchronous(&store), 2);
    }

    #[test]
    fn a_wrong_key_is_refused_cleanly() {
        let (dir, store) = open_temp();
        drop(store);
        let err = Store::open(dir.path().join("cache.db"), &CacheKey::from_bytes([8; 32]))
            .err()
            .expect("wrong key must fail");
        assert!(matches!(err, StoreError::WrongKeyOrNotACache(_)), "{err}");
    }

    #[test]
    fn the_file_is_unreadable_as_plain_sqlite() {
        let (dir, store) = open_temp();
        drop(store);
        let path = dir.path().join("cache.db");
        // Without a key SQLCipher is plain SQLite: it must see no schema, only noise.
        let plain = Connection::open(&path).unwrap();
        let read = plain.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        });
        assert!(
            read.is_err(),
            "an encrypted cache must not read as plain SQLite"
        );
        // And the bytes on disk carry no SQLite header nor any table name.
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3"));
        assert!(!bytes.windows(7).any(|w| w == b"patient"));
    }

    #[test]
    fn a_plain_sqlite_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(
            Store::open(&path, &key()),
            Err(StoreError::WrongKeyOrNotACache(_))
        ));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "file must be left as it was"
        );
    }
}
