//! FHIR R4 resources as the cache sees them: the raw JSON exactly as the upstream sent it,
//! plus the handful of columns the cache indexes. The upstream is never trusted blindly:
//! a resource that lacks what Lifeboat relies on is refused here with a reason that names
//! the resource and the field, never the patient data inside it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::nhs_number::NhsNumber;
use crate::wire::{Concept, Dosage, HumanName, Many, Quantity, Reference, Resource, Text};

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

    /// Slots and appointments are kept only for a window of days around today.
    pub fn is_windowed(self) -> bool {
        matches!(self, Self::Slot | Self::Appointment)
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
        Self::from_owned_json(raw.to_string()).map_err(|(e, _)| e)
    }

    /// As `from_json`, keeping `raw` itself as the resource's JSON rather than a copy (a
    /// sync's pages are tens of megabytes of it); a resource refused gives it back.
    pub fn from_owned_json(raw: String) -> Result<Self, (FhirError, String)> {
        let parsed = serde_json::from_str::<Resource<'_>>(&raw)
            .map_err(|e| FhirError::NotJson {
                line: e.line(),
                column: e.column(),
            })
            .and_then(|wire| Self::from_wire(&wire));
        match parsed {
            Ok(resource) => Ok(Self { raw, ..resource }),
            Err(e) => Err((e, raw)),
        }
    }

    /// As `from_json`, for `w`, with the text it was read from left for the caller to add
    /// (it is borrowed while `w` lives).
    fn from_wire(w: &Resource<'_>) -> Result<Self, FhirError> {
        let kind: ResourceKind = w
            .resource_type
            .get()
            .ok_or(FhirError::NoResourceType)?
            .parse()?;
        let id =
            w.id.get()
                .filter(|id| is_fhir_id(id))
                .ok_or(FhirError::NoId { kind })?
                .to_string();
        let r = Reader { kind, id: &id, w };
        let version_id = r.req_str(&w.meta.version_id, "meta.versionId")?.to_string();
        let last_updated = r.req_instant(&w.meta.last_updated, "meta.lastUpdated")?;
        let indexed = match kind {
            ResourceKind::Patient => Indexed::Patient(r.patient()?),
            ResourceKind::Practitioner => Indexed::Practitioner(PractitionerRow {
                name: r.name_display().ok_or_else(|| r.invalid("has no name"))?,
            }),
            ResourceKind::Location => Indexed::Location(LocationRow {
                name: nonblank(w.name.text.as_deref())
                    .ok_or_else(|| r.invalid("name is missing"))?
                    .to_string(),
            }),
            ResourceKind::Schedule => Indexed::Schedule(r.schedule()?),
            ResourceKind::Slot => Indexed::Slot(SlotRow {
                schedule_id: r.req_ref(Some(&w.schedule), "schedule", "Schedule")?,
                start: r.req_instant(&w.start, "start")?,
                end: r.req_instant(&w.end, "end")?,
                status: r.req_str(&w.status, "status")?.to_string(),
                service_type: concept(w.service_type.0.first()),
            }),
            ResourceKind::Appointment => Indexed::Appointment(r.appointment()?),
            _ => Indexed::Clinical(r.clinical()?),
        };
        Ok(Self {
            kind,
            id,
            version_id,
            last_updated,
            raw: String::new(),
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

/// Text that is there and not blank.
fn nonblank(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

fn str_of<'t>(t: &'t Text<'_>) -> Option<&'t str> {
    nonblank(t.get())
}

/// The strings of an array, skipping items that are not strings.
fn strings<'t>(items: &'t Many<Text<'_>>) -> impl Iterator<Item = &'t str> {
    items.0.iter().filter_map(Text::get)
}

/// Text of a CodeableConcept: its text, else its first coding's display, else its code.
fn concept(c: Option<&Concept<'_>>) -> Option<String> {
    let c = c?;
    let first = c.coding.0.first();
    str_of(&c.text)
        .or_else(|| first.and_then(|coding| str_of(&coding.display)))
        .or_else(|| first.and_then(|coding| str_of(&coding.code)))
        .map(str::to_string)
}

/// The type named by a reference ("Patient" of "Patient/abc" or ".../Patient/abc").
fn referenced_type<'t>(r: &'t Reference<'_>) -> Option<&'t str> {
    str_of(&r.reference).and_then(|r| r.rsplit('/').nth(1))
}

/// Reads fields of one resource, turning what is missing or malformed into `FhirError`
/// (naming the field, never its value).
struct Reader<'a> {
    kind: ResourceKind,
    id: &'a str,
    w: &'a Resource<'a>,
}

impl Reader<'_> {
    fn invalid(&self, problem: impl Into<String>) -> FhirError {
        FhirError::Invalid {
            kind: self.kind,
            id: self.id.to_string(),
            problem: problem.into(),
        }
    }

    fn req_str<'t>(&self, t: &'t Text<'_>, field: &str) -> Result<&'t str, FhirError> {
        str_of(t).ok_or_else(|| self.invalid(format!("{field} is missing")))
    }

    fn instant(&self, t: &Text<'_>, field: &str) -> Result<Option<DateTime<Utc>>, FhirError> {
        str_of(t)
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| self.invalid(format!("{field} is not a date-time")))
            })
            .transpose()
    }

    fn req_instant(&self, t: &Text<'_>, field: &str) -> Result<DateTime<Utc>, FhirError> {
        self.instant(t, field)?
            .ok_or_else(|| self.invalid(format!("{field} is missing")))
    }

    /// The id of a reference of the expected type ("Patient/abc" or ".../Patient/abc").
    /// `field` is formatted only into an error (a sync reads thousands of actors).
    fn reference(
        &self,
        r: Option<&Reference<'_>>,
        field: impl fmt::Display,
        expected: &str,
    ) -> Result<Option<String>, FhirError> {
        let Some(reference) = r.and_then(|r| str_of(&r.reference)) else {
            return Ok(None);
        };
        let mut parts = reference.rsplit('/');
        match (parts.next(), parts.next()) {
            (Some(id), Some(t)) if t == expected && is_fhir_id(id) => Ok(Some(id.to_string())),
            _ => Err(self.invalid(format!("{field} is not a reference to a {expected}"))),
        }
    }

    fn req_ref(
        &self,
        r: Option<&Reference<'_>>,
        field: &str,
        expected: &str,
    ) -> Result<String, FhirError> {
        self.reference(r, field, expected)?
            .ok_or_else(|| self.invalid(format!("{field} is missing")))
    }

    /// The official (else usual, else first) HumanName.
    fn name(&self) -> Option<&HumanName<'_>> {
        let names = &self.w.name.list;
        ["official", "usual"]
            .iter()
            .find_map(|u| names.iter().find(|n| n.usage.get() == Some(u)))
            .or_else(|| names.first())
    }

    fn name_display(&self) -> Option<String> {
        let n = self.name()?;
        if let Some(text) = n.text.get() {
            return Some(text.to_string());
        }
        let parts: Vec<&str> = strings(&n.prefix)
            .chain(strings(&n.given))
            .chain(n.family.get())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    fn patient(&self) -> Result<PatientRow, FhirError> {
        let w = self.w;
        let nhs_number = w
            .identifier
            .0
            .iter()
            .find(|i| i.system.get() == Some(NHS_NUMBER_SYSTEM))
            .map(|i| {
                NhsNumber::parse(i.value.get().unwrap_or_default())
                    .map_err(|e| self.invalid(format!("NHS number identifier: {e}")))
            })
            .transpose()?;
        let name = self.name().ok_or_else(|| self.invalid("has no name"))?;
        let family = str_of(&name.family)
            .ok_or_else(|| self.invalid("name.family is missing"))?
            .to_string();
        let given = strings(&name.given).collect::<Vec<_>>().join(" ");
        let title = strings(&name.prefix).next().map(str::to_string);
        let birth_date = str_of(&w.birth_date)
            .map(|s| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| self.invalid("birthDate is not a full date"))
            })
            .transpose()?;
        let addresses = &w.address.0;
        let home_address = addresses
            .iter()
            .find(|a| a.usage.get() == Some("home"))
            .or_else(|| addresses.first());
        let address_line = home_address.map(|a| {
            strings(&a.line)
                .chain(a.city.get())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let postcode = home_address
            .and_then(|a| a.postal_code.get())
            .map(str::to_string);
        let phone = w
            .telecom
            .0
            .iter()
            .find(|t| t.system.get() == Some("phone"))
            .and_then(|t| t.value.get())
            .map(str::to_string);
        let deceased =
            w.deceased_boolean.0 == Some(true) || str_of(&w.deceased_date_time).is_some();
        Ok(PatientRow {
            nhs_number,
            family,
            given,
            title,
            birth_date,
            sex: str_of(&w.gender).map(str::to_string),
            address_line: address_line.filter(|s| !s.is_empty()),
            postcode,
            phone,
            gp_id: self.reference(
                w.general_practitioner.0.first(),
                "generalPractitioner.0",
                "Practitioner",
            )?,
            deceased,
        })
    }

    fn schedule(&self) -> Result<ScheduleRow, FhirError> {
        let mut row = ScheduleRow {
            practitioner_id: None,
            location_id: None,
            service_type: concept(self.w.service_type.0.first()),
        };
        for (i, actor) in self.w.actor.0.iter().enumerate() {
            let id = |t| self.reference(Some(actor), format_args!("actor.{i}"), t);
            match referenced_type(actor) {
                Some(t @ "Practitioner") => row.practitioner_id = id(t)?,
                Some(t @ "Location") => row.location_id = id(t)?,
                _ => {}
            }
        }
        if row.practitioner_id.is_none() && row.location_id.is_none() {
            return Err(self.invalid("actor names no practitioner or location"));
        }
        Ok(row)
    }

    fn appointment(&self) -> Result<AppointmentRow, FhirError> {
        let w = self.w;
        let mut row = AppointmentRow {
            status: self.req_str(&w.status, "status")?.to_string(),
            slot_id: self.reference(w.slot.0.first(), "slot.0", "Slot")?,
            patient_id: None,
            practitioner_id: None,
            location_id: None,
            start: self.instant(&w.start, "start")?,
            end: self.instant(&w.end, "end")?,
            description: str_of(&w.description).map(str::to_string),
            comment: str_of(&w.comment).map(str::to_string),
        };
        for (i, participant) in w.participant.0.iter().enumerate() {
            let actor = &participant.actor;
            let id = |t| self.reference(Some(actor), format_args!("participant.{i}.actor"), t);
            match referenced_type(actor) {
                Some(t @ "Patient") => row.patient_id = id(t)?,
                Some(t @ "Practitioner") => row.practitioner_id = id(t)?,
                Some(t @ "Location") => row.location_id = id(t)?,
                _ => {}
            }
        }
        Ok(row)
    }

    fn clinical(&self) -> Result<ClinicalRow, FhirError> {
        use ResourceKind as K;
        let w = self.w;
        let patient_id = match self.kind {
            K::AllergyIntolerance | K::Immunization => {
                self.req_ref(Some(&w.patient), "patient", "Patient")?
            }
            _ => self.req_ref(Some(&w.subject), "subject", "Patient")?,
        };
        let medication = || {
            concept(Some(&w.medication_concept))
                .or_else(|| str_of(&w.medication_reference.display).map(str::to_string))
        };
        let dosage = |d: &Many<Dosage<'_>>| {
            d.0.first()
                .and_then(|d| str_of(&d.text))
                .map(str::to_string)
        };
        let (text, detail, date) = match self.kind {
            K::Flag => (
                concept(Some(&w.code)),
                concept(w.category.0.first()),
                &w.period.start,
            ),
            K::AllergyIntolerance => (
                concept(Some(&w.code)),
                concept(w.reaction.0.first().and_then(|r| r.manifestation.0.first())),
                &w.recorded_date,
            ),
            K::MedicationStatement => (medication(), dosage(&w.dosage), &w.effective_period.start),
            K::MedicationRequest => (medication(), dosage(&w.dosage_instruction), &w.authored_on),
            K::Condition => (concept(Some(&w.code)), None, &w.onset),
            K::Observation => (
                concept(Some(&w.code)),
                self.observation_value(),
                &w.effective,
            ),
            K::Immunization => (concept(Some(&w.vaccine_code)), None, &w.occurrence),
            K::Encounter => (
                concept(w.kind_of.0.first())
                    .or_else(|| str_of(&w.class.display).map(str::to_string)),
                concept(w.reason_code.0.first()),
                &w.period.start,
            ),
            _ => unreachable!("only clinical kinds reach here"),
        };
        let status =
            concept(Some(&w.clinical_status)).or_else(|| str_of(&w.status).map(str::to_string));
        Ok(ClinicalRow {
            patient_id,
            status,
            text: text.ok_or_else(|| self.invalid("has nothing to show (no code or text)"))?,
            detail,
            date: str_of(date).map(str::to_string),
        })
    }

    /// "72 kg", or "128/82 mmHg" for a blood pressure's two components.
    fn observation_value(&self) -> Option<String> {
        let quantity = |q: &Quantity<'_>| {
            let value = q.value.0.as_ref()?;
            let unit = q.unit.get().unwrap_or_default();
            Some(format!("{value} {unit}").trim().to_string())
        };
        if let Some(q) = &self.w.value_quantity.0 {
            return quantity(q);
        }
        let components = &self.w.component.0;
        let values: Vec<String> = components
            .iter()
            .filter_map(|c| c.value_quantity.0.as_ref()?.value.0.as_ref())
            .map(ToString::to_string)
            .collect();
        let unit = components
            .first()
            .and_then(|c| c.value_quantity.0.as_ref())
            .and_then(|q| q.unit.get())
            .unwrap_or_default();
        (!values.is_empty()).then(|| format!("{} {unit}", values.join("/")).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> serde_json::Value {
        json!({"versionId": "3", "lastUpdated": "2024-07-18T16:00:00.000Z"})
    }

    #[test]
    fn an_owned_resource_keeps_its_own_text_and_a_refused_one_gives_it_back() {
        let text = json!({"resourceType": "Location", "id": "l1", "meta": meta(), "name": "Main"})
            .to_string();
        let at = text.as_ptr();
        let r = CachedResource::from_owned_json(text.clone()).unwrap();
        assert_eq!(r.raw, text);
        let r = CachedResource::from_owned_json(text).unwrap();
        assert_eq!(r.raw.as_ptr(), at, "the text itself, not a copy");
        let refused = json!({"resourceType": "Location", "id": "l1", "meta": meta()}).to_string();
        let (e, back) = CachedResource::from_owned_json(refused.clone()).unwrap_err();
        assert_eq!(e.to_string(), "Location/l1: name is missing");
        assert_eq!(back, refused);
        let (e, back) = CachedResource::from_owned_json("{".into()).unwrap_err();
        assert!(matches!(e, FhirError::NotJson { .. }));
        assert_eq!(back, "{");
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
    fn a_member_of_another_shape_reads_as_absent_and_escapes_are_decoded() {
        let p = json!({
            "resourceType": "Patient", "id": "p1", "meta": meta(),
            "name": [{"family": "O\"Brien", "given": ["Ann", 7]}],
            "gender": 1, "birthDate": ["1958-03-12"],
            "telecom": {"system": "phone", "value": "0113 496 0123"},
            "address": [12, {"use": "home", "postalCode": "LS1 4AB"}],
            "deceasedBoolean": "true", "unknown": {"deep": [[{"x": null}]]}
        });
        let r = CachedResource::from_json(&p.to_string()).unwrap();
        let Indexed::Patient(row) = r.indexed else {
            panic!("a patient")
        };
        assert_eq!(
            (row.family.as_str(), row.given.as_str()),
            ("O\"Brien", "Ann")
        );
        assert_eq!((row.sex, row.birth_date, row.phone), (None, None, None));
        assert_eq!(row.postcode.as_deref(), Some("LS1 4AB"));
        assert!(!row.deceased);
        let listed =
            json!({"resourceType": "Location", "id": "l1", "meta": meta(), "name": ["Main"]});
        assert_eq!(
            CachedResource::from_json(&listed.to_string())
                .unwrap_err()
                .to_string(),
            "Location/l1: name is missing"
        );
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
        let bad_actor = json!({"resourceType": "Appointment", "id": "a1", "meta": meta(),
            "status": "booked", "participant": [
                {"actor": {"reference": "Practitioner/p1"}},
                {"actor": {"reference": "Patient/not an id"}}]});
        assert_eq!(
            CachedResource::from_json(&bad_actor.to_string())
                .unwrap_err()
                .to_string(),
            "Appointment/a1: participant.1.actor is not a reference to a Patient"
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
