//! Who may do what: API keys (stored only as SHA-256 hashes), roles, organisations, and the
//! local Unix-socket peer.
//!
//! Keys are events in the journal (`audit.key.created`, `audit.key.revoked`); the table here
//! is a read model rebuilt from them on start and kept current from the event stream, so a key
//! created by `kernos keys create` while the daemon runs works at once.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use kernos_core::{Actor, Event, RawId, Risk};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Kind of the event that creates a key.
pub const KEY_CREATED: &str = "audit.key.created";
/// Kind of the event that revokes a key.
pub const KEY_REVOKED: &str = "audit.key.revoked";
/// Prefix every key starts with, so leaked keys are easy to recognise and scan for.
pub const KEY_PREFIX: &str = "kn_";

/// Roles, each including the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads state and events.
    Viewer,
    /// Submits actions, approves low and medium risk steps, undoes.
    Operator,
    /// Approves high risk steps, manages its organisation's keys, reads the audit log.
    Admin,
    /// Manages the organisation: keys of every role, including owners.
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Owner];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may do `p`.
    pub fn allows(self, p: Perm) -> bool {
        self >= p.min_role()
    }

    /// The highest step risk this role may approve, if any.
    pub fn max_approvable(self) -> Option<Risk> {
        match self {
            Role::Viewer => None,
            Role::Operator => Some(Risk::Medium),
            Role::Admin | Role::Owner => Some(Risk::High),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            _ => Err(format!(
                "{s:?} is not a role; use viewer, operator, admin or owner"
            )),
        }
    }
}

/// What an endpoint needs. The permission matrix is [`Perm::min_role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    /// GET /v1/state/*, GET /v1/events.
    Read,
    /// POST /v1/actions.
    Submit,
    /// POST /v1/approvals/{id} (the step's risk is checked separately).
    Approve,
    /// POST /v1/undo/{tx}.
    Undo,
    /// GET /v1/audit, GET /v1/audit.csv.
    Audit,
    /// GET/POST /v1/keys, DELETE /v1/keys/{id}.
    ManageKeys,
    /// POST /v1/skills/{name}/approve|install|rollback, DELETE /v1/skills/{name}: what the
    /// organisation's tools are is an administrator's decision.
    ManageSkills,
}

impl Perm {
    /// The lowest role allowed.
    pub fn min_role(self) -> Role {
        match self {
            Perm::Read => Role::Viewer,
            Perm::Submit | Perm::Approve | Perm::Undo => Role::Operator,
            Perm::Audit | Perm::ManageKeys | Perm::ManageSkills => Role::Admin,
        }
    }
}

/// Who may call an endpoint: the route table gives each route one, and the router checks it
/// before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, readiness, the OpenAPI document).
    Public,
    /// A caller whose role allows this.
    Perm(Perm),
    /// Only the host operator (see [`Principal::is_host_operator`]): what it shows spans
    /// every organisation.
    HostOperator,
}

impl Access {
    /// Fails with 403 unless `who` may call.
    pub fn check(self, who: &Principal) -> Result<(), crate::error::ApiError> {
        match self {
            Access::Public => Ok(()),
            Access::Perm(p) => who.require(p),
            // Metrics are the one host-operator endpoint, hence the wording.
            Access::HostOperator if who.is_host_operator() => Ok(()),
            Access::HostOperator => Err(crate::error::ApiError::forbidden(
                "metrics cover every organisation, so only the host operator reads them: use the Unix socket, or an owner key of org `local`",
            )),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// As journaled: `key:<id>` or `user:<name>` (local socket).
    pub actor: Actor,
    /// Organisation everything it does and sees belongs to.
    pub org: String,
    /// Its role there.
    pub role: Role,
    /// The key it used, if any (rate limiting is per key).
    pub key_id: Option<String>,
    /// Where the request came from (`127.0.0.1:5123`, `unix:uid=1000`).
    pub source: String,
}

impl Principal {
    /// True for the owner of the local organisation (the daemon's own user, on the socket, or
    /// an owner key of org `local`): the host's operator, who may manage keys of any org.
    pub fn is_host_operator(&self) -> bool {
        self.org == kernos_core::LOCAL_ORG && self.role == Role::Owner
    }

    /// Fails with 403 unless the role allows `p`.
    pub fn require(&self, p: Perm) -> Result<(), crate::error::ApiError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(crate::error::ApiError::forbidden(format!(
                "role {} may not do this; it needs {} or higher: ask an admin of org {} for a key with that role",
                self.role,
                p.min_role(),
                self.org
            )))
        }
    }
}

/// A key as the table knows it (never the key itself).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct KeyInfo {
    /// Public id (the middle part of the key).
    pub id: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Free text.
    pub label: String,
    /// Created, ms since the epoch.
    pub created_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Whether it was revoked.
    pub revoked: bool,
    #[serde(skip)]
    #[schemars(skip)]
    hash: [u8; 32],
}

/// A newly made key: the secret (shown once) and the event that records its hash.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The whole key, `kn_<id>_<64 hex>`; print it once, it is not stored.
    pub secret: String,
    /// Public id.
    pub id: String,
    /// Payload of `audit.key.created`.
    pub payload: serde_json::Value,
}

/// SHA-256 of a key, hex.
pub fn hash_key(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

use kernos_core::hex::{decode32 as unhex32, encode as hex};

/// Makes a key: 256 random bits from the OS. `who` and `source` go into the audit payload.
pub fn generate_key(org: &str, role: Role, label: &str, who: &Principal) -> Result<NewKey, String> {
    validate_org(org)?;
    let mut rnd = [0u8; 32];
    getrandom::fill(&mut rnd).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let id = RawId::generate().to_string();
    let secret = format!("{KEY_PREFIX}{id}_{}", hex(&rnd));
    let payload = serde_json::json!({
        "key_id": id,
        "sha256": hash_key(&secret),
        "org": org,
        "role": role,
        "label": label,
        "actor": who.actor,
        "actor_org": who.org,
        "actor_role": who.role,
        "source": who.source,
        "after": {"key_id": id, "org": org, "role": role, "label": label, "revoked": false},
    });
    Ok(NewKey {
        secret,
        id,
        payload,
    })
}

/// Organisation names: 1–64 of `a-z 0-9 - _ .`, so they are safe in URLs, logs and CSV.
pub fn validate_org(org: &str) -> Result<(), String> {
    // The name is also a directory under the data directory (its workspace and vault), so it
    // starts with a letter or digit: never `.` or `..`.
    let ok = org.len() <= 64
        && org
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && org
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{org:?} is not an organisation name: use 1-64 characters of a-z, 0-9, '-', '_' and \
             '.', starting with a letter or digit"
        ))
    }
}

/// The key read model.
#[derive(Debug, Default)]
pub struct KeyTable {
    keys: HashMap<String, KeyInfo>,
}

impl KeyTable {
    /// Applies one journal event (ignores everything but key events).
    pub fn apply(&mut self, e: &Event) {
        let p = &e.payload;
        let Some(id) = p.get("key_id").and_then(|v| v.as_str()) else {
            return;
        };
        match e.kind.as_str() {
            KEY_CREATED => {
                let hash = p.get("sha256").and_then(|v| v.as_str()).and_then(unhex32);
                let role = p
                    .get("role")
                    .and_then(|v| serde_json::from_value::<Role>(v.clone()).ok());
                let (Some(hash), Some(role)) = (hash, role) else {
                    return;
                };
                self.keys.insert(
                    id.to_owned(),
                    KeyInfo {
                        id: id.to_owned(),
                        org: e.org.clone(),
                        role,
                        label: p
                            .get("label")
                            .and_then(|v| v.as_str())
                            .unwrap_or("")
                            .to_owned(),
                        created_ms: e.ts_ms,
                        created_by: e.actor.0.clone(),
                        revoked: false,
                        hash,
                    },
                );
            }
            KEY_REVOKED => {
                if let Some(k) = self.keys.get_mut(id) {
                    // A revocation only counts from the key's own organisation.
                    if k.org == e.org {
                        k.revoked = true;
                    }
                }
            }
            _ => {}
        }
    }

    /// Checks a presented key: the id picks the record, the hash is compared in constant
    /// time. Revoked and unknown keys are refused alike.
    pub fn authenticate(&self, presented: &str) -> Option<&KeyInfo> {
        let rest = presented.strip_prefix(KEY_PREFIX)?;
        let (id, _) = rest.split_once('_')?;
        let k = self.keys.get(id)?;
        let h = Sha256::digest(presented.as_bytes());
        let same: bool = h.as_slice().ct_eq(&k.hash).into();
        (same && !k.revoked).then_some(k)
    }

    /// A key by id.
    pub fn get(&self, id: &str) -> Option<&KeyInfo> {
        self.keys.get(id)
    }

    /// Keys of one organisation (every organisation when `None`), oldest first.
    pub fn list(&self, org: Option<&str>) -> Vec<KeyInfo> {
        let mut v: Vec<KeyInfo> = self
            .keys
            .values()
            .filter(|k| org.is_none_or(|o| k.org == o))
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernos_core::LOCAL_ORG;

    fn local() -> Principal {
        Principal {
            actor: Actor::user("root"),
            org: LOCAL_ORG.into(),
            role: Role::Owner,
            key_id: None,
            source: "unix:uid=0".into(),
        }
    }

    fn created(k: &NewKey, org: &str) -> Event {
        Event {
            seq: 1,
            ts_ms: 5,
            kind: KEY_CREATED.into(),
            actor: Actor::user("root"),
            org: org.into(),
            action: None,
            tx: None,
            payload: k.payload.clone(),
            hash: String::new(),
        }
    }

    #[test]
    fn keys_authenticate_by_hash_and_revocation_sticks() {
        let k = generate_key("acme", Role::Operator, "ci", &local()).unwrap();
        assert!(k.secret.starts_with("kn_") && k.secret.len() == 3 + 26 + 1 + 64);
        assert!(
            !k.payload.to_string().contains(&k.secret[30..]),
            "secret never stored"
        );
        let mut t = KeyTable::default();
        t.apply(&created(&k, "acme"));
        let got = t.authenticate(&k.secret).unwrap();
        assert_eq!((got.org.as_str(), got.role), ("acme", Role::Operator));
        // One character off, wrong prefix, unknown id: refused.
        let mut wrong = k.secret.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        assert!(t.authenticate(&wrong).is_none());
        assert!(t.authenticate(&k.secret[3..]).is_none());
        assert!(t.authenticate("kn_x_y").is_none());
        // A revocation from another org does nothing; from its own org it revokes.
        let mut rev = created(&k, "globex");
        rev.kind = KEY_REVOKED.into();
        t.apply(&rev);
        assert!(t.authenticate(&k.secret).is_some());
        rev.org = "acme".into();
        t.apply(&rev);
        assert!(t.authenticate(&k.secret).is_none());
    }

    #[test]
    fn roles_are_ordered_and_the_matrix_holds() {
        assert!(Role::Viewer < Role::Operator && Role::Admin < Role::Owner);
        assert!(Role::Viewer.allows(Perm::Read) && !Role::Viewer.allows(Perm::Submit));
        assert!(Role::Operator.allows(Perm::Approve) && !Role::Operator.allows(Perm::Audit));
        assert_eq!(Role::Operator.max_approvable(), Some(Risk::Medium));
        assert_eq!(Role::Admin.max_approvable(), Some(Risk::High));
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
        assert!(validate_org("acme-1").is_ok() && validate_org("Acme").is_err());
        assert!(validate_org("").is_err() && validate_org("a/b").is_err());
    }
}
