//! Accept tokens: derived from a secret and the invitation (so a retried
//! batch carries the same link), single-use by the invitation's state, and
//! stored only as a hash.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Makes and hashes accept tokens.
#[derive(Clone)]
pub struct TokenMaker {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenMaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMaker(..)")
    }
}

impl TokenMaker {
    /// A maker from the configured secret, or a random one.
    pub fn new(secret: Option<&str>) -> TokenMaker {
        let secret = match secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                let mut bytes = vec![0u8; 32];
                rand::fill(&mut bytes[..]);
                bytes
            }
        };
        TokenMaker { secret }
    }

    /// The token of an invitation at a version (a resend bumps the version).
    pub fn token(&self, invitation_id: &str, version: i32) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(invitation_id.as_bytes());
        mac.update(b":");
        mac.update(version.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A short fingerprint of the secret (safe to show), so that an
    /// idempotency key changes when the secret does.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(&self.secret)[..4])
    }
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_stable_for_an_invitation_and_version_and_differs_otherwise() {
        let maker = TokenMaker::new(Some("s3cret"));
        let token = maker.token("inv-1", 0);
        assert_eq!(token, maker.token("inv-1", 0));
        assert_ne!(token, maker.token("inv-1", 1));
        assert_ne!(token, maker.token("inv-2", 0));
        assert_ne!(token, TokenMaker::new(Some("other")).token("inv-1", 0));
        assert_eq!(token.len(), 43);
        assert_eq!(hash(&token).len(), 64);
        assert_ne!(hash(&token), token);
    }
}
