//! Where an organisation's steps run on a shared host: its environment (`Env`) with its
//! filesystem scope, workspace and vault.
//!
//! The host operator (`local`) keeps the whole machine: the daemon user's home, the shared
//! trash and undo store. Every other organisation gets `<data_dir>/orgs/<org>/`:
//! `work/` (its workspace: working directory, `~`, and always in its scope), `trash/` and
//! `blobs/` (its vault), plus whatever `server.scopes.<org>` grants. Policy denies a step that
//! names a path outside the scope and the engine confines the step's thread to it, so other
//! organisations' workspaces, the shared trash and blobs and the journal are never visible.

use std::path::{Path, PathBuf};

use kernos_core::{FsScope, LOCAL_ORG};
use kernos_tools::Env;

use crate::State;

/// The directory holding organisation `org`'s workspace and vault.
pub(crate) fn org_dir(data_dir: &Path, org: &str) -> PathBuf {
    data_dir.join("orgs").join(org)
}

/// The environment a step of `org` runs in, from working directory `cwd` (its workspace when
/// none is given). The workspace is created on first use, private to the daemon's user.
pub(crate) fn env_for(st: &State, org: &str, cwd: Option<&str>) -> Env {
    if org == LOCAL_ORG {
        return Env {
            cwd: cwd.map(PathBuf::from).unwrap_or_else(|| st.home.clone()),
            home: st.home.clone(),
            data_dir: st.data_dir.clone(),
            vault: st.data_dir.clone(),
            scope: None,
            uid: st.uid,
        };
    }
    let vault = org_dir(&st.data_dir, org);
    let work = vault.join("work");
    if !work.is_dir()
        && let Err(e) = kernos_journal::create_private_dir(&work)
    {
        // The steps will fail on it with the path named; the daemon itself goes on.
        tracing::warn!(org, "cannot create the workspace {}: {e}", work.display());
    }
    let mut scope = st.config().scopes.get(org).cloned().unwrap_or_default();
    scope.write.push(work.clone());
    Env {
        cwd: cwd.map(PathBuf::from).unwrap_or_else(|| work.clone()),
        home: work,
        data_dir: st.data_dir.clone(),
        vault,
        scope: Some(scope),
        uid: st.uid,
    }
}

/// Checks `server.scopes`: absolute paths, and never the host operator's organisation (it has
/// the whole machine).
pub(crate) fn validate(scopes: &std::collections::BTreeMap<String, FsScope>) -> Result<(), String> {
    for (org, s) in scopes {
        crate::auth::validate_org(org).map_err(|e| format!("server.scopes: {e}"))?;
        if org == LOCAL_ORG {
            return Err(format!(
                "server.scopes.{org}: the host operator's organisation always has the whole \
                 machine; remove this entry"
            ));
        }
        for p in s.read.iter().chain(&s.write) {
            if !p.is_absolute() {
                return Err(format!(
                    "server.scopes.{org}: {} is not an absolute path",
                    p.display()
                ));
            }
        }
    }
    Ok(())
}

/// Refuses scopes that reach into the data directory (the journal, the shared trash, other
/// organisations' workspaces): each organisation's own part of it is granted by the daemon.
pub(crate) fn check_roots(
    scopes: &std::collections::BTreeMap<String, FsScope>,
    data_dir: &Path,
) -> Result<(), String> {
    for (org, s) in scopes {
        if let Some(p) = s
            .read
            .iter()
            .chain(&s.write)
            .find(|p| p.starts_with(data_dir) || data_dir.starts_with(p))
        {
            return Err(format!(
                "server.scopes.{org}: {} overlaps Kernos's data directory {}; an \
                 organisation's workspace there is granted automatically — grant trees outside it",
                p.display(),
                data_dir.display()
            ));
        }
    }
    Ok(())
}
