//! Patient search as a receptionist types it: an NHS number (with or without spaces), name
//! prefixes ("smi jo"), a date of birth in any usual UK form, a birth year, or a mix
//! ("smith 1958", "o'brien 30/05/1947"). Exact surname matches rank first; each result carries
//! what is needed to pick the right person (name, date of birth, age, NHS number, address,
//! registered GP).

use chrono::NaiveDate;
use lifeboat_model::names::fold_name;
use lifeboat_model::time::{age_on, parse_uk_date};
use lifeboat_model::{NhsNumber, NhsNumberError};
use rusqlite::types::Value as Sql;
use serde::Serialize;

use crate::{Store, StoreError};

/// Why a search could not run. Never repeats what was typed: it may be patient data.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("type a name, date of birth or NHS number to search")]
    Empty,
    #[error("{0}")]
    InvalidNhsNumber(NhsNumberError),
    #[error(
        "part of the search is not a name, date of birth (e.g. 12/03/1958), birth year or NHS number"
    )]
    Unreadable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One search result, with what a receptionist needs to pick the right person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientMatch {
    pub id: String,
    pub title: Option<String>,
    pub family: String,
    pub given: String,
    pub birth_date: Option<NaiveDate>,
    pub age: Option<u32>,
    /// Digits only; shown grouped 3-3-4.
    pub nhs_number: Option<String>,
    pub address_line: Option<String>,
    pub postcode: Option<String>,
    pub gp_name: Option<String>,
    pub deceased: bool,
}

/// Adds a bound parameter and returns its placeholder.
fn bind(args: &mut Vec<Sql>, value: Sql) -> String {
    args.push(value);
    format!("?{}", args.len())
}

/// What was typed, understood.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    nhs_number: Option<NhsNumber>,
    birth_date: Option<NaiveDate>,
    birth_year: Option<i32>,
    /// Folded words, each a prefix of a family or given name.
    names: Vec<String>,
}

fn parse_query(text: &str) -> Result<Query, SearchError> {
    let text = text.trim();
    if !text.chars().any(char::is_alphanumeric) {
        return Err(SearchError::Empty);
    }
    let mut q = Query::default();
    // A run of digits, spaces and hyphens that adds up to ten digits reads as an NHS number.
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if compact.len() == 10 && compact.bytes().all(|b| b.is_ascii_digit()) {
        q.nhs_number = Some(NhsNumber::parse(&compact).map_err(SearchError::InvalidNhsNumber)?);
        return Ok(q);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        // "12 Mar 1958" spans three words.
        if i + 2 < words.len()
            && let Some(d) = parse_uk_date(&words[i..i + 3].join(" "))
        {
            q.birth_date = Some(d);
            i += 3;
            continue;
        }
        let w = words[i];
        if let Some(d) = parse_uk_date(w) {
            q.birth_date = Some(d);
        } else if w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()) {
            q.birth_year = w.parse().ok();
        } else if w.chars().any(char::is_alphabetic) {
            // Split as the full-text tokenizer does: "o'brien" -> "o", "brien".
            let folded = fold_name(w);
            q.names.extend(
                folded
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            );
        } else if w.chars().any(char::is_numeric) {
            return Err(SearchError::Unreadable);
        }
        // Words of punctuation alone are ignored.
        i += 1;
    }
    Ok(q)
}

impl Store {
    /// Searches cached patients. `today` (Europe/London) gives ages.
    pub fn search_patients(
        &self,
        text: &str,
        limit: usize,
        today: NaiveDate,
    ) -> Result<Vec<PatientMatch>, SearchError> {
        let q = parse_query(text)?;
        let mut sql = String::from(MATCH_SELECT);
        let mut args: Vec<Sql> = Vec::new();
        let mut filters: Vec<String> = Vec::new();
        if !q.names.is_empty() {
            sql.push_str(" JOIN patient_name_fts f ON f.rowid = p.pk");
            // Every word must prefix-match a family or given name; quoted so FTS syntax
            // characters in input cannot change the query.
            let fts = q
                .names
                .iter()
                .map(|t| format!("\"{t}\"*"))
                .collect::<Vec<_>>()
                .join(" AND ");
            filters.push(format!(
                "patient_name_fts MATCH {}",
                bind(&mut args, Sql::Text(fts))
            ));
        }
        if let Some(n) = q.nhs_number {
            filters.push(format!(
                "p.nhs_number = {}",
                bind(&mut args, Sql::Text(n.as_digits()))
            ));
        }
        if let Some(d) = q.birth_date {
            filters.push(format!(
                "p.birth_date = {}",
                bind(&mut args, Sql::Text(d.to_string()))
            ));
        }
        if let Some(y) = q.birth_year {
            let from = bind(&mut args, Sql::Text(format!("{y:04}-01-01")));
            let to = bind(&mut args, Sql::Text(format!("{y:04}-12-31")));
            filters.push(format!("p.birth_date BETWEEN {from} AND {to}"));
        }
        sql.push_str(" WHERE ");
        sql.push_str(&filters.join(" AND "));
        // Rank: a word that is the whole surname first, then a word that is a whole given
        // name, then the living before the deceased, then alphabetical.
        let mut order = Vec::new();
        if !q.names.is_empty() {
            let list = q
                .names
                .iter()
                .map(|t| bind(&mut args, Sql::Text(t.clone())))
                .collect::<Vec<_>>()
                .join(", ");
            order.push(format!("(p.family_norm IN ({list})) DESC"));
            let given = q
                .names
                .iter()
                .map(|t| {
                    let a = bind(&mut args, Sql::Text(format!("% {t} %")));
                    format!("(' ' || p.given_norm || ' ') LIKE {a}")
                })
                .collect::<Vec<_>>()
                .join(" OR ");
            order.push(format!("({given}) DESC"));
        }
        order.push("p.deceased, p.family_norm, p.given_norm, p.birth_date, p.id".to_string());
        let limit = bind(&mut args, Sql::Integer(limit as i64));
        sql.push_str(&format!(" ORDER BY {} LIMIT {limit}", order.join(", ")));
        let mut stmt = self.conn.prepare_cached(&sql).map_err(StoreError::from)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                match_from_row(r, today)
            })
            .map_err(StoreError::from)?;
        Ok(rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(StoreError::from)?)
    }

    /// One patient, as a search result shows them.
    pub fn patient_match(
        &self,
        id: &str,
        today: NaiveDate,
    ) -> Result<Option<PatientMatch>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .prepare_cached(&format!("{MATCH_SELECT} WHERE p.id = ?1"))?
            .query_row([id], |r| match_from_row(r, today))
            .optional()?)
    }
}

const MATCH_SELECT: &str =
    "SELECT p.id, p.title, p.family, p.given, p.birth_date, p.nhs_number, p.address_line,
        p.postcode, pr.name, p.deceased
 FROM patient p LEFT JOIN practitioner pr ON pr.id = p.gp_id";

fn match_from_row(r: &rusqlite::Row<'_>, today: NaiveDate) -> rusqlite::Result<PatientMatch> {
    let birth_date = r
        .get::<_, Option<String>>(4)?
        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    Ok(PatientMatch {
        id: r.get(0)?,
        title: r.get(1)?,
        family: r.get(2)?,
        given: r.get(3)?,
        birth_date,
        age: birth_date.map(|b| age_on(b, today)),
        nhs_number: r.get(5)?,
        address_line: r.get(6)?,
        postcode: r.get(7)?,
        gp_name: r.get(8)?,
        deceased: r.get(9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use lifeboat_model::CachedResource;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 7, 19).unwrap()
    }

    fn patient(id: &str, nhs: &str, family: &str, given: &str, dob: &str) -> CachedResource {
        CachedResource::from_json(
            &json!({
                "resourceType": "Patient", "id": id,
                "meta": {"versionId": "1", "lastUpdated": "2024-07-01T08:00:00Z"},
                "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
                "name": [{"use": "official", "family": family, "given": given.split(' ').collect::<Vec<_>>()}],
                "birthDate": dob,
                "address": [{"use": "home", "line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA"}],
                "generalPractitioner": [{"reference": "Practitioner/gp1"}]
            })
            .to_string(),
        )
        .unwrap()
    }

    fn nhs(first_nine: &str) -> String {
        NhsNumber::from_first_nine(std::array::from_fn(|i| first_nine.as_bytes()[i] - b'0'))
            .unwrap()
            .as_digits()
    }

    /// A small practice with the awkward cases a front desk meets.
    fn practice() -> (tempfile::TempDir, Store) {
        let (dir, mut store) = open_temp();
        let gp = CachedResource::from_json(
            &json!({"resourceType": "Practitioner", "id": "gp1",
                    "meta": {"versionId": "1", "lastUpdated": "2024-07-01T08:00:00Z"},
                    "name": [{"prefix": ["Dr"], "given": ["Amelia"], "family": "Hart"}]})
            .to_string(),
        )
        .unwrap();
        let people = [
            patient("p1", &nhs("999000001"), "Smith", "John Paul", "1958-03-12"),
            patient("p2", &nhs("999000002"), "Smith", "Margaret", "1958-07-01"),
            patient("p3", &nhs("999000003"), "Smithson", "Alan", "1958-01-20"),
            patient("p4", &nhs("999000004"), "Brontë", "Zoë", "1990-11-02"),
            patient("p5", &nhs("999000005"), "O'Brien", "Siobhán", "1947-05-30"),
            patient("p6", &nhs("999000006"), "Jones", "Smith", "1970-02-02"),
            patient(
                "p7",
                &nhs("999000007"),
                "Smith-Jones",
                "Carys",
                "1958-09-09",
            ),
        ];
        let tx = store.transaction().unwrap();
        tx.upsert_resource(&gp, "2024-07-01T08:00:00Z".parse().unwrap())
            .unwrap();
        for p in &people {
            tx.upsert_resource(p, "2024-07-01T08:00:00Z".parse().unwrap())
                .unwrap();
        }
        tx.commit().unwrap();
        (dir, store)
    }

    fn ids(store: &Store, text: &str) -> Vec<String> {
        store
            .search_patients(text, 20, today())
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn names_with_letters_a_search_spells_out_are_found_by_either_spelling() {
        let (_d, mut store) = practice();
        let at = "2024-07-02T08:00:00Z".parse().unwrap();
        let tx = store.transaction().unwrap();
        for (id, n, family, given) in [
            ("p20", "999000020", "Wróblewski", "Michał"),
            ("p21", "999000021", "Yılmaz", "Hüseyin"),
            ("p22", "999000022", "Sørensen", "Æbbe"),
            ("p23", "999000023", "Straße", "Đorđe"),
        ] {
            tx.upsert_resource(&patient(id, &nhs(n), family, given, "1980-01-01"), at)
                .unwrap();
        }
        tx.commit().unwrap();
        for (typed, id) in [
            ("Michał", "p20"),
            ("michal", "p20"),
            ("Wróblewski Michał", "p20"),
            ("Yılmaz", "p21"),
            ("yilmaz huseyin", "p21"),
            ("Sørensen", "p22"),
            ("sorensen aebbe", "p22"),
            ("Æbbe", "p22"),
            ("Straße", "p23"),
            ("strasse dorde", "p23"),
        ] {
            assert_eq!(ids(&store, typed), [id], "{typed}");
        }
    }

    #[test]
    fn a_renamed_or_removed_patient_is_found_by_the_names_they_have_now() {
        let (_d, mut store) = practice();
        let at = "2024-07-02T08:00:00Z".parse().unwrap();
        let tx = store.transaction().unwrap();
        // Margaret Smith marries; Alan Smithson's record is rewritten unchanged; Zoë Brontë
        // leaves the practice.
        tx.upsert_resource(
            &patient("p2", &nhs("999000002"), "Okafor", "Margaret", "1958-07-01"),
            at,
        )
        .unwrap();
        tx.upsert_resource(
            &patient("p3", &nhs("999000003"), "Smithson", "Alan", "1958-01-20"),
            at,
        )
        .unwrap();
        assert!(
            tx.remove_resource(lifeboat_model::ResourceKind::Patient, "p4")
                .unwrap()
        );
        tx.commit().unwrap();
        assert_eq!(ids(&store, "okafor"), ["p2"]);
        assert_eq!(ids(&store, "margaret"), ["p2"]);
        assert!(!ids(&store, "smith").contains(&"p2".to_string()));
        assert_eq!(ids(&store, "smithson"), ["p3"]);
        assert!(ids(&store, "bronte").is_empty());
        // The index holds exactly one entry per cached patient.
        let entries: i64 = store
            .conn
            .query_row("SELECT count(*) FROM patient_name_fts_docsize", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(entries, 6);
        store
            .conn
            .execute_batch(
                "INSERT INTO patient_name_fts (patient_name_fts) VALUES ('integrity-check')",
            )
            .unwrap();
    }

    #[test]
    fn finds_by_nhs_number_with_or_without_spaces() {
        let (_d, store) = practice();
        let n = nhs("999000004");
        let spaced = format!("{} {} {}", &n[..3], &n[3..6], &n[6..]);
        assert_eq!(ids(&store, &n), ["p4"]);
        assert_eq!(ids(&store, &spaced), ["p4"]);
    }

    #[test]
    fn an_invalid_nhs_number_is_refused_with_a_clear_error() {
        let (_d, store) = practice();
        let mut n = nhs("999000004").into_bytes();
        n[9] = if n[9] == b'9' { b'0' } else { n[9] + 1 };
        let err = store
            .search_patients(std::str::from_utf8(&n).unwrap(), 20, today())
            .unwrap_err();
        assert!(matches!(
            err,
            SearchError::InvalidNhsNumber(NhsNumberError::CheckDigitMismatch)
        ));
        assert!(err.to_string().contains("check digit"));
    }

    #[test]
    fn finds_by_name_prefix_ignoring_case_and_accents() {
        let (_d, store) = practice();
        assert_eq!(ids(&store, "bronte"), ["p4"]);
        assert_eq!(ids(&store, "ZOE"), ["p4"]);
        assert_eq!(ids(&store, "bron zo"), ["p4"]);
        assert_eq!(ids(&store, "siobhan o'brien"), ["p5"]);
        assert_eq!(
            ids(&store, "obrien").len(),
            0,
            "apostrophe splits the name into words"
        );
        assert_eq!(ids(&store, "brien"), ["p5"]);
    }

    #[test]
    fn exact_surnames_rank_before_prefixes_and_given_names() {
        let (_d, store) = practice();
        // The two Smiths (alphabetical by given name), then Jones whose given name is Smith,
        // then the surnames that only start with "smith" (Smith-Jones, Smithson).
        let got = ids(&store, "smith");
        assert_eq!(&got[..2], ["p1", "p2"]);
        assert_eq!(got.len(), 5);
        assert_eq!(got[2], "p6", "a whole given name beats a surname prefix");
        assert!(got[3..].contains(&"p3".to_string()) && got[3..].contains(&"p7".to_string()));
    }

    #[test]
    fn finds_by_date_of_birth_in_every_uk_form() {
        let (_d, store) = practice();
        for form in [
            "12/03/1958",
            "12-Mar-1958",
            "1958-03-12",
            "12 Mar 1958",
            "12.03.1958",
        ] {
            assert_eq!(ids(&store, form), ["p1"], "{form}");
        }
    }

    #[test]
    fn combines_name_and_birth_year_or_date() {
        let (_d, store) = practice();
        assert_eq!(ids(&store, "smith 1958")[..2], ["p1", "p2"]);
        assert!(
            !ids(&store, "smith 1958").contains(&"p6".to_string()),
            "born 1970"
        );
        assert_eq!(ids(&store, "smith 01/07/1958"), ["p2"]);
        assert_eq!(ids(&store, "1958 smith john"), ["p1"]);
    }

    #[test]
    fn results_carry_what_identifies_the_person() {
        let (_d, store) = practice();
        let m = &store.search_patients("o'brien", 20, today()).unwrap()[0];
        assert_eq!(m.birth_date, NaiveDate::from_ymd_opt(1947, 5, 30));
        assert_eq!(m.age, Some(77));
        assert_eq!(m.nhs_number.as_deref(), Some(nhs("999000005").as_str()));
        assert_eq!(m.address_line.as_deref(), Some("1 High Street, Leeds"));
        assert_eq!(m.gp_name.as_deref(), Some("Dr Amelia Hart"));
    }

    #[test]
    fn limits_the_number_of_results() {
        let (_d, store) = practice();
        assert_eq!(store.search_patients("smith", 2, today()).unwrap().len(), 2);
    }

    #[test]
    fn refuses_empty_and_unreadable_searches_without_echoing_them() {
        let (_d, store) = practice();
        assert!(matches!(
            store.search_patients("  ", 20, today()),
            Err(SearchError::Empty)
        ));
        let err = store.search_patients("smith 12", 20, today()).unwrap_err();
        assert!(matches!(err, SearchError::Unreadable));
        assert!(!err.to_string().contains("smith"));
        // FTS syntax in input is just text, never a query operator.
        assert!(store.search_patients("smith\" OR \"", 20, today()).is_ok());
        assert!(store.search_patients("NEAR(smith", 20, today()).is_ok());
    }
}
