//! The trash's bookkeeping: which transaction put each item there, emptying it as a
//! journaled change (`trash.emptied`), since it makes those transactions impossible to undo,
//! and its size budget ([`Budget`]): a preview names what a delete will push out of the
//! trash for good, and the run removes exactly that once the delete is done.

use std::collections::HashMap;
use std::path::PathBuf;

use kernos_core::event::kind;
use kernos_core::time::now_ms;
use kernos_core::{NewEvent, TxId};
use kernos_tools::trash::{self, Budget, TrashItem};
use kernos_tools::undo::Inverse;
use kernos_tools::{Change, human_bytes};
use serde::{Deserialize, Serialize};

use crate::payload::UndoRecorded;
use kernos_tools::Env;

use crate::{Engine, EngineError, Result, Session};

/// Why the budget could not be kept this time (the items then stay in the trash).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PurgeError {
    /// The journal, where the removal must be recorded first.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Reading the trash or removing an item.
    #[error("the trash: {0}")]
    Io(#[from] std::io::Error),
}

/// The kind of event journaled when items leave the trash for good; its transaction is the one
/// that put them there, and its payload is a [`TrashEmptied`].
pub const TRASH_EMPTIED: &str = "trash.emptied";

/// `trash.emptied`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashEmptied {
    /// Where each removed item had been before it was deleted.
    pub paths: Vec<PathBuf>,
    /// Bytes freed.
    pub bytes: u64,
    /// Why: `kernos trash empty`, or the trash's size budget.
    pub reason: String,
}

/// An item the trash budget removes for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedItem {
    /// Where it was before it was deleted.
    pub path: PathBuf,
    /// The transaction that deleted it: undo of it can no longer bring this item back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxId>,
    /// Its size.
    pub bytes: u64,
}

/// What the trash budget will remove for good once a plan's deletes are in the trash, shown
/// with the preview before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrashPurge {
    /// The older items that go, oldest first.
    pub items: Vec<PurgedItem>,
    /// Their total size.
    pub bytes: u64,
    /// What the plan's deletes put into the trash.
    pub incoming: u64,
    /// The budget (`[trash] max_bytes`; 0: no size limit).
    pub max_bytes: u64,
    /// The plan alone puts more into the trash than the whole budget: its items are kept
    /// (their undo works) until the next change that fills the trash removes them.
    pub oversized: bool,
}

impl TrashPurge {
    /// One line for the preview.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if !self.items.is_empty() {
            let names: Vec<String> = self
                .items
                .iter()
                .take(3)
                .map(|i| i.path.display().to_string())
                .collect();
            let more = self.items.len().saturating_sub(names.len());
            out = format!(
                "this permanently removes older trash item{} {}{} ({}) to keep the trash within {}: {} can no longer be undone",
                if self.items.len() == 1 { "" } else { "s" },
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                human_bytes(self.bytes),
                human_bytes(self.max_bytes),
                if self.items.len() == 1 { "it" } else { "they" },
            );
        }
        if self.oversized {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&format!(
                "this delete ({}) is larger than the whole trash budget ({}): it stays undoable only until the next delete",
                human_bytes(self.incoming),
                human_bytes(self.max_bytes)
            ));
        }
        out
    }
}

/// When a transaction's items left the trash for good, and why (from `trash.emptied`).
#[derive(Debug, Clone)]
pub(crate) struct Emptied {
    /// Where the removed items had been before they were deleted.
    pub paths: Vec<PathBuf>,
    /// `kernos trash empty`, or the trash budget.
    pub reason: String,
    /// When.
    pub ts_ms: i64,
}

/// An item in the trash and where it came from.
#[derive(Debug, Clone)]
pub struct TrashEntry {
    /// The item.
    pub item: TrashItem,
    /// The transaction that deleted it (none for an item no journal record points at).
    pub tx: Option<TxId>,
    /// Where it was before it was deleted.
    pub origin: Option<PathBuf>,
}

impl Engine {
    /// Attaches to each trash item the transaction that put it there (from the journal's
    /// undo records).
    pub fn attribute_trash(&self, env: &Env, items: Vec<TrashItem>) -> Result<Vec<TrashEntry>> {
        let owners = self.trash_owners(env)?;
        Ok(items
            .into_iter()
            .map(|item| {
                let owner = owners.get(&item.path).cloned();
                TrashEntry {
                    tx: owner.as_ref().map(|o| o.0),
                    origin: owner.map(|o| o.1),
                    item,
                }
            })
            .collect())
    }

    /// Per trashed path, the transaction that recorded it and where it came from.
    fn trash_owners(&self, env: &Env) -> Result<HashMap<PathBuf, (TxId, PathBuf)>> {
        let q = kernos_journal::Query::kind(kind::STEP_UNDO_RECORDED);
        let mut out = HashMap::new();
        for e in self.store().query(&q)? {
            let (Some(tx), Ok(p)) = (e.tx, serde_json::from_value::<UndoRecorded>(e.payload))
            else {
                continue;
            };
            for r in p.records {
                if let Inverse::MoveBack { from, to } = r.inverse {
                    if trash::contains(env, &from) {
                        out.insert(from, (tx, to));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The trash budget runs and previews keep to (the default until a front end sets it).
    pub fn trash_budget(&self) -> Budget {
        self.trash_budget
    }

    /// What the budget would remove for good if `changes` (a plan's dry-run changes) put their
    /// deletes into the trash now; `None` when nothing goes in or everything fits.
    pub(crate) fn trash_purge<'c>(
        &self,
        env: &Env,
        changes: impl Iterator<Item = &'c Change>,
    ) -> Option<TrashPurge> {
        let incoming: u64 = changes
            .map(|c| match c {
                Change::Delete { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum();
        if incoming == 0 {
            return None;
        }
        let budget = self.trash_budget;
        let items = trash::list(env).ok()?;
        let chosen = budget.to_purge(&items, incoming, now_ms() / 1000, |_| false);
        let oversized = budget.max_bytes > 0 && incoming > budget.max_bytes;
        if chosen.is_empty() && !oversized {
            return None;
        }
        let entries = self.attribute_trash(env, chosen).ok()?;
        Some(TrashPurge {
            bytes: entries.iter().map(|e| e.item.bytes).sum(),
            items: entries
                .into_iter()
                .map(|e| PurgedItem {
                    path: e.origin.unwrap_or(e.item.path),
                    tx: e.tx,
                    bytes: e.item.bytes,
                })
                .collect(),
            incoming,
            max_bytes: budget.max_bytes,
            oversized,
        })
    }

    /// After transaction `tx` ran: when it put something into the trash, removes for good
    /// what no longer fits the budget (journaled first, per transaction), never `tx`'s own
    /// items. A failure leaves the items in the trash: nothing goes without a record.
    pub(crate) fn enforce_trash_budget(
        &self,
        s: &Session<'_>,
        tx: TxId,
    ) -> std::result::Result<(), PurgeError> {
        let items = trash::list(&s.env)?;
        if items.is_empty() {
            return Ok(());
        }
        let entries = self.attribute_trash(&s.env, items)?;
        let own: Vec<&PathBuf> = entries
            .iter()
            .filter(|e| e.tx == Some(tx))
            .map(|e| &e.item.slot)
            .collect();
        if own.is_empty() {
            return Ok(());
        }
        let items: Vec<TrashItem> = entries.iter().map(|e| e.item.clone()).collect();
        let budget = self.trash_budget;
        let chosen = budget.to_purge(&items, 0, now_ms() / 1000, |i| own.contains(&&i.slot));
        if chosen.is_empty() {
            return Ok(());
        }
        let gone: Vec<TrashEntry> = entries
            .into_iter()
            .filter(|e| chosen.iter().any(|c| c.slot == e.item.slot))
            .collect();
        let reason = match (budget.max_bytes, budget.max_age_days) {
            (0, d) => format!("the trash budget (items kept at most {d} days)"),
            (b, 0) => format!("the trash budget (at most {})", human_bytes(b)),
            (b, d) => format!(
                "the trash budget (at most {}, items kept at most {d} days)",
                human_bytes(b)
            ),
        };
        self.record_trash_emptied(s, &gone, &reason)?;
        for e in &gone {
            trash::remove(&e.item)?;
        }
        trash::tidy(&s.env);
        Ok(())
    }

    /// Every time items of `tx` left the trash for good.
    pub(crate) fn trash_emptied(&self, tx: TxId) -> Vec<Emptied> {
        let q = kernos_journal::Query {
            tx: Some(tx.to_string()),
            kind: Some(TRASH_EMPTIED.into()),
            ..kernos_journal::Query::default()
        };
        self.store()
            .query(&q)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let p: TrashEmptied = serde_json::from_value(e.payload).ok()?;
                Some(Emptied {
                    paths: p.paths,
                    reason: p.reason,
                    ts_ms: e.ts_ms,
                })
            })
            .collect()
    }

    /// Journals, per transaction, that `entries` are about to leave the trash for good
    /// (`trash.emptied`), so `show` and `undo` of that transaction can say so. Call it before
    /// removing them: a crash in between leaves a record of an item that may still be there,
    /// never an item gone without a record.
    pub fn record_trash_emptied(
        &self,
        s: &Session<'_>,
        entries: &[TrashEntry],
        reason: &str,
    ) -> Result<()> {
        let mut by_tx: Vec<(Option<TxId>, TrashEmptied)> = Vec::new();
        for e in entries {
            let i = match by_tx.iter().position(|(t, _)| *t == e.tx) {
                Some(i) => i,
                None => {
                    by_tx.push((
                        e.tx,
                        TrashEmptied {
                            paths: Vec::new(),
                            bytes: 0,
                            reason: reason.to_owned(),
                        },
                    ));
                    by_tx.len() - 1
                }
            };
            let t = &mut by_tx[i].1;
            t.paths
                .push(e.origin.clone().unwrap_or_else(|| e.item.path.clone()));
            t.bytes += e.item.bytes;
        }
        for (tx, payload) in &by_tx {
            let mut ev = NewEvent::new(TRASH_EMPTIED, s.actor.clone())
                .org(&s.org)
                .action(s.action)
                .payload(serde_json::to_value(payload).unwrap_or_default());
            if let Some(tx) = tx {
                ev = ev.tx(*tx);
            }
            let stored = self.store().append(ev)?;
            s.observer.event(&stored);
        }
        Ok(())
    }
}
