//! Hashes, keyed hashes and the sealed SSN: partner secrets are kept only as SHA-256 hashes; PII used as a
//! lookup key (emails, SSNs) only as HMAC-SHA256 under the hub's hash key; callback tokens are HMACs too.
//! An SSN that screening needs as itself is kept, until screening has decided, only sealed by
//! [`SsnSealer`] (XChaCha20-Poly1305 under a key derived from `hub.ssn_key`, bound to its lead).

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::connectors::leadsafe::Ssn;

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

// ---- the sealed SSN ----------------------------------------------------------------------------------

/// The HKDF-SHA256 `info` the SSN key is derived with: a new version of the sealing gets a new one.
const SSN_SEAL_INFO: &[u8] = b"leadhub ssn seal v1";
/// The stored form's version prefix.
const SEALED_V1: &str = "v1:";
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;

/// The shortest secret [`SsnSealer::new`] takes, in characters (as for the hub's other keys).
pub const MIN_SSN_KEY_CHARS: usize = 32;

/// Why an SSN could not be sealed, opened or read back. No variant carries the SSN, the key or the sealed
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the SSN key must be at least {MIN_SSN_KEY_CHARS} characters")]
    KeyTooShort,
    #[error("not a sealed SSN: {0}")]
    Malformed(&'static str),
    #[error(
        "the sealed SSN does not open: sealed under another key or for another lead, or altered"
    )]
    DoesNotOpen,
    #[error("the sealed SSN opened to something that is not 9 digits")]
    NotAnSsn,
}

/// An SSN sealed for one lead: version, 24-byte nonce and ciphertext (with its 16-byte tag). Its stored form
/// ([`SealedSsn::to_stored`]) is `v1:` followed by base64 (URL-safe, unpadded) of nonce then ciphertext. Its
/// `Debug` shows only the version.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSsn {
    version: u8,
    nonce: [u8; NONCE_BYTES],
    ciphertext: Vec<u8>,
}

impl SealedSsn {
    /// The stored form: `v1:<base64 of nonce and ciphertext>`.
    pub fn to_stored(&self) -> String {
        let mut bytes = Vec::with_capacity(NONCE_BYTES + self.ciphertext.len());
        bytes.extend_from_slice(&self.nonce);
        bytes.extend_from_slice(&self.ciphertext);
        format!(
            "{SEALED_V1}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Read a stored form back. The error never repeats it.
    pub fn parse(stored: &str) -> Result<Self, SealError> {
        let encoded = stored
            .strip_prefix(SEALED_V1)
            .ok_or(SealError::Malformed("no known version prefix (`v1:`)"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Malformed("not unpadded URL-safe base64 after `v1:`"))?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::Malformed("too short for a nonce and a tag"));
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let mut fixed = [0u8; NONCE_BYTES];
        fixed.copy_from_slice(nonce);
        Ok(SealedSsn {
            version: 1,
            nonce: fixed,
            ciphertext: ciphertext.to_vec(),
        })
    }

    /// The sealing's version (1).
    pub fn version(&self) -> u8 {
        self.version
    }
}

impl std::fmt::Debug for SealedSsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedSsn(v{}, …)", self.version)
    }
}

/// Seals SSNs for screening and opens them again: XChaCha20-Poly1305 under a 256-bit key derived from the
/// configured secret (`hub.ssn_key`) with HKDF-SHA256 (no salt, info `leadhub ssn seal v1`), a fresh random
/// 24-byte nonce from the OS for every seal, and the lead id as associated data, so that a sealed SSN opens
/// only for the lead it was sealed for. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SsnSealer {
    cipher: XChaCha20Poly1305,
}

impl SsnSealer {
    /// A sealer keyed from `secret`, which must be at least [`MIN_SSN_KEY_CHARS`] characters.
    pub fn new(secret: &str) -> Result<Self, SealError> {
        if secret.chars().count() < MIN_SSN_KEY_CHARS {
            return Err(SealError::KeyTooShort);
        }
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, secret.as_bytes())
            .expand(SSN_SEAL_INFO, &mut key)
            .unwrap_or_else(|_| unreachable!("HKDF-SHA256 gives up to 8160 bytes"));
        Ok(SsnSealer {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// Seal `ssn` (its 9 digits) for the lead `lead_id`.
    pub fn seal(&self, lead_id: &str, ssn: &str) -> SealedSsn {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: ssn.as_bytes(),
                    aad: lead_id.as_bytes(),
                },
            )
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any message this short"));
        SealedSsn {
            version: 1,
            nonce: nonce.into(),
            ciphertext,
        }
    }

    /// Open what [`SsnSealer::seal`] sealed for `lead_id`: the SSN, or why not (another key, another lead,
    /// an altered byte).
    pub fn open(&self, lead_id: &str, sealed: &SealedSsn) -> Result<Ssn, SealError> {
        let plaintext = self
            .cipher
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: lead_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::DoesNotOpen)?;
        let digits = String::from_utf8(plaintext).map_err(|_| SealError::NotAnSsn)?;
        if digits.len() != 9 {
            return Err(SealError::NotAnSsn);
        }
        Ssn::parse(&digits).map_err(|_| SealError::NotAnSsn)
    }
}

impl std::fmt::Debug for SsnSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SsnSealer(***)")
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

    const SSN_KEY: &str = "ssn-key-ssn-key-ssn-key-ssn-key-0";
    const LEAD: &str = "lead_01JDV4W3XK0000000000000000";

    fn sealer() -> SsnSealer {
        SsnSealer::new(SSN_KEY).expect("long enough")
    }

    #[test]
    fn a_sealed_ssn_opens_for_its_lead_through_its_stored_form() {
        let sealed = sealer().seal(LEAD, "219099999");
        let stored = sealed.to_stored();
        assert!(stored.starts_with("v1:"), "{stored}");
        let parsed = SealedSsn::parse(&stored).expect("reads back");
        assert_eq!(parsed, sealed);
        assert_eq!(parsed.version(), 1);
        let ssn = sealer().open(LEAD, &parsed).expect("opens");
        assert_eq!(ssn.expose(), "219099999");
    }

    #[test]
    fn a_sealed_ssn_opens_for_no_other_lead_key_or_bytes() {
        let sealed = sealer().seal(LEAD, "219099999");
        assert_eq!(
            sealer().open("lead_01JDV4W3XK0000000000000001", &sealed),
            Err(SealError::DoesNotOpen)
        );
        let other = SsnSealer::new("another-key-another-key-another-key").expect("long enough");
        assert_eq!(other.open(LEAD, &sealed), Err(SealError::DoesNotOpen));
        // Every byte of nonce and ciphertext (tag included) is covered.
        let stored = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&sealed.to_stored()[3..])
            .expect("base64");
        for i in 0..stored.len() {
            let mut tampered = stored.clone();
            tampered[i] ^= 0x01;
            let text = format!(
                "v1:{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tampered)
            );
            let tampered = SealedSsn::parse(&text).expect("still well-formed");
            assert_eq!(
                sealer().open(LEAD, &tampered),
                Err(SealError::DoesNotOpen),
                "byte {i}"
            );
        }
    }

    #[test]
    fn two_seals_of_one_ssn_differ() {
        let a = sealer().seal(LEAD, "219099999");
        let b = sealer().seal(LEAD, "219099999");
        assert_ne!(a.to_stored(), b.to_stored());
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn nothing_shows_the_ssn_or_the_key() {
        let sealer = sealer();
        let sealed = sealer.seal(LEAD, "219099999");
        let stored = sealed.to_stored();
        for text in [
            format!("{sealer:?}"),
            format!("{sealed:?}"),
            format!("{:?}", sealer.open(LEAD, &sealed)),
        ] {
            assert!(
                !text.contains("219099999") && !text.contains(SSN_KEY),
                "{text}"
            );
            assert!(!text.contains(&stored[3..]), "{text}");
        }
        assert_eq!(format!("{sealer:?}"), "SsnSealer(***)");
        assert_eq!(format!("{sealed:?}"), "SealedSsn(v1, …)");
        assert!(!stored.contains("219099999") && !stored.contains("219-09-9999"));
    }

    #[test]
    fn short_keys_and_malformed_stored_forms_are_refused() {
        assert_eq!(
            SsnSealer::new(&"k".repeat(31)).map(|_| ()),
            Err(SealError::KeyTooShort)
        );
        assert!(SsnSealer::new(&"k".repeat(32)).is_ok());
        for bad in ["", "219099999", "v2:AAAA", "v1:***", "v1:AAAA"] {
            assert!(
                matches!(SealedSsn::parse(bad), Err(SealError::Malformed(_))),
                "{bad}"
            );
        }
        let not_digits = sealer().seal(LEAD, "21909999x");
        assert_eq!(sealer().open(LEAD, &not_digits), Err(SealError::NotAnSsn));
        let dashed = sealer().seal(LEAD, "219-09-9999");
        assert_eq!(sealer().open(LEAD, &dashed), Err(SealError::NotAnSsn));
    }
}
