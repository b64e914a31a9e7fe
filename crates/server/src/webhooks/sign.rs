//! Webhook signatures: an HMAC-SHA256 over the send time and the body,
//! keyed with the webhook's secret.
//!
//! Each delivery carries
//!
//! ```text
//! Tidewatch-Signature: t=1764254400,v1=5f2c…(64 hex digits)
//! ```
//!
//! where `t` is the unix time in seconds when the request was sent and
//! `v1` is `hex(HMAC-SHA256(key = secret, message = "<t>.<body>"))`, the
//! secret being the string the create call returned (its UTF-8 bytes are
//! the key) and the body the exact bytes received.
//!
//! A receiver verifies a delivery by
//! 1. splitting the header on `,` into `t=` and `v1=` parts;
//! 2. recomputing the HMAC over `t`, a `.` and the raw body (before any
//!    JSON parsing, which could change the bytes);
//! 3. comparing it with `v1` in constant time (a plain `==` leaks, through
//!    its timing, how many leading bytes matched);
//! 4. rejecting a `t` further than a few minutes from its own clock: the
//!    timestamp is signed too, so an attacker who recorded a delivery
//!    cannot replay it later with a fresh time.
//!
//! [`verify`] does exactly this. A retried delivery is signed afresh (new
//! `t`) and keeps its `Tidewatch-Delivery` id, which a receiver can use to
//! drop duplicates.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The header with the time and signature.
pub const SIGNATURE_HEADER: &str = "Tidewatch-Signature";
/// The header naming the event (`alert.opened` or `alert.closed`).
pub const EVENT_HEADER: &str = "Tidewatch-Event";
/// The header with the delivery's id (the same on every retry).
pub const DELIVERY_HEADER: &str = "Tidewatch-Delivery";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (longer ones are hashed first): this
    // cannot fail, whatever the secret.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Tidewatch-Signature` value for `body` sent at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let tag = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex(&tag))
}

/// Whether `header` (a `Tidewatch-Signature` value) is a valid signature
/// of `body` with `secret`, made no further than `tolerance` from `now`
/// (unix seconds). Any malformed header is simply invalid.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> bool {
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => tags.extend(unhex(v)),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let age = now.abs_diff(t);
    if age > tolerance.as_secs() {
        return false;
    }
    // A header may carry several v1 values (e.g. while a secret is being
    // rotated); one valid one is enough.
    tags.iter().any(|tag| mac(secret, t, body).verify_slice(tag).is_ok())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            u8::try_from(hi * 16 + lo).ok()
        })
        .collect()
}

/// A new webhook secret: 32 random bytes from the OS generator, as hex
/// behind a recognisable prefix.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_only";
    const BODY: &[u8] = br#"{"id":"00aa","kind":"opened"}"#;
    const FIVE_MIN: Duration = Duration::from_secs(300);

    #[test]
    fn known_answer() {
        // RFC 4231 test case 2 (key "Jefe"): the primitive is HMAC-SHA256.
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn header_shape() {
        // Checked with Python: hmac.new(b"whsec_test_only",
        // b"1764254400." + body, hashlib.sha256).hexdigest()
        assert_eq!(
            sign(SECRET, 1_764_254_400, BODY),
            "t=1764254400,v1=944826608033a1bc7ffe042b425a713b2916556f182ce2218276977a2e5f8748"
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let now = 1_764_254_400;
        let h = sign(SECRET, now, BODY);
        assert!(verify(SECRET, &h, BODY, now, FIVE_MIN));
        assert!(verify(SECRET, &h, BODY, now + 300, FIVE_MIN));
        // Tampered body, wrong secret, too old, too far ahead.
        assert!(!verify(SECRET, &h, br#"{"id":"00ab","kind":"opened"}"#, now, FIVE_MIN));
        assert!(!verify("whsec_other", &h, BODY, now, FIVE_MIN));
        assert!(!verify(SECRET, &h, BODY, now + 301, FIVE_MIN));
        assert!(!verify(SECRET, &h, BODY, now - 301, FIVE_MIN));
        // A re-signed old body with its time changed does not verify.
        let forged = h.replace("t=1764254400", "t=1764254700");
        assert!(!verify(SECRET, &forged, BODY, now + 300, FIVE_MIN));
    }

    #[test]
    fn malformed_headers_are_invalid() {
        let now = 1_764_254_400;
        for h in [
            "",
            "t=",
            "v1=00",
            "t=abc,v1=00",
            "t=1764254400",
            "t=1764254400,v1=zz",
            "t=1764254400,v1=0",
        ] {
            assert!(!verify(SECRET, h, BODY, now, FIVE_MIN), "{h:?}");
        }
    }

    #[test]
    fn secrets_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), "whsec_".len() + 64);
    }
}
