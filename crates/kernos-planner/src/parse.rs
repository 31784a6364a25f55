//! One clause against one intent: does it trigger, which arguments can be filled, how much of
//! the clause is explained.

use serde_json::{Map, Value};

use crate::entities::{self, Cmp, CountPos, Ent, Entity, Rel};
use crate::intents::{Intent, Slot};
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
}

impl<'a> Clause<'a> {
    /// Analyses a clause.
    pub fn new(src: &'a str, w: &'a [Word], vocab: &Vocab) -> Clause<'a> {
        let ents = entities::extract(w, vocab);
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
        }
    }

    /// Index of the first word that is not glue.
    pub fn first_content(&self, vocab: &Vocab) -> Option<usize> {
        self.w.iter().position(|x| !is_glue(x, vocab))
    }
}

/// Glue: weightless when judging coverage.
pub(crate) fn is_glue(w: &Word, vocab: &Vocab) -> bool {
    // A pronoun that did not become a reference is a determiner ("this machine").
    matches!(w.lex.class, Class::Glue | Class::Prep(_) | Class::Pronoun)
        || matches!(w.tok.kind, Kind::Punct | Kind::Flag)
        || w.lex.concept.is_some_and(|c| vocab.is_glue_concept(c)) && w.fuzzy.is_none()
}

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

/// Per-intent filling state.
struct Filler<'c, 'a> {
    c: &'c Clause<'a>,
    vocab: &'c Vocab,
    intent: &'c Intent,
    /// Trigger ∪ cue concepts: words with these explain themselves.
    own: Bits,
    trigger_words: Vec<usize>,
    used_word: Vec<bool>,
    used_ent: Vec<bool>,
    home: &'c str,
    referent: Option<&'c Referent>,
    penalty: f32,
    pronoun_error: Option<String>,
    pre_step: Option<(&'static str, Map<String, Value>)>,
}

const ARTICLES: &[&str] = &[
    "the", "a", "an", "my", "your", "our", "this", "that", "all", "some",
];

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

fn paths_value(v: Vec<String>) -> Value {
    if v.len() == 1 {
        Value::from(v.into_iter().next().unwrap_or_default())
    } else {
        Value::from(v)
    }
}

impl<'c, 'a> Filler<'c, 'a> {
    fn word(&self, i: usize) -> &Word {
        &self.c.w[i]
    }

    fn concept_is(&self, i: usize, name: &str) -> bool {
        let w = &self.c.w[i];
        w.lex.concept.is_some() && w.lex.concept == self.vocab.id(name)
    }

    fn has(&self, name: &str) -> bool {
        self.vocab.id(name).is_some_and(|c| self.c.bits.has(c))
    }

    /// A word that may carry a value for this intent: outside entities, not glue, not one of
    /// the intent's own keywords, not yet used.
    fn free(&self, i: usize) -> bool {
        let w = &self.c.w[i];
        self.c.in_ent[i].is_none()
            && !self.used_word[i]
            && matches!(w.tok.kind, Kind::Word | Kind::Num | Kind::Pathy)
            && w.lex.class == Class::Content
            && !w.lex.concept.is_some_and(|c| self.own.has(c))
    }

    /// Free and not a keyword at all (a name the vocabulary does not know).
    fn free_plain(&self, i: usize) -> bool {
        self.free(i) && (self.word(i).lex.concept.is_none() || self.word(i).fuzzy.is_some())
    }

    fn prep_before(&self, i: usize) -> Option<Prep> {
        let mut j = i;
        while j > 0 {
            j -= 1;
            let w = &self.c.w[j];
            match w.lex.class {
                Class::Prep(p) => return Some(p),
                _ if ARTICLES.contains(&w.tok.low.as_str()) => continue,
                _ => return None,
            }
        }
        None
    }

    fn is_dir_noun_singular(&self, i: usize) -> bool {
        i < self.c.w.len()
            && self.concept_is(i, "dir")
            && !self.c.w[i].tok.low.ends_with('s')
            && self.c.in_ent[i].is_none()
    }

    fn is_file_noun_singular(&self, i: usize) -> bool {
        i < self.c.w.len()
            && self.concept_is(i, "file")
            && self.c.w[i].tok.low == "file"
            && self.c.in_ent[i].is_none()
    }

    /// Words that name a path by position: "the photos folder", "directory backups",
    /// "in src" (after one of `preps`).
    fn word_paths(&self, preps: &[Prep]) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..self.c.w.len() {
            if !self.free(i) || self.word(i).tok.kind != Kind::Word {
                continue;
            }
            if self.word(i).lex.known_name && !preps.is_empty() && self.prep_before(i).is_none() {
                continue;
            }
            let noun_after = self.is_dir_noun_singular(i + 1) || self.is_file_noun_singular(i + 1);
            let noun_before =
                i > 0 && (self.is_dir_noun_singular(i - 1) || self.is_file_noun_singular(i - 1));
            let after_prep = self.prep_before(i).is_some_and(|p| preps.contains(&p))
                && (self.word(i).lex.concept.is_none() || noun_after);
            if noun_after || noun_before || after_prep {
                out.push(i);
            }
        }
        out
    }

    /// Unused path entities (and quoted text after a path preposition), with their prep.
    fn path_ents(&self) -> Vec<(usize, String, Option<Prep>, bool)> {
        let mut out = Vec::new();
        for (k, e) in self.c.ents.iter().enumerate() {
            if self.used_ent[k] {
                continue;
            }
            match &e.ent {
                Ent::Path { path, prep, file } => out.push((k, path.clone(), *prep, *file)),
                Ent::Quoted {
                    text,
                    prep: Some(p),
                } if matches!(p, Prep::Loc | Prep::Dest | Prep::Src | Prep::Of) => {
                    out.push((k, text.clone(), Some(*p), entities::looks_like_file(text)));
                }
                _ => {}
            }
        }
        out
    }

    fn pronoun(&self, preps: Option<&[Prep]>) -> Option<(usize, bool)> {
        self.c
            .ents
            .iter()
            .enumerate()
            .find_map(|(k, e)| match e.ent {
                Ent::Pronoun { plural } if !self.used_ent[k] => {
                    let p = self.prep_before(e.start);
                    let ok = match preps {
                        None => true,
                        Some(list) => p.is_some_and(|p| list.contains(&p)),
                    };
                    ok.then_some((k, plural))
                }
                _ => None,
            })
    }

    fn take_ent(&mut self, k: usize) {
        self.used_ent[k] = true;
    }

    fn take_word(&mut self, i: usize) {
        self.used_word[i] = true;
        // The noun next to a positional path ("the build directory") is explained by it.
        for j in [i.wrapping_sub(1), i + 1] {
            if j < self.c.w.len() && (self.is_dir_noun_singular(j) || self.is_file_noun_singular(j))
            {
                self.used_word[j] = true;
            }
        }
    }

    fn expand(&self, p: &str) -> String {
        expand_home(p, self.home)
    }

    fn no_referent(&mut self, k: usize) {
        let e = &self.c.ents[k];
        let said = self
            .c
            .src
            .get(self.c.w[e.start].tok.start..self.c.w[e.end - 1].tok.end)
            .unwrap_or("it");
        self.pronoun_error = Some(format!(
            "\u{201c}{said}\u{201d} refers to an earlier result, but there is none yet: name the files, service or package instead"
        ));
    }

    /// A pronoun as paths: the earlier step's rows (when `rows_ok`), else its paths.
    fn pronoun_paths(&mut self, k: usize, rows_ok: bool) -> Option<Value> {
        self.take_ent(k);
        let Some(r) = self.referent else {
            self.no_referent(k);
            return None;
        };
        if rows_ok {
            if let Some(s) = r.rows_step {
                return Some(kernos_core::StepRef::new(s, Some("path")).to_value());
            }
        }
        if !r.paths.is_empty() {
            return Some(paths_value(r.paths.clone()));
        }
        if !r.names.is_empty() {
            return Some(paths_value(r.names.clone()));
        }
        self.no_referent(k);
        None
    }

    fn pronoun_names(&mut self, k: usize) -> Option<Vec<String>> {
        self.take_ent(k);
        match self.referent {
            Some(r) if !r.names.is_empty() => Some(r.names.clone()),
            Some(r) if !r.paths.is_empty() => Some(r.paths.clone()),
            _ => {
                self.no_referent(k);
                None
            }
        }
    }

    fn filters_present(&self) -> bool {
        self.c.ents.iter().enumerate().any(|(k, e)| {
            !self.used_ent[k] && matches!(e.ent, Ent::Glob(_) | Ent::Size { .. } | Ent::Age { .. })
        }) || self.has("empty")
    }

    fn ent_of<T>(&mut self, f: impl Fn(&Ent) -> Option<T>) -> Option<T> {
        for (k, e) in self.c.ents.iter().enumerate() {
            if self.used_ent[k] {
                continue;
            }
            if let Some(v) = f(&e.ent) {
                self.used_ent[k] = true;
                return Some(v);
            }
        }
        None
    }

    fn flag_present(&mut self, what: &[&str]) -> bool {
        let mut hit = false;
        for i in 0..self.c.w.len() {
            let w = &self.c.w[i];
            if w.tok.kind == Kind::Flag {
                if what.contains(&w.tok.raw.as_str()) {
                    self.used_word[i] = true;
                    hit = true;
                }
                continue;
            }
            if self.c.in_ent[i].is_some() {
                continue;
            }
            if what
                .iter()
                .any(|c| !c.starts_with('-') && self.concept_is(i, c))
            {
                self.used_word[i] = true;
                hit = true;
            }
        }
        hit
    }

    /// Names: "called X", unknown words, then (with a penalty) known words right after the
    /// trigger; a pronoun gives the referent's names.
    fn names(&mut self, many: bool) -> Option<Vec<String>> {
        if let Some(n) = self.ent_of(|e| match e {
            Ent::Named(n) => Some(n.clone()),
            _ => None,
        }) {
            return Some(vec![n]);
        }
        let mut out = Vec::new();
        for i in 0..self.c.w.len() {
            let known = self.free(i) && self.word(i).lex.known_name;
            if (self.free_plain(i) || known) && self.word(i).tok.kind != Kind::Num {
                out.push(i);
                if !many {
                    break;
                }
            }
        }
        if out.is_empty() {
            // Paths without a slash can be names ("nginx.service").
            let found: Option<(usize, String)> =
                self.c
                    .ents
                    .iter()
                    .enumerate()
                    .find_map(|(k, e)| match &e.ent {
                        Ent::Path { path, .. }
                            if !self.used_ent[k]
                                && !path.contains('/')
                                && !path.starts_with('~') =>
                        {
                            Some((k, path.clone()))
                        }
                        _ => None,
                    });
            if let Some((k, p)) = found {
                self.take_ent(k);
                return Some(vec![p]);
            }
        }
        if out.is_empty() {
            if let Some((k, _)) = self.pronoun(None) {
                return self.pronoun_names(k);
            }
        }
        if out.is_empty() {
            return None;
        }
        if many {
            // "jq and ripgrep", "git, curl and wget": a keyword joined to a name is a name.
            let mut i = 0;
            while i < self.c.w.len() {
                let joined = i >= 2
                    && matches!(self.c.w[i - 1].tok.low.as_str(), "and" | "," | "&")
                    && out.contains(&(i - 2));
                if joined
                    && !out.contains(&i)
                    && self.free(i)
                    && self.word(i).tok.kind == Kind::Word
                {
                    out.push(i);
                }
                i += 1;
            }
            out.sort_unstable();
        }
        let names = out.iter().map(|&i| self.word(i).tok.raw.clone()).collect();
        for i in out {
            self.used_word[i] = true;
        }
        Some(names)
    }

    fn fill(
        &mut self,
        arg: &'static str,
        slot: Slot,
        out: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let need = || self.intent.def.needs.to_owned();
        match slot {
            Slot::Where(_) | Slot::OptWhere => {
                let default = match slot {
                    Slot::Where(d) => d,
                    _ => None,
                };
                let required = matches!(slot, Slot::Where(None));
                let ents = self.path_ents();
                let rank = |p: Option<Prep>| match p {
                    Some(Prep::Loc) => 0,
                    None => 1,
                    Some(Prep::Of) | Some(Prep::For) => 2,
                    Some(Prep::Src) => 3,
                    _ => 9,
                };
                let best = ents
                    .iter()
                    .filter(|(_, _, p, _)| rank(*p) < 9)
                    .min_by_key(|(k, _, p, _)| (rank(*p), *k));
                if let Some((k, p, _, _)) = best {
                    let v = self.expand(p);
                    self.take_ent(*k);
                    out.insert(arg.into(), Value::from(v));
                    return Ok(());
                }
                if let Some(&i) = self.word_paths(&[Prep::Loc, Prep::Of, Prep::Src]).first() {
                    let v = self.word(i).tok.raw.clone();
                    self.take_word(i);
                    out.insert(arg.into(), Value::from(v));
                    return Ok(());
                }
                // "grep TODO src", "search src for unwrap": once the pattern is taken, a
                // remaining unknown word is where to search.
                if out.contains_key("pattern") {
                    if let Some(i) = (0..self.c.w.len())
                        .find(|&i| self.free_plain(i) && self.word(i).tok.kind == Kind::Word)
                    {
                        let v = self.word(i).tok.raw.clone();
                        self.take_word(i);
                        out.insert(arg.into(), Value::from(v));
                        return Ok(());
                    }
                }
                if let Some((k, _)) = self.pronoun(Some(&[Prep::Loc, Prep::Of, Prep::Src])) {
                    if let Some(v) = self.pronoun_paths(k, false) {
                        let v = match v {
                            Value::Array(a) => a.into_iter().next().unwrap_or(Value::Null),
                            v => v,
                        };
                        out.insert(arg.into(), v);
                        return Ok(());
                    }
                }
                match default {
                    Some(d) => {
                        out.insert(arg.into(), Value::from(d));
                        Ok(())
                    }
                    None if required => Err(need()),
                    None => Ok(()),
                }
            }
            Slot::Objects => self.objects(arg, out),
            Slot::Object | Slot::OptObject => {
                let ents = self.path_ents();
                if let Some((k, p, _, _)) = ents.first() {
                    let v = self.expand(p);
                    self.take_ent(*k);
                    out.insert(arg.into(), Value::from(v));
                    return Ok(());
                }
                if let Some((k, _)) = self.pronoun(None) {
                    if let Some(v) = self.pronoun_paths(k, false) {
                        let v = match v {
                            Value::Array(a) if a.len() == 1 => {
                                a.into_iter().next().unwrap_or(Value::Null)
                            }
                            v => v,
                        };
                        if v.is_string() {
                            out.insert(arg.into(), v);
                            return Ok(());
                        }
                        return Err("a single file, but the earlier result is several".into());
                    }
                    return Err(need());
                }
                if slot == Slot::OptObject {
                    return Ok(());
                }
                let cands = self.word_paths(&[Prep::Loc, Prep::Of, Prep::Dest, Prep::Src]);
                let pick = cands.first().copied().or_else(|| {
                    (0..self.c.w.len())
                        .find(|&i| self.free_plain(i) && self.word(i).tok.kind == Kind::Word)
                });
                match pick {
                    Some(i) => {
                        let v = self.word(i).tok.raw.clone();
                        self.take_word(i);
                        out.insert(arg.into(), Value::from(v));
                        Ok(())
                    }
                    None => Err(need()),
                }
            }
            Slot::Dest | Slot::OptDest | Slot::CopyDest | Slot::ArchiveDest => {
                self.dest(arg, slot, out)
            }
            Slot::MkdirPath => {
                let named = self.ent_of(|e| match e {
                    Ent::Named(n) => Some(n.clone()),
                    _ => None,
                });
                let ents = self.path_ents();
                let base = match named {
                    Some(n) => Some(n),
                    None => {
                        // A path said without "in": the directory itself.
                        if let Some((k, p, _, _)) = ents
                            .iter()
                            .find(|(_, _, p, _)| !matches!(p, Some(Prep::Loc)))
                        {
                            self.take_ent(*k);
                            Some(p.clone())
                        } else if let Some(&i) = self.word_paths(&[]).first() {
                            self.take_word(i);
                            Some(self.word(i).tok.raw.clone())
                        } else {
                            None
                        }
                    }
                };
                let ents = self.path_ents();
                let parent = ents
                    .iter()
                    .find(|(_, _, p, _)| matches!(p, Some(Prep::Loc)))
                    .cloned();
                let path = match (base, parent) {
                    (Some(b), Some((k, par, _, _)))
                        if !b.starts_with('/') && !b.starts_with('~') =>
                    {
                        self.take_ent(k);
                        format!("{}/{}", par.trim_end_matches('/'), b)
                    }
                    (Some(b), _) => b,
                    (None, Some((k, par, _, _))) => {
                        self.take_ent(k);
                        par
                    }
                    (None, None) => return Err(need()),
                };
                out.insert(arg.into(), Value::from(self.expand(&path)));
                Ok(())
            }
            Slot::Count => {
                if let Some(n) = self.ent_of(|e| match e {
                    Ent::Count { n, .. } => Some(*n),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(n));
                }
                Ok(())
            }
            Slot::SizeKind => {
                if self.has("dir") {
                    out.insert(arg.into(), Value::from("dirs"));
                } else if self.has("file") {
                    out.insert(arg.into(), Value::from("files"));
                }
                Ok(())
            }
            Slot::EntryType => {
                if self.has("dir") {
                    out.insert(arg.into(), Value::from("dir"));
                } else if self.has("file") {
                    out.insert(arg.into(), Value::from("file"));
                }
                Ok(())
            }
            Slot::CountWhat => {
                let what = if self.flag_present(&["-l", "--lines"]) || self.has("line") {
                    Some("lines")
                } else if self.flag_present(&["-w", "--words"]) {
                    Some("words")
                } else if self.flag_present(&["-c", "-m", "--bytes", "--chars"]) {
                    Some("bytes")
                } else if self.has("line") {
                    Some("lines")
                } else if self.has("words") {
                    Some("words")
                } else if self.has("bytes") {
                    Some("bytes")
                } else if self.has("dir") {
                    Some("dirs")
                } else if self.has("file") {
                    Some("files")
                } else {
                    None
                };
                if let Some(w) = what {
                    out.insert(arg.into(), Value::from(w));
                }
                Ok(())
            }
            Slot::MinSize | Slot::MaxSize => {
                let want_min = slot == Slot::MinSize;
                if let Some(b) = self.ent_of(|e| match e {
                    Ent::Size { bytes, cmp } if (*cmp == Cmp::Less) != want_min => Some(*bytes),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(b));
                }
                Ok(())
            }
            Slot::OlderThan | Slot::NewerThan => {
                let want_older = slot == Slot::OlderThan;
                if let Some(s) = self.ent_of(|e| match e {
                    Ent::Age { secs, rel } if (*rel == Rel::Older) == want_older => Some(*secs),
                    Ent::Today if !want_older => Some(86_400),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(s));
                }
                Ok(())
            }
            Slot::Glob => {
                let g = self.ent_of(|e| match e {
                    Ent::Glob(g) => Some(g.clone()),
                    _ => None,
                });
                let g = g.or_else(|| {
                    if self.intent.def.action == "fs.find" {
                        self.ent_of(|e| match e {
                            Ent::Named(n) => Some(n.clone()),
                            _ => None,
                        })
                    } else {
                        None
                    }
                });
                if let Some(g) = g {
                    out.insert(arg.into(), Value::from(g));
                }
                Ok(())
            }
            Slot::Flag(what) => {
                if self.flag_present(what) {
                    out.insert(arg.into(), Value::from(true));
                }
                Ok(())
            }
            Slot::Recursive => {
                let said = self.flag_present(&["recursive", "-r", "-R", "-rf", "-fr", "-Rf"]);
                let dir_noun = self.has("dir");
                if said || dir_noun {
                    out.insert(arg.into(), Value::from(true));
                }
                Ok(())
            }
            Slot::Pattern => {
                if let Some(t) = self.ent_of(|e| match e {
                    Ent::Quoted { text, prep }
                        if !matches!(prep, Some(Prep::Loc | Prep::Dest | Prep::Src | Prep::Of)) =>
                    {
                        Some(text.clone())
                    }
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(t));
                    return Ok(());
                }
                // Any word may be searched for, even one that is glue elsewhere ("hello").
                let searchable = |f: &Self, i: usize| {
                    let w = f.word(i);
                    w.tok.kind == Kind::Word
                        && f.c.in_ent[i].is_none()
                        && !f.used_word[i]
                        && matches!(w.lex.class, Class::Content | Class::Glue)
                        && !ARTICLES.contains(&w.tok.low.as_str())
                        && !w.lex.concept.is_some_and(|c| f.own.has(c))
                };
                // "search src for unwrap": the word after "for" is the pattern.
                let mut pick = (1..self.c.w.len()).find(|&i| {
                    searchable(self, i)
                        && self.word(i).lex.class != Class::Quantifier
                        && !matches!(
                            self.word(i).tok.low.as_str(),
                            "every" | "any" | "each" | "all"
                        )
                        && self.c.w[i - 1].tok.low == "for"
                        && self.c.in_ent[i - 1].is_none()
                });
                // Else the word after the trigger ("grep TODO", "mention asyncio").
                for &t in self.trigger_words.iter().filter(|_| pick.is_none()) {
                    let mut j = t + 1;
                    while j < self.c.w.len()
                        && (self.c.w[j].tok.kind == Kind::Flag
                            || matches!(
                                self.c.w[j].tok.low.as_str(),
                                "for" | "the" | "word" | "string" | "text" | "term"
                            ))
                        && self.c.in_ent[j].is_none()
                    {
                        j += 1;
                    }
                    // After "containing"/"mention" any word is searchable ("hello"); after a
                    // plain "find" only a content word.
                    let after_grep = self.concept_is(t, "grep");
                    let ok = j < self.c.w.len()
                        && if after_grep {
                            searchable(self, j)
                                && !matches!(
                                    self.word(j).tok.low.as_str(),
                                    "every" | "any" | "each" | "all"
                                )
                        } else {
                            self.free(j) && self.word(j).tok.kind == Kind::Word
                        };
                    if ok {
                        pick = Some(j);
                        break;
                    }
                }
                // "which files is requests imported in": with a grep word, the one unknown
                // word left is the pattern.
                let grep = self
                    .trigger_words
                    .iter()
                    .any(|&t| self.concept_is(t, "grep"));
                let pick = pick.or_else(|| {
                    grep.then(|| {
                        (0..self.c.w.len()).find(|&i| {
                            self.free_plain(i)
                                && self.word(i).tok.kind == Kind::Word
                                && self.prep_before(i) != Some(Prep::Loc)
                        })
                    })
                    .flatten()
                });
                match pick {
                    Some(i) => {
                        let v = self.word(i).tok.raw.clone();
                        self.used_word[i] = true;
                        out.insert(arg.into(), Value::from(v));
                        Ok(())
                    }
                    None => Err(need()),
                }
            }
            Slot::NoText => {
                out.insert(arg.into(), Value::from(""));
                Ok(())
            }
            Slot::Text => {
                let t = self
                    .ent_of(|e| match e {
                        Ent::Quoted { text, prep }
                            if !matches!(
                                prep,
                                Some(Prep::Loc | Prep::Dest | Prep::Src | Prep::Of)
                            ) =>
                        {
                            Some(text.clone())
                        }
                        _ => None,
                    })
                    .or_else(|| {
                        self.ent_of(|e| match e {
                            Ent::Quoted { text, .. } => Some(text.clone()),
                            _ => None,
                        })
                    });
                match t {
                    Some(t) => {
                        out.insert(arg.into(), Value::from(t));
                        Ok(())
                    }
                    None => Err(need()),
                }
            }
            Slot::Name(many) => match self.names(many) {
                Some(v) if v.len() == 1 => {
                    out.insert(arg.into(), Value::from(v[0].clone()));
                    Ok(())
                }
                Some(v) => {
                    // Several names: one step each (split by the caller).
                    out.insert(arg.into(), Value::from(v));
                    Ok(())
                }
                None => Err(need()),
            },
            Slot::Names => match self.names(true) {
                Some(v) => {
                    out.insert(arg.into(), paths_value(v));
                    Ok(())
                }
                None => Err(need()),
            },
            Slot::OptName => {
                if let Some(n) = self.ent_of(|e| match e {
                    Ent::Named(n) => Some(n.clone()),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(n));
                    return Ok(());
                }
                if let Some(i) = (0..self.c.w.len())
                    .find(|&i| self.free_plain(i) && self.word(i).tok.kind == Kind::Word)
                {
                    let v = self.word(i).tok.raw.clone();
                    self.used_word[i] = true;
                    out.insert(arg.into(), Value::from(v));
                }
                Ok(())
            }
            Slot::Query => {
                let mut parts: Vec<(usize, String)> = Vec::new();
                for (k, e) in self.c.ents.iter().enumerate() {
                    if let Ent::Quoted { text, .. } = &e.ent {
                        if !self.used_ent[k] {
                            parts.push((e.start, text.clone()));
                        }
                    }
                }
                for k in 0..self.c.ents.len() {
                    if matches!(self.c.ents[k].ent, Ent::Quoted { .. }) {
                        self.used_ent[k] = true;
                    }
                }
                for i in 0..self.c.w.len() {
                    if self.free(i) {
                        parts.push((i, self.word(i).tok.raw.clone()));
                        self.used_word[i] = true;
                    }
                }
                parts.sort_by_key(|p| p.0);
                if parts.is_empty() {
                    return Err(need());
                }
                let q: Vec<String> = parts.into_iter().map(|p| p.1).collect();
                out.insert(arg.into(), Value::from(q.join(" ")));
                Ok(())
            }
            Slot::KillTarget => {
                if let Some(p) = self.ent_of(|e| match e {
                    Ent::Pid(p) => Some(*p),
                    Ent::Count {
                        n,
                        pos: CountPos::Plain,
                    } => u32::try_from(*n).ok(),
                    _ => None,
                }) {
                    out.insert("pid".into(), Value::from(p));
                    return Ok(());
                }
                match self.names(true) {
                    Some(v) if v.len() == 1 && v[0].chars().all(|c| c.is_ascii_digit()) => {
                        out.insert("pid".into(), Value::from(v[0].parse::<u32>().unwrap_or(0)));
                        Ok(())
                    }
                    Some(v) if v.len() == 1 => {
                        out.insert("name".into(), Value::from(v[0].clone()));
                        Ok(())
                    }
                    Some(v) => {
                        out.insert("name".into(), Value::from(v));
                        Ok(())
                    }
                    None => Err(need()),
                }
            }
            Slot::Signal => {
                if let Some(s) = self.ent_of(|e| match e {
                    Ent::Signal(s) => Some(s.clone()),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(s));
                } else if self.flag_present(&["force"]) {
                    out.insert(arg.into(), Value::from("KILL"));
                }
                Ok(())
            }
            Slot::Sort => {
                if let Some(s) = self.ent_of(|e| match e {
                    Ent::Sort(s) => Some(*s),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(s));
                    return Ok(());
                }
                for (concept, key) in [("memory", "memory"), ("cpu", "cpu")] {
                    if let Some(i) = (0..self.c.w.len())
                        .find(|&i| self.c.in_ent[i].is_none() && self.concept_is(i, concept))
                    {
                        self.used_word[i] = true;
                        out.insert(arg.into(), Value::from(key));
                        return Ok(());
                    }
                }
                Ok(())
            }
            Slot::User => {
                for i in 1..self.c.w.len() {
                    let prev = self.c.w[i - 1].tok.low.as_str();
                    if self.free_plain(i) && matches!(prev, "user" | "by" | "owned" | "users") {
                        let v = self.word(i).tok.raw.clone();
                        self.used_word[i] = true;
                        if self.concept_is(i - 1, "users") {
                            self.used_word[i - 1] = true;
                        }
                        out.insert(arg.into(), Value::from(v));
                        return Ok(());
                    }
                }
                Ok(())
            }
            Slot::Mode => {
                if let Some(m) = self.ent_of(|e| match e {
                    Ent::Mode(m) => Some(m.clone()),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(m));
                    return Ok(());
                }
                if self.has("executable") {
                    out.insert(arg.into(), Value::from("+x"));
                    return Ok(());
                }
                if self.has("readonly") {
                    out.insert(arg.into(), Value::from("a-w"));
                    return Ok(());
                }
                Err("a mode such as 600 or +x".into())
            }
            Slot::Algo => {
                for w in self.c.w {
                    let a = match w.tok.low.as_str() {
                        "sha256" | "sha256sum" | "shasum" => "sha256",
                        "sha512" | "sha512sum" => "sha512",
                        "sha1" | "sha1sum" => "sha1",
                        "md5" | "md5sum" => "md5",
                        "blake3" | "b3sum" => "blake3",
                        _ => continue,
                    };
                    out.insert(arg.into(), Value::from(a));
                    break;
                }
                Ok(())
            }
            Slot::HeadTail => {
                let c = self.ent_of(|e| match e {
                    Ent::Count { n, pos } => Some((*n, *pos)),
                    _ => None,
                });
                if let Some((n, pos)) = c {
                    let name = match pos {
                        CountPos::Tail => "tail",
                        CountPos::Head => "head",
                        CountPos::Plain if self.has("tail") => "tail",
                        CountPos::Plain => "head",
                    };
                    out.insert(name.into(), Value::from(n));
                }
                let _ = arg;
                Ok(())
            }
            Slot::Port => {
                if let Some(p) = self.ent_of(|e| match e {
                    Ent::Port(p) => Some(*p),
                    Ent::Count {
                        n,
                        pos: CountPos::Plain,
                    } => u16::try_from(*n).ok(),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(p));
                }
                Ok(())
            }
            Slot::Host => {
                if let Some(h) = self.ent_of(|e| match e {
                    Ent::Host(h) => Some(h.clone()),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(h));
                    return Ok(());
                }
                match self.names(false) {
                    Some(v) => {
                        out.insert(arg.into(), Value::from(v[0].clone()));
                        Ok(())
                    }
                    None => Err(need()),
                }
            }
            Slot::Url => {
                if let Some(u) = self.ent_of(|e| match e {
                    Ent::Url(u) => Some(u.clone()),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(u));
                    return Ok(());
                }
                // "localhost:8080/health", "example.com"
                if let Some(h) = self.ent_of(|e| match e {
                    Ent::Host(h) => Some(h.clone()),
                    Ent::Path { path, .. }
                        if path.contains(':')
                            || path.contains('.') && !path.starts_with(['.', '/', '~']) =>
                    {
                        Some(path.clone())
                    }
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(format!("http://{h}")));
                    return Ok(());
                }
                for i in 0..self.c.w.len() {
                    let w = self.word(i);
                    if self.free(i) && w.tok.low.starts_with("localhost:") {
                        let v = format!("http://{}", w.tok.raw);
                        self.used_word[i] = true;
                        out.insert(arg.into(), Value::from(v));
                        return Ok(());
                    }
                }
                Err(need())
            }
            Slot::Since => {
                if let Some(s) = self.ent_of(|e| match e {
                    Ent::Age { secs, rel } if *rel != Rel::Older => Some(*secs),
                    _ => None,
                }) {
                    out.insert(arg.into(), Value::from(s));
                }
                Ok(())
            }
            Slot::Today => {
                if self
                    .ent_of(|e| match e {
                        Ent::Today => Some(()),
                        _ => None,
                    })
                    .is_some()
                {
                    out.insert(arg.into(), Value::from(true));
                }
                Ok(())
            }
            Slot::SvcState => {
                for (concept, state) in [
                    ("failed", "failed"),
                    ("running", "running"),
                    ("enable", "enabled"),
                ] {
                    if concept == "enable" {
                        continue;
                    }
                    if let Some(i) = (0..self.c.w.len())
                        .find(|&i| self.c.in_ent[i].is_none() && self.concept_is(i, concept))
                    {
                        self.used_word[i] = true;
                        out.insert(arg.into(), Value::from(state));
                        return Ok(());
                    }
                }
                Ok(())
            }
            Slot::Command => self.command(arg, out),
            Slot::Cwd | Slot::Timeout => Ok(()),
        }
    }

    /// Sources of a file action: paths, an earlier step's results, or — when the clause
    /// filters ("all .tmp files older than 7 days") — the results of an `fs.find` run first.
    fn objects(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Result<(), String> {
        let placeholder = kernos_core::StepRef::new(0, Some("path")).to_value();
        // "delete the 3 largest files in /tmp": the selection is a step of its own.
        if self.has("largest") && self.intent.def.action != "fs.largest" {
            let mut m = Map::new();
            for (a, s) in [
                ("path", Slot::Where(Some("."))),
                ("count", Slot::Count),
                ("kind", Slot::SizeKind),
            ] {
                let _ = self.fill(a, s, &mut m);
            }
            if !m.contains_key("count") {
                // "the biggest file" is one file; "the biggest files" the tool's default.
                let singular = (0..self.c.w.len()).any(|i| {
                    self.c.in_ent[i].is_none()
                        && matches!(
                            self.word(i).tok.low.as_str(),
                            "file" | "folder" | "directory" | "dir"
                        )
                });
                if singular {
                    m.insert("count".into(), Value::from(1));
                }
            }
            for i in 0..self.c.w.len() {
                if self.c.in_ent[i].is_none()
                    && (self.concept_is(i, "largest")
                        || self.concept_is(i, "file")
                        || self.concept_is(i, "dir")
                        || self.concept_is(i, "top"))
                {
                    self.used_word[i] = true;
                }
            }
            self.pre_step = Some(("largest", m));
            out.insert(arg.into(), placeholder);
            return Ok(());
        }
        if self.filters_present() {
            let find = self.pre_find_args();
            self.pre_step = Some(("find", find));
            out.insert(arg.into(), placeholder);
            return Ok(());
        }
        let mut objs: Vec<String> = Vec::new();
        // "the file called temp.txt"
        if let Some(n) = self.ent_of(|e| match e {
            Ent::Named(n) => Some(n.clone()),
            _ => None,
        }) {
            objs.push(n);
        }
        let ents = self.path_ents();
        // "the contents of D" is about what is in D.
        let contents_of = self.has("contents");
        for (k, p, prep, _) in &ents {
            if prep.is_none() || *prep == Some(Prep::Of) && !contents_of {
                self.take_ent(*k);
                objs.push(p.clone());
            }
        }
        let located: Vec<(usize, String)> = ents
            .iter()
            .filter(|(k, _, p, _)| {
                !self.used_ent[*k] && matches!(p, Some(Prep::Loc | Prep::Src | Prep::Of))
            })
            .map(|(k, p, _, _)| (*k, p.clone()))
            .collect();
        if objs.is_empty() {
            for i in self.word_paths(&[]) {
                objs.push(self.word(i).tok.raw.clone());
                self.take_word(i);
            }
        }
        if !objs.is_empty() {
            // "delete old.log from ./logs": relative objects live in the one place named.
            if located.len() == 1 && objs.iter().all(|o| !o.starts_with(['/', '~'])) {
                let (k, parent) = &located[0];
                self.take_ent(*k);
                objs = objs
                    .into_iter()
                    .map(|o| format!("{}/{}", parent.trim_end_matches('/'), o))
                    .collect();
            }
            let v: Vec<String> = objs.iter().map(|o| self.expand(o)).collect();
            out.insert(arg.into(), paths_value(v));
            return Ok(());
        }
        if let Some((k, parent)) = located.first().cloned() {
            // "everything in ./dist", "all files in ./tmp", "the contents of D": what is in
            // the place, not the place itself.
            let quant: Vec<usize> = (0..self.c.w.len())
                .filter(|&i| {
                    self.c.in_ent[i].is_none() && self.word(i).lex.class == Class::Quantifier
                })
                .collect();
            let plural_noun = (0..self.c.w.len()).find(|&i| {
                self.c.in_ent[i].is_none()
                    && (self.concept_is(i, "file") || self.concept_is(i, "dir"))
                    && self.word(i).tok.low.ends_with('s')
            });
            let contents = self.has("contents");
            self.take_ent(k);
            let path = self.expand(&parent);
            if !quant.is_empty() || plural_noun.is_some() || contents {
                for i in quant {
                    self.used_word[i] = true;
                }
                let mut m = Map::new();
                m.insert("path".into(), Value::from(path));
                match plural_noun {
                    Some(i) => {
                        self.used_word[i] = true;
                        let dirs = self.concept_is(i, "dir");
                        m.insert(
                            "type".into(),
                            Value::from(if dirs { "dir" } else { "file" }),
                        );
                        m.insert("max_depth".into(), Value::from(1));
                        self.pre_step = Some(("find", m));
                    }
                    None => {
                        m.insert("all".into(), Value::from(true));
                        self.pre_step = Some(("list", m));
                    }
                }
                out.insert(arg.into(), placeholder);
                return Ok(());
            }
            out.insert(arg.into(), Value::from(path));
            return Ok(());
        }
        if let Some((k, _)) = self.pronoun(None) {
            return match self.pronoun_paths(k, true) {
                Some(v) => {
                    out.insert(arg.into(), v);
                    Ok(())
                }
                None => Err(self.intent.def.needs.to_owned()),
            };
        }
        let mut cands = self.word_paths(&[Prep::Loc, Prep::Of, Prep::Src]);
        if cands.is_empty() {
            // A bare word is a relative path only when nothing else in the clause claims it
            // and it is not a quantifier ("delete everything" never deletes a file so named).
            cands = (0..self.c.w.len())
                .filter(|&i| {
                    self.free_plain(i)
                        && self.word(i).tok.kind == Kind::Word
                        && !self.word(i).lex.known_name
                })
                .collect();
        }
        if cands.is_empty() {
            return Err(self.intent.def.needs.to_owned());
        }
        let mut v = Vec::new();
        for i in cands {
            v.push(self.word(i).tok.raw.clone());
            self.take_word(i);
        }
        out.insert(arg.into(), paths_value(v));
        Ok(())
    }

    /// Arguments for the `fs.find` that feeds a filtered file action.
    fn pre_find_args(&mut self) -> Map<String, Value> {
        let mut m = Map::new();
        let slots: [(&'static str, Slot); 8] = [
            ("path", Slot::Where(Some("."))),
            ("name", Slot::Glob),
            ("min_size", Slot::MinSize),
            ("max_size", Slot::MaxSize),
            ("older_than", Slot::OlderThan),
            ("newer_than", Slot::NewerThan),
            ("empty", Slot::Flag(&["empty"])),
            ("hidden", Slot::Flag(&["hidden"])),
        ];
        for (a, s) in slots {
            let _ = self.fill(a, s, &mut m);
        }
        // A filtered file action works on files unless the request says directories.
        let dirs = self.has("dir");
        m.insert(
            "type".into(),
            Value::from(if dirs { "dir" } else { "file" }),
        );
        for i in 0..self.c.w.len() {
            if self.c.in_ent[i].is_none()
                && (self.concept_is(i, "file") || self.concept_is(i, "dir"))
            {
                self.used_word[i] = true;
            }
        }
        m
    }

    fn dest(
        &mut self,
        arg: &'static str,
        slot: Slot,
        out: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let ents = self.path_ents();
        let mut dest_preps = vec![Prep::Dest];
        if slot == Slot::OptDest {
            dest_preps.push(Prep::Loc);
        }
        let archive_ext = |p: &str| {
            let l = p.to_lowercase();
            [
                ".tar.gz", ".tgz", ".zip", ".tar", ".tar.bz2", ".tar.xz", ".tbz2",
            ]
            .iter()
            .any(|e| l.ends_with(e))
        };
        // "to D", "into D", "as D"
        let by_prep = ents
            .iter()
            .rev()
            .find(|(_, _, p, _)| p.is_some_and(|p| dest_preps.contains(&p)))
            .cloned();
        let pick = by_prep.or_else(|| {
            if slot == Slot::ArchiveDest {
                ents.iter().find(|(_, p, _, _)| archive_ext(p)).cloned()
            } else if matches!(slot, Slot::Dest | Slot::CopyDest) {
                // "cp a b": the last of two or more bare paths.
                let bare: Vec<_> = ents.iter().filter(|(_, _, p, _)| p.is_none()).collect();
                (bare.len() >= 2).then(|| bare[bare.len() - 1].clone())
            } else {
                None
            }
        });
        if let Some((k, p, _, _)) = pick {
            self.take_ent(k);
            out.insert(arg.into(), Value::from(self.expand(&p)));
            return Ok(());
        }
        // "a tarball of ~/code called code.tar.gz", "a copy of x named y"
        if slot != Slot::OptDest {
            if let Some(n) = self.ent_of(|e| match e {
                Ent::Named(n) => Some(n.clone()),
                _ => None,
            }) {
                out.insert(arg.into(), Value::from(self.expand(&n)));
                return Ok(());
            }
        }
        if let Some((k, _)) = self.pronoun(Some(&dest_preps)) {
            return match self.pronoun_paths(k, false) {
                Some(Value::String(s)) => {
                    out.insert(arg.into(), Value::from(s));
                    Ok(())
                }
                Some(Value::Array(a)) if !a.is_empty() => {
                    out.insert(arg.into(), a[0].clone());
                    Ok(())
                }
                _ => Err(self.intent.def.needs.to_owned()),
            };
        }
        // "to backups" — a word after "to"/"into".
        let words: Vec<usize> = (0..self.c.w.len())
            .filter(|&i| {
                self.free(i)
                    && self.word(i).tok.kind == Kind::Word
                    && self.prep_before(i).is_some_and(|p| dest_preps.contains(&p))
                    && self.word(i).lex.concept.is_none()
            })
            .collect();
        if let Some(&i) = words.last() {
            let v = self.word(i).tok.raw.clone();
            self.take_word(i);
            out.insert(arg.into(), Value::from(v));
            return Ok(());
        }
        match slot {
            Slot::OptDest => Ok(()),
            Slot::CopyDest | Slot::ArchiveDest => {
                // Derived from the source once it is known: "<src>.bak", "<src>.tar.gz".
                let backup = slot == Slot::CopyDest && self.has("backup");
                if slot == Slot::CopyDest && !backup {
                    return Err(self.intent.def.needs.to_owned());
                }
                out.insert(arg.into(), Value::Null);
                Ok(())
            }
            _ => Err(self.intent.def.needs.to_owned()),
        }
    }

    /// shell.run: everything after "run"/"execute", verbatim, minus a trailing "in DIR" and
    /// "with a timeout of N".
    fn command(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Result<(), String> {
        let first = self.c.first_content(self.vocab);
        let Some(&t) = self.trigger_words.first() else {
            return Err(self.intent.def.needs.to_owned());
        };
        if first != Some(t) {
            return Err("\u{201c}run\u{201d} at the start, followed by the command line".into());
        }
        let n = self.c.w.len();
        for i in 0..n {
            self.used_word[i] = true;
        }
        for k in 0..self.c.ents.len() {
            self.used_ent[k] = true;
        }
        // The quoted form: run 'make test' [in DIR] [with a timeout of N].
        let mut start = t + 1;
        // "run the command 'ls'": skip the words that introduce the command, nothing else
        // ("run the tests" is not a command line).
        let intro = start + 1 < n
            && self.c.w[start].tok.low == "the"
            && matches!(self.c.w[start + 1].tok.low.as_str(), "command" | "cmd");
        if intro {
            start += 2;
        } else if start < n && matches!(self.c.w[start].tok.low.as_str(), "command" | "cmd") {
            start += 1;
        }
        if start >= n {
            return Err(self.intent.def.needs.to_owned());
        }
        let mut end = n;
        // Trailing words that are about how to run, not what.
        loop {
            let before = end;
            while end > start
                && (self.c.w[end - 1].tok.kind == Kind::Punct && self.c.w[end - 1].tok.raw != ")"
                    || matches!(
                        self.c.w[end - 1].tok.low.as_str(),
                        "please" | "thanks" | "now"
                    ))
            {
                end -= 1;
            }
            if end > start + 1
                && self.c.w[end - 2].tok.low == "for"
                && self.c.w[end - 1].tok.low == "me"
            {
                end -= 2;
            }
            // "with a timeout of 30 seconds", "timeout 30s"
            if let Some(k) = self.c.in_ent[end.saturating_sub(1)] {
                if let Ent::Age { secs, .. } = self.c.ents[k].ent {
                    let s = self.c.ents[k].start;
                    let mut j = s;
                    // Only a duration introduced as a limit ("with a timeout of 60
                    // seconds", "for at most 5 minutes") is a timeout; the rest is command.
                    let mut said = false;
                    while j > start
                        && matches!(
                            self.c.w[j - 1].tok.low.as_str(),
                            "timeout"
                                | "with"
                                | "a"
                                | "of"
                                | "limit"
                                | "time"
                                | "at"
                                | "most"
                                | "max"
                                | "for"
                                | "up"
                                | "to"
                        )
                    {
                        said |= matches!(
                            self.c.w[j - 1].tok.low.as_str(),
                            "timeout" | "limit" | "most" | "max"
                        );
                        j -= 1;
                    }
                    if said && j < s {
                        out.insert("timeout".into(), Value::from(secs));
                        end = j;
                    }
                }
            }
            // "in ~/proj"
            if end > start + 1 {
                if let Some(k) = self.c.in_ent[end - 1] {
                    if let Ent::Path {
                        path,
                        prep: Some(Prep::Loc),
                        ..
                    } = &self.c.ents[k].ent
                    {
                        if self.c.ents[k].end == end {
                            let s = self.c.ents[k].start;
                            let mut j = s;
                            while j > start
                                && (matches!(self.c.w[j - 1].lex.class, Class::Prep(_))
                                    || matches!(
                                        self.c.w[j - 1].tok.low.as_str(),
                                        "the" | "my" | "directory" | "folder" | "dir"
                                    ))
                            {
                                j -= 1;
                            }
                            if j > start {
                                out.insert("cwd".into(), Value::from(expand_home(path, self.home)));
                                end = j;
                            }
                        }
                    }
                }
            }
            if end == before {
                break;
            }
        }
        if end <= start {
            return Err(self.intent.def.needs.to_owned());
        }
        let cmd = if end == start + 1 && self.c.w[start].tok.kind == Kind::Quoted {
            self.c.w[start].tok.raw.clone()
        } else {
            let a = self.c.w[start].tok.start;
            let b = self.c.w[end - 1].tok.end;
            self.c.src.get(a..b).unwrap_or("").trim().to_owned()
        };
        if cmd.is_empty() {
            return Err(self.intent.def.needs.to_owned());
        }
        // "run the tests" is not a command line.
        let head = cmd.split_whitespace().next().unwrap_or("").to_lowercase();
        if matches!(
            self.vocab.lookup(&head).map(|l| l.class),
            Some(Class::Glue | Class::Pronoun | Class::Quantifier | Class::Prep(_))
        ) {
            return Err("the exact command line (quote it: run 'make test')".into());
        }
        out.insert(arg.into(), Value::from(cmd));
        Ok(())
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
    // Best trigger: exact beats fuzzy, then more content concepts.
    let mut best: Option<(usize, usize, f32, &Vec<Cid>)> = None; // (fuzzy count, len, weight)
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
            Some((bf, _, bw, _)) => {
                (fuzzy, -weight as i32) < (bf, -bw as i32) || fuzzy == bf && weight > bw
            }
        };
        if better {
            best = Some((fuzzy, alt.len(), weight, alt));
        }
    }
    let (_, _, trig_weight, alt) = best?;
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
    let fuzzy_verb = (0..c.w.len())
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
        .and_then(|i| c.w[i].fuzzy.map(|f| (c.w[i].tok.raw.clone(), f)));
    let mut f = Filler {
        c,
        vocab,
        intent,
        own,
        trigger_words,
        used_word: vec![false; c.w.len()],
        used_ent: vec![false; c.ents.len()],
        home,
        referent,
        penalty: 0.0,
        pronoun_error: None,
        pre_step: None,
    };
    let mut args = Map::new();
    let mut missing = None;
    for (name, slot) in intent.def.slots {
        if let Err(m) = f.fill(name, *slot, &mut args) {
            if missing.is_none() {
                missing = Some(m);
            }
        }
    }
    if let Some(e) = f.pronoun_error.take() {
        missing = Some(e);
    }
    // A pronoun the intent had no use for ("count them" after a find) would be silently
    // dropped; better to say so.
    // "this"/"that" alone are often deictic ("what distro is this"), so only the others.
    let strong = |e: &Entity| {
        !matches!(c.w[e.start].tok.low.as_str(), "this" | "that") || e.end > e.start + 1
    };
    if missing.is_none() {
        if let Some(e) = c
            .ents
            .iter()
            .enumerate()
            .find(|(k, e)| matches!(e.ent, Ent::Pronoun { .. }) && !f.used_ent[*k] && strong(e))
        {
            let e = e.1;
            let said = c
                .src
                .get(c.w[e.start].tok.start..c.w[e.end - 1].tok.end)
                .unwrap_or("it");
            missing = Some(format!(
                "something it can take \u{201c}{said}\u{201d} for (an earlier step's results cannot go there)"
            ));
        }
    }
    // Derived destinations, once the source is known.
    if args.get("dest") == Some(&Value::Null) {
        let src = match args.get("source") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(a)) if a.len() == 1 => a[0].as_str().map(str::to_owned),
            _ => None,
        };
        match (intent.def.action, src) {
            ("fs.copy", Some(s)) => {
                args.insert(
                    "dest".into(),
                    Value::from(format!("{}.bak", s.trim_end_matches('/'))),
                );
            }
            ("fs.archive", src) => {
                // The verb picks the format: "zip it" → .zip, "tar it" → .tar, else .tar.gz.
                let ext = if c.w.iter().any(|x| x.tok.low == "zip") {
                    "zip"
                } else if c.w.iter().any(|x| x.tok.low == "tar") {
                    "tar"
                } else {
                    "tar.gz"
                };
                let base = src
                    .as_deref()
                    .map(|s| {
                        s.trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .filter(|b| !b.is_empty() && b != "." && b != "~" && b != "..")
                    .unwrap_or_else(|| "archive".to_owned());
                args.insert("dest".into(), Value::from(format!("{base}.{ext}")));
            }
            _ => {
                args.remove("dest");
                if missing.is_none() {
                    missing = Some(intent.def.needs.to_owned());
                }
            }
        }
    }
    // Coverage: which meaningful words were explained.
    let mut total = 0.0f32;
    let mut explained = 0.0f32;
    let mut unexplained = Vec::new();
    let mut unsure = Vec::new();
    let ent_words: Vec<bool> = {
        let mut v = vec![false; c.w.len()];
        for (k, e) in c.ents.iter().enumerate() {
            if f.used_ent[k] {
                for x in v.iter_mut().take(e.end).skip(e.start) {
                    *x = true;
                }
            }
        }
        v
    };
    let mut seen_ents = vec![false; c.ents.len()];
    // A filter the intent cannot apply ("how many python files": fs.count has no glob)
    // changes the answer, so it weighs more than an unknown word.
    let mut filter_penalty = 0.0f32;
    for (i, w) in c.w.iter().enumerate() {
        let quantifier_unused = w.lex.class == Class::Quantifier && !f.used_word[i];
        if matches!(w.lex.class, Class::Hedge | Class::Negation) && c.in_ent[i].is_none()
            || quantifier_unused
        {
            unsure.push(w.tok.raw.clone());
        }
        if let Some(k) = c.in_ent[i] {
            if seen_ents[k] {
                continue;
            }
            seen_ents[k] = true;
            total += 1.0;
            if f.used_ent[k] || ent_words[i] {
                explained += 1.0;
            } else {
                let e = &c.ents[k];
                if matches!(e.ent, Ent::Glob(_) | Ent::Size { .. } | Ent::Age { .. }) {
                    filter_penalty += 1.0;
                    if missing.is_none() {
                        let text = c
                            .src
                            .get(c.w[e.start].tok.start..c.w[e.end - 1].tok.end)
                            .unwrap_or("");
                        missing = Some(format!(
                            "a way to apply \u{201c}{text}\u{201d}, which this action cannot filter by"
                        ));
                    }
                }
                let text = c
                    .src
                    .get(c.w[e.start].tok.start..c.w[e.end - 1].tok.end)
                    .unwrap_or("");
                unexplained.push(text.to_owned());
            }
            continue;
        }
        if is_glue(w, vocab) || w.lex.class == Class::Quantifier && !intent.def.mutating {
            // "anything bigger than 1.5G": a quantifier changes nothing about a read.
            continue;
        }
        total += 1.0;
        let own_word = w.lex.concept.is_some_and(|x| own.has(x));
        if own_word || f.used_word[i] {
            explained += if w.fuzzy.is_some() { 0.8 } else { 1.0 };
        } else {
            unexplained.push(w.tok.raw.clone());
        }
    }
    let coverage = if total == 0.0 { 1.0 } else { explained / total };
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
    // Listing or searching "a file" as if it were a directory is the wrong reading.
    let shape_penalty = match (intent.def.action, args.get("path")) {
        ("fs.list" | "fs.largest" | "fs.find" | "fs.count", Some(Value::String(p)))
            if entities::looks_like_file(p)
                && !matches!(args.get("what"), Some(v) if v == "lines" || v == "words" || v == "bytes") =>
        {
            1.0
        }
        _ => 0.0,
    };
    let score = trig_weight + 0.5 * cue_hits.min(3.0) + 0.15 * filled + 0.25 * required_filled
        - shape_penalty
        - 1.0 * unexplained.len() as f32
        - 0.4 * fuzzy.len() as f32
        - filter_penalty
        - f.penalty;
    // Several names → several steps.
    let mut sets = vec![args];
    if let Some((key, list)) = sets[0].iter().find_map(|(k, v)| {
        match (
            intent
                .def
                .slots
                .iter()
                .any(|(n, s)| n == k && matches!(s, Slot::Name(true)))
                || (k == "name" && intent.def.action == "proc.kill"),
            v,
        ) {
            (true, Value::Array(a)) => Some((k.clone(), a.clone())),
            _ => None,
        }
    }) {
        let base = sets[0].clone();
        sets = list
            .into_iter()
            .take(8)
            .map(|v| {
                let mut m = base.clone();
                m.insert(key.clone(), v);
                m
            })
            .collect();
    }
    Some(Candidate {
        intent: idx,
        args: sets,
        pre_step: f.pre_step.take(),
        score,
        coverage,
        fuzzy,
        fuzzy_verb,
        missing,
        unexplained,
        unsure,
    })
}
