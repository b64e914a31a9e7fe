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
        if let Some(ms) = parse_canonical(t.as_bytes()) {
            return Ok(Timestamp(ms));
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

/// The canonical form `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what
/// [`Timestamp::to_rfc3339`] writes and most sources send), parsed directly:
/// every post's time goes through here, and chrono's general RFC 3339
/// parser cost several times as much. Anything else (offsets, lower case,
/// a leap second, a date that does not exist) returns `None` and is left to
/// chrono, so the result is always chrono's.
fn parse_canonical(s: &[u8]) -> Option<i64> {
    fn digits(s: &[u8]) -> Option<i64> {
        s.iter()
            .try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    }
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (hour, minute, second) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    let millis = match (s[19], s.last()) {
        (b'Z', _) if s.len() == 20 => 0,
        (b'.', Some(b'Z')) if s.len() > 21 => {
            // Chrono keeps nanoseconds; milliseconds truncate them.
            let fraction = &s[20..s.len() - 1];
            digits(fraction)?;
            let mut ms = 0;
            for i in 0..3 {
                ms = ms * 10 + fraction.get(i).map_or(0, |&b| i64::from(b - b'0'));
            }
            ms
        }
        _ => return None,
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (the era-based
    // day count: eras of 400 years, years starting in March).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
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

    fn chrono_millis(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s).ok().map(|dt| dt.timestamp_millis())
    }

    #[test]
    fn the_canonical_fast_path_leaves_other_forms_to_chrono() {
        assert_eq!(parse_canonical(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_canonical(b"2018-10-10T20:19:24.3889Z"), Some(1_539_202_764_388));
        assert_eq!(parse_canonical(b"2018-10-10T20:19:24.3Z"), Some(1_539_202_764_300));
        assert_eq!(parse_canonical(b"1969-12-31T23:59:59.999Z"), Some(-1));
        assert_eq!(
            parse_canonical(b"2024-02-29T00:00:00Z"),
            chrono_millis("2024-02-29T00:00:00Z")
        );
        for other in [
            "2023-02-29T00:00:00Z",
            "2018-10-10T20:19:24+02:00",
            "2018-10-10t20:19:24z",
            "2016-12-31T23:59:60Z",
            "2018-10-10T20:19:24.Z",
            "2018-10-10T24:00:00Z",
            "2018-1-10T20:19:24Z",
        ] {
            assert_eq!(parse_canonical(other.as_bytes()), None, "{other}");
        }
        // Left to chrono, they still parse as before.
        assert_eq!(
            Timestamp::parse("2018-10-10T22:19:24+02:00").unwrap(),
            Timestamp(1_539_202_764_000)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn the_fast_path_agrees_with_chrono(
            year in 0i64..10_000, month in 0i64..14, day in 0i64..33,
            hour in 0i64..26, minute in 0i64..62, second in 0i64..62,
            fraction in proptest::option::of("[0-9]{0,10}"),
        ) {
            let mut s = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(f) = &fraction {
                s.push('.');
                s.push_str(f);
            }
            s.push('Z');
            if let Some(ms) = parse_canonical(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(ms), chrono_millis(&s), "{}", s);
            } else {
                // Only what chrono treats specially or rejects is left to it.
                let leap_second = second == 60;
                proptest::prop_assert!(leap_second || chrono_millis(&s).is_none(), "{}", s);
            }
        }

        #[test]
        fn what_we_write_takes_the_fast_path(ms in -62_000_000_000_000i64..250_000_000_000_000) {
            let s = Timestamp(ms).to_rfc3339();
            proptest::prop_assert_eq!(parse_canonical(s.as_bytes()), Some(ms), "{}", s);
        }
    }

    #[test]
    fn floors_negative_times_down() {
        assert_eq!(Timestamp(-1).floor(Timestamp::MINUTE), Timestamp(-60_000));
        assert_eq!(Timestamp(119_999).floor(Timestamp::MINUTE), Timestamp(60_000));
    }
}
