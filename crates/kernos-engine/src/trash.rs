//! The trash's bookkeeping: which transaction put each item there, and emptying it as a
//! journaled change (`trash.emptied`), since it makes those transactions impossible to undo.

use std::collections::HashMap;
use std::path::PathBuf;

use kernos_core::event::kind;
use kernos_core::{NewEvent, TxId};
use kernos_tools::trash::{self, TrashItem};
use kernos_tools::undo::Inverse;
use serde::{Deserialize, Serialize};

use crate::payload::UndoRecorded;
use kernos_tools::Env;

use crate::{Engine, Result, Session};

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
