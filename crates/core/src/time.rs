//! Event time.
//!
//! Time in tidewatch is the post's own `created_at` (event time), kept as
//! milliseconds since the Unix epoch in UTC. The canonical format writes it
//! as RFC 3339 (`2026-05-25T14:23:27.388Z`).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// A timestamp string that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a timestamp: {0:?}")]
pub struct BadTimestamp(pub String);

impl Timestamp {
    pub const MINUTE: i64 = 60_000;
    pub const HOUR: i64 = 3_600_000;
    pub const DAY: i64 = 86_400_000;

    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// The UTC date-time, if representable.
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_millis_opt(self.0).single()
    }

    /// Parses RFC 3339 / ISO 8601 with an offset (`2026-05-25T14:23:27.388Z`,
    /// `2012-10-29 14:01:02+00:00`), a naive ISO date-time taken as UTC,
    /// Twitter v1's `Wed Oct 10 20:19:24 +0000 2018`, RFC 2822, and plain Unix
    /// seconds or milliseconds written as digits.
    pub fn parse(s: &str) -> Result<Timestamp, BadTimestamp> {
        let t = s.trim();
        let bad = || BadTimestamp(s.to_string());
        if t.is_empty() {
            return Err(bad());
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
            return Ok(Timestamp(dt.timestamp_millis()));
        }
        if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let v: f64 = t.parse().map_err(|_| bad())?;
            // Heuristic: 13+ digit integers are milliseconds.
            return Ok(if v >= 1e12 {
                Timestamp(v as i64)
            } else {
                Timestamp((v * 1000.0).round() as i64)
            });
        }
        for fmt in [
            "%Y-%m-%d %H:%M:%S%.f%:z",
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%a %b %d %H:%M:%S %z %Y",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
                return Ok(Timestamp(dt.timestamp_millis()));
            }
        }
        if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
            return Ok(Timestamp(dt.timestamp_millis()));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%m/%d/%Y %H:%M:%S",
            "%m/%d/%Y %H:%M",
        ] {
            if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
                return Ok(Timestamp(dt.and_utc().timestamp_millis()));
            }
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            return Ok(Timestamp(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()));
        }
        Err(bad())
    }

    /// RFC 3339 in UTC, with milliseconds only when they are not zero.
    pub fn to_rfc3339(self) -> String {
        match self.to_datetime() {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => self.0.to_string(),
        }
    }

    /// Start of the minute / hour / day this instant falls in.
    pub fn floor(self, unit_ms: i64) -> Timestamp {
        Timestamp(self.0.div_euclid(unit_ms) * unit_ms)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(if v >= 1_000_000_000_000 {
                    Timestamp(v)
                } else {
                    Timestamp::from_secs(v)
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp((v * 1000.0).round() as i64))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_formats_sources_use() {
        let want = Timestamp(1_539_202_764_000);
        assert_eq!(Timestamp::parse("2018-10-10T20:19:24Z").unwrap(), want);
        assert_eq!(Timestamp::parse("2018-10-10T20:19:24.000Z").unwrap(), want);
        assert_eq!(Timestamp::parse("Wed Oct 10 20:19:24 +0000 2018").unwrap(), want);
        assert_eq!(Timestamp::parse("2018-10-10 20:19:24+00:00").unwrap(), want);
        assert_eq!(Timestamp::parse("2018-10-10 22:19:24+0200").unwrap(), want);
        assert_eq!(Timestamp::parse("1539202764").unwrap(), want);
        assert_eq!(Timestamp::parse("1539202764000").unwrap(), want);
        assert_eq!(
            Timestamp::parse("10/10/2018 20:19").unwrap(),
            Timestamp(want.0 - 24_000)
        );
        assert_eq!(Timestamp::parse("Wed, 10 Oct 2018 20:19:24 GMT").unwrap(), want);
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::parse("").is_err());
    }

    #[test]
    fn writes_rfc3339_with_millis_only_when_needed() {
        assert_eq!(Timestamp(1_539_202_764_000).to_rfc3339(), "2018-10-10T20:19:24Z");
        assert_eq!(Timestamp(1_539_202_764_388).to_rfc3339(), "2018-10-10T20:19:24.388Z");
    }

    #[test]
    fn floors_negative_times_down() {
        assert_eq!(Timestamp(-1).floor(Timestamp::MINUTE), Timestamp(-60_000));
        assert_eq!(Timestamp(119_999).floor(Timestamp::MINUTE), Timestamp(60_000));
    }
}
