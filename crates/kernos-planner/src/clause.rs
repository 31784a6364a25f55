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
    /// Analyses a clause; `cwd` is where relative places are looked up.
    pub fn new(src: &'a str, w: &'a [Word], vocab: &Vocab, cwd: &'a str) -> Clause<'a> {
        let mut ents = entities::extract(w, vocab);
        existing_places(w, &mut ents, cwd);
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
        self.w.iter().position(|x| !is_glue(x, vocab))
    }
}

/// "in cache", "under my logs": an ordinary word after a place preposition that names a file
/// or directory of the working directory is that path, not the word's usual meaning.
fn existing_places(w: &[Word], ents: &mut Vec<Entity>, cwd: &str) {
    for i in 1..w.len() {
        let x = &w[i];
        if x.tok.kind != Kind::Word || ents.iter().any(|e| e.start <= i && i < e.end) {
            continue;
        }
        let mut j = i - 1;
        while j > 0
            && matches!(
                w[j].tok.low.as_str(),
                "the" | "my" | "our" | "this" | "that"
            )
        {
            j -= 1;
        }
        if w[j].lex.class != Class::Prep(Prep::Loc) || !grounding::exists(&x.tok.raw, cwd) {
            continue;
        }
        let file = std::path::Path::new(cwd).join(&x.tok.raw).is_file();
        let at = ents.iter().position(|e| e.start > i).unwrap_or(ents.len());
        ents.insert(
            at,
            Entity {
                ent: Ent::Path {
                    path: x.tok.raw.clone(),
                    prep: Some(Prep::Loc),
                    file,
                },
                start: i,
                end: i + 1,
            },
        );
    }
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
