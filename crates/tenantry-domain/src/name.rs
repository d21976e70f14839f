//! Human-given names (MSPs, API keys, organizations): trimmed, 1–100 characters, no control
//! characters, so they are safe to show in a dashboard and a terminal.

use std::fmt;

use serde::Serialize;

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Text a person or a system typed (a name, a reason, a ticket note): trimmed, 1 to `max`
/// characters, no control characters.
pub fn checked_text(raw: &str, max: usize) -> Result<&str, InvalidName> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(InvalidName::Empty);
    }
    if trimmed.chars().count() > max {
        return Err(InvalidName::TooLong { max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidName::ControlCharacter);
    }
    Ok(trimmed)
}

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, InvalidName> {
        checked_text(raw, MAX_NAME_CHARS).map(|name| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_trimmed_names_within_limits() {
        assert_eq!(
            DisplayName::parse("  Contoso IT ").map(DisplayName::into_inner),
            Ok("Contoso IT".into())
        );
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        assert_eq!(DisplayName::parse("   "), Err(InvalidName::Empty));
        assert_eq!(
            DisplayName::parse(&"a".repeat(101)),
            Err(InvalidName::TooLong {
                max: MAX_NAME_CHARS
            })
        );
        assert_eq!(
            DisplayName::parse("evil\u{1b}[31m"),
            Err(InvalidName::ControlCharacter)
        );
    }
}
