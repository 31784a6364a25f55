//! The offline planner: plain-language requests to typed [`Plan`]s over the v1 tool catalog.
//!
//! Deterministic, no model, no network, well under a millisecond per request. It understands
//! the request catalog and other wordings of the same requests — synonyms, word order,
//! politeness, one-letter typos in keywords, units, quoted paths, globs — composes clauses
//! ("find … and move them to …", "stop nginx, then start it again"), resolves pronouns against
//! earlier steps or the previous run ([`Conversation`]), and says so when it does not
//! understand, with the three closest things it can do.
//!
//! ```
//! use kernos_planner::{Outcome, PlanContext, Planner};
//!
//! let planner = Planner::new();
//! let ctx = PlanContext::new("/home/u", "/home/u");
//! match planner.plan("show the 5 largest files in /var/log", &ctx) {
//!     Outcome::Plan { plan, confidence } => {
//!         assert_eq!(plan.steps[0].name(), "fs.largest");
//!         assert_eq!(plan.steps[0].args["count"], 5);
//!         assert!(confidence > 0.9);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! # How it works
//!
//! 1. **Lexing** keeps raw text and byte spans; quoted text and `My\ Documents` stay whole.
//! 2. **Vocabulary** maps words to concepts (synonyms, multi-word phrases such as "get rid
//!    of"), and corrects one-edit typos in words of four letters or more (never in paths,
//!    quoted text, or well-known program names).
//! 3. **Entities**: sizes and ages with their comparisons, counts, paths, globs, hosts, URLs,
//!    ports, pids, modes, signals, sort keys, names after "called", pronouns.
//! 4. **Intents** (a table in `intents.rs`): trigger concept sets, cues, and argument slots.
//!    Every intent is scored on the clause; the best one whose required slots are filled
//!    wins. Confidence is the share of meaningful words the plan explains.
//! 5. **Composition**: "then", "; " and "and then" always split; "and" and "," split when
//!    the whole does not explain itself but both sides do.
//!
//! # The safety rule for changes
//!
//! A mutating action (write, delete, move, kill, install, service start/stop, shell…) is
//! planned only when:
//!
//! - its action word was written exactly (a synonym counts, a typo does not): "delet old.log"
//!   and "restrat nginx" are refused with the exact wording to use. A one-edit typo is
//!   tolerated only in the *noun* of a trigger next to an exact verb ("make a new dirctory
//!   called x"), never in the verb or in a supporting word ("mkae x executable");
//! - the request has no hedge ("maybe", "perhaps") or negation ("don't", "never");
//! - its object is not a bare quantifier ("delete everything"; "everything in ./dist" is the
//!   contents of ./dist and is fine);
//! - at least three quarters of the request's meaningful words are explained;
//! - every pronoun resolves (to an earlier step of the same request, else the
//!   [`Conversation`]) and every condition it was given can be applied;
//! - the whole plan's confidence is at least the documented bar
//!   ([`llm::DEFAULT_THRESHOLD`], 0.8): below it the answer is "not understood", naming the
//!   words no argument took ([`Understood::unused`]);
//! - every target of a changing step is grounded: a path that exists or was written as one
//!   (a `/`, `~`, an extension, quotes, "the X folder"), a name the user quoted or that means
//!   nothing else to the vocabulary, or one the machine has (a unit, a package, a process). A
//!   word of the sentence ("enable") or a typo ("largst") never becomes a name.
//!
//! A word after "in"/"under"/"inside" that names an entry of the working directory
//! ([`PlanContext::cwd`]) is that path, even when it is a keyword ("in cache", "in logs"). An
//! age said without a number ("the old log files") is asked about, never ignored.
//!
//! Read-only plans tolerate typos (with lower confidence), but never silently drop an exact
//! change word: "delete the 3 largest files" becomes `fs.largest` → `fs.delete`, and "kill the
//! process using port 8080" (which no single plan expresses) is refused rather than answered
//! with a port listing. Changes the catalog has no action for ("format", "reboot", "shred")
//! are refused too. A bare `shell.run` comes only from "run …"/"execute …" at the start of a
//! clause, or from a request that is literally the command line of a known read-only program
//! with no better action ("whoami", "lsusb"); "df -h" is `sys.disk`.
//!
//! Risk is not the planner's business: "delete /" is planned as asked, and policy scores it.
//!
//! # Language models
//!
//! [`llm`] adds the model tier for the long tail: [`llm::Cascade`] asks the offline planner
//! first, then the plan cache, then a model lane, and falls back to the offline answer when no
//! model answers. Plans from a model go through the same catalog validator.

mod by_name;
/// A request that names a catalog action with `key=value` arguments, planned against a given
/// catalog (a host's per-organisation one: installed generated skills).
pub use by_name::plan as plan_by_name;
mod candidate;
mod clause;
mod entities;
mod grounding;
mod intents;
mod lex;
pub mod llm;
mod slots;
mod units;
mod vocab;

use kernos_core::{Plan, Step, StepRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::candidate::Candidate;
use crate::clause::{Bits, Clause, Referent, expand_home, is_glue};
use crate::entities::Ent;
use crate::intents::{Intent, Slot};
use crate::lex::Kind;
use crate::vocab::{Class, Prep, Vocab, Word};

/// The name the planner signs its plans with ([`Plan::planner`]).
pub const PLANNER_NAME: &str = "offline";

/// Least confidence for a plan that only reads.
const MIN_READ_CONFIDENCE: f32 = 0.5;
/// Least confidence for a clause that changes something.
const MIN_CHANGE_CONFIDENCE: f32 = 0.75;
/// Least confidence for a whole plan with a changing step: the documented bar
/// (`confidence_threshold`). Below it the planner says what it did not understand instead.
const MIN_CHANGE_PLAN_CONFIDENCE: f32 = llm::DEFAULT_THRESHOLD;

/// Everything a plan may depend on besides the request text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanContext {
    /// The user's home directory: `~` and "my home folder" expand to it.
    pub home: String,
    /// The working directory. Relative paths stay relative in plans; the planner looks
    /// words up here ("in cache" when `./cache` exists) and grounds changing steps' targets.
    pub cwd: String,
    /// What the previous request did, for follow-ups ("delete them", "do the same for /opt").
    pub conversation: Option<Conversation>,
    /// The organisation asking: whose taught skills ([`Taught`]) it may use. `None` is the
    /// host operator's (`local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

impl PlanContext {
    /// A context without conversation.
    pub fn new(home: impl Into<String>, cwd: impl Into<String>) -> PlanContext {
        PlanContext {
            home: home.into(),
            cwd: cwd.into(),
            conversation: None,
            org: None,
        }
    }

    /// The same context with a conversation.
    pub fn with_conversation(mut self, conversation: Conversation) -> PlanContext {
        self.conversation = Some(conversation);
        self
    }
}

/// What follow-up requests need to know about the previous one. Serialisable: the CLI keeps it
/// per directory for a few minutes, the REPL in memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The previous request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
    /// The plan made for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan: Option<Plan>,
    /// Paths its run produced or acted on ("them", "those files").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Its transaction id ("undo that").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tx: Option<String>,
}

impl Conversation {
    /// After a plan was made (not necessarily run).
    pub fn after_plan(plan: &Plan) -> Conversation {
        Conversation {
            last_request: plan.request.clone(),
            last_plan: Some(plan.clone()),
            paths: Vec::new(),
            last_tx: None,
        }
    }

    /// After a plan ran: the paths its last step produced or acted on, and its transaction.
    pub fn after_run(plan: &Plan, output_paths: Vec<String>, tx: Option<String>) -> Conversation {
        Conversation {
            last_request: plan.request.clone(),
            last_plan: Some(plan.clone()),
            paths: output_paths,
            last_tx: tx,
        }
    }
}

/// Something the planner can do, as an example request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// A request it understands, e.g. "show the 5 largest files in /var/log".
    pub example: String,
    /// The action it maps to, e.g. `fs.largest`.
    pub action: String,
}

/// What the planner made of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A plan, and how much of the request it explains (0..1).
    Plan {
        /// The plan.
        plan: Plan,
        /// Share of the request's meaningful words the plan accounts for.
        confidence: f32,
    },
    /// "undo that", "revert the last change", "undo 01J…".
    Undo {
        /// The transaction to undo: the id given, else the conversation's last transaction;
        /// `None` means "the most recent one".
        target: Option<String>,
    },
    /// Not understood (or not safe to guess).
    NotUnderstood {
        /// One line saying what went wrong.
        message: String,
        /// The three closest things the planner can do.
        suggestions: Vec<Suggestion>,
    },
}

/// An [`Outcome`] and the words of the request no part of the plan explains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Understood {
    /// What the planner made of the request.
    pub outcome: Outcome,
    /// Words (or phrases) neither consumed by an argument nor known filler, in order. A plan
    /// that changes something below the confidence bar is never returned; a read-only one
    /// may be, and then these are what a front end should warn about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unused: Vec<String>,
}

impl From<Outcome> for Understood {
    fn from(outcome: Outcome) -> Understood {
        Understood {
            outcome,
            unused: Vec::new(),
        }
    }
}

impl Understood {
    fn with_unused(mut self, unused: Vec<String>) -> Understood {
        self.unused = unused;
        self
    }
}

/// Steps planned so far, and the words their clauses left unexplained.
#[derive(Debug, Clone, Default)]
struct Draft {
    steps: Vec<Step>,
    unused: Vec<String>,
}

/// Plans people taught Kernos (installed taught skills, `kernos-skills`): a request that names
/// one ("NAME with ARGS", or one of its phrasings) becomes the skill's plan of catalog steps,
/// before the built-in intents are tried. The host supplies it ([`Planner::with_taught`]); the
/// planner only asks.
pub trait Taught: Send + Sync + std::fmt::Debug {
    /// The plan for `request` when it names a taught skill of `org`: `None` when it names
    /// none, `Some(Err(why))` when it does but its arguments do not fit.
    fn plan(&self, request: &str, org: &str) -> Option<Result<Plan, String>>;
}

/// The offline planner. Build once ([`Planner::new`]), then call [`Planner::plan`] for each
/// request; it holds only immutable tables and is `Send + Sync`.
#[derive(Debug)]
pub struct Planner {
    vocab: Vocab,
    intents: Vec<Intent>,
    /// The concepts that trigger a changing intent ("delete", "copy", "compress"): the bare
    /// word after one that names an entry of the working directory is that entry.
    change_verbs: Bits,
    /// The catalog a request may name an action of directly (`fs.read path=…`,
    /// `mcp.files.read_text_file path=…`), when the host gave one ([`Planner::with_catalog`]).
    catalog: Option<std::sync::Arc<kernos_tools::Registry>>,
    /// Taught skills, when the host gave them ([`Planner::with_taught`]).
    taught: Option<std::sync::Arc<dyn Taught>>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new()
    }
}

/// Why a clause produced no step.
#[derive(Debug, Clone)]
enum Failure {
    /// No intent triggered; the words nothing knows.
    Nothing(Vec<String>),
    /// A change triggered by a typo.
    Fuzzy {
        intent: usize,
        typed: String,
        meant: &'static str,
    },
    /// A change in an unsure request.
    Unsure { intent: usize, words: Vec<String> },
    /// Something required is missing.
    Missing { intent: usize, what: String },
    /// Too little of the clause explained.
    Weak {
        intent: usize,
        unexplained: Vec<String>,
    },
    /// A plan with a change, below the confidence bar; the words it could not place.
    Unused(Vec<String>),
    /// A change's target is not something real: the word, and what it was taken for.
    Ungrounded {
        intent: Option<usize>,
        word: String,
        role: &'static str,
    },
}

/// Programs whose command lines only read, and that no intent covers: such a request may be
/// run as typed ("whoami", "lsusb -t").
const READ_ONLY_PROGRAMS: &[&str] = &[
    "whoami",
    "date",
    "hostname",
    "id",
    "pwd",
    "lsusb",
    "lspci",
    "lsmod",
    "nproc",
    "arch",
    "tree",
    "stat",
    "file",
    "which",
    "whereis",
    "env",
    "printenv",
    "locale",
    "timedatectl",
    "cal",
    "groups",
    "last",
    "lsof",
    "dmesg",
    "vmstat",
    "iostat",
    "realpath",
    "readlink",
    "getent",
    "sensors",
    "lsb_release",
    "ulimit",
    "df",
    "du",
    "free",
    "uptime",
    "ps",
    "ls",
];

/// Actions whose output rows carry a `path` column that later steps can consume.
const ROW_ACTIONS: &[&str] = &["fs.find", "fs.list", "fs.largest", "fs.search"];

/// Argument names that hold paths, in the order that makes one "the" object of a step.
const PATH_ARGS: &[&str] = &["path", "source", "archive", "repo", "dest"];
/// Argument names that hold names.
const NAME_ARGS: &[&str] = &["name", "packages", "host", "url", "unit", "query"];

impl Planner {
    /// Builds the tables (vocabulary, typo index, compiled intents). Cheap: do it once.
    pub fn new() -> Planner {
        let vocab = Vocab::new();
        let (intents, _unknown) = intents::compile(&vocab);
        let mut change_verbs = Bits::default();
        for i in intents.iter().filter(|i| i.def.mutating) {
            for alt in &i.triggers {
                if let Some(&c) = alt.first().filter(|&&c| !vocab.is_glue_concept(c)) {
                    change_verbs.set(c);
                }
            }
        }
        Planner {
            vocab,
            intents,
            change_verbs,
            catalog: None,
            taught: None,
        }
    }

    /// This planner, also planning the requests `taught` recognises (installed taught
    /// skills), before the built-in intents.
    pub fn with_taught(mut self, taught: std::sync::Arc<dyn Taught>) -> Planner {
        self.taught = Some(taught);
        self
    }

    /// The plan of a request that names a taught skill (see [`Planner::with_taught`]).
    fn taught(&self, request: &str, ctx: &PlanContext) -> Option<Outcome> {
        let org = ctx.org.as_deref().unwrap_or(kernos_core::LOCAL_ORG);
        let planned = self.taught.as_ref()?.plan(request, org)?;
        Some(match planned {
            Ok(mut plan) => {
                plan.planner = Some(PLANNER_NAME.to_owned());
                plan.request = Some(request.to_owned());
                Outcome::Plan {
                    plan,
                    confidence: 1.0,
                }
            }
            Err(why) => Outcome::NotUnderstood {
                message: format!("{why}."),
                suggestions: Vec::new(),
            },
        })
    }

    /// This planner, also planning requests that name an action of `catalog` directly with
    /// `key=value` arguments (`fs.read path=/etc/hostname`): one step, the values typed from
    /// the action's schema. How an external MCP server's tools are reached without a model.
    pub fn with_catalog(mut self, catalog: std::sync::Arc<kernos_tools::Registry>) -> Planner {
        self.catalog = Some(catalog);
        self
    }

    /// Every action the planner can produce, with an example request.
    pub fn capabilities(&self) -> Vec<Suggestion> {
        self.intents
            .iter()
            .map(|i| Suggestion {
                example: i.def.example.to_owned(),
                action: i.def.action.to_owned(),
            })
            .collect()
    }

    /// Turns a request into a plan, an undo, or a "not understood" with suggestions.
    pub fn plan(&self, request: &str, ctx: &PlanContext) -> Outcome {
        self.understand(request, ctx).outcome
    }

    /// The plan of a request that names a catalog action (see [`Planner::with_catalog`]).
    fn by_name(&self, request: &str) -> Option<Outcome> {
        let planned = by_name::plan(request, self.catalog.as_deref()?)?;
        Some(match planned {
            Ok(mut plan) => {
                plan.planner = Some(PLANNER_NAME.to_owned());
                Outcome::Plan {
                    plan,
                    confidence: 1.0,
                }
            }
            Err(why) => Outcome::NotUnderstood {
                message: format!("{why}."),
                suggestions: Vec::new(),
            },
        })
    }

    /// Like [`Planner::plan`], and also says which words of the request no part of the plan
    /// explains, so a front end can warn about a read-only plan that left some out (a plan
    /// that changes something is never made with words left over below the confidence bar).
    pub fn understand(&self, request: &str, ctx: &PlanContext) -> Understood {
        let words = self.words(request);
        if words.iter().all(|w| is_glue(w, &self.vocab)) {
            return Outcome::NotUnderstood {
                message: "The request is empty: say what you want done, e.g. \u{201c}show the 5 largest files in /var/log\u{201d}.".into(),
                suggestions: self.suggest(&words, request, None),
            }
            .into();
        }
        if let Some(o) = self.undo(&words, ctx) {
            return o.into();
        }
        if let Some(o) = self.by_name(request) {
            return o.into();
        }
        if let Some(o) = self.taught(request, ctx) {
            return o.into();
        }
        if let Some(word) = vague_age(&words, &ctx.cwd) {
            return Understood {
                outcome: Outcome::NotUnderstood {
                    message: format!(
                        "How {word} is \u{201c}{word}\u{201d}? I won't guess an age: say e.g. \u{201c}older than 30 days\u{201d}."
                    ),
                    suggestions: self.suggest(&words, request, None),
                },
                unused: vec![word],
            };
        }
        if let Some(o) = self.follow_up(request, &words, ctx) {
            return o.into();
        }
        if let Some(o) = self.literal_command(request, &words) {
            return o.into();
        }
        let mut draft = Draft::default();
        let mut confidence = 1.0f32;
        for range in self.hard_split(&words) {
            let part = &words[range];
            if part.iter().all(|w| is_glue(w, &self.vocab)) {
                continue;
            }
            match self.part(request, part, ctx, &mut draft) {
                Ok(c) => confidence = confidence.min(c),
                Err(f) => return self.not_understood(request, &words, f),
            }
        }
        if draft.steps.is_empty() {
            return self.not_understood(request, &words, Failure::Nothing(Vec::new()));
        }
        let confidence = (confidence * 100.0).round() / 100.0;
        let changes = draft
            .steps
            .iter()
            .any(|s| self.is_mutating(&s.tool, &s.action));
        if changes && confidence < MIN_CHANGE_PLAN_CONFIDENCE {
            return self
                .not_understood(request, &words, Failure::Unused(draft.unused.clone()))
                .with_unused(draft.unused);
        }
        if changes {
            if let Err(f) = self.grounded(&draft.steps, &words, ctx) {
                return self
                    .not_understood(request, &words, f)
                    .with_unused(draft.unused);
            }
        }
        let plan = Plan {
            steps: draft.steps,
            request: Some(request.to_owned()),
            planner: Some(PLANNER_NAME.to_owned()),
            untrusted_input: false,
        };
        Understood {
            outcome: Outcome::Plan { plan, confidence },
            unused: draft.unused,
        }
    }

    /// Every target of every changing step is real or written as one (see `grounding.rs`).
    fn grounded(&self, steps: &[Step], words: &[Word], ctx: &PlanContext) -> Result<(), Failure> {
        let pids: Vec<u32> = entities::extract(words, &self.vocab)
            .into_iter()
            .filter_map(|e| match e.ent {
                Ent::Pid(p) => Some(p),
                _ => None,
            })
            .collect();
        for s in steps {
            let Some((i, intent)) = self
                .intents
                .iter()
                .enumerate()
                .find(|(_, i)| i.tool == s.tool && i.name == s.action && i.def.mutating)
            else {
                continue;
            };
            let creates = intent.def.flags.creates;
            if let Some((word, role)) = grounding::ungrounded(s, creates, words, &pids, &ctx.cwd) {
                return Err(Failure::Ungrounded {
                    intent: Some(i),
                    word,
                    role,
                });
            }
        }
        Ok(())
    }

    /// Whether `request` refers to the previous one: "undo that", "do the same for /opt",
    /// "again", or a pronoun ("delete them", "compress those files") before anything in the
    /// request itself it could point at (in "find big logs and delete them", "them" is the
    /// first clause's result). Only a follow-up should see the previous request: shown to a
    /// model otherwise, a small one copies the old plan.
    pub fn refers_back(&self, request: &str, ctx: &PlanContext) -> bool {
        if ctx.conversation.is_none() {
            return false;
        }
        let words = self.words(request);
        if self.undo(&words, ctx).is_some() || self.follow_up(request, &words, ctx).is_some() {
            return true;
        }
        entities::extract(&words, &self.vocab).iter().any(|e| {
            matches!(e.ent, Ent::Pronoun { .. })
                && !words[..e.start]
                    .iter()
                    .any(|w| matches!(w.tok.low.as_str(), "and" | "then" | "," | ";" | "&&" | "|"))
        })
    }

    /// The request's words, annotated with the vocabulary, wishes marked and fillers dropped:
    /// what every reading of a request starts from.
    fn words(&self, request: &str) -> Vec<Word> {
        let mut words = self.vocab.annotate(lex::lex(request));
        self.wishes(&mut words);
        fillers(
            &mut words,
            self.vocab.id("recursive"),
            self.vocab.id("duplicates"),
        );
        words
    }

    /// Whether `tool.action` is one the table marks as changing something.
    fn is_mutating(&self, tool: &str, action: &str) -> bool {
        self.intents
            .iter()
            .any(|i| i.tool == tool && i.name == action && i.def.mutating)
    }

    /// Diagnostics: every triggered intent on the whole request (as one clause), best first,
    /// as `action score coverage [missing] {args}` lines. For developers tuning the tables.
    #[doc(hidden)]
    pub fn explain(&self, request: &str, ctx: &PlanContext) -> Vec<String> {
        let words = self.vocab.annotate(lex::lex(request));
        let clause = Clause::new(request, &words, &self.vocab, &ctx.cwd, &self.change_verbs);
        let referent = self.referent(&[], ctx);
        let mut c: Vec<Candidate> = self
            .intents
            .iter()
            .enumerate()
            .filter_map(|(i, intent)| {
                candidate::evaluate(
                    i,
                    intent,
                    &clause,
                    &self.vocab,
                    &ctx.home,
                    referent.as_ref(),
                )
            })
            .collect();
        c.sort_by(|a, b| b.score.total_cmp(&a.score));
        c.iter()
            .map(|c| {
                format!(
                    "{} score={:.2} cov={:.2} missing={:?} unexplained={:?} {:?}",
                    self.intents[c.intent].def.action,
                    c.score,
                    c.coverage,
                    c.missing,
                    c.unexplained,
                    c.args
                )
            })
            .collect()
    }

    // ------------------------------------------------------------------- composition

    /// Splits at "then", ";", "and then", ", then", "after that", "afterwards".
    fn hard_split(&self, w: &[Word]) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < w.len() {
            let low = w[i].tok.low.as_str();
            let is_sep = (w[i].tok.kind == Kind::Word
                && matches!(low, "then" | "afterwards" | "afterward"))
                || (w[i].tok.kind == Kind::Punct && low == ";")
                || (low == "after"
                    && w.get(i + 1)
                        .is_some_and(|n| n.tok.low == "that" || n.tok.low == "this"));
            if is_sep {
                let mut end = i;
                while end > start && matches!(w[end - 1].tok.low.as_str(), "and" | "," | "&") {
                    end -= 1;
                }
                if end > start {
                    out.push(start..end);
                }
                i += if low == "after" { 2 } else { 1 };
                while i < w.len() && matches!(w[i].tok.low.as_str(), "," | "and") {
                    i += 1;
                }
                start = i;
                continue;
            }
            i += 1;
        }
        if start < w.len() {
            out.push(start..w.len());
        }
        out
    }

    /// Plans one hard-separated part, splitting at "and"/"," when that explains more.
    fn part(
        &self,
        src: &str,
        w: &[Word],
        ctx: &PlanContext,
        draft: &mut Draft,
    ) -> Result<f32, Failure> {
        let whole = self.clause(src, w, ctx, &draft.steps);
        if let Ok(c) = &whole {
            if c.unexplained.is_empty() {
                return Ok(self.commit(src, w, c, draft));
            }
        }
        let mut specific: Option<Failure> = None;
        for s in 0..w.len() {
            let low = w[s].tok.low.as_str();
            if !matches!(low, "and" | "," | "also" | "plus" | "&") || s == 0 || s + 1 >= w.len() {
                continue;
            }
            let Ok(left) = self.clause(src, &w[..s], ctx, &draft.steps) else {
                continue;
            };
            let mut tentative = draft.clone();
            let lc = self.commit(src, &w[..s], &left, &mut tentative);
            let mut r = s + 1;
            while r < w.len() && matches!(w[r].tok.low.as_str(), "and" | "," | "also" | "plus") {
                r += 1;
            }
            if r >= w.len() {
                continue;
            }
            match self.part(src, &w[r..], ctx, &mut tentative) {
                Ok(rc) => {
                    *draft = tentative;
                    return Ok(lc.min(rc));
                }
                // "find big files and mvoe them": the misspelt change is the real problem,
                // not the pronoun the whole clause could not place.
                Err(f @ (Failure::Fuzzy { .. } | Failure::Unsure { .. })) if specific.is_none() => {
                    specific = Some(f);
                }
                Err(_) => {}
            }
        }
        match (whole, specific) {
            (Ok(c), _) => Ok(self.commit(src, w, &c, draft)),
            (Err(_), Some(f)) => Err(f),
            (Err(f), None) => Err(f),
        }
    }

    /// The referent pronouns in the next clause point at.
    fn referent(&self, steps: &[Step], ctx: &PlanContext) -> Option<Referent> {
        if let Some(last) = steps.len().checked_sub(1) {
            return Some(referent_of_step(steps, last));
        }
        let conv = ctx.conversation.as_ref()?;
        let mut r = Referent {
            paths: conv.paths.clone(),
            ..Referent::default()
        };
        if let Some(plan) = &conv.last_plan {
            if let Some(last) = plan.steps.len().checked_sub(1) {
                let from_plan = referent_of_step(&plan.steps, last);
                if r.paths.is_empty() {
                    r.paths = from_plan.paths;
                }
                r.names = from_plan.names;
            }
        }
        (!r.paths.is_empty() || !r.names.is_empty()).then_some(r)
    }

    /// The best candidate for a clause, or why there is none.
    fn clause(
        &self,
        src: &str,
        w: &[Word],
        ctx: &PlanContext,
        steps: &[Step],
    ) -> Result<Candidate, Failure> {
        let clause = Clause::new(src, w, &self.vocab, &ctx.cwd, &self.change_verbs);
        let referent = self.referent(steps, ctx);
        let mut best: Option<Candidate> = None;
        let mut best_bad: Option<Candidate> = None;
        for (i, intent) in self.intents.iter().enumerate() {
            let Some(c) = candidate::evaluate(
                i,
                intent,
                &clause,
                &self.vocab,
                &ctx.home,
                referent.as_ref(),
            ) else {
                continue;
            };
            let slot = if c.ok() { &mut best } else { &mut best_bad };
            if slot.as_ref().is_none_or(|b| c.score > b.score) {
                *slot = Some(c);
            }
        }
        let Some(c) = best else {
            return Err(match best_bad {
                Some(b) => {
                    if let Some((typed, meant)) = b
                        .fuzzy_verb
                        .clone()
                        .filter(|_| self.intents[b.intent].def.mutating)
                    {
                        Failure::Fuzzy {
                            intent: b.intent,
                            typed,
                            meant,
                        }
                    } else {
                        Failure::Missing {
                            intent: b.intent,
                            what: b.missing.clone().unwrap_or_default(),
                        }
                    }
                }
                None => Failure::Nothing(unknown_words(w)),
            });
        };
        // A better-scoring intent that lacks an argument says more than a weak match.
        if let Some(b) = &best_bad {
            if b.score > c.score + 1.0 && b.fuzzy.is_empty() {
                return Err(Failure::Missing {
                    intent: b.intent,
                    what: b.missing.clone().unwrap_or_default(),
                });
            }
        }
        let def = self.intents[c.intent].def;
        if def.mutating {
            // The action word itself must be exact; a misspelt noun next to an exact verb
            // ("make a new dirctory") is tolerated.
            if let Some((typed, meant)) = c.fuzzy_verb.clone() {
                return Err(Failure::Fuzzy {
                    intent: c.intent,
                    typed,
                    meant,
                });
            }
            if !c.unsure.is_empty() {
                return Err(Failure::Unsure {
                    intent: c.intent,
                    words: c.unsure.clone(),
                });
            }
            if c.coverage < MIN_CHANGE_CONFIDENCE {
                return Err(Failure::Weak {
                    intent: c.intent,
                    unexplained: c.unexplained.clone(),
                });
            }
        } else if let Some(verb) = self.dropped_change(&clause, &c) {
            // A read plan that leaves out an exact change word ("delete", "kill", "stop")
            // would answer a different question than the one asked.
            return Err(Failure::Weak {
                intent: c.intent,
                unexplained: vec![verb],
            });
        } else if c.coverage < MIN_READ_CONFIDENCE {
            return Err(Failure::Weak {
                intent: c.intent,
                unexplained: c.unexplained.clone(),
            });
        }
        Ok(c)
    }

    /// The first change word (the action word of a mutating intent's trigger, spelled
    /// exactly) that a read-only candidate leaves unexplained.
    fn dropped_change(&self, clause: &Clause<'_>, c: &Candidate) -> Option<String> {
        let mut verbs: Vec<u8> = self
            .intents
            .iter()
            .filter(|i| i.def.mutating && i.def.action != "shell.run")
            .flat_map(|i| i.triggers.iter().filter_map(|alt| alt.first().copied()))
            .collect();
        verbs.extend(self.vocab.id("unsupported"));
        clause.w.iter().enumerate().find_map(|(i, w)| {
            let verb = clause.in_ent[i].is_none()
                && w.fuzzy.is_none()
                && w.lex.concept.is_some_and(|x| verbs.contains(&x));
            (verb && c.unexplained.contains(&w.tok.raw)).then(|| w.tok.raw.clone())
        })
    }

    /// Appends a candidate's steps and the words it left unexplained; returns its confidence.
    fn commit(&self, src: &str, w: &[Word], c: &Candidate, draft: &mut Draft) -> f32 {
        draft.unused.extend(c.unexplained.iter().cloned());
        let steps = &mut draft.steps;
        let intent = &self.intents[c.intent];
        let why = clause_text(src, w);
        let prev = steps.len().checked_sub(1);
        let mut feeds: Option<usize> = None;
        if let Some((action, args)) = &c.pre_step {
            let mut s = Step::new("fs", action);
            s.args = args.clone();
            s.why = Some(format!("what \u{201c}{why}\u{201d} applies to"));
            steps.push(s);
            feeds = Some(steps.len() - 1);
        }
        let objects_arg = intent
            .def
            .slots
            .iter()
            .find(|(_, s)| *s == Slot::Objects)
            .map(|(n, _)| *n);
        for args in &c.args {
            let mut step = Step::new(intent.tool, intent.name);
            step.args = args.clone();
            if let (Some(f), Some(a)) = (feeds, objects_arg) {
                step.args
                    .insert(a.to_owned(), StepRef::new(f, Some("path")).to_value());
            }
            let mut needs: Vec<usize> = step.refs().into_iter().map(|(_, r)| r.step).collect();
            // A literal taken from the previous step ("copy notes.txt into it") still has to
            // wait for it.
            if let Some(p) = prev {
                if feeds.is_none() && uses_literal_of(&step, &steps[p]) {
                    needs.push(p);
                }
            }
            needs.sort_unstable();
            needs.dedup();
            step.needs = needs;
            step.why = Some(why.clone());
            steps.push(step);
        }
        let fuzz = 0.9f32.powi(c.fuzzy.len() as i32);
        (c.coverage * fuzz).clamp(0.0, 1.0)
    }

    // ------------------------------------------------------------------- special forms

    /// "I need ffmpeg installed", "we want jq and vlc installed": a wish, so "installed"
    /// means install. Only when the words between are the names themselves.
    fn wishes(&self, w: &mut [Word]) {
        let (Some(installed), Some(install)) =
            (self.vocab.id("installed"), self.vocab.id("install"))
        else {
            return;
        };
        for i in 0..w.len() {
            if w[i].lex.concept != Some(installed) {
                continue;
            }
            let Some(k) = (0..i)
                .rev()
                .find(|&k| matches!(w[k].tok.low.as_str(), "need" | "want" | "wanna"))
            else {
                continue;
            };
            let between = &w[k + 1..i];
            let names = between
                .iter()
                .filter(|x| x.lex.class == Class::Content)
                .count();
            let fits = between.iter().all(|x| {
                x.lex.class == Class::Content
                    || matches!(
                        x.tok.low.as_str(),
                        "and" | "," | "the" | "a" | "package" | "packages"
                    )
            });
            if (1..=4).contains(&names) && fits {
                w[i].lex.concept = Some(install);
            }
        }
    }

    /// "undo", "undo that", "revert the last change", "roll it back", "undo <id>".
    fn undo(&self, w: &[Word], ctx: &PlanContext) -> Option<Outcome> {
        let undo = self.vocab.id("undo")?;
        let first = w.iter().position(|x| !is_glue(x, &self.vocab))?;
        if w[first].lex.concept != Some(undo) || w[first].fuzzy.is_some() {
            return None;
        }
        let mut target = None;
        for x in &w[first + 1..] {
            if is_glue(x, &self.vocab) || x.lex.class == Class::Pronoun {
                continue;
            }
            let low = x.tok.low.as_str();
            if matches!(
                low,
                "last"
                    | "previous"
                    | "change"
                    | "changes"
                    | "thing"
                    | "action"
                    | "step"
                    | "transaction"
                    | "tx"
                    | "what"
                    | "did"
                    | "done"
                    | "just"
                    | "back"
                    | "operation"
                    | "command"
                    | "run"
                    | "request"
            ) {
                continue;
            }
            if x.tok.kind == Kind::Word
                && x.tok
                    .raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && x.tok.raw.len() >= 4
                && x.tok.raw.chars().any(|c| c.is_ascii_digit())
            {
                target = Some(x.tok.raw.clone());
                continue;
            }
            return None;
        }
        let target = target.or_else(|| ctx.conversation.as_ref().and_then(|c| c.last_tx.clone()));
        Some(Outcome::Undo { target })
    }

    /// "do the same for /opt", "same for apache2", "what about ~/Music", "do it again".
    fn follow_up(&self, request: &str, w: &[Word], ctx: &PlanContext) -> Option<Outcome> {
        let same = self.vocab.id("same")?;
        let again = self.vocab.id("again")?;
        let content: Vec<usize> = (0..w.len())
            .filter(|&i| !is_glue(&w[i], &self.vocab))
            .collect();
        let first = *content.first()?;
        let about = w.iter().enumerate().any(|(i, x)| {
            matches!(x.tok.low.as_str(), "what" | "how")
                && w.get(i + 1).is_some_and(|n| n.tok.low == "about")
        }) && first == content[0];
        let has_same = w
            .iter()
            .any(|x| x.lex.concept == Some(same) && x.fuzzy.is_none());
        let only_again = content.iter().all(|&i| {
            w[i].lex.concept == Some(again)
                || matches!(
                    w[i].tok.low.as_str(),
                    "it" | "that" | "this" | "once" | "more" | "time"
                )
        }) && content.iter().any(|&i| w[i].lex.concept == Some(again));
        if !(has_same || about || only_again) {
            return None;
        }
        let clause = Clause::new(request, w, &self.vocab, &ctx.cwd, &self.change_verbs);
        // The new value: a path, a host, or an unknown word.
        let mut value: Option<(String, bool)> = None;
        for e in &clause.ents {
            match &e.ent {
                Ent::Path { path, .. } => {
                    value = Some((expand_home(path, &ctx.home), true));
                    break;
                }
                Ent::Host(h) | Ent::Url(h) | Ent::Named(h) => {
                    value = Some((h.clone(), false));
                    break;
                }
                Ent::Quoted { text, .. } => {
                    value = Some((text.clone(), false));
                    break;
                }
                _ => {}
            }
        }
        if value.is_none() {
            for &i in &content {
                let x = &w[i];
                if clause.in_ent[i].is_none()
                    && x.tok.kind == Kind::Word
                    && x.lex.concept.is_none()
                    && x.lex.class == Class::Content
                {
                    value = Some((x.tok.raw.clone(), false));
                    break;
                }
            }
        }
        // Anything else meaningful means this is a new request that happens to say "same".
        let extra = content.iter().any(|&i| {
            let x = &w[i];
            clause.in_ent[i].is_none()
                && x.lex
                    .concept
                    .is_some_and(|c| c != same && c != again && !self.vocab.is_glue_concept(c))
                && x.tok.low != "do"
        });
        if extra && !about {
            return None;
        }
        let Some(plan) = ctx.conversation.as_ref().and_then(|c| c.last_plan.clone()) else {
            return Some(Outcome::NotUnderstood {
                message: "There is no earlier request to repeat: say the whole request.".into(),
                suggestions: self.suggest(w, request, None),
            });
        };
        let mut plan = plan;
        plan.request = Some(request.to_owned());
        plan.planner = Some(PLANNER_NAME.to_owned());
        if let Some((new, _is_path)) = value {
            let Some(old) = primary_value(&plan) else {
                return Some(Outcome::NotUnderstood {
                    message:
                        "The earlier request has no path or name to swap: say the whole request."
                            .into(),
                    suggestions: self.suggest(w, request, None),
                });
            };
            for s in &mut plan.steps {
                for v in s.args.values_mut() {
                    swap_value(v, &old, &new);
                }
            }
        } else if !only_again {
            return Some(Outcome::NotUnderstood {
                message: "Do the same for what? Say the new path or name, e.g. \u{201c}do the same for /opt\u{201d}.".into(),
                suggestions: self.suggest(w, request, None),
            });
        }
        Some(Outcome::Plan {
            plan,
            confidence: 0.9,
        })
    }

    /// A request that is literally a read-only command line ("whoami", "lsusb -t").
    fn literal_command(&self, request: &str, w: &[Word]) -> Option<Outcome> {
        let first = w.first()?;
        if first.tok.kind != Kind::Word || !READ_ONLY_PROGRAMS.contains(&first.tok.low.as_str()) {
            return None;
        }
        // Every other token must look like a command-line argument, not English.
        let args_ok = w[1..].iter().all(|x| match x.tok.kind {
            Kind::Flag | Kind::Pathy | Kind::Num | Kind::NumUnit | Kind::Quoted => true,
            Kind::Word => x.lex.class == Class::Content && x.lex.concept.is_none(),
            Kind::Punct => false,
        });
        if !args_ok {
            return None;
        }
        // Programs a specific intent covers are left to it when they carry meaning there.
        if first.lex.concept.is_some() {
            return None;
        }
        let mut step = Step::new("shell", "run").arg("command", request.trim());
        step.why = Some("a read-only command line, run as typed".into());
        let plan = Plan {
            steps: vec![step],
            request: Some(request.to_owned()),
            planner: Some(PLANNER_NAME.to_owned()),
            untrusted_input: false,
        };
        Some(Outcome::Plan {
            plan,
            confidence: 1.0,
        })
    }

    // ------------------------------------------------------------------- not understood

    fn not_understood(&self, request: &str, w: &[Word], f: Failure) -> Understood {
        let trimmed = request.trim();
        let mut unused = Vec::new();
        let (message, first) = match &f {
            Failure::Unused(words) => {
                unused = words.clone();
                let m = if words.is_empty() {
                    format!(
                        "I'm not sure enough of \u{201c}{trimmed}\u{201d} to plan a change: rephrase it with the exact paths or names."
                    )
                } else {
                    format!(
                        "I didn't understand \u{201c}{}\u{201d} in \u{201c}{trimmed}\u{201d}, and I never guess a change: say it as a path (./{}) or rephrase.",
                        words.join(" "),
                        words[0]
                    )
                };
                (m, None)
            }
            Failure::Ungrounded { intent, word, role } => {
                unused = vec![word.clone()];
                let m = if *role == "process id" {
                    format!(
                        "I can't tell that \u{201c}{word}\u{201d} is meant as a process id, and I never guess a change: say e.g. \u{201c}kill process {word}\u{201d} or \u{201c}kill pid {word}\u{201d}."
                    )
                } else {
                    format!(
                        "I could not match \u{201c}{word}\u{201d} to a real {role}, and I never guess a change: name an existing one, or quote it if it is right."
                    )
                };
                (m, *intent)
            }
            Failure::Nothing(unknown) => {
                let unknown = if unknown.is_empty() {
                    unknown_words(w)
                } else {
                    unknown.clone()
                };
                let m = if unknown.is_empty() {
                    format!(
                        "I don't know how to do \u{201c}{trimmed}\u{201d} offline; here are the closest things I can do."
                    )
                } else {
                    format!(
                        "I don't know how to do \u{201c}{trimmed}\u{201d} offline (I don't know \u{201c}{}\u{201d}); here are the closest things I can do.",
                        unknown.join(" ")
                    )
                };
                (m, None)
            }
            Failure::Fuzzy {
                intent,
                typed,
                meant,
            } => (
                format!(
                    "\u{201c}{typed}\u{201d} looks like \u{201c}{meant}\u{201d}, but I only plan a change ({}) from exact words: say \u{201c}{meant} \u{2026}\u{201d} if that is what you mean.",
                    self.intents[*intent].def.action
                ),
                Some(*intent),
            ),
            Failure::Unsure { intent, words } => (
                format!(
                    "\u{201c}{}\u{201d} makes this unclear, and I never guess a change ({}): say exactly what to do, e.g. \u{201c}{}\u{201d}.",
                    words.join(" "),
                    self.intents[*intent].def.action,
                    self.intents[*intent].def.example
                ),
                Some(*intent),
            ),
            Failure::Missing { intent, what } => {
                let def = self.intents[*intent].def;
                let m = if what.contains("refers to") {
                    what.clone()
                } else {
                    format!(
                        "For {} I need {what}, e.g. \u{201c}{}\u{201d}.",
                        def.action, def.example
                    )
                };
                (m, Some(*intent))
            }
            Failure::Weak {
                intent,
                unexplained,
            } => {
                let def = self.intents[*intent].def;
                let verb = if def.mutating {
                    "and I won't guess a change"
                } else {
                    "so I'd rather ask"
                };
                (
                    format!(
                        "I only partly understood \u{201c}{trimmed}\u{201d} (it looks like {}, but \u{201c}{}\u{201d} doesn't fit), {verb}: rephrase, e.g. \u{201c}{}\u{201d}.",
                        def.action,
                        unexplained.join(" "),
                        def.example
                    ),
                    Some(*intent),
                )
            }
        };
        Understood {
            outcome: Outcome::NotUnderstood {
                message,
                suggestions: self.suggest(w, request, first),
            },
            unused,
        }
    }

    /// The three intents closest to the request: keyword overlap first, then spelling.
    fn suggest(&self, w: &[Word], request: &str, first: Option<usize>) -> Vec<Suggestion> {
        let concepts: Vec<u8> = w.iter().filter_map(|x| x.lex.concept).collect();
        let req = request.to_lowercase();
        let req_grams = trigrams(&req);
        let mut scored: Vec<(f32, usize)> = self
            .intents
            .iter()
            .enumerate()
            .map(|(i, intent)| {
                let trig = intent
                    .triggers
                    .iter()
                    .map(|alt| {
                        let hit = alt
                            .iter()
                            .filter(|c| concepts.contains(c) && !self.vocab.is_glue_concept(**c))
                            .count();
                        hit as f32 / alt.len().max(1) as f32
                    })
                    .fold(0.0f32, f32::max);
                let cues = intent.cues.iter().filter(|c| concepts.contains(c)).count() as f32;
                let spell = jaccard(&req_grams, &trigrams(&intent.def.example.to_lowercase()));
                let bonus = if Some(i) == first { 100.0 } else { 0.0 };
                (bonus + 3.0 * trig + 0.5 * cues.min(4.0) + 2.0 * spell, i)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(3)
            .map(|(_, i)| Suggestion {
                example: self.intents[i].def.example.to_owned(),
                action: self.intents[i].def.action.to_owned(),
            })
            .collect()
    }
}

/// Words whose meaning depends on their neighbour. "(and) its subdirectories", "including
/// all subfolders": says the walk is recursive (which a listing needs said, and the other
/// walks are anyway); "its" there points at no earlier result. "duplicate photos" are
/// duplicates, "duplicate x.conf" is a copy.
fn fillers(w: &mut [Word], recursive: Option<vocab::Cid>, duplicates: Option<vocab::Cid>) {
    for i in 0..w.len().saturating_sub(1) {
        let next = w[i + 1].tok.low.as_str();
        let sub = next.starts_with("sub") && next.len() > 4;
        // "duplicate files/photos" are duplicates, not a request to copy them.
        if w[i].tok.low == "duplicate" && next.ends_with('s') && w[i + 1].tok.kind == Kind::Word {
            w[i].lex.concept = duplicates;
            w[i].fuzzy = None;
        }
        if matches!(w[i].tok.low.as_str(), "its" | "their" | "all") && sub {
            w[i].lex.class = Class::Glue;
            w[i].lex.concept = None;
            w[i].fuzzy = None;
            w[i + 1].lex.concept = recursive;
            w[i + 1].fuzzy = None;
        }
    }
}

/// "the old log files": an age said without a number ("old", "stale"), which no argument can
/// carry as it is — asked about rather than ignored. "30 days old", "older than a week" and
/// "how old is" are not vague, and neither is a word used as a name: after "folder", "file",
/// "called"…, or naming something that exists in the working directory ("delete the folder
/// old").
fn vague_age(w: &[Word], cwd: &str) -> Option<String> {
    let unit = |x: &Word| {
        matches!(x.tok.kind, Kind::Num | Kind::NumUnit)
            || x.tok.low.trim_end_matches('s').ends_with("day")
            || matches!(
                x.tok.low.trim_end_matches('s'),
                "week" | "month" | "year" | "hour" | "minute" | "second" | "fortnight"
            )
    };
    w.iter().enumerate().find_map(|(i, x)| {
        let vague = x.tok.kind == Kind::Word
            && matches!(x.tok.low.as_str(), "old" | "older" | "stale")
            && !(i > 0 && unit(&w[i - 1]))
            && w.get(i + 1).is_none_or(|n| n.tok.low != "than")
            && !(i > 0 && w[i - 1].tok.low == "how")
            && !(i > 0
                && matches!(
                    w[i - 1].tok.low.as_str(),
                    "folder" | "directory" | "dir" | "file" | "called" | "named"
                ))
            && !std::path::Path::new(cwd).join(&x.tok.raw).exists();
        vague.then(|| x.tok.raw.clone())
    })
}

/// Words no table knows (at most three), for "I don't know …" messages.
fn unknown_words(w: &[Word]) -> Vec<String> {
    w.iter()
        .filter(|x| {
            x.tok.kind == Kind::Word
                && x.lex.class == Class::Content
                && x.lex.concept.is_none()
                && !x.lex.known_name
        })
        .map(|x| x.tok.raw.clone())
        .take(3)
        .collect()
}

fn clause_text(src: &str, w: &[Word]) -> String {
    match (w.first(), w.last()) {
        (Some(a), Some(b)) => src
            .get(a.tok.start..b.tok.end)
            .unwrap_or("")
            .trim()
            .to_owned(),
        _ => String::new(),
    }
}

/// The strings a JSON argument holds: itself, or the strings of an array.
pub(crate) fn strings_of(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// What a step offers to pronouns in the next clause.
fn referent_of_step(steps: &[Step], idx: usize) -> Referent {
    let s = &steps[idx];
    let name = s.name();
    let mut r = Referent::default();
    if ROW_ACTIONS.contains(&name.as_str()) {
        r.rows_step = Some(idx);
    }
    // After a move, an archive or an extraction the thing is at the destination ("rename a
    // to b and open it" opens b); after a copy "it" is still the original (the catalog's
    // "make a backup of /etc/hosts and then append … to it").
    let order: &[&str] = match name.as_str() {
        "fs.move" | "fs.archive" | "fs.extract" => &["dest", "path", "source", "archive"],
        _ => PATH_ARGS,
    };
    for a in order {
        if let Some(v) = s.args.get(*a) {
            if let Some(rf) = StepRef::from_value(v) {
                // "…move them to D, then compress them": the same rows.
                if r.rows_step.is_none() && rf.field.as_deref() == Some("path") && *a != "dest" {
                    r.rows_step = Some(rf.step);
                }
                continue;
            }
            let list = strings_of(v);
            if !list.is_empty() {
                r.paths = list;
                break;
            }
        }
    }
    for a in NAME_ARGS {
        if let Some(v) = s.args.get(*a) {
            let list = strings_of(v);
            if !list.is_empty() {
                r.names = list;
                break;
            }
        }
    }
    // Several steps of the same action ("restart nginx and redis") → all their names.
    let mut j = idx;
    while j > 0 && steps[j - 1].name() == name && steps[j - 1].why == s.why {
        j -= 1;
        for a in NAME_ARGS {
            if let Some(v) = steps[j].args.get(*a) {
                let mut list = strings_of(v);
                list.append(&mut r.names);
                r.names = list;
                break;
            }
        }
    }
    r
}

/// Does `step` carry a literal value that `prev` acted on (so it must run after it)?
fn uses_literal_of(step: &Step, prev: &Step) -> bool {
    let mut theirs: Vec<String> = Vec::new();
    for v in prev.args.values() {
        theirs.extend(strings_of(v));
    }
    step.args
        .values()
        .any(|v| strings_of(v).iter().any(|s| theirs.contains(s)))
}

/// The value "do the same for X" replaces: the first step's object.
fn primary_value(plan: &Plan) -> Option<String> {
    let s = plan.steps.first()?;
    for a in PATH_ARGS.iter().chain(NAME_ARGS.iter()) {
        if let Some(v) = s.args.get(*a) {
            if let Some(x) = strings_of(v).into_iter().next() {
                return Some(x);
            }
        }
    }
    None
}

fn swap_value(v: &mut Value, old: &str, new: &str) {
    match v {
        Value::String(s) => {
            if s == old {
                *s = new.to_owned();
            } else if let Some(rest) = s.strip_prefix(&format!("{}/", old.trim_end_matches('/'))) {
                *s = format!("{}/{}", new.trim_end_matches('/'), rest);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| swap_value(x, old, new)),
        _ => {}
    }
}

fn trigrams(s: &str) -> Vec<[char; 3]> {
    let chars: Vec<char> = format!("  {s} ").chars().collect();
    let mut v: Vec<[char; 3]> = chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn jaccard(a: &[[char; 3]], b: &[[char; 3]]) -> f32 {
    let inter = a.iter().filter(|x| b.binary_search(x).is_ok()).count();
    let union = a.len() + b.len() - inter;
    if union == 0 {
        0.0
    } else {
        inter as f32 / union as f32
    }
}

// Silence "never used" for items that exist for the table's completeness.
#[allow(dead_code)]
fn _uses(_: Prep) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PlanContext {
        PlanContext::new("/home/u", "/home/u")
    }

    fn steps(req: &str) -> Vec<Step> {
        match Planner::new().plan(req, &ctx()) {
            Outcome::Plan { plan, .. } => plan.steps,
            other => panic!("{req}: {other:?}"),
        }
    }

    /// Knows one taught skill, `tidy`, for org `acme` only.
    #[derive(Debug)]
    struct OneSkill;

    impl Taught for OneSkill {
        fn plan(&self, request: &str, org: &str) -> Option<Result<Plan, String>> {
            if org != "acme" || !request.starts_with("tidy") {
                return None;
            }
            let mut s = Step::new("fs", "delete");
            s.args.insert("path".into(), Value::from("/srv/tmp/x"));
            Some(Ok(Plan::new(vec![s])))
        }
    }

    #[test]
    fn taught_skills_are_asked_with_the_org_before_the_intents() {
        let p = Planner::new().with_taught(std::sync::Arc::new(OneSkill));
        let mut acme = ctx();
        acme.org = Some("acme".into());
        match p.plan("tidy up", &acme) {
            Outcome::Plan { plan, confidence } => {
                assert_eq!(plan.steps[0].name(), "fs.delete");
                assert_eq!(plan.planner.as_deref(), Some(PLANNER_NAME));
                assert_eq!(plan.request.as_deref(), Some("tidy up"));
                assert!((confidence - 1.0).abs() < f32::EPSILON);
            }
            other => panic!("{other:?}"),
        }
        // Another organisation (and the host operator) does not have it.
        assert!(
            !matches!(p.plan("tidy up", &ctx()), Outcome::Plan { ref plan, .. } if plan.steps[0].name() == "fs.delete")
        );
        // Requests it does not know go on to the intents.
        assert_eq!(
            match p.plan("show the 5 largest files in /var/log", &acme) {
                Outcome::Plan { plan, .. } => plan.steps[0].name(),
                other => panic!("{other:?}"),
            },
            "fs.largest"
        );
    }

    #[test]
    fn a_single_request() {
        let s = steps("show the 5 largest files in /var/log");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name(), "fs.largest");
        assert_eq!(s[0].args["path"], "/var/log");
        assert_eq!(s[0].args["count"], 5);
    }

    #[test]
    fn composition_with_a_step_ref() {
        let s = steps("find files larger than 1GB in ~/Downloads and move them to ~/archive");
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].args["min_size"], 1_073_741_824u64);
        assert_eq!(
            s[1].args["source"],
            serde_json::json!({"$step": 0, "$field": "path"})
        );
        assert_eq!(s[1].args["dest"], "/home/u/archive");
        assert_eq!(s[1].needs, vec![0]);
    }

    #[test]
    fn undo_forms() {
        let p = Planner::new();
        assert_eq!(p.plan("undo that", &ctx()), Outcome::Undo { target: None });
        let c = ctx().with_conversation(Conversation {
            last_tx: Some("01J0000000000000000000000A".into()),
            ..Conversation::default()
        });
        assert_eq!(
            p.plan("revert the last change", &c),
            Outcome::Undo {
                target: Some("01J0000000000000000000000A".into())
            }
        );
    }

    #[test]
    fn planner_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Planner>();
    }

    #[test]
    fn hard_separators_split_and_soft_ones_only_when_needed() {
        let s = steps("stop nginx, then start it again");
        assert_eq!(
            s.iter().map(|x| x.name()).collect::<Vec<_>>(),
            ["svc.stop", "svc.start"]
        );
        assert_eq!(s[1].args["name"], "nginx");
        assert_eq!(s[1].needs, vec![0]);
        let s = steps("install jq and ripgrep");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].args["packages"], serde_json::json!(["jq", "ripgrep"]));
    }

    #[test]
    fn outcome_serialises_with_a_tag() {
        let o = Planner::new().plan("uptime", &ctx());
        let j = serde_json::to_value(&o).unwrap_or_default();
        assert_eq!(j["outcome"], "plan");
        assert_eq!(j["plan"]["steps"][0]["action"], "uptime");
    }

    #[test]
    fn swap_replaces_prefixes() {
        let mut v = Value::from("/srv/a/b");
        swap_value(&mut v, "/srv/a", "/opt");
        assert_eq!(v, "/opt/b");
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    #[ignore = "diagnostics: KERNOS_EXPLAIN='request' cargo test -p kernos-planner explain -- --ignored --nocapture"]
    fn explain() {
        let all = std::env::var("KERNOS_EXPLAIN").unwrap_or_default();
        let p = Planner::new();
        let cwd = std::env::var("KERNOS_EXPLAIN_CWD").unwrap_or_else(|_| "/home/u".into());
        let ctx = PlanContext::new("/home/u", cwd);
        for req in all.split("||") {
            println!("== {req}");
            if std::env::var_os("KERNOS_EXPLAIN_ALL").is_some() {
                for line in p.explain(req, &ctx) {
                    println!("   {line}");
                }
            }
            match p.plan(req, &ctx) {
                Outcome::Plan { plan, confidence } => {
                    println!(
                        "   {confidence} {}",
                        serde_json::to_string(&plan.steps).unwrap_or_default()
                    )
                }
                other => println!("   {other:?}"),
            }
            let unused = p.understand(req, &ctx).unused;
            if !unused.is_empty() {
                println!("   unused: {unused:?}");
            }
        }
    }
}
