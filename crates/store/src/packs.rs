//! The downtime pack kept in the cache: PDFs rendered ahead of an outage, grouped by the
//! preparation that made them, the last few preparations kept.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::{CacheTx, Result, Store, parse_ts, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackKind {
    /// The day list: anyone may print it.
    DayList,
    /// The clinical summary pack: clinicians and managers only.
    SummaryPack,
}

impl PackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackKind::DayList => "day_list",
            PackKind::SummaryPack => "summary_pack",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "summary_pack" {
            PackKind::SummaryPack
        } else {
            PackKind::DayList
        }
    }
}

/// One stored document of a prepared pack (without its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPack {
    pub id: i64,
    pub prepared_at: DateTime<Utc>,
    pub for_date: NaiveDate,
    pub kind: PackKind,
    /// How old the cached data was when the pack was rendered, as shown on its pages.
    pub data_as_of: String,
    pub bytes: usize,
}

const COLUMNS: &str = "id, prepared_at, for_date, kind, data_as_of, length(pdf)";

fn saved_pack(r: &rusqlite::Row<'_>) -> rusqlite::Result<SavedPack> {
    Ok(SavedPack {
        id: r.get(0)?,
        prepared_at: parse_ts(&r.get::<_, String>(1)?).unwrap_or_default(),
        for_date: r.get::<_, String>(2)?.parse().unwrap_or_default(),
        kind: PackKind::parse(&r.get::<_, String>(3)?),
        data_as_of: r.get(4)?,
        bytes: r.get::<_, i64>(5)?.try_into().unwrap_or_default(),
    })
}

impl CacheTx<'_> {
    pub fn save_pack(
        &self,
        prepared_at: DateTime<Utc>,
        for_date: NaiveDate,
        kind: PackKind,
        data_as_of: &str,
        pdf: &[u8],
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO downtime_pack (prepared_at, for_date, kind, data_as_of, pdf)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                ts(prepared_at),
                for_date.to_string(),
                kind.as_str(),
                data_as_of,
                pdf
            ])?;
        Ok(())
    }

    /// Deletes every document but those of the `keep` latest preparations; returns how many
    /// went.
    pub fn prune_packs(&self, keep: usize) -> Result<usize> {
        Ok(self
            .tx
            .prepare_cached(
                "DELETE FROM downtime_pack WHERE prepared_at NOT IN (
                     SELECT DISTINCT prepared_at FROM downtime_pack
                     ORDER BY prepared_at DESC LIMIT ?1)",
            )?
            .execute([i64::try_from(keep).unwrap_or(i64::MAX)])?)
    }
}

impl Store {
    /// The kept packs, newest preparation first.
    pub fn saved_packs(&self) -> Result<Vec<SavedPack>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM downtime_pack ORDER BY prepared_at DESC, kind, id"
        ))?;
        let rows = stmt
            .query_map([], saved_pack)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// One kept document with its bytes.
    pub fn saved_pack_pdf(&self, id: i64) -> Result<Option<(SavedPack, Vec<u8>)>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS}, pdf FROM downtime_pack WHERE id = ?1"),
                [id],
                |r| Ok((saved_pack(r)?, r.get(6)?)),
            )
            .optional()?)
    }

    /// When the latest pack was prepared, if one is kept.
    pub fn last_pack_prepared(&self) -> Result<Option<DateTime<Utc>>> {
        let last: Option<String> =
            self.conn
                .query_row("SELECT max(prepared_at) FROM downtime_pack", [], |r| {
                    r.get(0)
                })?;
        Ok(last.as_deref().and_then(parse_ts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::CacheKey;
    use chrono::{Datelike, TimeZone};

    #[test]
    fn only_the_latest_preparations_are_kept_and_each_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(dir.path().join("c.db"), &CacheKey::from_bytes([7; 32])).unwrap();
        assert_eq!(store.last_pack_prepared().unwrap(), None);
        let day = NaiveDate::from_ymd_opt(2024, 7, 19).unwrap();
        for n in 0..4u32 {
            let at = Utc.with_ymd_and_hms(2024, 7, 15 + n, 17, 0, 0).unwrap();
            let tx = store.transaction().unwrap();
            tx.save_pack(at, day, PackKind::DayList, "1 hour old", &[n as u8; 10])
                .unwrap();
            tx.save_pack(at, day, PackKind::SummaryPack, "1 hour old", b"pack")
                .unwrap();
            let pruned = tx.prune_packs(2).unwrap();
            assert_eq!(pruned, if n < 2 { 0 } else { 2 });
            tx.commit().unwrap();
        }
        let kept = store.saved_packs().unwrap();
        assert_eq!(kept.len(), 4);
        let newest = Utc.with_ymd_and_hms(2024, 7, 18, 17, 0, 0).unwrap();
        assert_eq!(kept[0].prepared_at, newest);
        assert_eq!(kept[0].kind, PackKind::DayList);
        assert_eq!(kept[1].kind, PackKind::SummaryPack);
        assert_eq!(kept[2].prepared_at.day(), 17);
        assert_eq!(store.last_pack_prepared().unwrap(), Some(newest));
        let (meta, pdf) = store.saved_pack_pdf(kept[0].id).unwrap().unwrap();
        assert_eq!((meta.bytes, pdf), (10, vec![3u8; 10]));
        assert_eq!(meta.for_date, day);
        assert!(store.saved_pack_pdf(-1).unwrap().is_none());
    }
}
