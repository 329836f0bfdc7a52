//! The NHS number: ten digits whose last is a Modulus 11 check digit.
//!
//! Error messages never repeat the number itself, so they are safe to log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated NHS number, stored as its ten digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number has 10 digits; this has {0}")]
    WrongLength(usize),
    #[error("an NHS number contains only digits (spaces are allowed between groups)")]
    NotDigits,
    #[error("not a valid NHS number: its check digit does not match (please re-check the number)")]
    CheckDigitMismatch,
    #[error("not a valid NHS number: no number with these first nine digits is ever issued")]
    CheckDigitTen,
}

impl NhsNumber {
    /// Parses "943 476 5919", "943-476-5919" or "9434765919".
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut len = 0usize;
        for c in input.trim().chars() {
            match c {
                ' ' | '-' => continue,
                '0'..='9' => {
                    if len < 10 {
                        digits[len] = c as u8 - b'0';
                    }
                    len += 1;
                }
                _ => return Err(NhsNumberError::NotDigits),
            }
        }
        if len != 10 {
            return Err(NhsNumberError::WrongLength(len));
        }
        let first_nine: [u8; 9] = std::array::from_fn(|i| digits[i]);
        match check_digit(&first_nine) {
            None => Err(NhsNumberError::CheckDigitTen),
            Some(d) if d == digits[9] => Ok(Self(digits)),
            Some(_) => Err(NhsNumberError::CheckDigitMismatch),
        }
    }

    /// Completes nine digits with their check digit; `None` where the check digit would be 10
    /// (such numbers are never issued).
    pub fn from_first_nine(first_nine: [u8; 9]) -> Option<Self> {
        debug_assert!(first_nine.iter().all(|d| *d <= 9));
        let check = check_digit(&first_nine)?;
        let mut digits = [0u8; 10];
        digits[..9].copy_from_slice(&first_nine);
        digits[9] = check;
        Some(Self(digits))
    }

    /// The ten digits with no spaces, as FHIR `identifier.value` carries them.
    pub fn as_digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

/// Stored digits as people read them ("943 476 5919"), or "-" when there are none (or they
/// are not a valid NHS number).
pub fn display_nhs_number(digits: Option<&str>) -> String {
    digits
        .and_then(|d| NhsNumber::parse(d).ok())
        .map_or_else(|| "-".into(), |n| n.to_string())
}

/// Modulus 11: weights 10..2 over the first nine digits; 11 - (sum mod 11), where 11 means 0
/// and 10 means the number is invalid.
fn check_digit(first_nine: &[u8; 9]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        d => Some(d as u8),
    }
}

/// Shown to people as "943 476 5919", the NHS's 3-3-4 grouping.
impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_digits();
        write!(f, "{} {} {}", &s[..3], &s[3..6], &s[6..])
    }
}

/// Debug hides the number: it is patient data and Debug output ends up in logs and panics.
impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(***)")
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_digits())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_number_with_or_without_spaces() {
        // 943 476 5919 is the NHS's own published example.
        let n = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(n.as_digits(), "9434765919");
        assert_eq!(n.to_string(), "943 476 5919");
        assert_eq!(NhsNumber::parse("9434765919").unwrap(), n);
        assert_eq!(NhsNumber::parse(" 943-476-5919 ").unwrap(), n);
    }

    #[test]
    fn accepts_a_check_digit_of_zero() {
        // A remainder of 0 gives 11, which the scheme writes as check digit 0.
        let n = (0..1000u32)
            .filter_map(|i| {
                let s = format!("999{i:06}");
                NhsNumber::from_first_nine(std::array::from_fn(|k| s.as_bytes()[k] - b'0'))
            })
            .find(|n| n.as_digits().ends_with('0'))
            .expect("some number in range has check digit 0");
        assert_eq!(NhsNumber::parse(&n.as_digits()).unwrap(), n);
    }

    #[test]
    fn displays_stored_digits_grouped() {
        assert_eq!(display_nhs_number(Some("9434765919")), "943 476 5919");
        assert_eq!(display_nhs_number(None), "-");
        assert_eq!(display_nhs_number(Some("123")), "-");
    }

    #[test]
    fn refuses_a_wrong_check_digit() {
        assert_eq!(
            NhsNumber::parse("943 476 5918"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
    }

    #[test]
    fn refuses_the_wrong_length() {
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength(9))
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength(11))
        );
        assert_eq!(NhsNumber::parse(""), Err(NhsNumberError::WrongLength(0)));
    }

    #[test]
    fn refuses_letters() {
        assert_eq!(
            NhsNumber::parse("943476591X"),
            Err(NhsNumberError::NotDigits)
        );
    }

    #[test]
    fn refuses_numbers_whose_check_digit_would_be_ten() {
        // 000000006: sum = 6 * 2 = 12, 12 mod 11 = 1, 11 - 1 = 10: never issued.
        assert_eq!(
            NhsNumber::from_first_nine([0, 0, 0, 0, 0, 0, 0, 0, 6]),
            None
        );
        for last in 0..=9 {
            assert_eq!(
                NhsNumber::parse(&format!("000000006{last}")),
                Err(NhsNumberError::CheckDigitTen)
            );
        }
    }

    #[test]
    fn error_messages_and_debug_never_repeat_the_number() {
        let bad = "9434765918";
        for msg in [
            NhsNumber::parse(bad).unwrap_err().to_string(),
            format!("{:?}", NhsNumber::parse("9434765919").unwrap()),
        ] {
            assert!(!msg.contains("943"), "{msg}");
        }
    }

    #[test]
    fn serde_round_trips_and_validates() {
        let n: NhsNumber = serde_json::from_str("\"9434765919\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }
}
