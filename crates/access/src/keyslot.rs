//! Key slots: the cache's random data key, wrapped once per staff account with a key derived
//! from that account's password, kept in a JSON file beside the cache (`<cache>.keys`).
//!
//! This module owns the file's format, writing it atomically, wrapping and unwrapping, the
//! per-username failed-login counts and the audit chain head kept outside the cache. It must
//! never write the data key, a password or a derived key to disk or to a log. Roles are not
//! here: they are in the encrypted cache, where they cannot be changed without the key.
//!
//! Wrapping: PBKDF2-HMAC-SHA256 (ring) over the NFC password with a random 16-byte salt
//! gives a 256-bit key-encryption key; AES-256-GCM with a random 96-bit nonce seals the
//! 32-byte data key. The associated data binds the slot to its username and iteration
//! count, so copying one's own slot under a manager's username does not unlock as them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use lifeboat_store::hex::{hex, unhex};
use lifeboat_store::{CacheKey, ChainHead};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::AccessSettings;
use crate::error::{AccessError, Result};
use crate::password::Password;

const FORMAT: &str = "lifeboat key slots";
const VERSION: u32 = 1;
const KDF: &str = "pbkdf2-hmac-sha256";
const CIPHER: &str = "aes-256-gcm";
const SALT_LEN: usize = 16;
/// Refuse iteration counts beyond this when reading: a doctored file must not make a login
/// spin for hours.
const MAX_ITERATIONS: u32 = 20_000_000;
/// Failed-login counts are also kept for usernames that do not exist (so lockout does not
/// reveal which do); this caps how many, dropping the oldest.
const MAX_REMEMBERED_FAILURES: usize = 256;

/// Where the key slots of the cache at `cache` live: beside it, `<file name>.keys`.
pub fn key_slot_path(cache: &Path) -> PathBuf {
    let mut name = cache.file_name().unwrap_or_default().to_os_string();
    name.push(".keys");
    cache.with_file_name(name)
}

/// The key-slot file as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeySlotFile {
    format: String,
    version: u32,
    slots: Vec<KeySlot>,
    #[serde(default)]
    pub failed_logins: FailureBook,
    /// The last audit entry seen by the access layer; see `docs/security.md`.
    #[serde(default)]
    audit_head: Option<RecordedHead>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeySlot {
    pub username: String,
    kdf: String,
    /// Kept per slot: slots made with an older setting still open, and are re-wrapped at
    /// the current setting on the next login.
    pub iterations: u32,
    salt: String,
    cipher: String,
    nonce: String,
    /// The sealed data key and its 16-byte tag, hex.
    wrapped_key: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FailedLogins {
    pub count: u32,
    pub last_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordedHead {
    seq: i64,
    hash: String,
}

/// A lockout in force: how long is left and how many failures caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lockout {
    pub seconds_left: i64,
    pub failures: u32,
}

impl Lockout {
    pub fn into_error(self) -> AccessError {
        AccessError::LockedOut {
            seconds: self.seconds_left,
            failures: self.failures,
        }
    }
}

impl KeySlotFile {
    pub fn new() -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            slots: Vec::new(),
            failed_logins: FailureBook::default(),
            audit_head: None,
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AccessError::NotSetUp { path: path.into() });
            }
            Err(e) => return Err(AccessError::io(path)(e)),
        };
        let damaged = |reason: String| AccessError::KeySlotFileDamaged {
            path: path.into(),
            reason,
        };
        let file: Self = serde_json::from_slice(&bytes)
            .map_err(|e| damaged(format!("not readable as key slots: {e}")))?;
        if file.format != FORMAT {
            return Err(damaged("not a Lifeboat key-slot file".into()));
        }
        if file.version != VERSION {
            return Err(damaged(format!(
                "format version {} is not one this Lifeboat knows ({VERSION})",
                file.version
            )));
        }
        Ok(file)
    }

    /// Replaces the file atomically: a crash leaves the old file or the new, never half of
    /// one (temp file in the same folder, fsync, rename, fsync the folder).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| AccessError::KeySlotFileDamaged {
                path: path.into(),
                reason: format!("cannot encode: {e}"),
            })?;
        write_atomically(path, &json)?;
        tracing::debug!(path = %path.display(), slots = self.slots.len(), "key slots written");
        Ok(())
    }

    pub fn slot(&self, username: &str) -> Option<&KeySlot> {
        self.slots.iter().find(|s| s.username == username)
    }

    #[cfg(test)]
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Adds the slot, replacing any earlier slot for the same username.
    pub fn put_slot(&mut self, slot: KeySlot) {
        self.slots.retain(|s| s.username != slot.username);
        self.slots.push(slot);
    }

    pub fn remove_slot(&mut self, username: &str) -> bool {
        let before = self.slots.len();
        self.slots.retain(|s| s.username != username);
        self.slots.len() != before
    }

    pub fn recorded_head(&self, path: &Path) -> Result<Option<ChainHead>> {
        self.audit_head
            .as_ref()
            .map(|h| {
                ChainHead::from_hex(h.seq, &h.hash).ok_or_else(|| AccessError::KeySlotFileDamaged {
                    path: path.into(),
                    reason: "the recorded audit head is not a hash".into(),
                })
            })
            .transpose()
    }

    pub fn set_head(&mut self, head: Option<ChainHead>) {
        self.audit_head = head.map(|h| RecordedHead {
            seq: h.seq,
            hash: h.hash_hex(),
        });
    }
}

/// Failed logins per username, and the lockouts they cause. Kept in the key-slot file for
/// usernames that have a slot (so a restart does not reset them); for any other username
/// only in memory, because people type passwords into the username box and the file is
/// readable by anyone with the laptop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct FailureBook(BTreeMap<String, FailedLogins>);

impl FailureBook {
    pub fn failures(&self, username: &str) -> u32 {
        self.0.get(username).map_or(0, |f| f.count)
    }

    /// The lockout in force for `username` at `now`, if any.
    pub fn lockout(&self, username: &str, now: DateTime<Utc>) -> Option<Lockout> {
        let f = self.0.get(username)?;
        let until = f.locked_until?;
        (until > now).then(|| Lockout {
            // Rounded up, so "locked for 0 s" is never shown while still locked.
            seconds_left: ((until - now).num_milliseconds() + 999) / 1000,
            failures: f.count,
        })
    }

    /// Counts a failed attempt; returns the lockout it starts, if it reaches the limit.
    /// Each failure past the limit doubles the wait, up to the cap.
    pub fn record_failure(
        &mut self,
        username: &str,
        now: DateTime<Utc>,
        settings: &AccessSettings,
    ) -> Option<Lockout> {
        let entry = self.0.entry(username.to_string()).or_insert(FailedLogins {
            count: 0,
            last_at: now,
            locked_until: None,
        });
        entry.count = entry.count.saturating_add(1);
        entry.last_at = now;
        let lockout = if entry.count >= settings.max_failed_logins {
            let doublings = (entry.count - settings.max_failed_logins).min(20);
            let wait = settings
                .first_lockout
                .checked_mul(1 << doublings)
                .unwrap_or(settings.lockout_cap)
                .min(settings.lockout_cap);
            entry.locked_until = Some(now + wait);
            Some(Lockout {
                seconds_left: wait.num_seconds(),
                failures: entry.count,
            })
        } else {
            None
        };
        if self.0.len() > MAX_REMEMBERED_FAILURES {
            // Forget the stalest record that is not locked now.
            if let Some(oldest) = self
                .0
                .iter()
                .filter(|(_, f)| f.locked_until.is_none_or(|u| u <= now))
                .min_by_key(|(_, f)| f.last_at)
                .map(|(u, _)| u.clone())
            {
                self.0.remove(&oldest);
            }
        }
        lockout
    }

    pub fn clear_failures(&mut self, username: &str) -> u32 {
        self.0.remove(username).map_or(0, |f| f.count)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", hex(&random_bytes::<6>()?)));
    let write = || -> std::io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Only the practice's user account need read it.
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // The rename itself is only durable once the folder is synced (not possible on
        // Windows, where rename is already journalled by NTFS).
        #[cfg(unix)]
        File::open(&dir)?.sync_all()?;
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AccessError::io(path)(e)
    })
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| AccessError::RandomUnavailable)?;
    Ok(out)
}

/// A new random data key for a new cache.
pub(crate) fn new_data_key() -> Result<CacheKey> {
    Ok(CacheKey::from_bytes(random_bytes::<32>()?))
}

fn derive_kek(password: &Password, salt: &[u8], iterations: NonZeroU32) -> [u8; 32] {
    let mut kek = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut kek,
    );
    kek
}

fn associated_data(username: &str, iterations: u32) -> Vec<u8> {
    let mut aad = b"lifeboat key slot v1\0".to_vec();
    aad.extend_from_slice(username.as_bytes());
    aad.push(0);
    aad.extend_from_slice(&iterations.to_be_bytes());
    aad
}

fn sealing_key(kek: &[u8; 32]) -> LessSafeKey {
    // A 32-byte key is exactly what AES-256-GCM takes, so this cannot fail.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, kek).expect("a 32-byte key suits AES-256"))
}

/// Wraps `key` for `username` under `password`.
pub(crate) fn wrap(
    key: &CacheKey,
    username: &str,
    password: &Password,
    iterations: NonZeroU32,
    now: DateTime<Utc>,
) -> Result<KeySlot> {
    let salt = random_bytes::<SALT_LEN>()?;
    let nonce = random_bytes::<NONCE_LEN>()?;
    let mut kek = derive_kek(password, &salt, iterations);
    let mut sealed = key.as_bytes().to_vec();
    let result = sealing_key(&kek).seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(associated_data(username, iterations.get())),
        &mut sealed,
    );
    kek.fill(0);
    result.map_err(|_| AccessError::RandomUnavailable)?;
    Ok(KeySlot {
        username: username.to_string(),
        kdf: KDF.into(),
        iterations: iterations.get(),
        salt: hex(&salt),
        cipher: CIPHER.into(),
        nonce: hex(&nonce),
        wrapped_key: hex(&sealed),
        created_at: now,
    })
}

/// Unwraps the data key with `password`: `Ok(None)` if the password is wrong (the AEAD tag
/// does not verify), an error if the slot itself is malformed.
pub(crate) fn unwrap(slot: &KeySlot, password: &Password, path: &Path) -> Result<Option<CacheKey>> {
    let damaged = |reason: &str| AccessError::KeySlotFileDamaged {
        path: path.into(),
        reason: format!("the slot for {} {reason}", slot.username),
    };
    if slot.kdf != KDF || slot.cipher != CIPHER {
        return Err(damaged("uses an unknown key derivation or cipher"));
    }
    let iterations = NonZeroU32::new(slot.iterations)
        .filter(|n| n.get() <= MAX_ITERATIONS)
        .ok_or_else(|| damaged("has an impossible iteration count"))?;
    let salt = unhex(&slot.salt)
        .filter(|s| s.len() == SALT_LEN)
        .ok_or_else(|| damaged("has a malformed salt"))?;
    let nonce: [u8; NONCE_LEN] = unhex(&slot.nonce)
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| damaged("has a malformed nonce"))?;
    let mut sealed = unhex(&slot.wrapped_key)
        .filter(|w| w.len() == 32 + AES_256_GCM.tag_len())
        .ok_or_else(|| damaged("has a malformed wrapped key"))?;
    let mut kek = derive_kek(password, &salt, iterations);
    let opened = sealing_key(&kek)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(&slot.username, slot.iterations)),
            &mut sealed,
        )
        .ok()
        .and_then(|plain| <[u8; 32]>::try_from(&plain[..]).ok())
        .map(CacheKey::from_bytes);
    kek.fill(0);
    sealed.fill(0);
    Ok(opened)
}

/// Spends the same time as unwrapping a slot, for a username with no slot, so the time a
/// refusal takes does not tell which usernames exist.
pub(crate) fn spend_equal_time(password: &Password, iterations: NonZeroU32) {
    let mut kek = derive_kek(password, &[0u8; SALT_LEN], iterations);
    kek.fill(0);
    std::hint::black_box(&kek);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 7, 19, 8, 0, 0).unwrap()
    }

    fn few() -> NonZeroU32 {
        NonZeroU32::new(1_000).unwrap()
    }

    #[test]
    fn a_slot_opens_with_its_password_and_no_other() {
        let key = new_data_key().unwrap();
        let slot = wrap(
            &key,
            "sam",
            &Password::new("reception desk 1"),
            few(),
            now(),
        )
        .unwrap();
        let p = Path::new("x.keys");
        assert_eq!(
            unwrap(&slot, &Password::new("reception desk 1"), p).unwrap(),
            Some(key)
        );
        assert_eq!(
            unwrap(&slot, &Password::new("reception desk 2"), p).unwrap(),
            None
        );
    }

    #[test]
    fn a_slot_copied_under_another_username_does_not_open() {
        let key = new_data_key().unwrap();
        let mut slot = wrap(
            &key,
            "sam",
            &Password::new("reception desk 1"),
            few(),
            now(),
        )
        .unwrap();
        slot.username = "manager".into();
        let opened = unwrap(&slot, &Password::new("reception desk 1"), Path::new("x")).unwrap();
        assert_eq!(opened, None);
    }

    #[test]
    fn a_lowered_iteration_count_does_not_open() {
        let key = new_data_key().unwrap();
        let mut slot = wrap(
            &key,
            "sam",
            &Password::new("reception desk 1"),
            few(),
            now(),
        )
        .unwrap();
        slot.iterations = 999;
        let opened = unwrap(&slot, &Password::new("reception desk 1"), Path::new("x")).unwrap();
        assert_eq!(opened, None);
    }

    #[test]
    fn the_file_holds_no_copy_of_the_key_or_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db.keys");
        let key = new_data_key().unwrap();
        let mut file = KeySlotFile::new();
        file.put_slot(
            wrap(
                &key,
                "sam",
                &Password::new("reception desk 1"),
                few(),
                now(),
            )
            .unwrap(),
        );
        file.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex(key.as_bytes())));
        assert!(!text.contains("reception desk 1"));
        assert!(!text.contains(&hex(b"reception desk 1")));
        let back = KeySlotFile::load(&path).unwrap();
        assert_eq!(back.slot_count(), 1);
        // No temp files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn damaged_files_and_slots_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.db.keys");
        for junk in [
            "",
            "{}",
            "[1,2]",
            r#"{"format":"x","version":1,"slots":[]}"#,
            r#"{"format":"lifeboat key slots","version":9,"slots":[]}"#,
        ] {
            std::fs::write(&path, junk).unwrap();
            let err = KeySlotFile::load(&path).unwrap_err();
            assert!(
                matches!(err, AccessError::KeySlotFileDamaged { .. }),
                "{junk}: {err}"
            );
        }
        let key = new_data_key().unwrap();
        let good = wrap(
            &key,
            "sam",
            &Password::new("reception desk 1"),
            few(),
            now(),
        )
        .unwrap();
        let pw = Password::new("reception desk 1");
        for damage in [
            |s: &mut KeySlot| s.salt = "zz".into(),
            |s: &mut KeySlot| s.nonce = "00".into(),
            |s: &mut KeySlot| s.wrapped_key.truncate(10),
            |s: &mut KeySlot| s.iterations = 0,
            |s: &mut KeySlot| s.iterations = u32::MAX,
            |s: &mut KeySlot| s.kdf = "md5".into(),
        ] {
            let mut slot = good.clone();
            damage(&mut slot);
            assert!(matches!(
                unwrap(&slot, &pw, &path),
                Err(AccessError::KeySlotFileDamaged { .. })
            ));
        }
    }

    #[test]
    fn the_slot_path_sits_beside_the_cache() {
        assert_eq!(
            key_slot_path(Path::new("/srv/lifeboat/practice.db")),
            PathBuf::from("/srv/lifeboat/practice.db.keys")
        );
    }

    #[test]
    fn lockout_doubles_after_the_limit_and_stops_at_the_cap() {
        let settings = AccessSettings::default();
        let mut file = FailureBook::default();
        let mut t = now();
        for _ in 0..4 {
            assert_eq!(file.record_failure("sam", t, &settings), None);
        }
        let waits: Vec<i64> = (0..8)
            .map(|_| {
                t += chrono::Duration::hours(1);
                file.record_failure("sam", t, &settings)
                    .expect("locked")
                    .seconds_left
            })
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 900, 900, 900]);
        assert_eq!(file.clear_failures("sam"), 12);
        assert_eq!(file.lockout("sam", t), None);
    }

    #[test]
    fn failures_for_many_unknown_usernames_are_not_remembered_without_bound() {
        let settings = AccessSettings::default();
        let mut book = FailureBook::default();
        for i in 0..1000 {
            book.record_failure(&format!("guess{i}"), now(), &settings);
        }
        assert!(book.0.len() <= MAX_REMEMBERED_FAILURES + 1);
    }
}
