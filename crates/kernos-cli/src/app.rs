//! What every command needs, built only when a command needs it: config, data directory,
//! journal, engine.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use kernos_core::{CancelToken, ExecError, ExecOutcome, ExecRequest, ProcessRunner};
use kernos_engine::Engine;
use kernos_journal::{BlobStore, Journal};
use kernos_tools::{Env, Registry};

use crate::cli::{Global, RequestOpts};
use crate::config::{self, Config};
use crate::term::Style;

/// A command's view of Kernos.
pub struct App {
    /// Flags that apply to every command.
    pub global: Global,
    /// The request flags in force (`--yes`, `--model`, …), wherever they were given.
    pub opts: RequestOpts,
    /// Loaded configuration.
    pub config: Config,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Output styling.
    pub style: Style,
    /// The tool catalog, built on first use.
    catalog: OnceLock<Catalog>,
    /// Each organisation's installed generated skills on top of the catalog, shared by the
    /// engine (the steps it runs) and the planner (requests that name them).
    org_skills: Arc<kernos_skills::action::OrgCatalogs>,
}

/// The engine's view of organisations' own tools: their installed generated skills.
struct OrgSkills(Arc<kernos_skills::action::OrgCatalogs>);

impl kernos_engine::OrgTools for OrgSkills {
    fn catalog(&self, base: &Arc<Registry>, org: &str) -> Option<Arc<Registry>> {
        self.0.catalog(base, org)
    }
}

/// The tool catalog of this process and the external MCP servers it was built from.
pub struct Catalog {
    /// Built-in tools plus trusted MCP servers' tools.
    pub registry: Arc<Registry>,
    /// Each configured MCP server: its name, whether it is trusted, and its shared state.
    pub servers: Vec<kernos_mcp::Registered>,
}

/// The program an MCP tool call runs confined: this binary, as `kernos __mcp-call`
/// (`KERNOS_MCP_DRIVER` names another, for tests of a build without the driver).
pub fn mcp_driver() -> PathBuf {
    std::env::var_os("KERNOS_MCP_DRIVER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("kernos"))
}

impl App {
    /// Loads the configuration and resolves the data directory.
    pub fn new(global: &Global, opts: &RequestOpts) -> anyhow::Result<App> {
        Self::with_config(global, opts, config::load()?)
    }

    /// Like [`App::new`], but a broken config file does not stop the command: its valid
    /// sections are used, defaults for the rest, and the parse error is shown on stderr. For
    /// the commands that inspect or repair (`doctor`, `history`, `show`, `undo`, `config`):
    /// a typo in the file must not block the way to fix it or to put things back.
    pub fn salvaged(global: &Global, opts: &RequestOpts) -> anyhow::Result<App> {
        let salvaged = config::load_salvaged();
        if let Some(e) = &salvaged.error {
            let using = if salvaged.dropped.iter().any(|d| d == "*") {
                "using the defaults".to_owned()
            } else {
                format!("using the defaults for [{}]", salvaged.dropped.join("], ["))
            };
            eprintln!("kernos: warning: the config file is not valid; {using}");
            eprintln!("  because: {e:#}");
            eprintln!("  fix it with: kernos config edit");
        }
        Self::with_config(global, opts, salvaged.config)
    }

    /// An app with `config` as given (already loaded, salvaged or defaulted by the caller).
    pub fn with_config(global: &Global, opts: &RequestOpts, config: Config) -> anyhow::Result<App> {
        let data_dir = match &global.data_dir {
            Some(d) => d.clone(),
            None => kernos_journal::default_data_dir()?,
        };
        let style = Style {
            on: crate::term::color_enabled(&config.cli.color),
        };
        Ok(App {
            global: global.clone(),
            opts: opts.clone(),
            config,
            style,
            catalog: OnceLock::new(),
            org_skills: Arc::new(kernos_skills::action::OrgCatalogs::new(&data_dir)),
            data_dir,
        })
    }

    /// The user's environment for a request made from here.
    pub fn env(&self) -> Env {
        Env::current(self.data_dir.clone())
    }

    /// The home directory as a string, for shortening paths to `~`.
    pub fn home(&self) -> String {
        self.env().home.display().to_string()
    }

    /// The tool catalog every engine, planner and listing of this process uses: the built-in
    /// tools plus the tools of every reviewed external MCP server (`[[mcp.servers]]`, see
    /// `kernos mcp trust`). Built once per process; no server is started to build it.
    pub fn registry(&self) -> Arc<Registry> {
        self.catalog().registry.clone()
    }

    /// The catalog `org` sees: [`App::registry`] plus its installed generated skills, read
    /// from the skill store now.
    pub fn registry_for(&self, org: &str) -> Arc<Registry> {
        let base = self.registry();
        self.org_skills.catalog(&base, org).unwrap_or(base)
    }

    /// Each organisation's installed generated skills, as the planner and engine look them up.
    pub fn org_skills(&self) -> Arc<kernos_skills::action::OrgCatalogs> {
        self.org_skills.clone()
    }

    /// The same, as the engine's hook for organisations' own tools.
    pub fn org_tools(&self) -> Arc<dyn kernos_engine::OrgTools> {
        Arc::new(OrgSkills(self.org_skills.clone()))
    }

    /// The catalog and where each configured MCP server stands.
    pub fn catalog(&self) -> &Catalog {
        self.catalog.get_or_init(|| {
            let mut registry = Registry::builtin();
            let servers = kernos_mcp::register(
                &mut registry,
                &self.config.mcp,
                &self.data_dir,
                &mcp_driver(),
            );
            // Installed generated skills are not here: they are each organisation's own
            // (`org_skills`), added for the asking organisation at each request.
            Catalog {
                registry: Arc::new(registry),
                servers,
            }
        })
    }

    /// The planner cascade for this configuration (offline planner, models, plan cache).
    pub fn cascade(&self) -> kernos_planner::llm::Cascade {
        crate::planning::cascade(
            &self.config,
            &self.data_dir,
            self.registry(),
            self.org_skills.clone(),
        )
    }

    /// `--provider`, `--model`, `--no-cache` as planning options.
    pub fn plan_options(&self) -> kernos_planner::llm::PlanOptions {
        kernos_planner::llm::PlanOptions {
            provider: self.opts.planning.provider.clone(),
            model: self.opts.planning.model.clone(),
            no_cache: self.opts.planning.no_cache,
            data: Vec::new(),
            client: None,
        }
    }

    /// Opens the journal and builds the engine, planning text requests with the configured
    /// cascade (offline planner, models, cache).
    pub fn engine(&self) -> anyhow::Result<Engine> {
        Ok(self
            .reader()?
            .with_planner(self.cascade())
            .with_step_units(self.config.server.step_overhead_units)
            .with_trash_budget(self.config.trash))
    }

    /// The engine for a data directory that exists but cannot be written (mounted read-only,
    /// say): nothing is journaled, so it only reads — changes are refused, with `why`.
    pub fn unrecorded_engine(&self, why: String) -> anyhow::Result<Engine> {
        Ok(Engine::new(
            self.registry(),
            Arc::new(kernos_engine::Unrecorded),
            BlobStore::open(self.data_dir.join("blobs"), true)?,
            runner(&self.config, &self.data_dir),
            self.config.policy.clone(),
            self.data_dir.clone(),
        )
        .with_org_tools(self.org_tools())
        .with_planner(self.cascade())
        .with_step_units(self.config.server.step_overhead_units)
        .unrecorded(why))
    }

    /// Whether the data directory exists and this process cannot write in it.
    pub fn data_dir_unwritable(&self) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(self.data_dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: a valid C string; access(2) only checks.
        self.data_dir.is_dir() && unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0
    }

    /// Opens the journal and builds an engine for reading it (history, show): no planner is
    /// set up.
    pub fn reader(&self) -> anyhow::Result<Engine> {
        let journal = Journal::open(&self.data_dir)
            .with_context(|| format!("cannot open the journal in {}", self.data_dir.display()))?;
        let blobs = BlobStore::open(self.data_dir.join("blobs"), false)?;
        Ok(Engine::new(
            self.registry(),
            Arc::new(kernos_engine::JournalStore::new(journal)),
            blobs,
            runner(&self.config, &self.data_dir),
            self.config.policy.clone(),
            self.data_dir.clone(),
        )
        .with_org_tools(self.org_tools()))
    }
}

/// The process runner every child process goes through: the sandbox. When the sandbox cannot
/// be set up, every step that needs a child process fails with the reason — Kernos never falls
/// back to running children unconfined.
pub fn runner(config: &Config, data_dir: &std::path::Path) -> Arc<dyn ProcessRunner> {
    // This binary is its own sandbox helper (see `main`), under any name it was given.
    match kernos_sandbox::embedded_helper().map(kernos_sandbox::SandboxRunner::with_helper) {
        Ok(r) => Arc::new(
            kernos_sandbox::Configured::new(r, config.sandbox.allow_weaker)
                .deny_read(data_dir.to_path_buf()),
        ),
        Err(e) => Arc::new(FailClosed(e.to_string())),
    }
}

/// Refuses to run anything, saying why.
#[derive(Debug)]
pub struct FailClosed(pub String);

impl ProcessRunner for FailClosed {
    fn run(&self, _: &ExecRequest, _: &CancelToken) -> Result<ExecOutcome, ExecError> {
        Err(ExecError::Unavailable(self.0.clone()))
    }
}
