//! FHIR R4 resources as the cache sees them: the raw JSON exactly as the upstream sent it,
//! plus the handful of columns the cache indexes. The upstream is never trusted blindly:
//! a resource that lacks what Lifeboat relies on is refused here with a reason that names
//! the resource and the field, never the patient data inside it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json_borrow::Value;

use crate::nhs_number::NhsNumber;

pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Every resource type Lifeboat caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    Practitioner,
    Location,
    Patient,
    Schedule,
    Slot,
    Appointment,
    Flag,
    AllergyIntolerance,
    MedicationStatement,
    MedicationRequest,
    Condition,
    Observation,
    Immunization,
    Encounter,
}

impl ResourceKind {
    /// In the order a sync fetches them: what references point at comes first.
    pub const ALL: [ResourceKind; 14] = [
        Self::Practitioner,
        Self::Location,
        Self::Patient,
        Self::Schedule,
        Self::Slot,
        Self::Appointment,
        Self::Flag,
        Self::AllergyIntolerance,
        Self::MedicationStatement,
        Self::MedicationRequest,
        Self::Condition,
        Self::Observation,
        Self::Immunization,
        Self::Encounter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Practitioner => "Practitioner",
            Self::Location => "Location",
            Self::Patient => "Patient",
            Self::Schedule => "Schedule",
            Self::Slot => "Slot",
            Self::Appointment => "Appointment",
            Self::Flag => "Flag",
            Self::AllergyIntolerance => "AllergyIntolerance",
            Self::MedicationStatement => "MedicationStatement",
            Self::MedicationRequest => "MedicationRequest",
            Self::Condition => "Condition",
            Self::Observation => "Observation",
            Self::Immunization => "Immunization",
            Self::Encounter => "Encounter",
        }
    }

    /// Clinical entries belong to one patient and are shown in the clinical summary only.
    pub fn is_clinical(self) -> bool {
        matches!(
            self,
            Self::Flag
                | Self::AllergyIntolerance
                | Self::MedicationStatement
                | Self::MedicationRequest
                | Self::Condition
                | Self::Observation
                | Self::Immunization
                | Self::Encounter
        )
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = FhirError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| FhirError::UnsupportedType(s.chars().take(40).collect()))
    }
}

/// Why a resource from the upstream was refused. Names the resource and the field, never
/// the values inside (they may be patient data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    #[error("not JSON (at line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("not a FHIR resource: it has no resourceType")]
    NoResourceType,
    #[error("resource type {0:?} is not one Lifeboat caches")]
    UnsupportedType(String),
    #[error("{kind} has no usable id")]
    NoId { kind: ResourceKind },
    #[error("{kind}/{id}: {problem}")]
    Invalid {
        kind: ResourceKind,
        id: String,
        problem: String,
    },
}

/// One resource as the cache keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResource {
    pub kind: ResourceKind,
    pub id: String,
    pub version_id: String,
    pub last_updated: DateTime<Utc>,
    /// The JSON exactly as received, so nothing the upstream sent is lost.
    pub raw: String,
    pub indexed: Indexed,
}

/// The columns the cache indexes, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Indexed {
    Patient(PatientRow),
    Practitioner(PractitionerRow),
    Location(LocationRow),
    Schedule(ScheduleRow),
    Slot(SlotRow),
    Appointment(AppointmentRow),
    Clinical(ClinicalRow),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    pub nhs_number: Option<NhsNumber>,
    pub family: String,
    pub given: String,
    pub title: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub sex: Option<String>,
    pub address_line: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
    pub gp_id: Option<String>,
    pub deceased: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PractitionerRow {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocationRow {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub practitioner_id: Option<String>,
    pub location_id: Option<String>,
    pub service_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow {
    pub schedule_id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
    pub service_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentRow {
    pub status: String,
    pub slot_id: Option<String>,
    pub patient_id: Option<String>,
    pub practitioner_id: Option<String>,
    pub location_id: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub comment: Option<String>,
}

/// An entry of a patient's clinical summary: an alert, allergy, medication, problem, result,
/// immunisation or encounter, reduced to what a summary line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalRow {
    pub patient_id: String,
    pub status: Option<String>,
    pub text: String,
    pub detail: Option<String>,
    /// As FHIR gave it (may be partial, e.g. "2019-04"); ISO order sorts correctly.
    pub date: Option<String>,
}

impl CachedResource {
    /// Parses and validates one resource from the upstream.
    pub fn from_json(raw: &str) -> Result<Self, FhirError> {
        let v: Value = serde_json::from_str(raw).map_err(|e| FhirError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
        Self::from_value(&v, raw.to_string())
    }

    /// As `from_json`, for `v` parsed from `raw`.
    fn from_value(v: &Value<'_>, raw: String) -> Result<Self, FhirError> {
        let type_name = v
            .field("resourceType")
            .and_then(Value::as_str)
            .ok_or(FhirError::NoResourceType)?;
        let kind: ResourceKind = type_name.parse()?;
        let id = v
            .field("id")
            .and_then(Value::as_str)
            .filter(|id| is_fhir_id(id))
            .ok_or(FhirError::NoId { kind })?
            .to_string();
        let r = Reader { kind, id: &id, v };
        let version_id = r.req_str("/meta/versionId")?.to_string();
        let last_updated = r.req_instant("/meta/lastUpdated")?;
        let indexed = match kind {
            ResourceKind::Patient => Indexed::Patient(r.patient()?),
            ResourceKind::Practitioner => Indexed::Practitioner(PractitionerRow {
                name: r.name_display().ok_or_else(|| r.invalid("has no name"))?,
            }),
            ResourceKind::Location => Indexed::Location(LocationRow {
                name: r.req_str("/name")?.to_string(),
            }),
            ResourceKind::Schedule => Indexed::Schedule(r.schedule()?),
            ResourceKind::Slot => Indexed::Slot(SlotRow {
                schedule_id: r.req_ref("/schedule", "Schedule")?,
                start: r.req_instant("/start")?,
                end: r.req_instant("/end")?,
                status: r.req_str("/status")?.to_string(),
                service_type: r.concept("/serviceType/0"),
            }),
            ResourceKind::Appointment => Indexed::Appointment(r.appointment()?),
            _ => Indexed::Clinical(r.clinical()?),
        };
        Ok(Self {
            kind,
            id,
            version_id,
            last_updated,
            raw,
            indexed,
        })
    }
}

/// FHIR's id rule: 1-64 of A-Z a-z 0-9 - .
fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Reads fields of one resource, turning what is missing or malformed into `FhirError`.
struct Reader<'a> {
    kind: ResourceKind,
    id: &'a str,
    v: &'a Value<'a>,
}

/// The value at a JSON pointer made of plain names and indexes, as `serde_json`'s
/// `Value::pointer` finds it but without its unescaping (`~0`, `~1`): the pointers here
/// are constants with no escapes.
fn at<'v>(v: &'v Value<'v>, ptr: &str) -> Option<&'v Value<'v>> {
    ptr.strip_prefix('/')?
        .split('/')
        .try_fold(v, |v, step| match v {
            Value::Object(_) => v.field(step),
            Value::Array(items) => items.get(step.parse::<usize>().ok()?),
            _ => None,
        })
}

/// A member of a JSON object (`None` for a missing member, or for a value that is not an
/// object), as `serde_json::Value::get` answers: of a name given twice, the last, as every
/// other reader of the stored JSON takes it.
trait Field<'v> {
    fn field(&self, key: &str) -> Option<&Value<'v>>;
}

impl<'v> Field<'v> for Value<'v> {
    fn field(&self, key: &str) -> Option<&Value<'v>> {
        self.as_object()?
            .as_vec()
            .iter()
            .rev()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
    }
}

impl Reader<'_> {
    fn invalid(&self, problem: impl Into<String>) -> FhirError {
        FhirError::Invalid {
            kind: self.kind,
            id: self.id.to_string(),
            problem: problem.into(),
        }
    }

    fn str(&self, ptr: &str) -> Option<&str> {
        at(self.v, ptr)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    fn req_str(&self, ptr: &str) -> Result<&str, FhirError> {
        self.str(ptr)
            .ok_or_else(|| self.invalid(format!("{} is missing", field_name(ptr))))
    }

    fn instant(&self, ptr: &str) -> Result<Option<DateTime<Utc>>, FhirError> {
        self.str(ptr)
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| self.invalid(format!("{} is not a date-time", field_name(ptr))))
            })
            .transpose()
    }

    fn req_instant(&self, ptr: &str) -> Result<DateTime<Utc>, FhirError> {
        self.instant(ptr)?
            .ok_or_else(|| self.invalid(format!("{} is missing", field_name(ptr))))
    }

    /// The id of a reference of the expected type ("Patient/abc" or ".../Patient/abc").
    fn reference(&self, ptr: &str, expected: &str) -> Result<Option<String>, FhirError> {
        let Some(reference) = self.str(&format!("{ptr}/reference")) else {
            return Ok(None);
        };
        let mut parts = reference.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some(id), Some(t)) if t == expected && is_fhir_id(id) => Ok(Some(id.to_string())),
            _ => Err(self.invalid(format!(
                "{} is not a reference to a {expected}",
                field_name(ptr)
            ))),
        }
    }

    fn req_ref(&self, ptr: &str, expected: &str) -> Result<String, FhirError> {
        self.reference(ptr, expected)?
            .ok_or_else(|| self.invalid(format!("{} is missing", field_name(ptr))))
    }

    /// Text of a CodeableConcept: its text, else its first coding's display, else its code.
    fn concept(&self, ptr: &str) -> Option<String> {
        let c = at(self.v, ptr)?;
        let text = |v: Option<&Value<'_>>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        text(c.field("text"))
            .or_else(|| text(at(c, "/coding/0/display")))
            .or_else(|| text(at(c, "/coding/0/code")))
    }

    /// The official (else usual, else first) HumanName.
    fn name(&self) -> Option<&Value<'_>> {
        let names = self.v.field("name")?.as_array()?;
        ["official", "usual"]
            .iter()
            .find_map(|u| {
                names
                    .iter()
                    .find(|n| n.field("use").and_then(Value::as_str) == Some(u))
            })
            .or_else(|| names.first())
    }

    fn name_display(&self) -> Option<String> {
        let n = self.name()?;
        if let Some(text) = n.field("text").and_then(Value::as_str) {
            return Some(text.to_string());
        }
        let parts: Vec<&str> = ["prefix", "given"]
            .iter()
            .flat_map(|k| strings(n.field(k)))
            .chain(n.field("family").and_then(Value::as_str))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    fn patient(&self) -> Result<PatientRow, FhirError> {
        let nhs_number = self
            .v
            .field("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|i| i.field("system").and_then(Value::as_str) == Some(NHS_NUMBER_SYSTEM))
            .map(|i| {
                let value = i.field("value").and_then(Value::as_str).unwrap_or_default();
                NhsNumber::parse(value)
                    .map_err(|e| self.invalid(format!("NHS number identifier: {e}")))
            })
            .transpose()?;
        let name = self.name().ok_or_else(|| self.invalid("has no name"))?;
        let family = name
            .field("family")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| self.invalid("name.family is missing"))?
            .to_string();
        let given = strings(name.field("given")).collect::<Vec<_>>().join(" ");
        let title = strings(name.field("prefix")).next().map(str::to_string);
        let birth_date = self
            .str("/birthDate")
            .map(|s| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| self.invalid("birthDate is not a full date"))
            })
            .transpose()?;
        let home_address = self
            .v
            .field("address")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|x| x.field("use").and_then(Value::as_str) == Some("home"))
                    .or_else(|| a.first())
            });
        let address_line = home_address.map(|a| {
            strings(a.field("line"))
                .chain(a.field("city").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        });
        let postcode = home_address
            .and_then(|a| a.field("postalCode"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let phone = self
            .v
            .field("telecom")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|t| t.field("system").and_then(Value::as_str) == Some("phone"))
            .and_then(|t| t.field("value"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let deceased = self.v.field("deceasedBoolean").and_then(Value::as_bool) == Some(true)
            || self.str("/deceasedDateTime").is_some();
        Ok(PatientRow {
            nhs_number,
            family,
            given,
            title,
            birth_date,
            sex: self.str("/gender").map(str::to_string),
            address_line: address_line.filter(|s| !s.is_empty()),
            postcode,
            phone,
            gp_id: self.reference("/generalPractitioner/0", "Practitioner")?,
            deceased,
        })
    }

    fn schedule(&self) -> Result<ScheduleRow, FhirError> {
        let mut row = ScheduleRow {
            practitioner_id: None,
            location_id: None,
            service_type: self.concept("/serviceType/0"),
        };
        let actors = self.v.field("actor").and_then(Value::as_array);
        for i in 0..actors.map_or(0, <[_]>::len) {
            let ptr = format!("/actor/{i}/reference");
            match self.str(&ptr).and_then(|r| r.rsplit('/').nth(1)) {
                Some("Practitioner") => {
                    row.practitioner_id = self.reference(&format!("/actor/{i}"), "Practitioner")?
                }
                Some("Location") => {
                    row.location_id = self.reference(&format!("/actor/{i}"), "Location")?
                }
                _ => {}
            }
        }
        if row.practitioner_id.is_none() && row.location_id.is_none() {
            return Err(self.invalid("actor names no practitioner or location"));
        }
        Ok(row)
    }

    fn appointment(&self) -> Result<AppointmentRow, FhirError> {
        let mut row = AppointmentRow {
            status: self.req_str("/status")?.to_string(),
            slot_id: self.reference("/slot/0", "Slot")?,
            patient_id: None,
            practitioner_id: None,
            location_id: None,
            start: self.instant("/start")?,
            end: self.instant("/end")?,
            description: self.str("/description").map(str::to_string),
            comment: self.str("/comment").map(str::to_string),
        };
        let participants = self.v.field("participant").and_then(Value::as_array);
        for i in 0..participants.map_or(0, <[_]>::len) {
            let actor = format!("/participant/{i}/actor");
            match self
                .str(&format!("{actor}/reference"))
                .and_then(|r| r.rsplit('/').nth(1))
            {
                Some("Patient") => row.patient_id = self.reference(&actor, "Patient")?,
                Some("Practitioner") => {
                    row.practitioner_id = self.reference(&actor, "Practitioner")?
                }
                Some("Location") => row.location_id = self.reference(&actor, "Location")?,
                _ => {}
            }
        }
        Ok(row)
    }

    fn clinical(&self) -> Result<ClinicalRow, FhirError> {
        use ResourceKind as K;
        let subject = match self.kind {
            K::AllergyIntolerance | K::Immunization => "/patient",
            _ => "/subject",
        };
        let patient_id = self.req_ref(subject, "Patient")?;
        let (text, detail, date) = match self.kind {
            K::Flag => (
                self.concept("/code"),
                self.concept("/category/0"),
                "/period/start",
            ),
            K::AllergyIntolerance => (
                self.concept("/code"),
                self.concept("/reaction/0/manifestation/0"),
                "/recordedDate",
            ),
            K::MedicationStatement => (
                self.concept("/medicationCodeableConcept")
                    .or_else(|| self.str("/medicationReference/display").map(str::to_string)),
                self.str("/dosage/0/text").map(str::to_string),
                "/effectivePeriod/start",
            ),
            K::MedicationRequest => (
                self.concept("/medicationCodeableConcept")
                    .or_else(|| self.str("/medicationReference/display").map(str::to_string)),
                self.str("/dosageInstruction/0/text").map(str::to_string),
                "/authoredOn",
            ),
            K::Condition => (self.concept("/code"), None, "/onsetDateTime"),
            K::Observation => (
                self.concept("/code"),
                self.observation_value(),
                "/effectiveDateTime",
            ),
            K::Immunization => (self.concept("/vaccineCode"), None, "/occurrenceDateTime"),
            K::Encounter => (
                self.concept("/type/0")
                    .or_else(|| self.str("/class/display").map(str::to_string)),
                self.concept("/reasonCode/0"),
                "/period/start",
            ),
            _ => unreachable!("only clinical kinds reach here"),
        };
        let status = self
            .concept("/clinicalStatus")
            .or_else(|| self.str("/status").map(str::to_string));
        Ok(ClinicalRow {
            patient_id,
            status,
            text: text.ok_or_else(|| self.invalid("has nothing to show (no code or text)"))?,
            detail,
            date: self.str(date).map(str::to_string),
        })
    }

    /// "72 kg", or "128/82 mmHg" for a blood pressure's two components.
    fn observation_value(&self) -> Option<String> {
        let quantity = |q: &Value<'_>| {
            let value = q.field("value")?;
            let unit = q.field("unit").and_then(Value::as_str).unwrap_or_default();
            Some(format!("{value} {unit}").trim().to_string())
        };
        if let Some(q) = self.v.field("valueQuantity") {
            return quantity(q);
        }
        let components = self.v.field("component")?.as_array()?;
        let values: Vec<String> = components
            .iter()
            .filter_map(|c| at(c, "/valueQuantity/value").map(Value::to_string))
            .collect();
        let unit = components
            .first()
            .and_then(|c| at(c, "/valueQuantity/unit"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        (!values.is_empty()).then(|| format!("{} {unit}", values.join("/")).trim().to_string())
    }
}

fn strings<'v>(v: Option<&'v Value<'v>>) -> impl Iterator<Item = &'v str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// "/meta/lastUpdated" -> "meta.lastUpdated".
fn field_name(ptr: &str) -> String {
    ptr.trim_start_matches('/').replace('/', ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> serde_json::Value {
        json!({"versionId": "3", "lastUpdated": "2024-07-18T16:00:00.000Z"})
    }

    #[test]
    fn plain_pointers_find_what_json_pointers_find() {
        let v = json!({"meta": meta(), "coding": [{"code": "a"}, {"code": "b"}], "n": 1});
        let text = v.to_string();
        let borrowed: Value<'_> = serde_json::from_str(&text).unwrap();
        for ptr in [
            "/meta/versionId",
            "/coding/1/code",
            "/coding/2/code",
            "/coding/x",
            "/n/deeper",
            "/missing",
        ] {
            assert_eq!(
                at(&borrowed, ptr).map(ToString::to_string),
                v.pointer(ptr).map(ToString::to_string),
                "{ptr}"
            );
        }
    }

    #[test]
    fn a_name_given_twice_reads_as_its_last_as_in_every_other_reader() {
        // Written by hand: json! cannot repeat a name. serde_json (the summaries, the
        // reconciliation) keeps the last; the indexed columns must agree with them.
        let raw = r#"{"resourceType": "Location", "id": "l1",
            "meta": {"versionId": "1", "lastUpdated": "2024-07-18T16:00:00.000Z"},
            "name": "Old surgery", "name": "Main surgery"}"#;
        let r = CachedResource::from_json(raw).unwrap();
        let Indexed::Location(row) = r.indexed else {
            panic!("a location")
        };
        let last: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert_eq!(Some(row.name.as_str()), last["name"].as_str());
        assert_eq!(row.name, "Main surgery");
    }

    #[test]
    fn maps_a_uk_core_patient() {
        let p = json!({
            "resourceType": "Patient", "id": "p1", "meta": meta(),
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765919"}],
            "name": [{"use": "usual", "given": ["Jack"], "family": "Smyth"},
                     {"use": "official", "prefix": ["Mr"], "given": ["John", "Paul"], "family": "Smith"}],
            "gender": "male", "birthDate": "1958-03-12",
            "address": [{"use": "home", "line": ["12 High Street"], "city": "Leeds", "postalCode": "LS1 4AB"}],
            "telecom": [{"system": "email", "value": "x@example.com"}, {"system": "phone", "value": "0113 496 0123"}],
            "generalPractitioner": [{"reference": "Practitioner/gp1"}]
        });
        let r = CachedResource::from_json(&p.to_string()).unwrap();
        assert_eq!(r.kind, ResourceKind::Patient);
        assert_eq!(r.version_id, "3");
        let Indexed::Patient(row) = r.indexed else {
            panic!("not a patient")
        };
        assert_eq!(row.family, "Smith");
        assert_eq!(row.given, "John Paul");
        assert_eq!(row.title.as_deref(), Some("Mr"));
        assert_eq!(row.nhs_number.unwrap().as_digits(), "9434765919");
        assert_eq!(row.address_line.as_deref(), Some("12 High Street, Leeds"));
        assert_eq!(row.phone.as_deref(), Some("0113 496 0123"));
        assert_eq!(row.gp_id.as_deref(), Some("gp1"));
        assert!(!row.deceased);
    }

    #[test]
    fn refuses_a_patient_with_an_invalid_nhs_number_without_repeating_it() {
        let p = json!({
            "resourceType": "Patient", "id": "p1", "meta": meta(),
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9434765918"}],
            "name": [{"family": "Smith"}]
        });
        let err = CachedResource::from_json(&p.to_string()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("Patient/p1: NHS number identifier"),
            "{msg}"
        );
        assert!(
            !msg.contains("9434765918") && !msg.contains("Smith"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_resource_lifeboat_can_use() {
        assert!(matches!(
            CachedResource::from_json("{"),
            Err(FhirError::NotJson { .. })
        ));
        assert_eq!(
            CachedResource::from_json("{}"),
            Err(FhirError::NoResourceType)
        );
        assert!(matches!(
            CachedResource::from_json(r#"{"resourceType":"Basic","id":"x"}"#),
            Err(FhirError::UnsupportedType(_))
        ));
        let no_meta = json!({"resourceType": "Location", "id": "l1", "name": "Main"});
        assert_eq!(
            CachedResource::from_json(&no_meta.to_string())
                .unwrap_err()
                .to_string(),
            "Location/l1: meta.versionId is missing"
        );
        let bad_ref = json!({"resourceType": "Slot", "id": "s1", "meta": meta(),
            "schedule": {"reference": "Patient/x"}, "status": "free",
            "start": "2024-07-19T08:00:00Z", "end": "2024-07-19T08:10:00Z"});
        assert_eq!(
            CachedResource::from_json(&bad_ref.to_string())
                .unwrap_err()
                .to_string(),
            "Slot/s1: schedule is not a reference to a Schedule"
        );
        let bad_id =
            json!({"resourceType": "Location", "id": "a b", "meta": meta(), "name": "Main"});
        assert!(matches!(
            CachedResource::from_json(&bad_id.to_string()),
            Err(FhirError::NoId { .. })
        ));
    }

    #[test]
    fn maps_slots_and_appointments() {
        let a = json!({
            "resourceType": "Appointment", "id": "a1", "meta": meta(), "status": "booked",
            "slot": [{"reference": "Slot/s1"}], "start": "2024-07-19T08:40:00Z", "end": "2024-07-19T08:50:00Z",
            "description": "Review",
            "participant": [{"actor": {"reference": "Patient/p1"}}, {"actor": {"reference": "Practitioner/gp1"}},
                            {"actor": {"reference": "Location/l1"}}]
        });
        let r = CachedResource::from_json(&a.to_string()).unwrap();
        let Indexed::Appointment(row) = r.indexed else {
            panic!("not an appointment")
        };
        assert_eq!(row.slot_id.as_deref(), Some("s1"));
        assert_eq!(row.patient_id.as_deref(), Some("p1"));
        assert_eq!(row.practitioner_id.as_deref(), Some("gp1"));
        assert_eq!(row.location_id.as_deref(), Some("l1"));
        assert_eq!(row.start.unwrap().to_rfc3339(), "2024-07-19T08:40:00+00:00");
    }

    #[test]
    fn maps_clinical_entries_to_summary_lines() {
        let bp = json!({
            "resourceType": "Observation", "id": "o1", "meta": meta(), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-06-01T09:00:00Z",
            "component": [{"valueQuantity": {"value": 128, "unit": "mmHg"}}, {"valueQuantity": {"value": 82, "unit": "mmHg"}}]
        });
        let Indexed::Clinical(row) = CachedResource::from_json(&bp.to_string()).unwrap().indexed
        else {
            panic!("not clinical")
        };
        assert_eq!(row.text, "Blood pressure");
        assert_eq!(row.detail.as_deref(), Some("128/82 mmHg"));
        assert_eq!(row.patient_id, "p1");

        let allergy = json!({
            "resourceType": "AllergyIntolerance", "id": "al1", "meta": meta(),
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Penicillin"}, "patient": {"reference": "Patient/p1"},
            "reaction": [{"manifestation": [{"text": "Anaphylaxis"}]}]
        });
        let Indexed::Clinical(row) = CachedResource::from_json(&allergy.to_string())
            .unwrap()
            .indexed
        else {
            panic!("not clinical")
        };
        assert_eq!(
            (row.text.as_str(), row.detail.as_deref()),
            ("Penicillin", Some("Anaphylaxis"))
        );
        assert_eq!(row.status.as_deref(), Some("active"));

        let orphan = json!({"resourceType": "Condition", "id": "c1", "meta": meta(), "code": {"text": "Asthma"}});
        assert_eq!(
            CachedResource::from_json(&orphan.to_string())
                .unwrap_err()
                .to_string(),
            "Condition/c1: subject is missing"
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in ResourceKind::ALL {
            assert_eq!(k.as_str().parse::<ResourceKind>().unwrap(), k);
        }
    }
}
