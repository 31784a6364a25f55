//! How this configuration plans text requests: the planner cascade (offline → plan cache →
//! model lane → offline) and the per-request options. Built from the configuration alone, so
//! the engine's builder (`app.rs`) and the model commands (`llm_cmd.rs`) share it without
//! depending on each other.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kernos_planner::llm::{Cascade, HostFacts, PlanCache};
use kernos_skills::action::OrgCatalogs;
use kernos_tools::Registry;

/// The plan cache's file in the data directory.
pub const CACHE_FILE: &str = "plan-cache.db";

/// The cascade for this configuration over `registry` (the process's one catalog: the
/// offline planner plans requests that name its actions, and models see its schemas). Cheap
/// when no provider is configured (the offline planner alone); the HTTP client is built only
/// when a model is really asked.
pub fn cascade(
    cfg: &crate::config::Config,
    data_dir: &Path,
    registry: Arc<Registry>,
    org_skills: Arc<OrgCatalogs>,
) -> Cascade {
    let taught = Arc::new(TaughtSkills {
        store: kernos_skills::Store::new(data_dir),
        org_skills,
        base: registry.clone(),
    });
    if cfg.llm.providers.is_empty() {
        return Cascade::offline()
            .with_catalog(registry)
            .with_taught(taught);
    }
    // Machine facts and the cache file are set up only when a request is not answered
    // confidently offline: a model configured must not slow every command.
    let catalog = registry.clone();
    let mut c = Cascade::lazy(cfg.llm.clone(), move || {
        (catalog.clone(), HostFacts::detect())
    })
    .with_catalog(registry)
    .with_taught(taught)
    .with_threshold(cfg.planner.confidence_threshold)
    .with_complex_lane(cfg.planner.complex_lane.clone())
    .with_max_repairs(cfg.planner.max_repairs);
    if cfg.planner.cache {
        let path = data_dir.join(CACHE_FILE);
        let ttl = Duration::from_secs(cfg.planner.cache_ttl_hours.saturating_mul(3600));
        let cap = cfg.planner.cache_max_entries;
        c = c.with_cache_lazy(move || PlanCache::open_with(&path, ttl, cap));
    }
    c
}

/// The installed skills of the asking organisation, read from the skill store at each
/// request (a directory listing; nothing when there are none), so an install, rollback or
/// removal counts from the next request on, in the daemon too: a request that names one of
/// its generated skills (`skill.NAME key=value …`, typed from the skill's schema), or a
/// taught skill's phrasing or name. Another organisation's skills are not there to name.
#[derive(Debug)]
struct TaughtSkills {
    store: kernos_skills::Store,
    org_skills: Arc<OrgCatalogs>,
    base: Arc<Registry>,
}

impl kernos_planner::Taught for TaughtSkills {
    fn plan(&self, request: &str, org: &str) -> Option<Result<kernos_core::Plan, String>> {
        if request
            .trim_start()
            .starts_with(&format!("{}.", kernos_skills::action::TOOL))
            && let Some(catalog) = self.org_skills.catalog(&self.base, org)
            && let Some(planned) = kernos_planner::plan_by_name(request, &catalog)
        {
            return Some(planned);
        }
        let (installed, _) = self.store.installed_bundles(org);
        if installed.is_empty() {
            return None;
        }
        kernos_skills::template::plan_request(&installed, request)
            .map(|r| r.map_err(|e| e.to_string()))
    }
}
