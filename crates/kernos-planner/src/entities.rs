//! Typed values found in a clause before any intent is chosen: quoted text, URLs, sizes and
//! ages with their comparisons, counts, ports, pids, hosts, globs, paths (including "my home
//! folder" and "the current directory"), names after "called", sort keys, modes, signals and
//! pronouns.
//!
//! Each entity covers a span of words; words inside a span no longer count as keywords (so
//! "bigger" in "bigger than 1GB" is a comparison, not a request for the biggest files).

use crate::lex::Kind;
use crate::units::{self, Dim};
use crate::vocab::{Class, Prep, Vocab, Word};

/// How a size compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// At least.
    Greater,
    /// At most.
    Less,
    /// Not said.
    None,
}

/// How an age relates to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    /// Modified more than this long ago.
    Older,
    /// Modified within this long.
    Newer,
    /// A plain duration ("for 30 seconds").
    None,
}

/// Where a count stands: "first 20", "last 50", or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountPos {
    /// first / top / head.
    Head,
    /// last / tail.
    Tail,
    /// Neither.
    Plain,
}

/// A typed value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ent {
    /// Text in quotes, and the preposition before it.
    Quoted { text: String, prep: Option<Prep> },
    /// `http://…`.
    Url(String),
    /// A size in bytes.
    Size { bytes: u64, cmp: Cmp },
    /// An age or duration in seconds.
    Age { secs: u64, rel: Rel },
    /// "today".
    Today,
    /// A plain number.
    Count { n: u64, pos: CountPos },
    /// "port 8080", ":8080".
    Port(u16),
    /// "process 4242", "pid 4242".
    Pid(u32),
    /// An IP address, a domain name, `localhost`.
    Host(String),
    /// A path as written (`~` not yet expanded), with the preposition before it.
    Path {
        path: String,
        prep: Option<Prep>,
        /// Looks like a file (has an extension, is a dotfile, or a well-known file).
        file: bool,
    },
    /// A file-name glob: `*.log`.
    Glob(String),
    /// What follows "called"/"named".
    Named(String),
    /// Sort key for processes: `cpu`, `memory`, `pid`, `name`.
    Sort(&'static str),
    /// A permission mode: `600`, `+x`.
    Mode(String),
    /// A signal: `KILL`, `9`.
    Signal(String),
    /// A pronoun pointing back ("them", "it", "those files").
    Pronoun { plural: bool },
    /// A transaction id-looking token (for "undo <id>").
    Id(String),
}

/// An entity and the words it covers (`start..end`).
#[derive(Debug, Clone)]
pub(crate) struct Entity {
    /// The value.
    pub ent: Ent,
    /// First word.
    pub start: usize,
    /// One past the last word.
    pub end: usize,
}

/// File extensions named in words: "python files" → `*.py`.
#[rustfmt::skip]
const EXT_WORDS: &[(&str, &str)] = &[
    ("pdf", "pdf"),
    ("pdfs", "pdf"),
    ("log", "log"),
    ("txt", "txt"),
    ("text", "txt"),
    ("python", "py"),
    ("py", "py"),
    ("rust", "rs"),
    ("rs", "rs"),
    ("javascript", "js"),
    ("js", "js"),
    ("typescript", "ts"),
    ("ts", "ts"),
    ("markdown", "md"),
    ("md", "md"),
    ("json", "json"),
    ("yaml", "yaml"),
    ("yml", "yml"),
    ("toml", "toml"),
    ("csv", "csv"),
    ("csvs", "csv"),
    ("html", "html"),
    ("css", "css"),
    ("shell", "sh"),
    ("bash", "sh"),
    ("sh", "sh"),
    ("c", "c"),
    ("cpp", "cpp"),
    ("go", "go"),
    ("golang", "go"),
    ("java", "java"),
    ("ruby", "rb"),
    ("php", "php"),
    ("tmp", "tmp"),
    ("temp", "tmp"),
    ("temporary", "tmp"),
    ("bak", "bak"),
    ("backup", "bak"),
    ("iso", "iso"),
    ("isos", "iso"),
    ("zip", "zip"),
    ("tar", "tar"),
    ("mp3", "mp3"),
    ("mp3s", "mp3"),
    ("mp4", "mp4"),
    ("mp4s", "mp4"),
    ("jpg", "jpg"),
    ("jpgs", "jpg"),
    ("jpeg", "jpeg"),
    ("png", "png"),
    ("pngs", "png"),
    ("gif", "gif"),
    ("svg", "svg"),
    ("conf", "conf"),
    ("config", "conf"),
    ("xml", "xml"),
    ("sql", "sql"),
    ("deb", "deb"),
    ("rpm", "rpm"),
    ("docx", "docx"),
    ("doc", "doc"),
    ("xlsx", "xlsx"),
    ("wav", "wav"),
    ("mkv", "mkv"),
    ("swap", "swp"),
    ("lock", "lock"),
    ("orig", "orig"),
    ("rej", "rej"),
    ("pyc", "pyc"),
    ("class", "class"),
    ("o", "o"),
    ("so", "so"),
    ("gz", "gz"),
];

/// File extensions (for telling `notes.txt` from `example.com`).
#[rustfmt::skip]
const FILE_EXTS: &[&str] = &[
    "txt", "log", "md", "rs", "py", "pdf", "tar", "gz", "tgz", "zip", "iso", "yaml", "yml",
    "json", "toml", "sh", "conf", "cfg", "ini", "csv", "html", "htm", "js", "ts", "c", "h", "cpp",
    "hpp", "go", "java", "rb", "php", "jpg", "jpeg", "png", "gif", "svg", "mp3", "mp4", "mkv",
    "wav", "bak", "tmp", "old", "lock", "service", "db", "sql", "xml", "deb", "rpm", "img",
    "doc", "docx", "xls", "xlsx", "odt", "bz2", "xz", "7z", "env", "pem", "key", "crt", "pub",
    "socket", "timer", "mount", "target", "swp", "orig", "rej", "pyc", "o", "so", "a", "out",
    "bin", "exe", "dat", "csv", "tsv", "css", "scss", "vue", "jsx", "tsx", "lua", "pl", "r",
    "kt", "swift", "dart", "ex", "exs", "erl", "hs", "ml", "nix", "list", "d", "rules", "bashrc",
    "zshrc", "profile", "gitignore", "dockerignore", "desktop", "plist", "cache", "pid", "sock",
];

/// Top-level domains (for telling `example.com` from `notes.txt`).
#[rustfmt::skip]
const TLDS: &[&str] = &[
    "com", "org", "net", "io", "dev", "app", "edu", "gov", "mil", "int", "info", "biz", "co",
    "uk", "de", "fr", "nl", "eu", "us", "ca", "au", "jp", "cn", "ru", "br", "in", "it", "es",
    "se", "no", "fi", "dk", "ch", "at", "be", "pl", "cz", "local", "lan", "internal", "home",
    "localdomain", "corp", "example", "test", "cloud", "ai", "xyz", "me", "tv", "ly", "gg",
    "tech", "online", "site", "website", "space", "arpa",
];

/// Basenames of well-known files that have no extension.
#[rustfmt::skip]
const KNOWN_FILES: &[&str] = &[
    "passwd", "hosts", "fstab", "hostname", "shadow", "group", "sudoers", "crontab", "syslog",
    "messages", "makefile", "dockerfile", "readme", "license", "changelog", "authorized_keys",
    "known_hosts", "config", "environment", "motd", "issue", "os-release", "resolv.conf",
    "id_rsa", "id_ed25519", "kern.log", "dmesg", "wtmp", "btmp", "lastlog", "vimrc",
    "gitconfig", "procfile", "gemfile", "justfile", "vagrantfile", "jenkinsfile",
];

/// Well-known folders under the home directory.
#[rustfmt::skip]
const HOME_DIRS: &[(&str, &str)] = &[
    ("downloads", "Downloads"),
    ("documents", "Documents"),
    ("desktop", "Desktop"),
    ("pictures", "Pictures"),
    ("music", "Music"),
    ("videos", "Videos"),
];

/// Does a path look like a file rather than a directory?
pub(crate) fn looks_like_file(p: &str) -> bool {
    if p.ends_with('/') {
        return false;
    }
    let base = p.rsplit('/').next().unwrap_or(p);
    if base.is_empty() || base == "." || base == ".." || base == "~" {
        return false;
    }
    if base.starts_with('.') && base.len() > 1 {
        return true;
    }
    let lower = base.to_lowercase();
    if KNOWN_FILES.contains(&lower.as_str()) {
        return true;
    }
    if let Some((stem, ext)) = lower.rsplit_once('.') {
        return !stem.is_empty()
            && !ext.is_empty()
            && ext.chars().all(|c| c.is_ascii_alphanumeric());
    }
    p.starts_with("/var/log/") || p.starts_with("/proc/") || p.starts_with("/dev/")
}

fn is_ipv4(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u16>().is_ok_and(|v| v <= 255))
}

fn is_hostname(t: &str) -> bool {
    if t.contains('/') || t.starts_with('.') || t.ends_with('.') || t.contains('*') {
        return false;
    }
    let labels: Vec<&str> = t.split('.').collect();
    if labels.len() < 2
        || !labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return false;
    }
    let last = labels.last().map(|l| l.to_lowercase()).unwrap_or_default();
    TLDS.contains(&last.as_str()) && !FILE_EXTS.contains(&last.as_str())
}

fn is_symbolic_mode(t: &str) -> bool {
    !t.is_empty()
        && t.split(',').all(|part| {
            let op = part.find(['+', '-', '=']);
            match op {
                Some(i) => {
                    part[..i].chars().all(|c| "ugoa".contains(c))
                        && part.len() > i + 1
                        && part[i + 1..].chars().all(|c| "rwxXst".contains(c))
                }
                None => false,
            }
        })
}

fn is_octal_mode(t: &str) -> bool {
    (t.len() == 3 || t.len() == 4) && t.chars().all(|c| ('0'..='7').contains(&c))
}

/// Looks like a Kernos id (26 Crockford base-32 characters) or a short prefix of one with a
/// digit in it.
fn looks_like_id(t: &str) -> bool {
    let ok = t.chars().all(|c| c.is_ascii_alphanumeric());
    ok && (t.len() == 26 || (t.len() >= 6 && t.chars().any(|c| c.is_ascii_digit())))
}

/// The extractor's working state for one clause.
struct Scan<'a> {
    w: &'a [Word],
    taken: Vec<bool>,
    out: Vec<Entity>,
    vocab: &'a Vocab,
}

impl<'a> Scan<'a> {
    fn free(&self, i: usize) -> bool {
        i < self.w.len() && !self.taken[i]
    }

    fn low(&self, i: usize) -> &str {
        self.w.get(i).map_or("", |w| w.tok.low.as_str())
    }

    fn is_concept(&self, i: usize, name: &str) -> bool {
        match (self.w.get(i), self.vocab.id(name)) {
            (Some(w), Some(c)) => w.lex.concept == Some(c),
            _ => false,
        }
    }

    fn push(&mut self, ent: Ent, start: usize, end: usize) {
        for t in &mut self.taken[start..end] {
            *t = true;
        }
        self.out.push(Entity { ent, start, end });
    }

    /// The preposition before word `i`, skipping articles and possessives.
    fn prep_before(&self, i: usize) -> Option<Prep> {
        let mut j = i;
        while j > 0 {
            j -= 1;
            let w = &self.w[j];
            match w.lex.class {
                Class::Prep(p) => return Some(p),
                _ if matches!(
                    w.tok.low.as_str(),
                    "the" | "a" | "an" | "my" | "your" | "our"
                ) =>
                {
                    continue;
                }
                _ => return None,
            }
        }
        None
    }

    /// Start of a run of "the"/"my" articles right before `i`.
    fn article_start(&self, i: usize) -> usize {
        let mut j = i;
        while j > 0
            && self.free(j - 1)
            && matches!(self.low(j - 1), "the" | "a" | "an" | "my" | "your")
        {
            j -= 1;
        }
        j
    }
}

/// Finds the entities of a clause.
pub(crate) fn extract(w: &[Word], vocab: &Vocab) -> Vec<Entity> {
    let mut s = Scan {
        w,
        taken: vec![false; w.len()],
        out: Vec::new(),
        vocab,
    };
    quoted_and_urls(&mut s);
    quantities(&mut s);
    ports_pids_modes_signals(&mut s);
    sort_keys(&mut s);
    hosts(&mut s);
    globs(&mut s);
    named(&mut s);
    special_paths(&mut s);
    paths(&mut s);
    pronouns(&mut s);
    counts(&mut s);
    ids(&mut s);
    s.out.sort_by_key(|e| e.start);
    s.out
}

fn quoted_and_urls(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        let t = &s.w[i].tok;
        match t.kind {
            Kind::Quoted => {
                // "called 'Tax Returns'" names something; other quoted text is text.
                let named = i > 0 && matches!(s.low(i - 1), "called" | "named" | "titled");
                let ent = if named {
                    Ent::Named(t.raw.clone())
                } else {
                    Ent::Quoted {
                        text: t.raw.clone(),
                        prep: s.prep_before(i),
                    }
                };
                s.push(ent, i, i + 1);
            }
            Kind::Pathy if t.low.contains("://") => {
                let url = t.raw.clone();
                s.push(Ent::Url(url), i, i + 1);
            }
            _ => {}
        }
    }
}

/// A number at word `i`, possibly with a unit glued on or following: (value, unit, words used).
/// A number, its unit if any, and how many words it took.
type Quantity = (f64, Option<(Dim, u64)>, usize);

fn quantity_at(s: &Scan<'_>, i: usize) -> Option<Quantity> {
    let t = &s.w[i].tok;
    match t.kind {
        Kind::NumUnit => {
            let (n, u) = crate::lex::split_num_unit(&t.raw)?;
            let u = u.to_lowercase();
            // "100M" with a capital M is megabytes, as in `find -size +100M`.
            let unit = if u == "m" && t.raw.ends_with('M') {
                Some((Dim::Size, 1024 * 1024))
            } else {
                units::unit(&u)
            }?;
            Some((n, Some(unit), 1))
        }
        Kind::Num => {
            let n: f64 = t.raw.parse().ok()?;
            let next = s.w.get(i + 1).filter(|_| s.free(i + 1));
            match next.and_then(|w| (w.tok.kind == Kind::Word).then(|| units::unit(&w.tok.low))) {
                Some(Some(u)) => Some((n, Some(u), 2)),
                _ => None,
            }
        }
        Kind::Word => {
            let next = s.w.get(i + 1).filter(|_| s.free(i + 1))?;
            if next.tok.kind != Kind::Word {
                return None;
            }
            let u = units::unit(&next.tok.low)?;
            if u.0 != Dim::Time || next.tok.low.len() < 3 {
                // "a week", "two days"; never "a m" or "an s".
                return None;
            }
            let n = match t.low.as_str() {
                "a" | "an" | "one" => 1.0,
                "couple" => 2.0,
                "few" => 3.0,
                w => units::number_word(w)? as f64,
            };
            Some((n, Some(u), 2))
        }
        _ => None,
    }
}

fn words_before_match(s: &Scan<'_>, end: usize, pat: &[&str]) -> bool {
    if pat.len() > end {
        return false;
    }
    let start = end - pat.len();
    pat.iter()
        .enumerate()
        .all(|(k, p)| s.free(start + k) && s.low(start + k) == *p)
}

/// Comparison words before a quantity: (how many words, size comparison, age relation).
#[rustfmt::skip]
const BEFORE: &[(&[&str], Cmp, Rel)] = &[
    (&["larger", "than"], Cmp::Greater, Rel::Older),
    (&["bigger", "than"], Cmp::Greater, Rel::Older),
    (&["greater", "than"], Cmp::Greater, Rel::Older),
    (&["more", "than"], Cmp::Greater, Rel::Older),
    (&["heavier", "than"], Cmp::Greater, Rel::Older),
    (&["at", "least"], Cmp::Greater, Rel::Older),
    (&["over"], Cmp::Greater, Rel::Older),
    (&["above"], Cmp::Greater, Rel::Older),
    (&["exceeding"], Cmp::Greater, Rel::Older),
    (&["min"], Cmp::Greater, Rel::Older),
    (&["minimum"], Cmp::Greater, Rel::Older),
    (&[">"], Cmp::Greater, Rel::Older),
    (&[">="], Cmp::Greater, Rel::Older),
    (&["+"], Cmp::Greater, Rel::Older),
    (&["larger"], Cmp::Greater, Rel::Older),
    (&["bigger"], Cmp::Greater, Rel::Older),
    (&["smaller", "than"], Cmp::Less, Rel::Newer),
    (&["less", "than"], Cmp::Less, Rel::Newer),
    (&["fewer", "than"], Cmp::Less, Rel::Newer),
    (&["lighter", "than"], Cmp::Less, Rel::Newer),
    (&["at", "most"], Cmp::Less, Rel::Newer),
    (&["up", "to"], Cmp::Less, Rel::Newer),
    (&["under"], Cmp::Less, Rel::Newer),
    (&["below"], Cmp::Less, Rel::Newer),
    (&["max"], Cmp::Less, Rel::Newer),
    (&["maximum"], Cmp::Less, Rel::Newer),
    (&["<"], Cmp::Less, Rel::Newer),
    (&["<="], Cmp::Less, Rel::Newer),
    (&["smaller"], Cmp::Less, Rel::Newer),
    (&["older", "than"], Cmp::Greater, Rel::Older),
    (&["newer", "than"], Cmp::Less, Rel::Newer),
    (&["younger", "than"], Cmp::Less, Rel::Newer),
    (&["in", "the", "last"], Cmp::None, Rel::Newer),
    (&["in", "the", "past"], Cmp::None, Rel::Newer),
    (&["within", "the", "last"], Cmp::None, Rel::Newer),
    (&["within", "the", "past"], Cmp::None, Rel::Newer),
    (&["during", "the", "last"], Cmp::None, Rel::Newer),
    (&["during", "the", "past"], Cmp::None, Rel::Newer),
    (&["over", "the", "last"], Cmp::None, Rel::Newer),
    (&["over", "the", "past"], Cmp::None, Rel::Newer),
    (&["for", "the", "last"], Cmp::None, Rel::Newer),
    (&["for", "the", "past"], Cmp::None, Rel::Newer),
    (&["from", "the", "last"], Cmp::None, Rel::Newer),
    (&["from", "the", "past"], Cmp::None, Rel::Newer),
    (&["since", "the", "last"], Cmp::None, Rel::Newer),
    (&["in", "last"], Cmp::None, Rel::Newer),
    (&["in", "past"], Cmp::None, Rel::Newer),
    (&["the", "last"], Cmp::None, Rel::Newer),
    (&["the", "past"], Cmp::None, Rel::Newer),
    (&["within"], Cmp::None, Rel::Newer),
    (&["last"], Cmp::None, Rel::Newer),
    (&["past"], Cmp::None, Rel::Newer),
    (&["since"], Cmp::None, Rel::Newer),
    (&["this"], Cmp::None, Rel::Newer),
    (&["for"], Cmp::None, Rel::None),
    (&["in"], Cmp::None, Rel::None),
];

/// Is the comparison a size-ish one (so an ambiguous `m` means megabytes)?
fn size_words(pat: &[&str]) -> bool {
    pat.iter().any(|w| {
        matches!(
            *w,
            "larger"
                | "bigger"
                | "greater"
                | "smaller"
                | "heavier"
                | "lighter"
                | "over"
                | "under"
                | "above"
                | "below"
                | "exceeding"
                | ">"
                | "<"
                | ">="
                | "<="
                | "+"
        )
    })
}

fn quantities(s: &mut Scan<'_>) {
    let mut i = 0;
    while i < s.w.len() {
        if !s.free(i) {
            i += 1;
            continue;
        }
        // "yesterday", "recently", "last week", "past hour", "today".
        let low = s.low(i).to_owned();
        if low == "today" || low == "tonight" {
            let start = if words_before_match(s, i, &["since"]) {
                i - 1
            } else {
                i
            };
            s.push(Ent::Today, start, i + 1);
            i += 1;
            continue;
        }
        if low == "yesterday" || low == "recently" || low == "recent" || low == "lately" {
            let start = if words_before_match(s, i, &["since"]) {
                i - 1
            } else {
                i
            };
            s.push(
                Ent::Age {
                    secs: 86_400,
                    rel: Rel::Newer,
                },
                start,
                i + 1,
            );
            i += 1;
            continue;
        }
        if matches!(low.as_str(), "last" | "past" | "this" | "previous") {
            if let Some(next) = s.w.get(i + 1).filter(|_| s.free(i + 1)) {
                if let Some((Dim::Time, secs)) =
                    units::unit(&next.tok.low).filter(|_| next.tok.low.len() >= 3)
                {
                    let mut start = i;
                    for pat in [
                        &["in", "the"][..],
                        &["within", "the"],
                        &["over", "the"],
                        &["during", "the"],
                        &["for", "the"],
                        &["from", "the"],
                        &["since", "the"],
                        &["in"],
                        &["the"],
                        &["within"],
                    ] {
                        if words_before_match(s, i, pat) {
                            start = i - pat.len();
                            break;
                        }
                    }
                    s.push(
                        Ent::Age {
                            secs,
                            rel: Rel::Newer,
                        },
                        start,
                        i + 2,
                    );
                    i += 2;
                    continue;
                }
            }
        }
        if low == "between" && between(s, i) {
            continue;
        }
        let Some((n, unit, used)) = quantity_at(s, i) else {
            i += 1;
            continue;
        };
        // "half an hour"
        let (n, qstart) =
            if words_before_match(s, i, &["half"]) && (s.low(i) == "an" || s.low(i) == "a") {
                (0.5, i - 1)
            } else {
                (n, i)
            };
        let mut start = qstart;
        let mut cmp = Cmp::None;
        let mut rel = Rel::None;
        let mut sizeish = false;
        let mut matched = false;
        for (pat, c, r) in BEFORE {
            if words_before_match(s, qstart, pat) {
                start = qstart - pat.len();
                cmp = *c;
                rel = *r;
                sizeish = size_words(pat);
                matched = true;
                break;
            }
        }
        let mut end = i + used;
        // After: "old", "ago", "or more", "or older", "+", "or less".
        let after = |k: usize| s.low(end + k).to_owned();
        let a0 = after(0);
        let a1 = after(1);
        if a0 == "old" {
            rel = if cmp == Cmp::Less {
                Rel::Newer
            } else {
                Rel::Older
            };
            end += 1;
        } else if a0 == "ago" {
            // "modified 30 days ago" is that day: older than 30 days, newer than 31 (as
            // `find -mtime 30`), never "within the last 30 days".
            let on_that_day = !matched && qstart > 0 && s.is_concept(qstart - 1, "modified");
            if on_that_day {
                if let Some((Dim::Time, mult)) = unit {
                    s.push(
                        Ent::Age {
                            secs: units::scale(n, mult),
                            rel: Rel::Older,
                        },
                        start,
                        end,
                    );
                    s.push(
                        Ent::Age {
                            secs: units::scale(n + 1.0, mult),
                            rel: Rel::Newer,
                        },
                        end,
                        end + 1,
                    );
                    i = end + 1;
                    continue;
                }
            }
            rel = if cmp == Cmp::Greater {
                Rel::Older
            } else {
                Rel::Newer
            };
            end += 1;
        } else if a0 == "or"
            && matches!(
                a1.as_str(),
                "more" | "older" | "larger" | "bigger" | "greater" | "above" | "over"
            )
        {
            cmp = Cmp::Greater;
            rel = Rel::Older;
            end += 2;
        } else if a0 == "or"
            && matches!(
                a1.as_str(),
                "less" | "smaller" | "newer" | "fewer" | "under" | "below"
            )
        {
            cmp = Cmp::Less;
            rel = Rel::Newer;
            end += 2;
        } else if a0 == "+" {
            cmp = Cmp::Greater;
            rel = Rel::Older;
            end += 1;
        }
        let Some((dim, mult)) = unit else {
            i += 1;
            continue;
        };
        let (dim, mult) = if dim == Dim::SizeOrTime {
            let time_words = matches!(rel, Rel::Newer | Rel::Older) && !sizeish;
            units::resolve_m(!time_words || sizeish)
        } else {
            (dim, mult)
        };
        // "not modified in 30 days", "haven't been touched for a week": older than.
        if dim == Dim::Time && matches!(rel, Rel::None | Rel::Newer) && cmp == Cmp::None {
            let lo = start.saturating_sub(5);
            if let Some(k) = (lo..start).find(|&k| s.free(k) && s.w[k].lex.class == Class::Negation)
            {
                rel = Rel::Older;
                // The negation belongs to the age ("not modified in 90 days"), not to the
                // request, so it is part of the span.
                start = k;
            }
        }
        if !matched && start == qstart {
            // A bare "2 hours": a plain duration unless "ago"/"old" said otherwise.
        }
        let ent = match dim {
            Dim::Size => Ent::Size {
                bytes: units::scale(n, mult),
                cmp,
            },
            _ => Ent::Age {
                secs: units::scale(n, mult),
                rel,
            },
        };
        s.push(ent, start, end);
        i = end;
    }
}

/// "between 10MB and 100MB", "between 10 and 100 MB", "between 2 and 5 days old": a lower
/// and an upper bound. Pushes both and returns true when the words fit.
fn between(s: &mut Scan<'_>, i: usize) -> bool {
    let first = i + 1;
    if first >= s.w.len() {
        return false;
    }
    let (n1, u1, used1) = match quantity_at(s, first) {
        Some(q) => q,
        None => match s.w[first].tok.kind {
            Kind::Num => match s.w[first].tok.raw.parse::<f64>() {
                Ok(n) => (n, None, 1),
                Err(_) => return false,
            },
            _ => return false,
        },
    };
    let and = first + used1;
    if s.low(and) != "and" || !s.free(and) || and + 1 >= s.w.len() {
        return false;
    }
    let Some((n2, Some(u2), used2)) = quantity_at(s, and + 1) else {
        return false;
    };
    let u1 = u1.unwrap_or(u2);
    let mut end = and + 1 + used2;
    let dims = |u: (Dim, u64)| {
        if u.0 == Dim::SizeOrTime {
            units::resolve_m(true)
        } else {
            u
        }
    };
    let (d1, m1) = dims(u1);
    let (d2, m2) = dims(u2);
    if d1 != d2 {
        return false;
    }
    let (lo, hi) = (units::scale(n1, m1), units::scale(n2, m2));
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    if d1 == Dim::Size {
        s.push(
            Ent::Size {
                bytes: lo,
                cmp: Cmp::Greater,
            },
            i,
            and,
        );
        s.push(
            Ent::Size {
                bytes: hi,
                cmp: Cmp::Less,
            },
            and,
            end,
        );
    } else {
        // "between 2 and 5 days old/ago": older than 2 days, newer than 5.
        if matches!(s.low(end), "old" | "ago") {
            end += 1;
        }
        s.push(
            Ent::Age {
                secs: lo,
                rel: Rel::Older,
            },
            i,
            and,
        );
        s.push(
            Ent::Age {
                secs: hi,
                rel: Rel::Newer,
            },
            and,
            end,
        );
    }
    true
}

fn ports_pids_modes_signals(s: &mut Scan<'_>) {
    let chmod_ctx = (0..s.w.len()).any(|i| {
        s.is_concept(i, "chmod") || s.is_concept(i, "executable") || s.is_concept(i, "readonly")
    });
    let kill_ctx = (0..s.w.len()).any(|i| {
        s.is_concept(i, "kill")
            || s.is_concept(i, "signal")
            || s.low(i) == "send"
            || (s.low(i).starts_with("sig") && s.low(i).len() > 4)
    });
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let t = s.w[i].tok.clone();
        let prev = if i > 0 {
            s.low(i - 1).to_owned()
        } else {
            String::new()
        };
        let num: Option<u64> = match t.raw.strip_prefix('#') {
            // "process #4242"
            Some(digits) => digits.parse().ok(),
            None => (t.kind == Kind::Num).then(|| t.raw.parse().ok()).flatten(),
        };
        if let Some(p) = t.raw.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
            s.push(Ent::Port(p), i, i + 1);
            continue;
        }
        if let Some(n) = num {
            if matches!(prev.as_str(), "port" | "ports") {
                if let Ok(p) = u16::try_from(n) {
                    s.push(Ent::Port(p), i, i + 1);
                    continue;
                }
            }
            if let Some(start) = written_as_pid(s, i, kill_ctx) {
                if let Ok(p) = u32::try_from(n) {
                    s.push(Ent::Pid(p), start, i + 1);
                    continue;
                }
            }
            if chmod_ctx && is_octal_mode(&t.raw) {
                s.push(Ent::Mode(t.raw.clone()), i, i + 1);
                continue;
            }
        }
        if chmod_ctx && matches!(t.kind, Kind::Word | Kind::Flag) && is_symbolic_mode(&t.raw) {
            s.push(Ent::Mode(t.raw.clone()), i, i + 1);
            continue;
        }
        if t.kind == Kind::Flag && kill_ctx {
            let f = t.raw.trim_start_matches('-').to_uppercase();
            let f = f.strip_prefix("SIG").map(str::to_owned).unwrap_or(f);
            if f == "S" || f == "N" {
                // "-s KILL"
                if let Some(next) = s.w.get(i + 1) {
                    let sig = next.tok.raw.to_uppercase();
                    let sig = sig.strip_prefix("SIG").map(str::to_owned).unwrap_or(sig);
                    s.push(Ent::Signal(sig), i, i + 2);
                }
                continue;
            }
            if f.chars().all(|c| c.is_ascii_digit()) || f.chars().all(|c| c.is_ascii_uppercase()) {
                s.push(Ent::Signal(f), i, i + 1);
                continue;
            }
        }
        if t.kind == Kind::Word && t.low.starts_with("sig") && t.low.len() > 4 && t.low != "signal"
        {
            let sig = t.raw[3..].to_uppercase();
            if sig.chars().all(|c| c.is_ascii_alphanumeric()) {
                s.push(Ent::Signal(sig), i, i + 1);
                continue;
            }
        }
        if kill_ctx
            && matches!(
                t.low.as_str(),
                "hup" | "term" | "int" | "usr1" | "usr2" | "quit"
            )
            && matches!(prev.as_str(), "with" | "signal" | "send" | "a" | "the")
        {
            s.push(Ent::Signal(t.raw.to_uppercase()), i, i + 1);
        }
    }
}

/// Whether the number at `i` was written as a process id, and where that wording starts:
/// "pid 4242", "process 4242" (said as "process", or in a request to kill or signal),
/// "process id 4242", "the process whose id is 4242", "process number 4242", "kill 4242",
/// "kill -9 4242", "send SIGKILL to 4242". A number said otherwise ("kill the top 3") is
/// no pid, so it can never become the target of a signal (see `grounding.rs`).
fn written_as_pid(s: &Scan<'_>, i: usize, kill_ctx: bool) -> Option<usize> {
    let p = i.checked_sub(1)?;
    if s.is_concept(p, "pid") || s.is_concept(p, "process") && (kill_ctx || s.low(p) == "process") {
        return Some(i);
    }
    let mut j = p;
    while j > 0 && matches!(s.low(j), "is" | "=" | ":" | "the" | "of") {
        j -= 1;
    }
    if s.is_concept(j, "pid") {
        // "the process whose pid is 777"
        return Some(i);
    }
    if matches!(s.low(j), "id" | "number" | "num" | "no" | "#") && s.free(j) {
        let process_before =
            (j.saturating_sub(4)..j).any(|k| s.is_concept(k, "process") || s.is_concept(k, "pid"));
        return process_before.then_some(j);
    }
    let after_signal = s
        .out
        .iter()
        .any(|e| matches!(e.ent, Ent::Signal(_)) && (e.end == i || e.end == p && s.low(p) == "to"));
    // "kill 4242", not "kill 2 nginx processes": nothing but the end or another pid follows.
    let alone = s.w.get(i + 1).is_none_or(|n| {
        matches!(n.tok.kind, Kind::Punct | Kind::Num) || n.lex.class == Class::Glue
    });
    (kill_ctx && alone && (s.is_concept(p, "kill") || after_signal)).then_some(i)
}

fn sort_keys(s: &mut Scan<'_>) {
    let key = |w: &str| -> Option<&'static str> {
        match w {
            "memory" | "mem" | "ram" | "rss" => Some("memory"),
            "cpu" | "processor" => Some("cpu"),
            "pid" => Some("pid"),
            "name" => Some("name"),
            _ => None,
        }
    };
    for i in 1..s.w.len() {
        if !s.free(i) || !s.free(i - 1) {
            continue;
        }
        let Some(k) = key(s.low(i)) else { continue };
        let prev = s.low(i - 1);
        if matches!(prev, "by" | "most" | "highest" | "more" | "heaviest") {
            let mut start = i - 1;
            if start > 0
                && s.free(start - 1)
                && matches!(s.low(start - 1), "the" | "sorted" | "ordered" | "sort")
            {
                start -= 1;
            }
            s.push(Ent::Sort(k), start, i + 1);
        }
    }
    for i in 0..s.w.len() {
        if s.free(i) {
            let k = match s.low(i) {
                "memory-hungry" | "ram-hungry" => Some("memory"),
                "cpu-hungry" | "cpu-heavy" => Some("cpu"),
                _ => None,
            };
            if let Some(k) = k {
                s.push(Ent::Sort(k), i, i + 1);
            }
        }
    }
}

fn hosts(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let t = &s.w[i].tok;
        let host = match t.kind {
            Kind::Pathy if is_ipv4(&t.raw) || is_hostname(&t.raw) => Some(t.raw.clone()),
            Kind::Word if t.low == "localhost" => Some(t.raw.clone()),
            Kind::Word if t.raw.contains(':') && t.raw.split(':').count() > 2 => {
                Some(t.raw.clone())
            }
            _ => None,
        };
        if let Some(h) = host {
            s.push(Ent::Host(h), i, i + 1);
        }
    }
}

fn is_file_noun(s: &Scan<'_>, i: usize) -> bool {
    s.is_concept(i, "file")
        || matches!(
            s.low(i),
            "ones" | "documents" | "docs" | "scripts" | "sources"
        )
}

fn globs(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let t = s.w[i].tok.clone();
        // "*.log", "src/*.rs"
        if t.kind == Kind::Pathy && t.raw.contains(['*', '?']) {
            if let Some((dir, pat)) = t.raw.rsplit_once('/') {
                if !dir.contains(['*', '?']) {
                    let dir = if dir.is_empty() {
                        "/".to_owned()
                    } else {
                        dir.to_owned()
                    };
                    s.push(Ent::Glob(pat.to_owned()), i, i + 1);
                    s.out.push(Entity {
                        ent: Ent::Path {
                            path: dir,
                            prep: Some(Prep::Loc),
                            file: false,
                        },
                        start: i,
                        end: i + 1,
                    });
                    continue;
                }
            }
            s.push(Ent::Glob(t.raw.clone()), i, i + 1);
            continue;
        }
        let next_is_file = is_file_noun(s, i + 1);
        let ext_before = i >= 1
            && (words_before_match(s, i, &["ending", "in"])
                || words_before_match(s, i, &["ending", "with"])
                || words_before_match(s, i, &["end", "in"])
                || words_before_match(s, i, &["end", "with"])
                || words_before_match(s, i, &["extension"])
                || words_before_match(s, i, &["suffix"])
                || words_before_match(s, i, &["type"]));
        // ".log files", "ending in .txt"
        if t.kind == Kind::Pathy
            && t.raw.starts_with('.')
            && !t.raw[1..].contains(['.', '/'])
            && t.raw.len() > 1
        {
            let ext = &t.raw[1..];
            if (next_is_file || ext_before) && ext.chars().all(|c| c.is_ascii_alphanumeric()) {
                s.push(Ent::Glob(format!("*.{ext}")), i, i + 1);
                continue;
            }
        }
        // "pdf files", "python files", "pdfs" — but "zip up docs", "tar the logs": an
        // extension that is also a verb, said first, is the verb.
        let verb_first =
            s.w[i].lex.concept.is_some() && s.w[..i].iter().all(|x| x.lex.class != Class::Content);
        if t.kind == Kind::Word && !verb_first {
            if let Some((_, ext)) = EXT_WORDS.iter().find(|(w, _)| *w == t.low) {
                let plural = t.low.ends_with('s')
                    && t.low.len() > 3
                    && matches!(
                        t.low.as_str(),
                        "pdfs" | "isos" | "mp3s" | "mp4s" | "jpgs" | "pngs" | "csvs"
                    );
                // "every mp4", "all the isos": an extension said as a word after a
                // quantifier is that kind of file.
                let after_every = *ext == t.low.trim_end_matches('s')
                    && (1..=2).any(|k| {
                        i >= k && matches!(s.low(i - k), "every" | "all" | "each" | "any")
                    });
                if next_is_file || ext_before || plural || after_every {
                    s.push(Ent::Glob(format!("*.{ext}")), i, i + 1);
                    continue;
                }
            }
        }
    }
}

fn named(s: &mut Scan<'_>) {
    for i in 0..s.w.len().saturating_sub(1) {
        if !s.free(i + 1) {
            continue;
        }
        if matches!(s.low(i), "called" | "named" | "name" | "titled") {
            let t = &s.w[i + 1];
            if matches!(
                t.tok.kind,
                Kind::Word | Kind::Pathy | Kind::Quoted | Kind::Num
            ) && !matches!(t.lex.class, Class::Glue | Class::Prep(_))
            {
                let v = t.tok.raw.clone();
                s.push(Ent::Named(v), i + 1, i + 2);
            }
        }
    }
}

fn special_paths(s: &mut Scan<'_>) {
    let n = s.w.len();
    let mut i = 0;
    while i < n {
        if !s.free(i) {
            i += 1;
            continue;
        }
        let l0 = s.low(i).to_owned();
        let l1 = s.low(i + 1).to_owned();
        let dir1 = s.is_concept(i + 1, "dir");
        let dir2 = s.is_concept(i + 2, "dir");
        let mut hit: Option<(String, usize)> = None;
        if l0 == "home" && (dir1 || s.prep_before(i).is_some() || (i > 0 && s.low(i - 1) == "my")) {
            hit = Some(("~".into(), if dir1 { 2 } else { 1 }));
        } else if matches!(l0.as_str(), "current" | "this" | "working" | "present")
            && (dir1 || (l1 == "working" && dir2))
        {
            hit = Some((".".into(), if dir1 { 2 } else { 3 }));
        } else if l0 == "cwd"
            || l0 == "pwd" && i > 0
            || (l0 == "here" && s.w[i].tok.kind == Kind::Word)
        {
            hit = Some((".".into(), 1));
        } else if l0 == "root" && (dir1 || matches!(l1.as_str(), "filesystem" | "partition")) {
            hit = Some(("/".into(), 2));
        } else if l0 == "parent" && dir1 {
            hit = Some(("..".into(), 2));
        } else if let Some((_, d)) = HOME_DIRS.iter().find(|(w, _)| *w == l0) {
            // "my downloads (folder)" is ~/Downloads; "the downloads folder" stays relative,
            // as written.
            let my = i > 0 && s.free(i - 1) && s.low(i - 1) == "my";
            if my {
                hit = Some((format!("~/{d}"), if dir1 { 2 } else { 1 }));
            }
        }
        if let Some((path, len)) = hit {
            let start = s.article_start(i);
            // "here" says where by itself: "extract x here" = "extract x in here".
            let prep = s.prep_before(start).or((l0 == "here").then_some(Prep::Loc));
            s.push(
                Ent::Path {
                    path,
                    prep,
                    file: false,
                },
                start,
                i + len,
            );
            i += len;
        } else {
            i += 1;
        }
    }
}

fn paths(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let t = &s.w[i].tok;
        let is_path = match t.kind {
            Kind::Pathy => !t.raw.contains("://"),
            _ => false,
        };
        if is_path {
            let path = t.raw.clone();
            let file = looks_like_file(&path);
            let prep = s.prep_before(i);
            s.push(Ent::Path { path, prep, file }, i, i + 1);
        }
    }
}

fn pronouns(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let w = &s.w[i];
        let low = w.tok.low.as_str();
        if low == "results" || low == "matches" {
            let start = s.article_start(i);
            s.push(Ent::Pronoun { plural: true }, start, i + 1);
            continue;
        }
        if w.lex.class != Class::Pronoun {
            continue;
        }
        if low == "its" {
            // Possessive: "show its status" is about the earlier target.
            s.push(Ent::Pronoun { plural: false }, i, i + 1);
            continue;
        }
        let plural = matches!(low, "them" | "those" | "these" | "they");
        let next = s.w.get(i + 1);
        let noun = next.is_some_and(|n| {
            ["file", "dir", "service", "process", "package"]
                .iter()
                .any(|c| n.lex.concept.is_some() && n.lex.concept == s.vocab.id(c))
        });
        if noun {
            let plural = plural || s.low(i + 1).ends_with('s');
            s.push(Ent::Pronoun { plural }, i, i + 2);
            continue;
        }
        let ends = match next {
            None => true,
            Some(n) => {
                matches!(n.lex.class, Class::Prep(_) | Class::Glue)
                    && (!matches!(
                        n.tok.low.as_str(),
                        "is" | "are" | "was" | "were" | "has" | "have"
                    ) || matches!(low, "it" | "they"))
                    || n.tok.kind == Kind::Punct
                    || matches!(
                        n.tok.low.as_str(),
                        "and" | "then" | "again" | "too" | "back" | "up"
                    )
                    || n.lex.concept.is_some() && n.lex.concept == s.vocab.id("boot")
                    || n.lex.concept.is_some() && n.lex.concept == s.vocab.id("executable")
                    || n.lex.concept.is_some() && n.lex.concept == s.vocab.id("again")
            }
        };
        if ends {
            s.push(Ent::Pronoun { plural }, i, i + 1);
        }
    }
}

fn counts(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if !s.free(i) {
            continue;
        }
        let t = s.w[i].tok.clone();
        // "-n 20"
        if t.kind == Kind::Flag && (t.raw == "-n" || t.raw == "-c" || t.raw == "--lines") {
            if let Some(n) =
                s.w.get(i + 1)
                    .filter(|n| n.tok.kind == Kind::Num)
                    .and_then(|n| n.tok.raw.parse().ok())
            {
                s.push(
                    Ent::Count {
                        n,
                        pos: CountPos::Plain,
                    },
                    i,
                    i + 2,
                );
                continue;
            }
        }
        if t.kind == Kind::Flag && t.raw.len() > 1 && t.raw[1..].chars().all(|c| c.is_ascii_digit())
        {
            if let Ok(n) = t.raw[1..].parse() {
                s.push(
                    Ent::Count {
                        n,
                        pos: CountPos::Plain,
                    },
                    i,
                    i + 1,
                );
                continue;
            }
        }
        let n: Option<u64> = match t.kind {
            Kind::Num if !t.raw.contains('.') => t.raw.parse().ok(),
            Kind::Word => units::number_word(&t.low).filter(|_| t.low != "one"),
            _ => None,
        };
        let Some(n) = n else { continue };
        let mut start = i;
        let mut pos = CountPos::Plain;
        if i > 0 && s.free(i - 1) {
            match s.low(i - 1) {
                "first" | "head" => {
                    pos = CountPos::Head;
                    start = i - 1;
                }
                "top" => pos = CountPos::Head,
                // "the newest 10 files" is an order over files (fs.find's sort), not the
                // tail of a file.
                "latest" | "recent" | "newest"
                    if s.is_concept(i + 1, "file") || s.is_concept(i + 1, "dir") => {}
                "last" | "tail" | "latest" | "recent" | "newest" | "final" => {
                    pos = CountPos::Tail;
                    start = i - 1;
                }
                _ => {}
            }
        }
        s.push(Ent::Count { n, pos }, start, i + 1);
    }
}

fn ids(s: &mut Scan<'_>) {
    for i in 0..s.w.len() {
        if s.free(i)
            && s.w[i].tok.kind == Kind::Word
            && s.w[i].lex.concept.is_none()
            && looks_like_id(&s.w[i].tok.raw)
        {
            let id = s.w[i].tok.raw.clone();
            // Ids are only used by "undo <id>"; anything else treats the token as a word, so
            // the span is recorded without taking the word.
            s.out.push(Entity {
                ent: Ent::Id(id),
                start: i,
                end: i + 1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::lex;

    fn ents(s: &str) -> Vec<Ent> {
        let v = Vocab::new();
        let w = v.annotate(lex(s));
        extract(&w, &v).into_iter().map(|e| e.ent).collect()
    }

    #[test]
    fn sizes_with_comparisons() {
        assert!(ents("files larger than 100MB").contains(&Ent::Size {
            bytes: 104_857_600,
            cmp: Cmp::Greater
        }));
        assert!(ents("files over 1.5 G").contains(&Ent::Size {
            bytes: 1_610_612_736,
            cmp: Cmp::Greater
        }));
        assert!(ents("smaller than 10k").contains(&Ent::Size {
            bytes: 10_240,
            cmp: Cmp::Less
        }));
        assert!(ents("bigger than 100M").contains(&Ent::Size {
            bytes: 104_857_600,
            cmp: Cmp::Greater
        }));
    }

    #[test]
    fn ages_with_relations() {
        assert!(ents("older than 30 days").contains(&Ent::Age {
            secs: 2_592_000,
            rel: Rel::Older
        }));
        assert!(ents("modified in the last 2 hours").contains(&Ent::Age {
            secs: 7200,
            rel: Rel::Newer
        }));
        assert!(ents("in the last hour").contains(&Ent::Age {
            secs: 3600,
            rel: Rel::Newer
        }));
        assert!(ents("not touched in a week").contains(&Ent::Age {
            secs: 604_800,
            rel: Rel::Older
        }));
        let day = ents("files modified 3 days ago");
        assert!(day.contains(&Ent::Age {
            secs: 3 * 86_400,
            rel: Rel::Older
        }));
        assert!(day.contains(&Ent::Age {
            secs: 4 * 86_400,
            rel: Rel::Newer
        }));
        assert!(ents("3 days old").contains(&Ent::Age {
            secs: 259_200,
            rel: Rel::Older
        }));
        assert!(ents("since yesterday").contains(&Ent::Age {
            secs: 86_400,
            rel: Rel::Newer
        }));
        assert!(ents("older than 10m").contains(&Ent::Age {
            secs: 600,
            rel: Rel::Older
        }));
    }

    #[test]
    fn paths_globs_and_specials() {
        let e = ents("find pdf files in my home folder");
        assert!(e.contains(&Ent::Glob("*.pdf".into())));
        assert!(e.contains(&Ent::Path {
            path: "~".into(),
            prep: Some(Prep::Loc),
            file: false
        }));
        let e = ents("show hidden files in the current directory");
        assert!(e.contains(&Ent::Path {
            path: ".".into(),
            prep: Some(Prep::Loc),
            file: false
        }));
        let e = ents("find .log files under ./build");
        assert!(e.contains(&Ent::Glob("*.log".into())));
        assert!(e.contains(&Ent::Path {
            path: "./build".into(),
            prep: Some(Prep::Loc),
            file: false
        }));
        assert!(
            ents("copy notes.txt to backup")
                .iter()
                .any(|e| matches!(e, Ent::Path { path, file: true, .. } if path == "notes.txt"))
        );
    }

    #[test]
    fn hosts_ports_pids_counts() {
        assert!(ents("ping 10.0.0.1").contains(&Ent::Host("10.0.0.1".into())));
        assert!(ents("resolve example.com").contains(&Ent::Host("example.com".into())));
        assert!(ents("what is using port 8080").contains(&Ent::Port(8080)));
        for pid in [
            "kill process 4242",
            "stop process id 4242",
            "terminate process number 4242",
            "kill the process whose id is 4242",
            "kill process #4242",
            "kill 4242",
            "kill -9 4242",
            "send SIGKILL to 4242",
        ] {
            assert!(
                ents(pid).contains(&Ent::Pid(4242)),
                "{pid}: {:?}",
                ents(pid)
            );
        }
        for count in [
            "kill the top 3 processes",
            "kill 2 nginx processes",
            "show 4242 lines",
        ] {
            assert!(
                !ents(count).iter().any(|e| matches!(e, Ent::Pid(_))),
                "{count}: {:?}",
                ents(count)
            );
        }
        assert!(ents("show the first 20 lines").contains(&Ent::Count {
            n: 20,
            pos: CountPos::Head
        }));
        assert!(ents("chmod 600 key").contains(&Ent::Mode("600".into())));
        assert!(ents("kill -9 4242").contains(&Ent::Signal("9".into())));
    }

    #[test]
    fn file_shapes() {
        assert!(looks_like_file("/etc/passwd"));
        assert!(looks_like_file("~/.bashrc"));
        assert!(looks_like_file("notes.txt"));
        assert!(!looks_like_file("/var/log/"));
        assert!(!looks_like_file("/usr"));
        assert!(!looks_like_file("src"));
    }
}
