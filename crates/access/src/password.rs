//! Passwords, usernames and display names as staff type them, and the rules they must meet.
//!
//! This module owns the password policy and the `Password` type, which never prints itself.
//! It must not store, log or compare passwords: they only ever feed the key derivation.

use unicode_normalization::UnicodeNormalization;

use crate::error::{AccessError, Result};

/// The shortest password accepted. Length is what resists guessing a wrapped key offline,
/// so it is the rule that matters; composition rules are left out (NCSC guidance).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// A sanity limit, so a pasted document is not fed to the key derivation.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A password as typed. Normalised to Unicode NFC so the same password typed on a Mac and
/// on Windows derives the same key. `Debug` shows `***`; the text is wiped on drop (best
/// effort: copies made by the UI layer are out of reach).
pub struct Password(String);

impl Password {
    pub fn new(typed: impl Into<String>) -> Self {
        let typed = typed.into();
        let normalised: String = typed.nfc().collect();
        wipe(typed);
        Self(normalised)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The practice's password policy, checked when a password is set (not at login: an
    /// old password that met an older policy still opens its slot).
    pub fn check_policy(&self, username: &str) -> Result<()> {
        let chars = self.0.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(AccessError::PasswordTooShort {
                min: MIN_PASSWORD_CHARS,
            });
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(AccessError::PasswordTooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        if self.0.trim().eq_ignore_ascii_case(username) {
            return Err(AccessError::PasswordIsUsername);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0));
    }
}

fn wipe(s: String) {
    let mut bytes = s.into_bytes();
    bytes.fill(0);
    // Keeps the compiler from dropping the fill as a dead store.
    std::hint::black_box(&bytes);
}

/// A username as stored: trimmed and lower case, 2 to 32 of `a-z 0-9 . - _`, starting with
/// a letter or digit. Staff may type it in any case.
pub fn normalise_username(typed: &str) -> Result<String> {
    let u = typed.trim().to_ascii_lowercase();
    let ok_len = (2..=32).contains(&u.len());
    let ok_chars = u
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'));
    let ok_start = u.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok_len && ok_chars && ok_start {
        Ok(u)
    } else {
        Err(AccessError::InvalidUsername)
    }
}

/// A display name as shown on screens and printouts ("Dr Amara Okafor").
pub fn normalise_display_name(typed: &str) -> Result<String> {
    let d = typed.trim();
    if d.is_empty() || d.chars().count() > 100 || d.chars().any(char::is_control) {
        return Err(AccessError::InvalidDisplayName);
    }
    Ok(d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_password_is_refused_and_the_rule_is_stated() {
        let err = Password::new("short1234").check_policy("sam").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a password must be at least 10 characters long"
        );
        assert!(Password::new("ten chars!").check_policy("sam").is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Nine two-byte characters are nine characters.
        assert!(Password::new("ééééééééé").check_policy("sam").is_err());
        assert!(Password::new("éééééééééé").check_policy("sam").is_ok());
    }

    #[test]
    fn the_username_is_not_a_password() {
        let err = Password::new("Sam.Patel.Reception")
            .check_policy("sam.patel.reception")
            .unwrap_err();
        assert!(matches!(err, AccessError::PasswordIsUsername));
    }

    #[test]
    fn a_password_never_prints_itself() {
        let p = Password::new("correct horse battery");
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn composed_and_decomposed_accents_are_the_same_password() {
        let composed = Password::new("caf\u{e9} au lait!");
        let decomposed = Password::new("cafe\u{301} au lait!");
        assert_eq!(composed.as_bytes(), decomposed.as_bytes());
    }

    #[test]
    fn usernames_are_folded_to_lower_case_and_checked() {
        assert_eq!(normalise_username("  Sam.Patel ").unwrap(), "sam.patel");
        for bad in ["", "a", "-sam", "sam patel", "sám", "x".repeat(33).as_str()] {
            assert!(normalise_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_need_text_without_line_breaks() {
        assert_eq!(
            normalise_display_name(" Dr Amara Okafor ").unwrap(),
            "Dr Amara Okafor"
        );
        assert!(normalise_display_name("  ").is_err());
        assert!(normalise_display_name("Sam\nPatel").is_err());
    }
}
