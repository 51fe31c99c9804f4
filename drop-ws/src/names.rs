//! How public feeds name buyers.

use std::str::FromStr;

use drop_core::Username;

/// How buyers are named in public data: the drops list's recent buyers
/// and the live feed's purchases. Never their id, which stays between a
/// buyer and the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FeedNames {
    /// The display name, as the buyer gave it.
    #[default]
    Show,
    /// The display name's first character and a dot (`"alice"` → `"A."`).
    Initials,
    /// No name at all: the name fields are left out.
    Hide,
}

impl FeedNames {
    /// The name to show for `name`, or `None` to leave it out.
    pub(crate) fn shown(self, name: &Username) -> Option<String> {
        match self {
            Self::Show => Some(name.to_string()),
            Self::Initials => name
                .as_str()
                .chars()
                .next()
                .map(|c| format!("{}.", c.to_ascii_uppercase())),
            Self::Hide => None,
        }
    }
}

impl FromStr for FeedNames {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "show" => Ok(Self::Show),
            "initials" => Ok(Self::Initials),
            "hide" => Ok(Self::Hide),
            other => Err(format!("`{other}`: expected show, initials or hide")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_shown_shortened_or_left_out() {
        let alice = Username::parse("alice").unwrap();
        assert_eq!(FeedNames::Show.shown(&alice).as_deref(), Some("alice"));
        assert_eq!(FeedNames::Initials.shown(&alice).as_deref(), Some("A."));
        assert_eq!(FeedNames::Hide.shown(&alice), None);
        assert_eq!("initials".parse(), Ok(FeedNames::Initials));
        assert!("all".parse::<FeedNames>().is_err());
    }
}
