//! Filling an intent's argument slots from one clause: one method per slot kind (see
//! [`Slot`]), each taking the words and entities it explains so no two slots claim the same
//! one.

use serde_json::{Map, Value};

use crate::clause::{Bits, Clause, Referent, expand_home};
use crate::entities::{self, Cmp, CountPos, Ent, Rel};
use crate::intents::{Intent, Slot};
use crate::lex::Kind;
use crate::vocab::{Class, Prep, Vocab, Word};

/// A slot filled (or optional and left empty), or what a required one still needs.
type Filled = Result<(), String>;

/// Per-intent filling state.
pub(crate) struct Filler<'c, 'a> {
    c: &'c Clause<'a>,
    vocab: &'c Vocab,
    intent: &'c Intent,
    /// Trigger ∪ cue concepts: words with these explain themselves.
    own: Bits,
    trigger_words: Vec<usize>,
    /// Words a slot took.
    pub used_word: Vec<bool>,
    /// Entities a slot took.
    pub used_ent: Vec<bool>,
    home: &'c str,
    referent: Option<&'c Referent>,
    pronoun_error: Option<String>,
    /// A step to run first, whose rows feed the `Objects` argument: (action, arguments).
    pub pre_step: Option<(&'static str, Map<String, Value>)>,
}

const ARTICLES: &[&str] = &[
    "the", "a", "an", "my", "your", "our", "this", "that", "all", "some",
];

fn paths_value(v: Vec<String>) -> Value {
    if v.len() == 1 {
        Value::from(v.into_iter().next().unwrap_or_default())
    } else {
        Value::from(v)
    }
}

impl<'c, 'a> Filler<'c, 'a> {
    /// A filler for `intent` on clause `c`; `own`: the intent's trigger and cue concepts,
    /// `trigger_words`: the words its trigger matched.
    pub fn new(
        c: &'c Clause<'a>,
        vocab: &'c Vocab,
        intent: &'c Intent,
        own: Bits,
        trigger_words: Vec<usize>,
        home: &'c str,
        referent: Option<&'c Referent>,
    ) -> Filler<'c, 'a> {
        Filler {
            c,
            vocab,
            intent,
            own,
            trigger_words,
            used_word: vec![false; c.w.len()],
            used_ent: vec![false; c.ents.len()],
            home,
            referent,
            pronoun_error: None,
            pre_step: None,
        }
    }

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

    /// Names: "called X", else unknown words and known names (the first, or all when `many`),
    /// else a path without a slash; a pronoun gives the referent's names.
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

    /// Fills every slot of the intent in table order. The first slot that cannot be filled
    /// gives what is missing; a pronoun with no referent overrides it.
    pub fn fill_all(&mut self, out: &mut Map<String, Value>) -> Option<String> {
        let mut missing = None;
        for (name, slot) in self.intent.def.slots {
            if let Err(m) = self.fill(name, *slot, out) {
                if missing.is_none() {
                    missing = Some(m);
                }
            }
        }
        self.pronoun_error.take().or(missing)
    }

    /// Fills one slot; `Err` says what a required one still needs.
    fn fill(&mut self, arg: &'static str, slot: Slot, out: &mut Map<String, Value>) -> Filled {
        match slot {
            Slot::Where(default) => self.place(arg, default, default.is_none(), out),
            Slot::OptWhere => self.place(arg, None, false, out),
            Slot::Objects => self.objects(arg, out),
            Slot::Object => self.object(arg, true, out),
            Slot::OptObject => self.object(arg, false, out),
            Slot::Dest | Slot::OptDest | Slot::CopyDest | Slot::ArchiveDest => {
                self.dest(arg, slot, out)
            }
            Slot::MkdirPath => self.mkdir_path(arg, out),
            Slot::Count => self.count(arg, out),
            Slot::SizeKind => self.size_kind(arg, out),
            Slot::EntryType => self.entry_type(arg, out),
            Slot::CountWhat => self.count_what(arg, out),
            Slot::MinSize => self.size_bound(arg, true, out),
            Slot::MaxSize => self.size_bound(arg, false, out),
            Slot::OlderThan => self.age_bound(arg, true, out),
            Slot::NewerThan => self.age_bound(arg, false, out),
            Slot::Glob => self.glob(arg, out),
            Slot::Flag(what) => self.flag(arg, what, out),
            Slot::Recursive => self.recursive(arg, out),
            Slot::Pattern => self.pattern(arg, out),
            Slot::Text => self.text(arg, out),
            Slot::NoText => self.no_text(arg, out),
            Slot::Name(many) => self.name(arg, many, out),
            Slot::Names => self.package_names(arg, out),
            Slot::OptName => self.opt_name(arg, out),
            Slot::Query => self.query(arg, out),
            Slot::KillTarget => self.kill_target(out),
            Slot::Signal => self.signal(arg, out),
            Slot::Sort => self.sort(arg, out),
            Slot::MtimeOrder => self.mtime_order(arg, out),
            Slot::User => self.user(arg, out),
            Slot::Mode => self.mode(arg, out),
            Slot::Algo => self.algo(arg, out),
            Slot::HeadTail => self.head_tail(out),
            Slot::Port => self.port(arg, out),
            Slot::Host => self.host(arg, out),
            Slot::Url => self.url(arg, out),
            Slot::Since => self.since(arg, out),
            Slot::Today => self.today(arg, out),
            Slot::SvcState => self.svc_state(arg, out),
            Slot::Command => self.command(arg, out),
            // Filled by `command`, from the end of the command line.
            Slot::Cwd | Slot::Timeout => Ok(()),
        }
    }

    /// What the intent needs, for a required slot left empty.
    fn need(&self) -> String {
        self.intent.def.needs.to_owned()
    }

    /// The first unused word that is free and unknown to the vocabulary.
    fn first_plain_word(&self) -> Option<usize> {
        (0..self.c.w.len()).find(|&i| self.free_plain(i) && self.word(i).tok.kind == Kind::Word)
    }

    /// `Slot::Where` / `Slot::OptWhere`: a path not after "to"/"into", a word naming a
    /// place, the word left once the pattern is taken, a pronoun, else `default`.
    fn place(
        &mut self,
        arg: &'static str,
        default: Option<&'static str>,
        required: bool,
        out: &mut Map<String, Value>,
    ) -> Filled {
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
        let word = self
            .word_paths(&[Prep::Loc, Prep::Of, Prep::Src])
            .first()
            .copied()
            // "grep TODO src", "search src for unwrap": once the pattern is taken, a
            // remaining unknown word is where to search.
            .or_else(|| {
                out.contains_key("pattern")
                    .then(|| self.first_plain_word())
                    .flatten()
            })
            // "list src recursively": a plain word naming an entry of the working directory.
            .or_else(|| {
                (0..self.c.w.len()).find(|&i| {
                    self.free_plain(i)
                        && self.word(i).tok.kind == Kind::Word
                        && self.word(i).fuzzy.is_none()
                        && crate::grounding::exists(&self.word(i).tok.raw, self.c.cwd)
                })
            });
        if let Some(i) = word {
            let v = self.word(i).tok.raw.clone();
            self.take_word(i);
            out.insert(arg.into(), Value::from(v));
            return Ok(());
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
            None if required => Err(self.need()),
            None => Ok(()),
        }
    }

    /// `Slot::Object` / `Slot::OptObject`: one file — a path, a pronoun for one earlier
    /// path, else (when required) a word naming it.
    fn object(
        &mut self,
        arg: &'static str,
        required: bool,
        out: &mut Map<String, Value>,
    ) -> Filled {
        let ents = self.path_ents();
        if let Some((k, p, _, _)) = ents.first() {
            let v = self.expand(p);
            self.take_ent(*k);
            out.insert(arg.into(), Value::from(v));
            return Ok(());
        }
        if let Some((k, _)) = self.pronoun(None) {
            let Some(v) = self.pronoun_paths(k, false) else {
                return Err(self.need());
            };
            let v = match v {
                Value::Array(a) if a.len() == 1 => a.into_iter().next().unwrap_or(Value::Null),
                v => v,
            };
            if !v.is_string() {
                return Err("a single file, but the earlier result is several".into());
            }
            out.insert(arg.into(), v);
            return Ok(());
        }
        if !required {
            return Ok(());
        }
        let cands = self.word_paths(&[Prep::Loc, Prep::Of, Prep::Dest, Prep::Src]);
        let Some(i) = cands.first().copied().or_else(|| self.first_plain_word()) else {
            return Err(self.need());
        };
        let v = self.word(i).tok.raw.clone();
        self.take_word(i);
        out.insert(arg.into(), Value::from(v));
        Ok(())
    }

    /// `Slot::MkdirPath`: "called X in Y" → Y/X; a path said without "in" is the path itself.
    fn mkdir_path(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let base = match self.named() {
            Some(n) => Some(n),
            None => self.unplaced_path(),
        };
        let parent = self
            .path_ents()
            .into_iter()
            .find(|(_, _, p, _)| matches!(p, Some(Prep::Loc)));
        // "a folder called reports in archive": after a name, any word after "in" is the
        // place, even one that is a keyword elsewhere.
        if let (Some(b), None) = (base.as_deref(), parent.as_ref()) {
            if let Some(i) = self.word_place().filter(|_| !b.starts_with(['/', '~'])) {
                self.take_word(i);
                let path = format!("{}/{b}", self.word(i).tok.raw);
                out.insert(arg.into(), Value::from(self.expand(&path)));
                return Ok(());
            }
        }
        let path = match (base, parent) {
            (Some(b), Some((k, par, _, _))) if !b.starts_with('/') && !b.starts_with('~') => {
                self.take_ent(k);
                format!("{}/{}", par.trim_end_matches('/'), b)
            }
            (Some(b), _) => b,
            (None, Some((k, par, _, _))) => {
                self.take_ent(k);
                par
            }
            (None, None) => return Err(self.need()),
        };
        out.insert(arg.into(), Value::from(self.expand(&path)));
        Ok(())
    }

    /// A free word right after "in"/"under"/"inside": a place, whatever it means elsewhere
    /// (but not a typo of a keyword: that is no name the user chose).
    fn word_place(&self) -> Option<usize> {
        (0..self.c.w.len()).find(|&i| {
            self.free(i)
                && self.word(i).tok.kind == Kind::Word
                && self.word(i).fuzzy.is_none()
                && self.prep_before(i) == Some(Prep::Loc)
        })
    }

    /// A path said without "in" (a path entity, else a word naming one), taken.
    fn unplaced_path(&mut self) -> Option<String> {
        let ents = self.path_ents();
        if let Some((k, p, _, _)) = ents
            .iter()
            .find(|(_, _, p, _)| !matches!(p, Some(Prep::Loc)))
        {
            self.take_ent(*k);
            return Some(p.clone());
        }
        let &i = self.word_paths(&[]).first()?;
        self.take_word(i);
        Some(self.word(i).tok.raw.clone())
    }

    /// "called X", "named X", taken.
    fn named(&mut self) -> Option<String> {
        self.ent_of(|e| match e {
            Ent::Named(n) => Some(n.clone()),
            _ => None,
        })
    }

    /// `Slot::Count`: a number.
    fn count(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if let Some(n) = self.ent_of(|e| match e {
            Ent::Count { n, .. } => Some(*n),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(n));
        }
        Ok(())
    }

    /// `Slot::SizeKind`: files or dirs.
    fn size_kind(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if self.has("dir") {
            out.insert(arg.into(), Value::from("dirs"));
        } else if self.has("file") {
            out.insert(arg.into(), Value::from("files"));
        }
        Ok(())
    }

    /// `Slot::EntryType`: file or dir.
    fn entry_type(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if self.has("dir") {
            out.insert(arg.into(), Value::from("dir"));
        } else if self.has("file") {
            out.insert(arg.into(), Value::from("file"));
        }
        Ok(())
    }

    /// `Slot::CountWhat`: lines, words, bytes (by flag or word), dirs or files.
    fn count_what(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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

    /// `Slot::MinSize` / `Slot::MaxSize`: a size with the matching comparison.
    fn size_bound(
        &mut self,
        arg: &'static str,
        want_min: bool,
        out: &mut Map<String, Value>,
    ) -> Filled {
        if let Some(b) = self.ent_of(|e| match e {
            Ent::Size { bytes, cmp } if (*cmp == Cmp::Less) != want_min => Some(*bytes),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(b));
        }
        Ok(())
    }

    /// `Slot::OlderThan` / `Slot::NewerThan`: an age ("today" is newer than a day).
    fn age_bound(
        &mut self,
        arg: &'static str,
        want_older: bool,
        out: &mut Map<String, Value>,
    ) -> Filled {
        if let Some(s) = self.ent_of(|e| match e {
            Ent::Age { secs, rel } if (*rel == Rel::Older) == want_older => Some(*secs),
            Ent::Today if !want_older => Some(86_400),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(s));
        }
        Ok(())
    }

    /// `Slot::Glob`: a glob; for intents whose names are patterns, "called X" too.
    fn glob(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let g = self.ent_of(|e| match e {
            Ent::Glob(g) => Some(g.clone()),
            _ => None,
        });
        let g = g.or_else(|| {
            if self.intent.def.flags.named_is_glob {
                self.named()
            } else {
                None
            }
        });
        if let Some(g) = g {
            out.insert(arg.into(), Value::from(g));
        }
        Ok(())
    }

    /// `Slot::Flag`: `true` when one of the words or flags is there.
    fn flag(&mut self, arg: &'static str, what: &[&str], out: &mut Map<String, Value>) -> Filled {
        if self.flag_present(what) {
            out.insert(arg.into(), Value::from(true));
        }
        Ok(())
    }

    /// `Slot::Recursive`: said, or the object is a directory ("the folder big": the noun
    /// may be part of the place it names).
    fn recursive(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let said = self.flag_present(&["recursive", "-r", "-R", "-rf", "-fr", "-Rf"]);
        let dir_noun = self.has("dir")
            || self.c.ents.iter().enumerate().any(|(k, e)| {
                self.used_ent[k]
                    && matches!(e.ent, Ent::Path { .. })
                    && (e.start..e.end).any(|i| self.concept_is(i, "dir"))
            });
        if said || dir_noun {
            out.insert(arg.into(), Value::from(true));
        }
        Ok(())
    }

    /// `Slot::Pattern`: quoted text not naming a place, else a word that is searched for.
    fn pattern(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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
        let pick = self
            .pattern_after_for()
            .or_else(|| self.pattern_after_trigger())
            .or_else(|| self.pattern_left_over());
        let Some(i) = pick else {
            return Err(self.need());
        };
        let v = self.word(i).tok.raw.clone();
        self.used_word[i] = true;
        out.insert(arg.into(), Value::from(v));
        Ok(())
    }

    /// Any word may be searched for, even one that is glue elsewhere ("hello").
    fn searchable(&self, i: usize) -> bool {
        let w = self.word(i);
        w.tok.kind == Kind::Word
            && self.c.in_ent[i].is_none()
            && !self.used_word[i]
            && matches!(w.lex.class, Class::Content | Class::Glue)
            && !ARTICLES.contains(&w.tok.low.as_str())
            && !w.lex.concept.is_some_and(|c| self.own.has(c))
    }

    /// "search src for unwrap": the word after "for".
    fn pattern_after_for(&self) -> Option<usize> {
        (1..self.c.w.len()).find(|&i| {
            self.searchable(i)
                && self.word(i).lex.class != Class::Quantifier
                && !matches!(
                    self.word(i).tok.low.as_str(),
                    "every" | "any" | "each" | "all"
                )
                && self.c.w[i - 1].tok.low == "for"
                && self.c.in_ent[i - 1].is_none()
        })
    }

    /// "grep TODO", "mention asyncio": the word after the trigger.
    fn pattern_after_trigger(&self) -> Option<usize> {
        self.trigger_words.iter().find_map(|&t| {
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
            // After "containing"/"mention" any word is searchable ("hello"); after a plain
            // "find" only a content word.
            let ok = j < self.c.w.len()
                && if self.concept_is(t, "grep") {
                    self.searchable(j)
                        && !matches!(
                            self.word(j).tok.low.as_str(),
                            "every" | "any" | "each" | "all"
                        )
                } else {
                    // "find tiny files": a word before "files" describes them, it is no
                    // text to search for.
                    self.free(j)
                        && self.word(j).tok.kind == Kind::Word
                        && !(j + 1 < self.c.w.len()
                            && self.c.in_ent[j + 1].is_none()
                            && (self.concept_is(j + 1, "file") || self.concept_is(j + 1, "dir")))
                };
            ok.then_some(j)
        })
    }

    /// "which files is requests imported in": with a grep word, the one unknown word left.
    fn pattern_left_over(&self) -> Option<usize> {
        let grep = self
            .trigger_words
            .iter()
            .any(|&t| self.concept_is(t, "grep"));
        if !grep {
            return None;
        }
        (0..self.c.w.len()).find(|&i| {
            self.free_plain(i)
                && self.word(i).tok.kind == Kind::Word
                && self.prep_before(i) != Some(Prep::Loc)
        })
    }

    /// `Slot::NoText`: the empty string; any quoted text is left unused.
    fn no_text(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        out.insert(arg.into(), Value::from(""));
        Ok(())
    }

    /// `Slot::Text`: quoted text, preferably not one naming a place.
    fn text(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let t = self
            .ent_of(|e| match e {
                Ent::Quoted { text, prep }
                    if !matches!(prep, Some(Prep::Loc | Prep::Dest | Prep::Src | Prep::Of)) =>
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
        let Some(t) = t else {
            return Err(self.need());
        };
        out.insert(arg.into(), Value::from(t));
        Ok(())
    }

    /// `Slot::Name`: one name, or (`many`) a list the caller splits into one step each.
    fn name(&mut self, arg: &'static str, many: bool, out: &mut Map<String, Value>) -> Filled {
        match self.names(many) {
            Some(v) if v.len() == 1 => {
                out.insert(arg.into(), Value::from(v[0].clone()));
                Ok(())
            }
            Some(v) => {
                out.insert(arg.into(), Value::from(v));
                Ok(())
            }
            None => Err(self.need()),
        }
    }

    /// `Slot::Names`: package names, one or many, in one argument.
    fn package_names(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let Some(v) = self.names(true) else {
            return Err(self.need());
        };
        out.insert(arg.into(), paths_value(v));
        Ok(())
    }

    /// `Slot::OptName`: "called X" or an unknown word.
    fn opt_name(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if let Some(n) = self.named() {
            out.insert(arg.into(), Value::from(n));
            return Ok(());
        }
        if let Some(i) = self.first_plain_word() {
            let v = self.word(i).tok.raw.clone();
            self.used_word[i] = true;
            out.insert(arg.into(), Value::from(v));
        }
        Ok(())
    }

    /// `Slot::Query`: every quoted text and free word, in order.
    fn query(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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
            return Err(self.need());
        }
        let q: Vec<String> = parts.into_iter().map(|p| p.1).collect();
        out.insert(arg.into(), Value::from(q.join(" ")));
        Ok(())
    }

    /// `Slot::KillTarget`: `pid` when a number is given, else `name` (one or several).
    fn kill_target(&mut self, out: &mut Map<String, Value>) -> Filled {
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
            None => Err(self.need()),
        }
    }

    /// `Slot::Signal`: a signal name; "force" is KILL.
    fn signal(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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

    /// The first word outside entities with concept `name`, taken.
    fn take_concept(&mut self, name: &str) -> bool {
        let found =
            (0..self.c.w.len()).find(|&i| self.c.in_ent[i].is_none() && self.concept_is(i, name));
        if let Some(i) = found {
            self.used_word[i] = true;
        }
        found.is_some()
    }

    /// `Slot::Sort`: a sort entity, else "memory" or "cpu".
    fn sort(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if let Some(s) = self.ent_of(|e| match e {
            Ent::Sort(s) => Some(*s),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(s));
            return Ok(());
        }
        for key in ["memory", "cpu"] {
            if self.take_concept(key) {
                out.insert(arg.into(), Value::from(key));
                return Ok(());
            }
        }
        Ok(())
    }

    /// `Slot::MtimeOrder`: "newest"/"most recently modified" or "oldest"/"least recently".
    fn mtime_order(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        for order in ["newest", "oldest"] {
            if self.take_concept(order) {
                out.insert(arg.into(), Value::from(order));
                return Ok(());
            }
        }
        Ok(())
    }

    /// `Slot::User`: the unknown word after "user", "by", "owned".
    fn user(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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

    /// `Slot::Mode`: a mode, "executable" (+x) or "read-only" (a-w).
    fn mode(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let m = self.ent_of(|e| match e {
            Ent::Mode(m) => Some(m.clone()),
            _ => None,
        });
        let m = match m {
            Some(m) => m,
            None if self.has("executable") => "+x".to_owned(),
            None if self.has("readonly") => "a-w".to_owned(),
            None => return Err("a mode such as 600 or +x".into()),
        };
        out.insert(arg.into(), Value::from(m));
        Ok(())
    }

    /// `Slot::Algo`: the first checksum algorithm named.
    fn algo(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let algo = self.c.w.iter().find_map(|w| match w.tok.low.as_str() {
            "sha256" | "sha256sum" | "shasum" => Some("sha256"),
            "sha512" | "sha512sum" => Some("sha512"),
            "sha1" | "sha1sum" => Some("sha1"),
            "md5" | "md5sum" => Some("md5"),
            "blake3" | "b3sum" => Some("blake3"),
            _ => None,
        });
        if let Some(a) = algo {
            out.insert(arg.into(), Value::from(a));
        }
        Ok(())
    }

    /// `Slot::HeadTail`: `head` or `tail`, by where the count was said.
    fn head_tail(&mut self, out: &mut Map<String, Value>) -> Filled {
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
        Ok(())
    }

    /// `Slot::Port`: a port, or a plain number.
    fn port(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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

    /// `Slot::Host`: a host, else a name.
    fn host(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
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
            None => Err(self.need()),
        }
    }

    /// `Slot::Url`: a URL, else a host or host-like path ("localhost:8080/health",
    /// "example.com") as `http://…`.
    fn url(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if let Some(u) = self.ent_of(|e| match e {
            Ent::Url(u) => Some(u.clone()),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(u));
            return Ok(());
        }
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
        let local = (0..self.c.w.len())
            .find(|&i| self.free(i) && self.word(i).tok.low.starts_with("localhost:"));
        let Some(i) = local else {
            return Err(self.need());
        };
        let v = format!("http://{}", self.word(i).tok.raw);
        self.used_word[i] = true;
        out.insert(arg.into(), Value::from(v));
        Ok(())
    }

    /// `Slot::Since`: an age that is not "older than".
    fn since(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        if let Some(s) = self.ent_of(|e| match e {
            Ent::Age { secs, rel } if *rel != Rel::Older => Some(*secs),
            _ => None,
        }) {
            out.insert(arg.into(), Value::from(s));
        }
        Ok(())
    }

    /// `Slot::Today`: `true` when "today" is said.
    fn today(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let said = self.ent_of(|e| match e {
            Ent::Today => Some(()),
            _ => None,
        });
        if said.is_some() {
            out.insert(arg.into(), Value::from(true));
        }
        Ok(())
    }

    /// `Slot::SvcState`: failed or running services. ("enabled" is not a state filter: "enable"
    /// is a cue of the listing, and "list enabled services" lists them all.)
    fn svc_state(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        for state in ["failed", "running"] {
            if self.take_concept(state) {
                out.insert(arg.into(), Value::from(state));
                return Ok(());
            }
        }
        Ok(())
    }

    /// `Slot::Objects`: sources of a file action — paths, an earlier step's results, or
    /// (when the clause selects: "the 3 largest files", "all .tmp files older than 7 days",
    /// "everything in D") the results of a step run first.
    fn objects(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        // "delete the 3 largest files in /tmp": the selection is a step of its own.
        if self.has("largest") {
            let largest = self.largest_args();
            self.pre_step = Some(("largest", largest));
            out.insert(arg.into(), pre_step_rows());
            return Ok(());
        }
        if self.filters_present() {
            let find = self.pre_find_args();
            self.pre_step = Some(("find", find));
            out.insert(arg.into(), pre_step_rows());
            return Ok(());
        }
        let (objs, located) = self.said_objects();
        if !objs.is_empty() {
            let v = self.locate_objects(objs, &located);
            out.insert(arg.into(), paths_value(v));
            return Ok(());
        }
        if let Some((k, parent)) = located.first().cloned() {
            let v = self.place_or_contents(k, &parent);
            out.insert(arg.into(), v);
            return Ok(());
        }
        if let Some((k, _)) = self.pronoun(None) {
            let Some(v) = self.pronoun_paths(k, true) else {
                return Err(self.need());
            };
            out.insert(arg.into(), v);
            return Ok(());
        }
        let cands = self.bare_objects();
        if cands.is_empty() {
            return Err(self.need());
        }
        let mut v = Vec::new();
        for i in cands {
            v.push(self.word(i).tok.raw.clone());
            self.take_word(i);
        }
        out.insert(arg.into(), paths_value(v));
        Ok(())
    }

    /// Arguments for the `fs.largest` that selects the objects.
    fn largest_args(&mut self) -> Map<String, Value> {
        let mut m = Map::new();
        let _ = self.place("path", Some("."), false, &mut m);
        let _ = self.count("count", &mut m);
        let _ = self.size_kind("kind", &mut m);
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
        m
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
        // "modified" says the ages are modification times, which is what fs.find filters by.
        let ages = m.contains_key("older_than") || m.contains_key("newer_than");
        for i in 0..self.c.w.len() {
            if self.c.in_ent[i].is_none()
                && (self.concept_is(i, "file")
                    || self.concept_is(i, "dir")
                    || ages && self.concept_is(i, "modified"))
            {
                self.used_word[i] = true;
            }
        }
        m
    }

    /// Objects said outright ("the file called temp.txt", bare paths, "x of D", words
    /// naming paths), taken; and the unused places ("in D", "from D", "of D") beside them.
    fn said_objects(&mut self) -> (Vec<String>, Vec<(usize, String)>) {
        let mut objs: Vec<String> = Vec::new();
        if let Some(n) = self.named() {
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
        (objs, located)
    }

    /// "delete old.log from ./logs": relative objects live in the one place named.
    fn locate_objects(&mut self, objs: Vec<String>, located: &[(usize, String)]) -> Vec<String> {
        let objs = match located {
            [(k, parent)] if objs.iter().all(|o| !o.starts_with(['/', '~'])) => {
                self.take_ent(*k);
                objs.into_iter()
                    .map(|o| format!("{}/{}", parent.trim_end_matches('/'), o))
                    .collect()
            }
            _ => objs,
        };
        objs.iter().map(|o| self.expand(o)).collect()
    }

    /// A place given where objects are expected: the place itself, or — "everything in
    /// ./dist", "all files in ./tmp", "the contents of D" — what is in it, listed or found
    /// by a step run first.
    fn place_or_contents(&mut self, k: usize, parent: &str) -> Value {
        let quant: Vec<usize> = (0..self.c.w.len())
            .filter(|&i| self.c.in_ent[i].is_none() && self.word(i).lex.class == Class::Quantifier)
            .collect();
        let plural_noun = (0..self.c.w.len()).find(|&i| {
            self.c.in_ent[i].is_none()
                && (self.concept_is(i, "file") || self.concept_is(i, "dir"))
                && self.word(i).tok.low.ends_with('s')
        });
        let contents = self.has("contents");
        if contents {
            self.take_concept("contents");
        }
        self.take_ent(k);
        let path = self.expand(parent);
        if quant.is_empty() && plural_noun.is_none() && !contents {
            return Value::from(path);
        }
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
        pre_step_rows()
    }

    /// Words naming objects when nothing else does.
    fn bare_objects(&self) -> Vec<usize> {
        let cands = self.word_paths(&[Prep::Loc, Prep::Of, Prep::Src]);
        if !cands.is_empty() {
            return cands;
        }
        // A bare word is a relative path only when nothing else in the clause claims it and
        // it is not a quantifier ("delete everything" never deletes a file so named).
        (0..self.c.w.len())
            .filter(|&i| {
                self.free_plain(i)
                    && self.word(i).tok.kind == Kind::Word
                    && !self.word(i).lex.known_name
            })
            .collect()
    }

    /// `Slot::Dest`, `Slot::OptDest`, `Slot::CopyDest`, `Slot::ArchiveDest`: a path after
    /// "to"/"into"/"as" (or "in" for `OptDest`), else what the kind allows.
    fn dest(&mut self, arg: &'static str, slot: Slot, out: &mut Map<String, Value>) -> Filled {
        let mut dest_preps = vec![Prep::Dest];
        if slot == Slot::OptDest {
            dest_preps.push(Prep::Loc);
        }
        if let Some((k, p)) = self.dest_path(slot, &dest_preps) {
            self.take_ent(k);
            out.insert(arg.into(), Value::from(self.expand(&p)));
            return Ok(());
        }
        // "a tarball of ~/code called code.tar.gz", "a copy of x named y"
        if slot != Slot::OptDest {
            if let Some(n) = self.named() {
                out.insert(arg.into(), Value::from(self.expand(&n)));
                return Ok(());
            }
        }
        if let Some((k, _)) = self.pronoun(Some(&dest_preps)) {
            let v = match self.pronoun_paths(k, false) {
                Some(Value::String(s)) => Value::from(s),
                Some(Value::Array(a)) if !a.is_empty() => a[0].clone(),
                _ => return Err(self.need()),
            };
            out.insert(arg.into(), v);
            return Ok(());
        }
        // "to backups" — a word after "to"/"into".
        let word = (0..self.c.w.len()).rev().find(|&i| {
            self.free(i)
                && self.word(i).tok.kind == Kind::Word
                && self.prep_before(i).is_some_and(|p| dest_preps.contains(&p))
                && self.word(i).lex.concept.is_none()
        });
        if let Some(i) = word {
            let v = self.word(i).tok.raw.clone();
            self.take_word(i);
            out.insert(arg.into(), Value::from(v));
            return Ok(());
        }
        if matches!(slot, Slot::Dest | Slot::CopyDest) {
            if let Some(i) = self.command_line_dest() {
                let v = self.word(i).tok.raw.clone();
                self.take_word(i);
                out.insert(arg.into(), Value::from(self.expand(&v)));
                return Ok(());
            }
        }
        match slot {
            Slot::OptDest => Ok(()),
            // Derived from the source once it is known: "<src>.bak", "<src>.tar.gz"
            // (`candidate::derive_dest`).
            Slot::CopyDest if !self.has("backup") => Err(self.need()),
            Slot::CopyDest | Slot::ArchiveDest => {
                out.insert(arg.into(), Value::Null);
                Ok(())
            }
            _ => Err(self.need()),
        }
    }

    /// "cp -r src dst", "mv a b": written like a command line (the trigger first, then flags
    /// and exactly two plain words or paths), the second is the destination.
    fn command_line_dest(&self) -> Option<usize> {
        let &t = self.trigger_words.first()?;
        if self.c.first_content(self.vocab) != Some(t) {
            return None;
        }
        let rest: Vec<usize> = (t + 1..self.c.w.len())
            .filter(|&j| self.c.w[j].tok.kind != Kind::Flag)
            .collect();
        let plain = |j: usize| {
            self.c.in_ent[j].is_none()
                && self.c.w[j].tok.kind == Kind::Word
                && self.c.w[j].lex.class == Class::Content
                && !self.c.w[j].lex.concept.is_some_and(|c| self.own.has(c))
        };
        let path_ent = |j: usize| {
            self.c.in_ent[j]
                .is_some_and(|k| matches!(self.c.ents[k].ent, Ent::Path { prep: None, .. }))
        };
        match rest.as_slice() {
            [a, b] if (plain(*a) || path_ent(*a)) && plain(*b) && self.free(*b) => Some(*b),
            _ => None,
        }
    }

    /// The destination path entity: the last after a destination preposition; else, for an
    /// archive, the first with an archive's extension; else ("cp a b") the last of two or
    /// more bare paths.
    fn dest_path(&self, slot: Slot, dest_preps: &[Prep]) -> Option<(usize, String)> {
        let ents = self.path_ents();
        let by_prep = ents
            .iter()
            .rev()
            .find(|(_, _, p, _)| p.is_some_and(|p| dest_preps.contains(&p)));
        let pick = by_prep.or_else(|| match slot {
            Slot::ArchiveDest => ents.iter().find(|(_, p, _, _)| has_archive_ext(p)),
            Slot::Dest | Slot::CopyDest => {
                let bare: Vec<_> = ents.iter().filter(|(_, _, p, _)| p.is_none()).collect();
                (bare.len() >= 2).then(|| bare[bare.len() - 1])
            }
            _ => None,
        });
        pick.map(|(k, p, _, _)| (*k, p.clone()))
    }

    /// `Slot::Command`: everything after "run"/"execute", verbatim, minus a trailing "in DIR"
    /// (→ `cwd`) and "with a timeout of N" (→ `timeout`).
    fn command(&mut self, arg: &'static str, out: &mut Map<String, Value>) -> Filled {
        let first = self.c.first_content(self.vocab);
        let Some(&t) = self.trigger_words.first() else {
            return Err(self.need());
        };
        if first != Some(t) {
            return Err("\u{201c}run\u{201d} at the start, followed by the command line".into());
        }
        self.used_word.fill(true);
        self.used_ent.fill(true);
        let start = self.command_start(t);
        if start >= self.c.w.len() {
            return Err(self.need());
        }
        let end = self.command_end(start, out);
        if end <= start {
            return Err(self.need());
        }
        let cmd = if end == start + 1 && self.c.w[start].tok.kind == Kind::Quoted {
            self.c.w[start].tok.raw.clone()
        } else {
            let a = self.c.w[start].tok.start;
            let b = self.c.w[end - 1].tok.end;
            self.c.src.get(a..b).unwrap_or("").trim().to_owned()
        };
        if cmd.is_empty() {
            return Err(self.need());
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

    /// The first word of the command line after trigger word `t`. "run the command 'ls'":
    /// skips the words that introduce the command, nothing else ("run the tests" is not a
    /// command line).
    fn command_start(&self, t: usize) -> usize {
        let n = self.c.w.len();
        let start = t + 1;
        let intro = start + 1 < n
            && self.c.w[start].tok.low == "the"
            && matches!(self.c.w[start + 1].tok.low.as_str(), "command" | "cmd");
        if intro {
            start + 2
        } else if start < n && matches!(self.c.w[start].tok.low.as_str(), "command" | "cmd") {
            start + 1
        } else {
            start
        }
    }

    /// Where the command line ends: trailing words about how to run it, not what, are cut
    /// ("please", "for me", a timeout, a working directory), the last two into `out`.
    fn command_end(&self, start: usize, out: &mut Map<String, Value>) -> usize {
        let mut end = self.c.w.len();
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
            if let Some((secs, j)) = self.trailing_timeout(start, end) {
                out.insert("timeout".into(), Value::from(secs));
                end = j;
            }
            if let Some((cwd, j)) = self.trailing_cwd(start, end) {
                out.insert("cwd".into(), Value::from(cwd));
                end = j;
            }
            if end == before {
                return end;
            }
        }
    }

    /// "with a timeout of 30 seconds", "timeout 30s" ending at `end`: the seconds, and where
    /// the phrase starts.
    fn trailing_timeout(&self, start: usize, end: usize) -> Option<(u64, usize)> {
        let k = self.c.in_ent[end.saturating_sub(1)]?;
        let Ent::Age { secs, .. } = self.c.ents[k].ent else {
            return None;
        };
        let s = self.c.ents[k].start;
        let mut j = s;
        // Only a duration introduced as a limit ("with a timeout of 60 seconds", "for at most
        // 5 minutes") is a timeout; the rest is command.
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
        (said && j < s).then_some((secs, j))
    }

    /// "in ~/proj" ending at `end`: the directory, and where the phrase starts.
    fn trailing_cwd(&self, start: usize, end: usize) -> Option<(String, usize)> {
        if end <= start + 1 {
            return None;
        }
        let k = self.c.in_ent[end - 1]?;
        let Ent::Path {
            path,
            prep: Some(Prep::Loc),
            ..
        } = &self.c.ents[k].ent
        else {
            return None;
        };
        if self.c.ents[k].end != end {
            return None;
        }
        let mut j = self.c.ents[k].start;
        while j > start
            && (matches!(self.c.w[j - 1].lex.class, Class::Prep(_))
                || matches!(
                    self.c.w[j - 1].tok.low.as_str(),
                    "the" | "my" | "directory" | "folder" | "dir"
                ))
        {
            j -= 1;
        }
        (j > start).then(|| (expand_home(path, self.home), j))
    }
}

/// The value of an `Objects` argument fed by the step run first: its rows' paths.
fn pre_step_rows() -> Value {
    kernos_core::StepRef::new(0, Some("path")).to_value()
}

/// Whether a path names an archive by its extension.
fn has_archive_ext(p: &str) -> bool {
    let l = p.to_lowercase();
    [
        ".tar.gz", ".tgz", ".zip", ".tar", ".tar.bz2", ".tar.xz", ".tbz2",
    ]
    .iter()
    .any(|e| l.ends_with(e))
}
