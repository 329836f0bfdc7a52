//! The members of a FHIR resource the cache indexes, read from its JSON text in one pass
//! without building a tree of it: members Lifeboat does not read are skipped, unallocated,
//! and text is borrowed from the JSON wherever it has no escapes.
//!
//! Reading is lenient in the way looking a member up in a JSON tree is: a member of another
//! shape than expected (a number where text belongs, an object where a list does) reads as
//! absent, and of a name given twice the last counts, as serde_json and every other reader
//! of the stored JSON take it (hazard H26). Refusing what is absent and required is
//! `fhir`'s work; only JSON that is not JSON fails here.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON value read by its shape: each type takes the shapes it reads, and any other
/// reads as its default (after being read through, so the JSON stays in step).
trait Lenient<'a>: Default {
    fn text(_: Cow<'a, str>) -> Self {
        Self::default()
    }

    fn boolean(_: bool) -> Self {
        Self::default()
    }

    fn object<A: MapAccess<'a>>(mut members: A) -> Result<Self, A::Error> {
        while members.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }

    fn array<A: SeqAccess<'a>>(mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

struct ByShape<T>(PhantomData<T>);

impl<'a, T: Lenient<'a>> Visitor<'a> for ByShape<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<T, E> {
        Ok(T::boolean(b))
    }

    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_borrowed_str<E>(self, s: &'a str) -> Result<T, E> {
        Ok(T::text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<T, E> {
        Ok(T::text(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<T, E> {
        Ok(T::text(Cow::Owned(s)))
    }

    fn visit_map<A: MapAccess<'a>>(self, members: A) -> Result<T, A::Error> {
        T::object(members)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, items: A) -> Result<T, A::Error> {
        T::array(items)
    }
}

/// `Deserialize` through `Lenient` for the types named, each with the generics it needs
/// beyond the JSON's lifetime `'a`.
macro_rules! by_shape {
    ($([$($generics:tt)*] $ty:ty),* $(,)?) => {$(
        impl<'a, $($generics)*> Deserialize<'a> for $ty {
            fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ByShape(PhantomData))
            }
        }
    )*};
}

/// A string member's text; `None` for any other shape.
#[derive(Default)]
pub(crate) struct Text<'a>(pub(crate) Option<Cow<'a, str>>);

impl<'a> Lenient<'a> for Text<'a> {
    fn text(s: Cow<'a, str>) -> Self {
        Self(Some(s))
    }
}

impl Text<'_> {
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A boolean member; `None` for any other shape.
#[derive(Default)]
pub(crate) struct Boolean(pub(crate) Option<bool>);

impl Lenient<'_> for Boolean {
    fn boolean(b: bool) -> Self {
        Self(Some(b))
    }
}

/// An array member's items; empty for any other shape.
pub(crate) struct Many<T>(pub(crate) Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'a, T: Deserialize<'a>> Lenient<'a> for Many<T> {
    fn array<A: SeqAccess<'a>>(mut items: A) -> Result<Self, A::Error> {
        let mut all = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(item) = items.next_element()? {
            all.push(item);
        }
        Ok(Self(all))
    }
}

/// A member of any shape, `Some` wherever it is given (a JSON null too): to tell a member
/// given in another shape from one not given at all.
pub(crate) struct Given<T>(pub(crate) Option<T>);

impl<T> Default for Given<T> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'a, T: Deserialize<'a>> Deserialize<'a> for Given<T> {
    fn deserialize<D: Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|t| Self(Some(t)))
    }
}

by_shape!([] Text<'a>, [] Boolean, [T: Deserialize<'a>] Many<T>);

/// A JSON object read as a struct of the members named (each of its own shape); absent
/// members, and an object given in another shape, read as the members' defaults.
macro_rules! members {
    ($($(#[$doc:meta])* $name:ident { $($key:literal => $field:ident: $ty:ty,)* })*) => {$(
        $(#[$doc])*
        #[derive(Default)]
        pub(crate) struct $name<'a> {
            $(pub(crate) $field: $ty,)*
        }

        impl<'a> Lenient<'a> for $name<'a> {
            fn object<A: MapAccess<'a>>(mut members: A) -> Result<Self, A::Error> {
                let mut out = Self::default();
                while let Some(Text(name)) = members.next_key()? {
                    match name.as_deref() {
                        $(Some($key) => out.$field = members.next_value()?,)*
                        _ => {
                            members.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }

        by_shape!([] $name<'a>);
    )*};
}

members! {
    /// Every member any cached type is indexed by. Where two types give a name different
    /// shapes, the shape not read here reads as absent (`category` and `type` are codes in
    /// an AllergyIntolerance, concepts elsewhere); `name` reads as either (`Names`).
    Resource {
        "resourceType" => resource_type: Text<'a>,
        "id" => id: Text<'a>,
        "meta" => meta: Meta<'a>,
        "identifier" => identifier: Many<SystemValue<'a>>,
        "name" => name: Names<'a>,
        "birthDate" => birth_date: Text<'a>,
        "gender" => gender: Text<'a>,
        "address" => address: Many<Address<'a>>,
        "telecom" => telecom: Many<SystemValue<'a>>,
        "generalPractitioner" => general_practitioner: Many<Reference<'a>>,
        "deceasedBoolean" => deceased_boolean: Boolean,
        "deceasedDateTime" => deceased_date_time: Text<'a>,
        "serviceType" => service_type: Many<Concept<'a>>,
        "actor" => actor: Many<Reference<'a>>,
        "schedule" => schedule: Reference<'a>,
        "start" => start: Text<'a>,
        "end" => end: Text<'a>,
        "status" => status: Text<'a>,
        "slot" => slot: Many<Reference<'a>>,
        "participant" => participant: Many<Participant<'a>>,
        "description" => description: Text<'a>,
        "comment" => comment: Text<'a>,
        "subject" => subject: Reference<'a>,
        "patient" => patient: Reference<'a>,
        "clinicalStatus" => clinical_status: Concept<'a>,
        "code" => code: Concept<'a>,
        "category" => category: Many<Concept<'a>>,
        "period" => period: Period<'a>,
        "reaction" => reaction: Many<Reaction<'a>>,
        "recordedDate" => recorded_date: Text<'a>,
        "medicationCodeableConcept" => medication_concept: Concept<'a>,
        "medicationReference" => medication_reference: Reference<'a>,
        "dosage" => dosage: Many<Dosage<'a>>,
        "effectivePeriod" => effective_period: Period<'a>,
        "dosageInstruction" => dosage_instruction: Many<Dosage<'a>>,
        "authoredOn" => authored_on: Text<'a>,
        "onsetDateTime" => onset: Text<'a>,
        "valueQuantity" => value_quantity: Given<Quantity<'a>>,
        "component" => component: Many<Component<'a>>,
        "effectiveDateTime" => effective: Text<'a>,
        "vaccineCode" => vaccine_code: Concept<'a>,
        "occurrenceDateTime" => occurrence: Text<'a>,
        "type" => kind_of: Many<Concept<'a>>,
        "class" => class: Coding<'a>,
        "reasonCode" => reason_code: Many<Concept<'a>>,
    }

    Meta {
        "versionId" => version_id: Text<'a>,
        "lastUpdated" => last_updated: Text<'a>,
    }

    /// An Identifier or a ContactPoint (both a system and a value).
    SystemValue {
        "system" => system: Text<'a>,
        "value" => value: Text<'a>,
    }

    HumanName {
        "use" => usage: Text<'a>,
        "text" => text: Text<'a>,
        "family" => family: Text<'a>,
        "given" => given: Many<Text<'a>>,
        "prefix" => prefix: Many<Text<'a>>,
    }

    Address {
        "use" => usage: Text<'a>,
        "line" => line: Many<Text<'a>>,
        "city" => city: Text<'a>,
        "postalCode" => postal_code: Text<'a>,
    }

    Reference {
        "reference" => reference: Text<'a>,
        "display" => display: Text<'a>,
    }

    Concept {
        "text" => text: Text<'a>,
        "coding" => coding: Many<Coding<'a>>,
    }

    Coding {
        "code" => code: Text<'a>,
        "display" => display: Text<'a>,
    }

    Participant {
        "actor" => actor: Reference<'a>,
    }

    Period {
        "start" => start: Text<'a>,
    }

    Reaction {
        "manifestation" => manifestation: Many<Concept<'a>>,
    }

    Dosage {
        "text" => text: Text<'a>,
    }

    Quantity {
        "value" => value: Given<serde_json::Value>,
        "unit" => unit: Text<'a>,
    }

    Component {
        "valueQuantity" => value_quantity: Given<Quantity<'a>>,
    }
}

/// A `name` member: text (a Location's), or a list of HumanNames (a person's).
#[derive(Default)]
pub(crate) struct Names<'a> {
    pub(crate) text: Option<Cow<'a, str>>,
    pub(crate) list: Vec<HumanName<'a>>,
}

impl<'a> Lenient<'a> for Names<'a> {
    fn text(s: Cow<'a, str>) -> Self {
        Self {
            text: Some(s),
            list: Vec::new(),
        }
    }

    fn array<A: SeqAccess<'a>>(items: A) -> Result<Self, A::Error> {
        let Many(list) = Many::array(items)?;
        Ok(Self { text: None, list })
    }
}

by_shape!([] Names<'a>);
