//! Browser sessions: an API key exchanged once for a cookie, so the dashboard never keeps the
//! key. A session acts as its key (same org, role and rate limit) until it expires, is signed
//! out, or its key is revoked. Like keys, sessions are journal events holding only a hash
//! (`audit.session.created`, `audit.session.ended`), so they survive a daemon restart and the
//! table here is their read model.
//!
//! Mutations through a session need the session's CSRF token in `X-CSRF-Token`: the token is
//! derived from the session secret, which only the cookie holds, so another site's page can
//! make the browser send the cookie but cannot know the token.

use std::collections::HashMap;

use kernos_core::Event;
use kernos_core::hex::{decode32 as unhex32, encode as hex};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Kind of the event that opens a session.
pub const SESSION_CREATED: &str = "audit.session.created";
/// Kind of the event that ends one (sign-out).
pub const SESSION_ENDED: &str = "audit.session.ended";
/// The cookie that carries the session secret.
pub const COOKIE: &str = "kernos_session";
/// The header that carries the CSRF token on mutations.
pub const CSRF_HEADER: &str = "x-csrf-token";

const PREFIX: &str = "ks_";

/// A session just opened: the secret for the cookie (never stored) and what the journal keeps.
#[derive(Debug, Clone)]
pub(crate) struct NewSession {
    pub(crate) secret: String,
    pub(crate) id: String,
    pub(crate) csrf: String,
    /// Payload of `audit.session.created`.
    pub(crate) payload: serde_json::Value,
}

/// Makes a session for key `key_id`, expiring at `expires_ms`: 256 random bits from the OS.
pub(crate) fn generate(key_id: &str, expires_ms: i64) -> Result<NewSession, ApiError> {
    let mut rnd = [0u8; 32];
    getrandom::fill(&mut rnd)
        .map_err(|e| ApiError::internal(format!("no randomness from the OS: {e}; retry")))?;
    let id = kernos_core::RawId::generate().to_string();
    let secret = format!("{PREFIX}{id}_{}", hex(&rnd));
    let payload = serde_json::json!({
        "session_id": id,
        "sha256": hex(&Sha256::digest(secret.as_bytes())),
        "key_id": key_id,
        "expires_ms": expires_ms,
    });
    Ok(NewSession {
        csrf: csrf_token(&secret),
        secret,
        id,
        payload,
    })
}

/// The CSRF token of a session secret.
pub(crate) fn csrf_token(secret: &str) -> String {
    hex(&Sha256::digest(format!("kernos-csrf:{secret}").as_bytes()))
}

/// Whether `presented` is the CSRF token of `secret` (compared in constant time).
pub(crate) fn csrf_ok(secret: &str, presented: &str) -> bool {
    csrf_token(secret)
        .as_bytes()
        .ct_eq(presented.trim().as_bytes())
        .into()
}

/// One session as the table knows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) key_id: String,
    pub(crate) org: String,
    pub(crate) expires_ms: i64,
    pub(crate) ended: bool,
    #[serde(skip)]
    hash: [u8; 32],
}

/// The session read model.
#[derive(Debug, Default)]
pub(crate) struct SessionTable {
    sessions: HashMap<String, SessionInfo>,
}

impl SessionTable {
    /// Applies one journal event (ignores everything but session events).
    pub(crate) fn apply(&mut self, e: &Event) {
        let p = &e.payload;
        let Some(id) = p.get("session_id").and_then(|v| v.as_str()) else {
            return;
        };
        match e.kind.as_str() {
            SESSION_CREATED => {
                let hash = p.get("sha256").and_then(|v| v.as_str()).and_then(unhex32);
                let key = p.get("key_id").and_then(|v| v.as_str());
                let expires = p.get("expires_ms").and_then(|v| v.as_i64());
                let (Some(hash), Some(key), Some(expires_ms)) = (hash, key, expires) else {
                    return;
                };
                self.sessions.insert(
                    id.to_owned(),
                    SessionInfo {
                        id: id.to_owned(),
                        key_id: key.to_owned(),
                        org: e.org.clone(),
                        expires_ms,
                        ended: false,
                        hash,
                    },
                );
            }
            SESSION_ENDED => {
                // Only from the session's own organisation.
                if let Some(s) = self.sessions.get_mut(id).filter(|s| s.org == e.org) {
                    s.ended = true;
                }
            }
            _ => {}
        }
    }

    /// The live session whose secret is `presented` at `now_ms`: the id picks the record, the
    /// hash is compared in constant time; ended, expired and unknown sessions are refused alike.
    pub(crate) fn authenticate(&self, presented: &str, now_ms: i64) -> Option<&SessionInfo> {
        let rest = presented.strip_prefix(PREFIX)?;
        let (id, _) = rest.split_once('_')?;
        let s = self.sessions.get(id)?;
        let h = Sha256::digest(presented.as_bytes());
        let same: bool = h.as_slice().ct_eq(&s.hash).into();
        (same && !s.ended && now_ms < s.expires_ms).then_some(s)
    }

    /// A session by id.
    pub(crate) fn get(&self, id: &str) -> Option<&SessionInfo> {
        self.sessions.get(id)
    }

    /// Whether session `id` still lets requests in at `now_ms`.
    pub(crate) fn live(&self, id: &str, now_ms: i64) -> bool {
        self.sessions
            .get(id)
            .is_some_and(|s| !s.ended && now_ms < s.expires_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::Actor;

    fn event(kind: &str, org: &str, payload: serde_json::Value) -> Event {
        Event {
            seq: 1,
            ts_ms: 0,
            kind: kind.into(),
            actor: Actor("key:x".into()),
            org: org.into(),
            action: None,
            tx: None,
            payload,
            hash: String::new(),
        }
    }

    #[test]
    fn a_session_lets_in_only_its_own_secret_until_it_ends_or_expires() {
        let s = generate("k1", 1_000).unwrap();
        let mut t = SessionTable::default();
        t.apply(&event(SESSION_CREATED, "acme", s.payload.clone()));
        let found = t.authenticate(&s.secret, 10).unwrap();
        assert_eq!((found.key_id.as_str(), found.org.as_str()), ("k1", "acme"));
        let mut forged = s.secret.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == '0' { '1' } else { '0' });
        assert!(t.authenticate(&forged, 10).is_none());
        assert!(t.authenticate(&s.secret, 1_000).is_none(), "expired");
        // Another organisation cannot end it; its own can.
        let end = serde_json::json!({"session_id": s.id});
        t.apply(&event(SESSION_ENDED, "globex", end.clone()));
        assert!(t.live(&s.id, 10));
        t.apply(&event(SESSION_ENDED, "acme", end));
        assert!(t.authenticate(&s.secret, 10).is_none());
        assert!(!t.live(&s.id, 10));
    }

    #[test]
    fn the_csrf_token_belongs_to_one_session() {
        let a = generate("k1", 1_000).unwrap();
        let b = generate("k1", 1_000).unwrap();
        assert!(csrf_ok(&a.secret, &a.csrf));
        assert!(!csrf_ok(&a.secret, &b.csrf));
        assert!(!csrf_ok(&a.secret, ""));
        assert_ne!(a.csrf, a.secret);
    }
}
