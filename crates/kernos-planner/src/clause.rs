//! A clause analysed once, before any intent looks at it: its words, its entities, which word
//! each entity covers, and the concepts present (exactly or only through a typo correction).

use crate::entities::{self, Ent, Entity};
use crate::grounding;
use crate::lex::Kind;
use crate::vocab::{Cid, Class, MAX_CONCEPTS, Prep, Vocab, Word};

/// A set of concepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bits([u64; MAX_CONCEPTS / 64]);

impl Bits {
    /// Adds a concept.
    pub fn set(&mut self, c: Cid) {
        self.0[usize::from(c) / 64] |= 1 << (u32::from(c) % 64);
    }

    /// Whether a concept is in.
    pub fn has(&self, c: Cid) -> bool {
        self.0[usize::from(c) / 64] & (1 << (u32::from(c) % 64)) != 0
    }
}

/// What an earlier step (or the previous run) offers to pronouns.
#[derive(Debug, Clone, Default)]
pub(crate) struct Referent {
    /// Index of an earlier step of this plan whose output rows have a `path` column.
    pub rows_step: Option<usize>,
    /// Paths it acted on or produced.
    pub paths: Vec<String>,
    /// Names (services, packages, processes, hosts) it acted on.
    pub names: Vec<String>,
}

/// A clause, analysed once and evaluated against every intent.
#[derive(Debug)]
pub(crate) struct Clause<'a> {
    /// The whole request (for verbatim command lines).
    pub src: &'a str,
    /// The clause's words.
    pub w: &'a [Word],
    /// Its entities.
    pub ents: Vec<Entity>,
    /// For each word, the entity covering it.
    pub in_ent: Vec<Option<usize>>,
    /// Concepts of words outside entities, plus entity pseudo-concepts.
    pub bits: Bits,
    /// Concepts that came from typo corrections only.
    pub fuzzy_bits: Bits,
    /// The working directory, where words naming places are looked up.
    pub cwd: &'a str,
}

impl<'a> Clause<'a> {
    /// Analyses a clause; `cwd` is where relative places are looked up, `change_verbs` the
    /// concepts that make a changing intent (whose bare object may be an entry of `cwd`).
    pub fn new(
        src: &'a str,
        w: &'a [Word],
        vocab: &Vocab,
        cwd: &'a str,
        change_verbs: &Bits,
    ) -> Clause<'a> {
        let mut ents = entities::extract(w, vocab);
        existing_places(w, &mut ents, cwd, vocab, change_verbs);
        let mut in_ent = vec![None; w.len()];
        for (k, e) in ents.iter().enumerate() {
            if matches!(e.ent, Ent::Id(_)) {
                continue;
            }
            for slot in in_ent.iter_mut().take(e.end).skip(e.start) {
                if slot.is_none() {
                    *slot = Some(k);
                }
            }
        }
        let mut bits = Bits::default();
        let mut fuzzy_bits = Bits::default();
        for (i, word) in w.iter().enumerate() {
            if in_ent[i].is_some() {
                continue;
            }
            if let Some(c) = word.lex.concept {
                if word.fuzzy.is_some() {
                    if !bits.has(c) {
                        fuzzy_bits.set(c);
                    }
                } else {
                    bits.set(c);
                }
            }
        }
        let mut pseudo = |name: &str| {
            if let Some(c) = vocab.id(name) {
                bits.set(c);
            }
        };
        for e in &ents {
            match &e.ent {
                Ent::Url(_) => pseudo("@url"),
                Ent::Size { .. } => pseudo("@size"),
                Ent::Age { .. } => pseudo("@age"),
                Ent::Glob(_) => pseudo("@glob"),
                Ent::Host(_) => pseudo("@host"),
                Ent::Quoted { .. } => pseudo("@quoted"),
                Ent::Path { file, .. } => {
                    pseudo("@path");
                    pseudo(if *file { "@file" } else { "@dirpath" });
                }
                Ent::Sort(_) => pseudo("@sort"),
                Ent::Pid(_) => pseudo("@pid"),
                Ent::Port(_) => pseudo("@port"),
                Ent::Today => pseudo("@today"),
                Ent::Named(_) => pseudo("@named"),
                Ent::Mode(_) => pseudo("@mode"),
                Ent::Signal(_) => pseudo("@signal"),
                Ent::Count { .. } => pseudo("@count"),
                Ent::Pronoun { .. } => pseudo("@pronoun"),
                Ent::Id(_) => {}
            }
        }
        // A fuzzy concept that is also present exactly is simply present.
        for (f, b) in fuzzy_bits.0.iter_mut().zip(bits.0.iter()) {
            *f &= !b;
        }
        Clause {
            src,
            w,
            ents,
            in_ent,
            bits,
            fuzzy_bits,
            cwd,
        }
    }

    /// Index of the first word that is not glue.
    pub fn first_content(&self, vocab: &Vocab) -> Option<usize> {
        first_content(self.w, vocab)
    }
}

/// Words the user plainly used as a place, which win over their vocabulary meaning when they
/// name an entry of the working directory: after a place preposition ("in cache", "under my
/// logs", "copy x to archive", "from old"), beside a place noun ("the folder big", "the logs
/// directory"), or as the bare object of a changing verb ("delete big"). A place noun beside
/// the word is part of the place, so it says nothing about what to list, find or count
/// ("count files in the folder big" counts files).
fn existing_places(
    w: &[Word],
    ents: &mut Vec<Entity>,
    cwd: &str,
    vocab: &Vocab,
    change_verbs: &Bits,
) {
    let taken = |ents: &[Entity], i: usize| ents.iter().any(|e| e.start <= i && i < e.end);
    for i in 0..w.len() {
        let x = &w[i];
        if x.tok.kind != Kind::Word || taken(ents, i) || !grounding::exists(&x.tok.raw, cwd) {
            continue;
        }
        let noun_before = i > 0 && is_place_noun(&w[i - 1]) && !taken(ents, i - 1);
        // "the big folder" names one; "a new folder" describes one to be made.
        let indefinite = i > 0 && matches!(w[i - 1].tok.low.as_str(), "a" | "an");
        let noun_after = !noun_before && !indefinite && w.get(i + 1).is_some_and(is_place_noun);
        let start = if noun_before { i - 1 } else { i };
        let end = if noun_after { i + 2 } else { i + 1 };
        let mut j = start;
        while j > 0 && is_determiner(&w[j - 1]) {
            j -= 1;
        }
        let prep = match j.checked_sub(1).map(|p| w[p].lex.class) {
            Some(Class::Prep(p @ (Prep::Loc | Prep::Dest | Prep::Src))) => Some(p),
            _ => None,
        };
        let object = j > 0
            && prep.is_none()
            && w[j - 1].lex.concept.is_some_and(|c| change_verbs.has(c))
            && first_content(&w[..j - 1], vocab).is_none()
            && w.get(end).is_none_or(|n| {
                matches!(n.lex.class, Class::Glue | Class::Prep(_))
                    || matches!(n.tok.kind, Kind::Punct)
            });
        if prep.is_none() && !noun_before && !noun_after && !object {
            continue;
        }
        let file = std::path::Path::new(cwd).join(&x.tok.raw).is_file();
        let at = ents.iter().position(|e| e.start > i).unwrap_or(ents.len());
        ents.insert(
            at,
            Entity {
                ent: Ent::Path {
                    path: x.tok.raw.clone(),
                    prep,
                    file,
                },
                start,
                end,
            },
        );
    }
}

/// "folder", "directory", "dir", "subfolder", "file": one place, named by the word beside it.
fn is_place_noun(w: &Word) -> bool {
    matches!(
        w.tok.low.as_str(),
        "folder" | "directory" | "dir" | "subfolder" | "subdirectory" | "file"
    )
}

/// Articles and possessives between a preposition or verb and the place it governs.
fn is_determiner(w: &Word) -> bool {
    matches!(
        w.tok.low.as_str(),
        "the" | "my" | "our" | "this" | "that" | "your"
    )
}

/// Index of the first word of `w` that is not glue.
fn first_content(w: &[Word], vocab: &Vocab) -> Option<usize> {
    w.iter().position(|x| !is_glue(x, vocab))
}

/// Glue: weightless when judging coverage.
pub(crate) fn is_glue(w: &Word, vocab: &Vocab) -> bool {
    // A pronoun that did not become a reference is a determiner ("this machine").
    matches!(w.lex.class, Class::Glue | Class::Prep(_) | Class::Pronoun)
        || matches!(w.tok.kind, Kind::Punct | Kind::Flag)
        || w.lex.concept.is_some_and(|c| vocab.is_glue_concept(c)) && w.fuzzy.is_none()
}

/// `~` and `~/x` → the home directory.
pub(crate) fn expand_home(p: &str, home: &str) -> String {
    if p == "~" {
        home.to_owned()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("{}/{}", home.trim_end_matches('/'), rest)
    } else {
        p.to_owned()
    }
}
