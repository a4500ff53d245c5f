//! Verification levels, per-check overrides and the `verifyTimestamp` option (digest §7, §8).
//!
//! The table is small and fixed by the specification, so it is written out here rather than
//! derived: one `match` per level makes the spec table reviewable line by line.

use std::collections::BTreeMap;
use std::fmt;

/// A verification check whose failure the policy enforces, logs or skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Check {
    Integrity,
    Authenticity,
    AuthenticTimestamp,
    Expiry,
    Revocation,
}

impl Check {
    pub const ALL: [Check; 5] = [
        Check::Integrity,
        Check::Authenticity,
        Check::AuthenticTimestamp,
        Check::Expiry,
        Check::Revocation,
    ];

    /// The name used in trust policy `override` objects.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Integrity => "integrity",
            Check::Authenticity => "authenticity",
            Check::AuthenticTimestamp => "authenticTimestamp",
            Check::Expiry => "expiry",
            Check::Revocation => "revocation",
        }
    }

    pub fn parse(s: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a failure of a check leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// The signature fails.
    Enforce,
    /// A warning is reported and verification continues.
    Log,
    /// The check is not performed at all.
    Skip,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Enforce, Action::Log, Action::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "enforce",
            Action::Log => "log",
            Action::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The preset verification levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Strict,
    Permissive,
    Audit,
    Skip,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Strict, Level::Permissive, Level::Audit, Level::Skip];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Strict => "strict",
            Level::Permissive => "permissive",
            Level::Audit => "audit",
            Level::Skip => "skip",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The digest §8 table.
    pub fn action_for(self, check: Check) -> Action {
        use Action::{Enforce, Log, Skip};
        match (self, check) {
            (Level::Skip, _) => Skip,
            (_, Check::Integrity) => Enforce,
            (Level::Strict, _) => Enforce,
            (Level::Permissive, Check::Authenticity) => Enforce,
            (Level::Permissive, _) => Log,
            (Level::Audit, _) => Log,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the RFC 3161 timestamp is verified (`verifyTimestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VerifyTimestamp {
    /// Whenever the signature carries a timestamp and the policy names a `tsa` store.
    #[default]
    Always,
    /// Only when some certificate of the signing chain has expired.
    AfterCertExpiry,
}

impl VerifyTimestamp {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyTimestamp::Always => "always",
            VerifyTimestamp::AfterCertExpiry => "afterCertExpiry",
        }
    }

    pub fn parse(s: &str) -> Option<VerifyTimestamp> {
        match s {
            "always" => Some(VerifyTimestamp::Always),
            "afterCertExpiry" => Some(VerifyTimestamp::AfterCertExpiry),
            _ => None,
        }
    }
}

/// Why an override is refused. The caller adds the statement name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("override key {0:?} is not a verification check; use one of authenticity, authenticTimestamp, expiry, revocation")]
    UnknownCheck(String),
    #[error("override value {value:?} for {check} is not an action; use enforce or log (or skip for revocation)")]
    UnknownAction { check: String, value: String },
    #[error("integrity verification cannot be overridden: it is always enforced unless the level is skip")]
    Integrity,
    #[error("{0} verification cannot be skipped: only revocation may be overridden with skip")]
    SkipNotAllowed(Check),
    #[error("level skip cannot be customised with override: a skip statement performs no checks")]
    OverrideOnSkip,
}

/// A statement's resolved `signatureVerification`: level, overrides and `verifyTimestamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationSettings {
    pub level: Level,
    pub overrides: BTreeMap<Check, Action>,
    pub verify_timestamp: VerifyTimestamp,
}

impl VerificationSettings {
    pub fn new(level: Level) -> VerificationSettings {
        VerificationSettings {
            level,
            overrides: BTreeMap::new(),
            verify_timestamp: VerifyTimestamp::Always,
        }
    }

    /// Add one override written as in a policy document (`"expiry": "log"`), applying the
    /// spec's restrictions.
    pub fn add_override(&mut self, key: &str, value: &str) -> Result<(), OverrideError> {
        if self.level == Level::Skip {
            return Err(OverrideError::OverrideOnSkip);
        }
        let check = Check::parse(key).ok_or_else(|| OverrideError::UnknownCheck(key.into()))?;
        let action = Action::parse(value).ok_or_else(|| OverrideError::UnknownAction {
            check: key.into(),
            value: value.into(),
        })?;
        if check == Check::Integrity {
            return Err(OverrideError::Integrity);
        }
        if action == Action::Skip && check != Check::Revocation {
            return Err(OverrideError::SkipNotAllowed(check));
        }
        self.overrides.insert(check, action);
        Ok(())
    }

    /// The action for `check`: the override if any, else the level's.
    pub fn action_for(&self, check: Check) -> Action {
        self.overrides
            .get(&check)
            .copied()
            .unwrap_or_else(|| self.level.action_for(check))
    }

    /// Whether any override is present (notation calls such a level "custom").
    pub fn is_custom(&self) -> bool {
        !self.overrides.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::{Enforce as E, Log as L, Skip as S};

    #[test]
    fn level_table_matches_the_specification() {
        // Columns: integrity, authenticity, authenticTimestamp, expiry, revocation.
        let table = [
            (Level::Strict, [E, E, E, E, E]),
            (Level::Permissive, [E, E, L, L, L]),
            (Level::Audit, [E, L, L, L, L]),
            (Level::Skip, [S, S, S, S, S]),
        ];
        for (level, expected) in table {
            let settings = VerificationSettings::new(level);
            for (check, want) in Check::ALL.into_iter().zip(expected) {
                assert_eq!(settings.action_for(check), want, "{level} {check}");
            }
        }
    }

    #[test]
    fn overrides_replace_only_their_check() {
        let mut s = VerificationSettings::new(Level::Strict);
        s.add_override("expiry", "log").unwrap();
        s.add_override("revocation", "skip").unwrap();
        assert_eq!(s.action_for(Check::Expiry), L);
        assert_eq!(s.action_for(Check::Revocation), S);
        assert_eq!(s.action_for(Check::Authenticity), E);
        assert_eq!(s.action_for(Check::Integrity), E);

        let mut a = VerificationSettings::new(Level::Audit);
        a.add_override("authenticity", "enforce").unwrap();
        assert_eq!(a.action_for(Check::Authenticity), E);
        assert_eq!(a.action_for(Check::Expiry), L);
        assert!(a.is_custom());
    }

    #[test]
    fn forbidden_overrides_are_refused() {
        let mut s = VerificationSettings::new(Level::Strict);
        assert_eq!(
            s.add_override("integrity", "log"),
            Err(OverrideError::Integrity)
        );
        assert_eq!(
            s.add_override("expiry", "skip"),
            Err(OverrideError::SkipNotAllowed(Check::Expiry))
        );
        assert!(matches!(
            s.add_override("Expiry", "log"),
            Err(OverrideError::UnknownCheck(_))
        ));
        assert!(matches!(
            s.add_override("expiry", "warn"),
            Err(OverrideError::UnknownAction { .. })
        ));
        let mut skip = VerificationSettings::new(Level::Skip);
        assert_eq!(
            skip.add_override("revocation", "log"),
            Err(OverrideError::OverrideOnSkip)
        );
        assert!(s.overrides.is_empty());
    }

    #[test]
    fn verify_timestamp_values() {
        assert_eq!(
            VerifyTimestamp::parse("always"),
            Some(VerifyTimestamp::Always)
        );
        assert_eq!(
            VerifyTimestamp::parse("afterCertExpiry"),
            Some(VerifyTimestamp::AfterCertExpiry)
        );
        assert_eq!(VerifyTimestamp::parse("aftercertexpiry"), None);
        assert_eq!(VerifyTimestamp::default(), VerifyTimestamp::Always);
    }
}
