//! Skills of the caller's organisation: list, show, approve, install, roll back, remove
//! (`/v1/skills…`). The same store and lifecycle as `kernos skill`; every change is journaled
//! as a `skill.*` event of the caller's organisation with the caller as actor and `by`.
//! Another organisation's skills are not there to see or change: every lookup is in the
//! caller's org.

use axum::Json;
use axum::extract::{Path, State};
use kernos_core::NewEvent;
use kernos_skills::{SkillError, Status, Store, Transition};
use serde_json::json;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::wire::{SkillChanged, SkillDetail, SkillVersion, SkillView};

/// A store error as the API answers it.
fn api(e: SkillError) -> ApiError {
    match e {
        SkillError::NotFound(n) => ApiError::not_found(format!(
            "no skill {n} in this organisation: GET /v1/skills lists its skills"
        )),
        SkillError::Invalid(_) | SkillError::Args(_) => ApiError::unprocessable(e.to_string()),
        SkillError::State(_) | SkillError::Altered { .. } => ApiError::conflict(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// The body of a change, which may be empty (the newest version).
fn version_of(body: &[u8]) -> ApiResult<Option<u32>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: SkillVersion = serde_json::from_slice(body).map_err(|e| {
        ApiError::unprocessable(format!(
            "the body is {{\"version\": N}} or empty for the newest: {e}"
        ))
    })?;
    Ok(v.version)
}

/// Journals `t` as an event of the caller's organisation, with the caller as `by`.
fn journal(st: &St, p: &Principal, t: &Transition) -> ApiResult<SkillChanged> {
    let mut payload = t.payload.clone();
    if let Some(o) = payload.as_object_mut() {
        o.insert("by".into(), json!(p.actor.to_string()));
    }
    st.store.append_now(
        NewEvent::new(&t.kind, p.actor.clone())
            .org(&p.org)
            .payload(payload.clone()),
    )?;
    Ok(SkillChanged {
        event: t.kind.clone(),
        payload,
    })
}

/// GET /v1/skills.
pub(super) async fn list(State(st): State<St>, p: Principal) -> ApiResult<Json<Vec<SkillView>>> {
    super::offload::blocking(&st, move |st| {
        let entries = Store::new(&st.data_dir).list(&p.org).map_err(api)?;
        Ok(Json(
            entries
                .into_iter()
                .map(|e| SkillView {
                    kind: json!(e.bundle.manifest.kind)
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    summary: e.bundle.manifest.summary.clone(),
                    status: json!(e.state.status)
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    installed: e.installed,
                    hash: e.hash,
                    validated_hash: e.state.validated_hash,
                    approved_by: e.state.approved_by,
                    name: e.name,
                    version: e.version,
                })
                .collect(),
        ))
    })
    .await
}

/// GET /v1/skills/{name}: the installed version, else the newest.
pub(super) async fn show(
    State(st): State<St>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<SkillDetail>> {
    super::offload::blocking(&st, move |st| {
        let store = Store::new(&st.data_dir);
        let installed = store.installed(&p.org, &name).map_err(api)?;
        let v = match &installed {
            Some(i) => i.version,
            None => store.resolve(&p.org, &name, None).map_err(api)?,
        };
        let bundle = store.bundle(&p.org, &name, v).map_err(api)?;
        let state = store.state(&p.org, &name, v).map_err(api)?;
        Ok(Json(SkillDetail {
            hash: bundle.hash(),
            bundle: json!(bundle),
            state: json!(state),
            installed: installed.is_some_and(|i| i.version == v),
        }))
    })
    .await
}

/// POST /v1/skills/{name}/approve: a validated version whose bundle is still the one
/// validated; the attestation is signed with the journal's checkpoint keys.
pub(super) async fn approve(
    State(st): State<St>,
    p: Principal,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<SkillChanged>> {
    let version = version_of(&body)?;
    super::offload::blocking(&st, move |st| {
        let store = Store::new(&st.data_dir);
        let v = store.resolve(&p.org, &name, version).map_err(api)?;
        let state = store.state(&p.org, &name, v).map_err(api)?;
        if state.status == Status::Draft {
            return Err(ApiError::conflict(format!(
                "{name} v{v} is a draft: it has not passed validation, so it cannot be approved; validate it first (kernos skill import on the host validates a bundle)"
            )));
        }
        let hash = store.bundle(&p.org, &name, v).map_err(api)?.hash();
        let msg = kernos_skills::store::attestation_message(&p.org, &name, v, &hash);
        let sig = st
            .tlog
            .live
            .with(|log| log.keys().sign_detached(msg.as_bytes()))
            .ok()
            .map(|(sig, key)| kernos_skills::Signature { key, sig });
        let t = store
            .approve(&p.org, &name, v, &p.actor.to_string(), sig)
            .map_err(api)?;
        journal(st, &p, &t).map(Json)
    })
    .await
}

/// POST /v1/skills/{name}/install: an approved version whose bundle still hashes as
/// validated; a refusal is journaled too (`skill.refused`).
pub(super) async fn install(
    State(st): State<St>,
    p: Principal,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<SkillChanged>> {
    let version = version_of(&body)?;
    super::offload::blocking(&st, move |st| {
        let store = Store::new(&st.data_dir);
        let v = store.resolve(&p.org, &name, version).map_err(api)?;
        match store.install(&p.org, &name, v) {
            Ok(t) => journal(st, &p, &t).map(Json),
            Err(e) => {
                let refused = Transition {
                    kind: "skill.refused".into(),
                    payload: json!({"org": p.org, "name": name, "version": v, "why": e.to_string()}),
                };
                journal(st, &p, &refused)?;
                Err(api(e))
            }
        }
    })
    .await
}

/// POST /v1/skills/{name}/rollback: the installed pointer back to the previous version.
pub(super) async fn rollback(
    State(st): State<St>,
    p: Principal,
    Path(name): Path<String>,
) -> ApiResult<Json<SkillChanged>> {
    super::offload::blocking(&st, move |st| {
        let store = Store::new(&st.data_dir);
        // A skill this org does not have is not found, whatever another org has.
        store.resolve(&p.org, &name, None).map_err(api)?;
        let t = store.rollback(&p.org, &name).map_err(api)?;
        journal(st, &p, &t).map(Json)
    })
    .await
}

/// DELETE /v1/skills/{name}: the whole skill (`{"version": N}` removes one version).
pub(super) async fn remove(
    State(st): State<St>,
    p: Principal,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<SkillChanged>> {
    let version = version_of(&body)?;
    super::offload::blocking(&st, move |st| {
        let t = Store::new(&st.data_dir)
            .remove(&p.org, &name, version)
            .map_err(api)?;
        journal(st, &p, &t).map(Json)
    })
    .await
}
