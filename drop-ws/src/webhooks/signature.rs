//! The `Dropkit-Signature` header: `t=<unix seconds>,v1=<hex>`, where the
//! hex is HMAC-SHA256 under the shared secret of `"<t>.<body>"`.
//!
//! Binding the timestamp into the signature lets a receiver refuse a
//! captured request replayed later: it checks the signature, then that
//! `t` is recent.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from the receiver's clock by
/// default, in either direction: 5 minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Longest header [`verify`] reads; a real one is under 100 bytes, and
/// a receiver should not spend work on a huge one.
const MAX_HEADER: usize = 1024;

/// The `Dropkit-Signature` value for `body` sent at `t` (unix seconds):
/// `t=<t>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>`.
///
/// ```
/// let header = drop_ws::webhooks::sign(b"a secret of at least 32 bytes....", 1_700_000_000, b"{}");
/// assert!(header.starts_with("t=1700000000,v1="));
/// ```
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mac = mac_of(secret, t, body);
    format!("t={t},v1={}", hex(&mac.finalize().into_bytes()))
}

/// Checks a `Dropkit-Signature` `header` against the raw request `body`
/// (the bytes as received, before any JSON parsing): one of its `v1`
/// signatures must be `secret`'s (compared in constant time), and its
/// timestamp within `tolerance` of `now` (unix seconds). Answers the
/// timestamp.
///
/// Several `v1` entries are accepted so that a sender can sign with an old
/// and a new secret while the secret is being changed; unknown keys are
/// ignored, so later schemes can be added beside `v1`.
///
/// ```
/// use std::time::Duration;
/// use drop_ws::webhooks::{sign, verify};
///
/// let secret = b"a secret of at least 32 bytes....";
/// let body = br#"{"seq":7,"type":"purchaseCompleted"}"#;
/// let header = sign(secret, 1_700_000_000, body);
/// assert_eq!(verify(secret, &header, body, 1_700_000_030, Duration::from_secs(300)), Ok(1_700_000_000));
/// assert!(verify(secret, &header, b"{}", 1_700_000_030, Duration::from_secs(300)).is_err());
/// ```
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    if header.len() > MAX_HEADER {
        return Err(SignatureError::Malformed);
    }
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed);
                }
                t = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => signatures.push(unhex(value).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = signatures
        .iter()
        .any(|sig| mac_of(secret, t, body).verify_slice(sig).is_ok());
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(t) > tolerance.unsigned_abs() {
        return Err(SignatureError::Stale { t, now });
    }
    Ok(t)
}

/// Why [`verify`] refused a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is not `t=<digits>,v1=<hex>[,v1=<hex>…]`.
    Malformed,
    /// No `v1` signature matches the body under the secret: the body was
    /// changed, or signed with another secret.
    Mismatch,
    /// The signature is right but its timestamp is too far from now: a
    /// replay of an old request (or a clock far off).
    Stale {
        /// The timestamp the header carries.
        t: i64,
        /// The receiver's time it was checked against.
        now: i64,
    },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed signature header"),
            Self::Mismatch => f.write_str("signature does not match the body"),
            Self::Stale { t, now } => write!(
                f,
                "signature timestamp {t} is too far from now ({now}): refused as a replay"
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

fn mac_of(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_0123456789abcdef0123456789abcdef";
    const BODY: &[u8] = br#"{"seq":1,"type":"purchaseCompleted"}"#;
    const T: i64 = 1_700_000_000;
    const TOLERANCE: Duration = Duration::from_secs(300);

    #[test]
    fn matches_a_vector_computed_elsewhere() {
        // Python: hmac.new(SECRET, b'1700000000.' + BODY, hashlib.sha256).hexdigest()
        assert_eq!(
            sign(SECRET, T, BODY),
            "t=1700000000,v1=b82a58ec824033d719cf81ede608ad365122bbd74e75a0a5b9012d56c0cabd20"
        );
    }

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(verify(SECRET, &header, BODY, T, TOLERANCE), Ok(T));
        assert_eq!(verify(SECRET, &header, BODY, T + 300, TOLERANCE), Ok(T));
        assert_eq!(verify(SECRET, &header, BODY, T - 300, TOLERANCE), Ok(T));
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(SECRET, T, BODY);
        let tampered = br#"{"seq":1,"type":"purchaseCancelled"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, T, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                b"another secret entirely, 32 bytes!",
                &header,
                BODY,
                T,
                TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_moved_timestamp_is_refused() {
        // The timestamp is signed: changing it to look fresh breaks the
        // signature rather than passing the age check.
        let header = sign(SECRET, T, BODY).replace("t=1700000000", "t=1700000999");
        assert_eq!(
            verify(SECRET, &header, BODY, T + 999, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_signature_is_refused() {
        let header = sign(SECRET, T, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, T + 301, TOLERANCE),
            Err(SignatureError::Stale { t: T, now: T + 301 })
        );
        assert_eq!(
            verify(SECRET, &header, BODY, T - 301, TOLERANCE),
            Err(SignatureError::Stale { t: T, now: T - 301 })
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let old = sign(b"the previous secret, also 32 bytes", T, BODY);
        let new = sign(SECRET, T, BODY);
        let both = format!("{old},{}", new.split_once(',').unwrap().1);
        assert_eq!(verify(SECRET, &both, BODY, T, TOLERANCE), Ok(T));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(SECRET, T, BODY);
        let v1 = good.split_once(',').unwrap().1;
        for header in [
            String::new(),
            "garbage".to_owned(),
            v1.to_owned(),
            "t=1700000000".to_owned(),
            format!("t=abc,{v1}"),
            format!("t=1700000000,t=1700000000,{v1}"),
            "t=1700000000,v1=zz".to_owned(),
            "t=1700000000,v1=abc".to_owned(),
            format!("{good},{}", "x".repeat(MAX_HEADER)),
        ] {
            assert_eq!(
                verify(SECRET, &header, BODY, T, TOLERANCE),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        // Keys of later schemes are ignored.
        assert_eq!(
            verify(SECRET, &format!("{good},v2=ffff"), BODY, T, TOLERANCE),
            Ok(T)
        );
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("AbCd"), Some(vec![0xab, 0xcd]));
    }
}
