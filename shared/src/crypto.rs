//! Hashes and keyed hashes: partner secrets are kept only as SHA-256 hashes; PII used as a lookup key
//! (emails, SSNs) only as HMAC-SHA256 under the hub's hash key; callback tokens are HMACs too.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of `data`, hex-encoded.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A partner secret's stored form: `sha256:<64 hex digits>`.
///
/// Partner secrets are long random API keys (the hub issues them), so a fast hash is the right tool, as for
/// API tokens elsewhere; a password KDF would add tens of milliseconds to every request for no gain.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn parse(stored: &str) -> Result<Self, String> {
        let hex_part = stored
            .strip_prefix("sha256:")
            .ok_or_else(|| "must be `sha256:` followed by 64 hex digits".to_owned())?;
        let bytes = hex::decode(hex_part)
            .map_err(|_| "must be `sha256:` followed by 64 hex digits".to_owned())?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be `sha256:` followed by 64 hex digits".to_owned())?;
        Ok(SecretHash(array))
    }

    /// The stored form of `secret`.
    pub fn of(secret: &str) -> Self {
        SecretHash(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn to_stored(&self) -> String {
        format!("sha256:{}", hex::encode(self.0))
    }

    /// Constant-time comparison with the hash of `secret`.
    pub fn verify(&self, secret: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        candidate.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(sha256:…)")
    }
}

/// HMAC-SHA256 under one key.
#[derive(Clone)]
pub struct KeyedHasher {
    key: Vec<u8>,
}

impl KeyedHasher {
    pub fn new(key: &[u8]) -> Self {
        KeyedHasher { key: key.to_vec() }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// HMAC of `parts` joined by a separator that cannot occur in them ambiguously (length-prefixed).
    pub fn digest(&self, parts: &[&str]) -> [u8; 32] {
        let mut mac = self.mac();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    pub fn hex(&self, parts: &[&str]) -> String {
        hex::encode(self.digest(parts))
    }

    /// Constant-time check of a digest given as bytes.
    pub fn verify(&self, parts: &[&str], candidate: &[u8]) -> bool {
        let expected = self.digest(parts);
        candidate.len() == expected.len() && bool::from(candidate.ct_eq(&expected))
    }
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hashes_verify_only_their_secret() {
        let hash = SecretHash::of("sk_live_abc");
        assert!(hash.verify("sk_live_abc"));
        assert!(!hash.verify("sk_live_abd"));
        assert_eq!(SecretHash::parse(&hash.to_stored()), Ok(hash));
        assert!(SecretHash::parse("sha256:xyz").is_err());
        assert!(SecretHash::parse("plain").is_err());
    }

    #[test]
    fn keyed_digests_depend_on_key_and_framing() {
        let a = KeyedHasher::new(b"key-one-key-one-key-one-key-one!");
        let b = KeyedHasher::new(b"key-two-key-two-key-two-key-two!");
        assert_ne!(a.hex(&["email", "x@y.co"]), b.hex(&["email", "x@y.co"]));
        assert_ne!(a.hex(&["ab", "c"]), a.hex(&["a", "bc"]));
        assert!(a.verify(&["p"], &a.digest(&["p"])));
        assert!(!a.verify(&["p"], &b.digest(&["p"])));
        assert!(!a.verify(&["p"], b"short"));
    }
}
