//! One clause against one intent: does it trigger, which arguments can be filled (see
//! `slots.rs`), how much of the clause is explained, and how it ranks.

use serde_json::{Map, Value};

use crate::clause::{Bits, Clause, Referent, is_glue};
use crate::entities::{self, Ent, Entity};
use crate::intents::{Intent, Slot};
use crate::slots::Filler;
use crate::vocab::{Cid, Class, Vocab};

/// What evaluating one intent on one clause gave.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Index into the intent list.
    pub intent: usize,
    /// Argument sets: one per step (several when "restart nginx and redis").
    pub args: Vec<Map<String, Value>>,
    /// A step to run first (`fs.find` for "all .tmp files older than…", `fs.list` for
    /// "everything in D"), whose rows feed the `Objects` argument: (action, arguments).
    pub pre_step: Option<(&'static str, Map<String, Value>)>,
    /// Ranking score.
    pub score: f32,
    /// Share of meaningful words explained, 0..1.
    pub coverage: f32,
    /// Typo corrections the trigger relied on: (as typed, corrected to).
    pub fuzzy: Vec<(String, &'static str)>,
    /// A corrected word a change must not rest on: anything but the trigger's noun (the
    /// action word, or a supporting word). "make a new dirctory" is fine, "mkae x
    /// executable" is not.
    pub fuzzy_verb: Option<(String, &'static str)>,
    /// A required argument that could not be filled (its description).
    pub missing: Option<String>,
    /// Words nothing explained.
    pub unexplained: Vec<String>,
    /// Words that make a change unsafe to plan ("maybe", "not", "everything").
    pub unsure: Vec<String>,
}

impl Candidate {
    /// Usable as a plan step.
    pub fn ok(&self) -> bool {
        self.missing.is_none()
    }
}

/// Evaluates one intent on a clause. `None` when the intent is not triggered at all.
pub(crate) fn evaluate(
    idx: usize,
    intent: &Intent,
    c: &Clause<'_>,
    vocab: &Vocab,
    home: &str,
    referent: Option<&Referent>,
) -> Option<Candidate> {
    let trigger = best_trigger(intent, c, vocab)?;
    let alt = trigger.alt;
    // Every trigger word of the intent that is present explains itself, not only the chosen
    // alternative's ("find files larger than 1GB": both "find" and "file @size" fit).
    let mut own = Bits::default();
    for &cid in intent.triggers.iter().flatten().chain(intent.cues.iter()) {
        own.set(cid);
    }
    let trigger_words: Vec<usize> = (0..c.w.len())
        .filter(|&i| c.in_ent[i].is_none() && c.w[i].lex.concept.is_some_and(|x| alt.contains(&x)))
        .collect();
    let fuzzy: Vec<(String, &'static str)> = trigger_words
        .iter()
        .filter_map(|&i| c.w[i].fuzzy.map(|f| (c.w[i].tok.raw.clone(), f)))
        .collect();
    let fuzzy_verb = fuzzy_verb(c, alt, &own);
    let mut f = Filler::new(c, vocab, intent, own, trigger_words, home, referent);
    let mut args = Map::new();
    let mut missing = f.fill_all(&mut args);
    if missing.is_none() {
        missing = unused_pronoun(c, &f.used_ent);
    }
    derive_dest(intent, c, &mut args, &mut missing);
    let cov = Coverage::measure(intent, c, vocab, &f, &own, &mut missing);
    let cue_hits = intent
        .cues
        .iter()
        .filter(|&&x| c.bits.has(x) && !alt.contains(&x))
        .count() as f32;
    let filled = args.len() as f32;
    // Required arguments that were found make an intent more specific than one that needs
    // nothing ("disk usage of ~" is fs.usage, not sys.disk).
    let required_filled = intent
        .def
        .slots
        .iter()
        .filter(|(n, s)| s.required() && (args.contains_key(*n) || *s == Slot::KillTarget))
        .count() as f32;
    let score = trigger.weight + 0.5 * cue_hits.min(3.0) + 0.15 * filled + 0.25 * required_filled
        - shape_penalty(intent, &args)
        - 1.0 * cov.unexplained.len() as f32
        - 0.4 * fuzzy.len() as f32
        - cov.filter_penalty;
    Some(Candidate {
        intent: idx,
        args: one_step_per_name(intent, args),
        pre_step: f.pre_step.take(),
        score,
        coverage: cov.ratio(),
        fuzzy,
        fuzzy_verb,
        missing,
        unexplained: cov.unexplained,
        unsure: cov.unsure,
    })
}

/// The trigger alternative an intent matched by.
struct Trigger<'i> {
    /// Its concepts.
    alt: &'i [Cid],
    /// Content concepts count 1, glue concepts a quarter.
    weight: f32,
}

/// The best trigger alternative present: exact beats fuzzy, then more content concepts.
fn best_trigger<'i>(intent: &'i Intent, c: &Clause<'_>, vocab: &Vocab) -> Option<Trigger<'i>> {
    let mut best: Option<(usize, f32, &Vec<Cid>)> = None; // (fuzzy count, weight)
    for alt in &intent.triggers {
        let mut fuzzy = 0;
        let mut ok = true;
        let mut weight = 0.0;
        for &cid in alt {
            if c.bits.has(cid) {
            } else if c.fuzzy_bits.has(cid) {
                fuzzy += 1;
            } else {
                ok = false;
                break;
            }
            weight += if vocab.is_glue_concept(cid) {
                0.25
            } else {
                1.0
            };
        }
        if !ok {
            continue;
        }
        let better = match best {
            None => true,
            Some((bf, bw, _)) => {
                (fuzzy, -weight as i32) < (bf, -bw as i32) || fuzzy == bf && weight > bw
            }
        };
        if better {
            best = Some((fuzzy, weight, alt));
        }
    }
    best.map(|(_, weight, alt)| Trigger { alt, weight })
}

/// A typo-corrected word the intent relies on other than the trigger's noun.
fn fuzzy_verb(c: &Clause<'_>, alt: &[Cid], own: &Bits) -> Option<(String, &'static str)> {
    (0..c.w.len())
        .find(|&i| {
            let w = &c.w[i];
            let noun = w
                .lex
                .concept
                .is_some_and(|x| alt.iter().skip(1).any(|a| *a == x))
                && w.lex.concept != alt.first().copied();
            c.in_ent[i].is_none()
                && w.fuzzy.is_some()
                && w.lex.concept.is_some_and(|x| own.has(x))
                && !noun
        })
        .and_then(|i| c.w[i].fuzzy.map(|f| (c.w[i].tok.raw.clone(), f)))
}

/// The words an entity spans, as typed.
fn said<'s>(c: &Clause<'s>, e: &Entity) -> Option<&'s str> {
    c.src.get(c.w[e.start].tok.start..c.w[e.end - 1].tok.end)
}

/// A pronoun the intent had no use for ("count them" after a find) would be silently
/// dropped; better to say so.
fn unused_pronoun(c: &Clause<'_>, used_ent: &[bool]) -> Option<String> {
    // "this"/"that" alone are often deictic ("what distro is this"), so only the others.
    let strong = |e: &Entity| {
        !matches!(c.w[e.start].tok.low.as_str(), "this" | "that") || e.end > e.start + 1
    };
    let (_, e) = c
        .ents
        .iter()
        .enumerate()
        .find(|(k, e)| matches!(e.ent, Ent::Pronoun { .. }) && !used_ent[*k] && strong(e))?;
    let said = said(c, e).unwrap_or("it");
    Some(format!(
        "something it can take \u{201c}{said}\u{201d} for (an earlier step's results cannot go there)"
    ))
}

/// Destinations derived from the source once it is known (`Null` from the dest slot):
/// `<source>.bak` for a backup copy, `<name>.<ext>` for an archive.
fn derive_dest(
    intent: &Intent,
    c: &Clause<'_>,
    args: &mut Map<String, Value>,
    missing: &mut Option<String>,
) {
    if args.get("dest") != Some(&Value::Null) {
        return;
    }
    let src = match args.get("source") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) if a.len() == 1 => a[0].as_str().map(str::to_owned),
        _ => None,
    };
    let dest_slot = intent
        .def
        .slots
        .iter()
        .find(|(n, _)| *n == "dest")
        .map(|(_, s)| *s);
    match (dest_slot, src) {
        (Some(Slot::CopyDest), Some(s)) => {
            args.insert(
                "dest".into(),
                Value::from(format!("{}.bak", s.trim_end_matches('/'))),
            );
        }
        (Some(Slot::ArchiveDest), src) => {
            args.insert("dest".into(), Value::from(archive_name(c, src.as_deref())));
        }
        _ => {
            args.remove("dest");
            if missing.is_none() {
                *missing = Some(intent.def.needs.to_owned());
            }
        }
    }
}

/// An archive named after its source; the verb picks the format: "zip it" → .zip, "tar it" →
/// .tar, else .tar.gz.
fn archive_name(c: &Clause<'_>, src: Option<&str>) -> String {
    let ext = if c.w.iter().any(|x| x.tok.low == "zip") {
        "zip"
    } else if c.w.iter().any(|x| x.tok.low == "tar") {
        "tar"
    } else {
        "tar.gz"
    };
    let base = src
        .map(|s| {
            s.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|b| !b.is_empty() && b != "." && b != "~" && b != "..")
        .unwrap_or_else(|| "archive".to_owned());
    format!("{base}.{ext}")
}

/// Which meaningful words of the clause the intent explained.
struct Coverage {
    total: f32,
    explained: f32,
    /// Words nothing explained.
    unexplained: Vec<String>,
    /// Words that make a change unsafe to plan.
    unsure: Vec<String>,
    /// A filter the intent cannot apply ("how many python files": fs.count has no glob)
    /// changes the answer, so it weighs more than an unknown word.
    filter_penalty: f32,
}

impl Coverage {
    /// Measures coverage; the first filter the intent cannot apply becomes `missing` when
    /// nothing else is.
    fn measure(
        intent: &Intent,
        c: &Clause<'_>,
        vocab: &Vocab,
        f: &Filler<'_, '_>,
        own: &Bits,
        missing: &mut Option<String>,
    ) -> Coverage {
        let mut cov = Coverage {
            total: 0.0,
            explained: 0.0,
            unexplained: Vec::new(),
            unsure: Vec::new(),
            filter_penalty: 0.0,
        };
        let mut ent_words = vec![false; c.w.len()];
        for (k, e) in c.ents.iter().enumerate() {
            if f.used_ent[k] {
                for x in ent_words.iter_mut().take(e.end).skip(e.start) {
                    *x = true;
                }
            }
        }
        let mut seen_ents = vec![false; c.ents.len()];
        for (i, w) in c.w.iter().enumerate() {
            let quantifier_unused = w.lex.class == Class::Quantifier && !f.used_word[i];
            if matches!(w.lex.class, Class::Hedge | Class::Negation) && c.in_ent[i].is_none()
                || quantifier_unused
            {
                cov.unsure.push(w.tok.raw.clone());
            }
            if let Some(k) = c.in_ent[i] {
                if !seen_ents[k] {
                    seen_ents[k] = true;
                    cov.entity(c, k, f.used_ent[k] || ent_words[i], missing);
                }
                continue;
            }
            if is_glue(w, vocab) || w.lex.class == Class::Quantifier && !intent.def.mutating {
                // "anything bigger than 1.5G": a quantifier changes nothing about a read.
                continue;
            }
            cov.total += 1.0;
            let own_word = w.lex.concept.is_some_and(|x| own.has(x));
            if own_word || f.used_word[i] {
                cov.explained += if w.fuzzy.is_some() { 0.8 } else { 1.0 };
            } else {
                cov.unexplained.push(w.tok.raw.clone());
            }
        }
        cov
    }

    /// Counts entity `k`, explained or not.
    fn entity(&mut self, c: &Clause<'_>, k: usize, explained: bool, missing: &mut Option<String>) {
        self.total += 1.0;
        if explained {
            self.explained += 1.0;
            return;
        }
        let e = &c.ents[k];
        let text = said(c, e).unwrap_or("");
        if matches!(e.ent, Ent::Glob(_) | Ent::Size { .. } | Ent::Age { .. }) {
            self.filter_penalty += 1.0;
            if missing.is_none() {
                *missing = Some(format!(
                    "a way to apply \u{201c}{text}\u{201d}, which this action cannot filter by"
                ));
            }
        }
        self.unexplained.push(text.to_owned());
    }

    /// Share of meaningful words explained, 0..1.
    fn ratio(&self) -> f32 {
        if self.total == 0.0 {
            1.0
        } else {
            self.explained / self.total
        }
    }
}

/// Listing or searching "a file" as if it were a directory is the wrong reading.
fn shape_penalty(intent: &Intent, args: &Map<String, Value>) -> f32 {
    match args.get("path") {
        Some(Value::String(p))
            if intent.def.flags.path_is_dir
                && entities::looks_like_file(p)
                && !matches!(args.get("what"), Some(v) if v == "lines" || v == "words" || v == "bytes") =>
        {
            1.0
        }
        _ => 0.0,
    }
}

/// Several names → several steps (at most 8), one per name.
fn one_step_per_name(intent: &Intent, args: Map<String, Value>) -> Vec<Map<String, Value>> {
    let split = args.iter().find_map(|(k, v)| match v {
        Value::Array(a) if intent.def.slots.iter().any(|(n, s)| s.fans_out(n, k)) => {
            Some((k.clone(), a.clone()))
        }
        _ => None,
    });
    let Some((key, list)) = split else {
        return vec![args];
    };
    list.into_iter()
        .take(8)
        .map(|v| {
            let mut m = args.clone();
            m.insert(key.clone(), v);
            m
        })
        .collect()
}
