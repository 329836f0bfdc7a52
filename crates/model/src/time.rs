//! Time as the practice sees it: stored in UTC, shown in Europe/London in UK style
//! ("Fri 19 Jul 2024 09:40"), with the age of cached data spelled out.
//!
//! One clock abstraction for the whole core, so tests control time.

use std::sync::Mutex;

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::London;

/// Where the core gets "now" from.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    fn today_in_london(&self) -> NaiveDate {
        london_date(self.now())
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until moved: for tests, drills and the demo.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// "Fri 19 Jul 2024 09:40" in Europe/London.
pub fn format_uk(at: DateTime<Utc>) -> String {
    at.with_timezone(&London)
        .format("%a %-d %b %Y %H:%M")
        .to_string()
}

/// The Europe/London calendar day an instant falls on.
pub fn london_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&London).date_naive()
}

/// "19 Jul 2024": how dates of birth are shown.
pub fn format_uk_date(d: NaiveDate) -> String {
    d.format("%-d %b %Y").to_string()
}

/// A FHIR date or dateTime as people read it, to the precision it was recorded: "2024",
/// "Jun 2024", "Sat 8 Jun 2024", or (a dateTime) "Mon 29 Jan 2024 09:40" in Europe/London.
/// Anything else is shown as it came.
pub fn format_fhir_date(value: &str) -> String {
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return format_uk(at.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return d.format("%a %-d %b %Y").to_string();
    }
    if let Ok(d) = NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d") {
        return d.format("%b %Y").to_string();
    }
    value.to_string()
}

/// A local Europe/London wall-clock time as UTC. In the autumn overlap (01:00-02:00 happens
/// twice) the earlier instant is taken; in the spring gap (01:00-02:00 does not exist) the
/// time is moved forward past the gap, as a wall clock would be.
pub fn london_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    match London.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            let shifted = local + chrono::Duration::hours(1);
            London
                .from_local_datetime(&shifted)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&local))
        }
    }
}

/// Whole years between a date of birth and a day.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// How old cached data is, for the "data as of" line every cached screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DataAge {
    pub as_of: DateTime<Utc>,
    pub seconds: i64,
}

impl DataAge {
    pub fn new(as_of: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            as_of,
            seconds: (now - as_of).num_seconds().max(0),
        }
    }

    /// "data as of Fri 19 Jul 2024 09:40 (2 h 5 min ago)".
    pub fn describe(&self) -> String {
        format!(
            "data as of {} ({})",
            format_uk(self.as_of),
            humanise_age(self.seconds)
        )
    }
}

fn humanise_age(seconds: i64) -> String {
    let minutes = seconds / 60;
    match minutes {
        0 => "just now".to_string(),
        1..=59 => format!("{minutes} min ago"),
        60..=1439 => format!("{} h {} min ago", minutes / 60, minutes % 60),
        _ => {
            let days = minutes / 1440;
            let hours = (minutes % 1440) / 60;
            format!("{days} d {hours} h ago")
        }
    }
}

/// A date of birth as typed at a reception desk: `12/03/1958`, `12-Mar-1958`, `12 Mar 1958`,
/// `1958-03-12`, `12.03.1958`. Day-first, always (UK).
pub fn parse_uk_date(input: &str) -> Option<NaiveDate> {
    let s = input.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    let parts: Vec<&str> = s
        .split(['/', '-', '.', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    let [day, month, year] = parts.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    let month: u32 = month.parse().ok().or_else(|| month_from_name(month))?;
    if year.len() != 4 {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

fn month_from_name(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let lower = name.to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| lower.starts_with(m))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fhir_dates_keep_their_precision_in_uk_style() {
        assert_eq!(format_fhir_date("2024"), "2024");
        assert_eq!(format_fhir_date("2024-06"), "Jun 2024");
        assert_eq!(format_fhir_date("2024-06-08"), "Sat 8 Jun 2024");
        // Summer time: 08:40 UTC is 09:40 in London.
        assert_eq!(
            format_fhir_date("2024-07-19T08:40:00.000Z"),
            "Fri 19 Jul 2024 09:40"
        );
        assert_eq!(
            format_fhir_date("2024-01-29T09:40:00+00:00"),
            "Mon 29 Jan 2024 09:40"
        );
        assert_eq!(format_fhir_date("sometime"), "sometime");
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn shows_uk_style_in_summer_time() {
        // 08:40 UTC on 19 July is 09:40 British Summer Time.
        assert_eq!(
            format_uk(utc("2024-07-19T08:40:00Z")),
            "Fri 19 Jul 2024 09:40"
        );
    }

    #[test]
    fn shows_uk_style_in_winter() {
        assert_eq!(
            format_uk(utc("2024-01-05T08:40:00Z")),
            "Fri 5 Jan 2024 08:40"
        );
    }

    #[test]
    fn london_wall_clock_handles_the_clock_changes() {
        let local = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            london_to_utc(local("2024-07-19 09:40")),
            utc("2024-07-19T08:40:00Z")
        );
        // 31 Mar 2024 01:30 does not exist in London: moved past the gap.
        assert_eq!(
            london_to_utc(local("2024-03-31 01:30")),
            utc("2024-03-31T01:30:00Z")
        );
        // 27 Oct 2024 01:30 happens twice: the first (BST) is taken.
        assert_eq!(
            london_to_utc(local("2024-10-27 01:30")),
            utc("2024-10-27T00:30:00Z")
        );
    }

    #[test]
    fn parses_dates_of_birth_as_typed_at_reception() {
        let d = NaiveDate::from_ymd_opt(1958, 3, 12).unwrap();
        for s in [
            "12/03/1958",
            "12-Mar-1958",
            "12 march 1958",
            "1958-03-12",
            "12.3.1958",
        ] {
            assert_eq!(parse_uk_date(s), Some(d), "{s}");
        }
        for s in [
            "31/02/1958",
            "12/13/1958",
            "12/03/58",
            "smith",
            "12-Ma-1958",
        ] {
            assert_eq!(parse_uk_date(s), None, "{s}");
        }
    }

    #[test]
    fn age_counts_whole_years() {
        let dob = NaiveDate::from_ymd_opt(1958, 3, 12).unwrap();
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2024, 3, 11).unwrap()),
            65
        );
        assert_eq!(
            age_on(dob, NaiveDate::from_ymd_opt(2024, 3, 12).unwrap()),
            66
        );
    }

    #[test]
    fn data_age_reads_naturally() {
        let as_of = utc("2024-07-19T08:40:00Z");
        let age = DataAge::new(as_of, utc("2024-07-19T10:45:30Z"));
        assert_eq!(
            age.describe(),
            "data as of Fri 19 Jul 2024 09:40 (2 h 5 min ago)"
        );
        assert_eq!(
            DataAge::new(as_of, as_of).describe(),
            "data as of Fri 19 Jul 2024 09:40 (just now)"
        );
        assert_eq!(
            DataAge::new(as_of, utc("2024-07-21T11:40:00Z")).describe(),
            "data as of Fri 19 Jul 2024 09:40 (2 d 3 h ago)"
        );
    }

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(utc("2024-07-19T08:40:00Z"));
        c.advance(chrono::Duration::minutes(5));
        assert_eq!(c.now(), utc("2024-07-19T08:45:00Z"));
        assert_eq!(
            c.today_in_london(),
            NaiveDate::from_ymd_opt(2024, 7, 19).unwrap()
        );
    }
}
