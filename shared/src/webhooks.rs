//! Standard Webhooks (standardwebhooks.com) signing and verification.
//!
//! `webhook-id`, `webhook-timestamp` (epoch seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`, several space-separated) headers; secrets are `whsec_<base64 key>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far a signed timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A Standard Webhooks signing key.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "must be `whsec_` followed by base64".to_owned())?;
        if !(24..=64).contains(&key.len()) {
            return Err("the key must decode to 24-64 bytes".to_owned());
        }
        Ok(WebhookSecret(key))
    }

    /// A secret from raw key bytes.
    pub fn from_bytes(key: &[u8]) -> Self {
        WebhookSecret(key.to_vec())
    }

    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The `webhook-signature` header value for this message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    /// Check a received message's headers against its body.
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::BadTimestamp)?;
        if (now - timestamp).abs() > TOLERANCE_SECS {
            return Err(VerifyError::BadTimestamp);
        }
        let expected = self.mac(id, timestamp, body);
        let matched = signatures
            .split_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .any(|candidate| candidate.len() == 32 && bool::from(candidate.ct_eq(&expected)));
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatchingSignature)
        }
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp header is missing, malformed or too far from now")]
    BadTimestamp,
    #[error("no webhook-signature matches the message")]
    NoMatchingSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from the Standard Webhooks specification's reference implementations.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_like_the_reference_implementations() {
        let secret = WebhookSecret::parse(SECRET).expect("valid secret");
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.to_whsec(), SECRET);
    }

    #[test]
    fn verifies_and_refuses() {
        let secret = WebhookSecret::parse(SECRET).expect("valid secret");
        let ts = TIMESTAMP.to_string();
        assert_eq!(secret.verify(ID, &ts, SIGNATURE, BODY, TIMESTAMP), Ok(()));
        assert_eq!(
            secret.verify(
                ID,
                &ts,
                &format!("v1,bm9wZQ== {SIGNATURE}"),
                BODY,
                TIMESTAMP + 10
            ),
            Ok(())
        );
        assert_eq!(
            secret.verify(ID, &ts, SIGNATURE, b"{}", TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            secret.verify("msg_other", &ts, SIGNATURE, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        assert_eq!(
            secret.verify(ID, &ts, SIGNATURE, BODY, TIMESTAMP + TOLERANCE_SECS + 1),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            secret.verify(ID, "soon", SIGNATURE, BODY, TIMESTAMP),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn verification_refuses_a_wrong_secret_and_a_stale_or_future_timestamp() {
        let secret = WebhookSecret::parse(SECRET).expect("valid secret");
        let ts = TIMESTAMP.to_string();
        let wrong = WebhookSecret::from_bytes(&[42; 24]);
        assert_eq!(
            wrong.verify(ID, &ts, SIGNATURE, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        // A signature made with the wrong secret does not pass with the right one.
        let forged = wrong.sign(ID, TIMESTAMP, BODY);
        assert_eq!(
            secret.verify(ID, &ts, &forged, BODY, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
        // Exactly five minutes either way passes; a second more does not.
        for now in [TIMESTAMP - TOLERANCE_SECS, TIMESTAMP + TOLERANCE_SECS] {
            assert_eq!(secret.verify(ID, &ts, SIGNATURE, BODY, now), Ok(()));
        }
        for now in [
            TIMESTAMP - TOLERANCE_SECS - 1,
            TIMESTAMP + TOLERANCE_SECS + 1,
        ] {
            assert_eq!(
                secret.verify(ID, &ts, SIGNATURE, BODY, now),
                Err(VerifyError::BadTimestamp)
            );
        }
        // A changed body, by one byte.
        assert_eq!(
            secret.verify(ID, &ts, SIGNATURE, br#"{"test": 2432232315}"#, TIMESTAMP),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn secrets_must_be_real_keys() {
        assert!(WebhookSecret::parse("whsec_###").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
        assert!(!format!("{:?}", WebhookSecret::parse(SECRET)).contains("MfKQ"));
    }
}
