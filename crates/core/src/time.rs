//! Time as the rules see it: whole seconds since the Unix epoch, always passed in.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, in whole seconds since the Unix epoch (UTC).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Seconds from `self` until `later`, never negative.
    pub const fn secs_until(self, later: Timestamp) -> i64 {
        let d = later.0.saturating_sub(self.0);
        if d < 0 { 0 } else { d }
    }

    /// For people: `2026-11-23 10:00 UTC`.
    pub fn to_human(self) -> String {
        let iso = self.to_rfc3339();
        match (iso.get(..10), iso.get(11..16)) {
            (Some(date), Some(time)) => format!("{date} {time} UTC"),
            _ => iso,
        }
    }

    /// A deadline as people and clients give it: an RFC 3339 instant, or a date
    /// (`2026-12-01`), meaning the start of that day in UTC: "by December 1".
    pub fn parse_deadline(input: &str) -> Option<Self> {
        let input = input.trim();
        if let Ok(t) = OffsetDateTime::parse(input, &Rfc3339) {
            return Some(Self(t.unix_timestamp()));
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(input, &format)
            .ok()
            .map(|d| Self(d.midnight().assume_utc().unix_timestamp()))
    }

    /// The date part, `2026-11-23`, as a date field shows it.
    pub fn to_date(self) -> String {
        self.to_rfc3339().chars().take(10).collect()
    }

    /// RFC 3339 in UTC, e.g. `2026-11-23T10:00:00Z`.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The one place the current time comes from. The server uses the system clock; tests move
/// a manual one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).to_rfc3339(),
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(Timestamp::from_unix(0).to_human(), "1970-01-01 00:00 UTC");
    }

    #[test]
    fn deadlines_are_instants_or_the_start_of_a_day() {
        let t = |s| Timestamp::parse_deadline(s).map(Timestamp::unix);
        assert_eq!(t("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14T23:13:20+01:00"), Some(1_700_000_000));
        assert_eq!(t("2023-11-14"), Some(1_699_920_000));
        assert_eq!(Timestamp::from_unix(1_699_920_000).to_date(), "2023-11-14");
        for bad in [
            "",
            "tomorrow",
            "2023-02-30",
            "2023-11-14T25:00:00Z",
            "14/11/2023",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn secs_until_is_never_negative() {
        let t = Timestamp::from_unix(100);
        assert_eq!(t.secs_until(Timestamp::from_unix(160)), 60);
        assert_eq!(t.secs_until(Timestamp::from_unix(40)), 0);
    }
}
