//! Tokens: the request cut into words, numbers, quoted text, paths, flags and punctuation.
//!
//! The lexer keeps the raw text of every token (values such as paths, patterns and names are
//! taken from it, never from the lower-cased form) and its byte span in the request (so a
//! command line after "run" can be taken verbatim).

/// What a token looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters, digits, `-`, `_`, `+`: `nginx`, `sha256`, `apache2`, `python3-pip`.
    Word,
    /// Digits with at most one decimal point: `5`, `1.5`, `600`.
    Num,
    /// A number with a unit glued to it: `100MB`, `1.5G`, `2h`.
    NumUnit,
    /// Text inside quotes (the quotes are dropped).
    Quoted,
    /// Something with `/`, `~`, a leading `.`, a glob character, an inner dot (`notes.txt`,
    /// `example.com`, `10.0.0.1`) or `://`.
    Pathy,
    /// A command-line flag: `-h`, `-9`, `--all`.
    Flag,
    /// `,` `;` `?` `!` `.` `&` and the like, standing alone.
    Punct,
}

/// One token.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    /// As written (quoted: the inside; backslash-escaped spaces: unescaped).
    pub raw: String,
    /// Lower case, for matching words.
    pub low: String,
    /// Its shape.
    pub kind: Kind,
    /// Byte offset where it starts in the request (the opening quote for quoted text).
    pub start: usize,
    /// Byte offset just past its end (past the closing quote).
    pub end: usize,
}

impl Tok {
    fn new(raw: String, kind: Kind, start: usize, end: usize) -> Tok {
        let low = raw.to_lowercase();
        Tok {
            raw,
            low,
            kind,
            start,
            end,
        }
    }
}

fn closing(open: char) -> Option<char> {
    match open {
        '\'' => Some('\''),
        '"' => Some('"'),
        '`' => Some('`'),
        '\u{201c}' => Some('\u{201d}'),
        '\u{2018}' => Some('\u{2019}'),
        _ => None,
    }
}

fn ends_token(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c.is_whitespace() || ",.;:?!)".contains(c),
    }
}

/// Cuts a request into tokens.
pub(crate) fn lex(src: &str) -> Vec<Tok> {
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Quoted text: only when the quote opens a token and a matching quote closes one, so
        // apostrophes in "what's" or "don't" stay inside their word.
        if let Some(close) = closing(c) {
            let mut j = i + 1;
            let mut found = None;
            while j < chars.len() {
                if chars[j].1 == close && ends_token(chars.get(j + 1).map(|x| x.1)) {
                    found = Some(j);
                    break;
                }
                j += 1;
            }
            if let Some(j) = found {
                let inner_start = start + c.len_utf8();
                let inner = &src[inner_start..chars[j].0];
                let end = chars[j].0 + close.len_utf8();
                out.push(Tok::new(inner.to_owned(), Kind::Quoted, start, end));
                i = j + 1;
                continue;
            }
        }
        // A plain token runs to the next unescaped whitespace.
        let mut raw = String::new();
        let mut j = i;
        while j < chars.len() {
            let ch = chars[j].1;
            if ch == '\\' && j + 1 < chars.len() {
                raw.push(chars[j + 1].1);
                j += 2;
                continue;
            }
            if ch.is_whitespace() {
                break;
            }
            raw.push(ch);
            j += 1;
        }
        let end = chars.get(j).map_or(src.len(), |x| x.0);
        push_plain(&mut out, raw, start, end);
        i = j;
    }
    out
}

/// Splits leading/trailing punctuation off a plain token, expands contractions and classifies
/// what remains.
fn push_plain(out: &mut Vec<Tok>, raw: String, start: usize, end: usize) {
    let mut body = raw.as_str();
    let mut s = start;
    while let Some(c) = body.chars().next() {
        if c == '(' || c == '[' && !body.contains(']') {
            out.push(Tok::new(c.to_string(), Kind::Punct, s, s + c.len_utf8()));
            body = &body[c.len_utf8()..];
            s += c.len_utf8();
        } else {
            break;
        }
    }
    let mut trail: Vec<(char, usize)> = Vec::new();
    let mut e = end;
    while let Some(c) = body.chars().last() {
        let strip = match c {
            ',' | ';' | '?' | '!' | ')' | ':' => body.len() > 1 || c != ':',
            // A trailing dot ends a sentence unless the token is all dots ("..", ".") or a
            // path ending in "/.".
            '.' => body.len() > 1 && !body.chars().all(|x| x == '.') && !body.ends_with("/."),
            _ => false,
        };
        if !strip {
            break;
        }
        body = &body[..body.len() - c.len_utf8()];
        e -= c.len_utf8();
        trail.push((c, e));
        if body.is_empty() {
            break;
        }
    }
    if !body.is_empty() {
        push_body(out, body, s, e);
    }
    for (c, at) in trail.into_iter().rev() {
        out.push(Tok::new(c.to_string(), Kind::Punct, at, at + c.len_utf8()));
    }
}

fn push_body(out: &mut Vec<Tok>, body: &str, s: usize, e: usize) {
    let kind = classify(body);
    if kind == Kind::Word {
        // Contractions: "don't" → "do" "not"; "what's", "I'd", "nginx's" → the stem (the
        // suffix carries nothing the planner uses).
        let norm = body.replace('\u{2019}', "'");
        let lower = norm.to_lowercase();
        if let Some(stem) = lower.strip_suffix("n't") {
            let stem = match stem {
                "won" => "will",
                "can" | "ca" => "can",
                other => other,
            };
            let stem_raw = if stem.is_empty() { "not" } else { stem };
            out.push(Tok::new(stem_raw.to_owned(), Kind::Word, s, e));
            out.push(Tok::new("not".to_owned(), Kind::Word, s, e));
            return;
        }
        for suffix in ["'s", "'re", "'m", "'d", "'ll", "'ve"] {
            if let Some(stem) = lower.strip_suffix(suffix) {
                if !stem.is_empty() {
                    let keep = &norm[..stem.len()];
                    out.push(Tok::new(keep.to_owned(), Kind::Word, s, e));
                    return;
                }
            }
        }
    }
    if kind == Kind::Punct && body.len() > 1 {
        // "&&", "||": keep as one punctuation token.
        out.push(Tok::new(body.to_owned(), Kind::Punct, s, e));
        return;
    }
    out.push(Tok::new(body.to_owned(), kind, s, e));
}

fn classify(t: &str) -> Kind {
    let first = t.chars().next().unwrap_or(' ');
    if t.chars().all(|c| c.is_ascii_punctuation()) && !t.starts_with('~') && !t.starts_with('.') {
        return if t.starts_with('*') || t.starts_with('/') {
            Kind::Pathy
        } else {
            Kind::Punct
        };
    }
    if first == '-' && t.len() > 1 {
        let second = t[1..].chars().next().unwrap_or(' ');
        if second.is_ascii_alphanumeric() || second == '-' {
            return Kind::Flag;
        }
    }
    if is_number(t) {
        return Kind::Num;
    }
    if is_num_unit(t) {
        return Kind::NumUnit;
    }
    if t.contains("://")
        || t.contains('/')
        || first == '~'
        || first == '.'
        || t.contains(['*', '?', '['])
        || t.contains('.')
    {
        return Kind::Pathy;
    }
    Kind::Word
}

/// `5`, `1.5`, `1,000` is not one (the comma splits it off).
pub(crate) fn is_number(t: &str) -> bool {
    let mut dots = 0;
    let mut digits = 0;
    for c in t.chars() {
        if c == '.' {
            dots += 1;
        } else if c.is_ascii_digit() {
            digits += 1;
        } else {
            return false;
        }
    }
    digits > 0 && dots <= 1 && !t.starts_with('.') && !t.ends_with('.')
}

/// `100MB`, `1.5G`, `2h`, `30days`: a number immediately followed by letters.
fn is_num_unit(t: &str) -> bool {
    let split = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i);
    match split {
        Some(i) if i > 0 => {
            is_number(&t[..i])
                && t[i..].chars().all(|c| c.is_ascii_alphabetic())
                && t.len() - i <= 9
        }
        _ => false,
    }
}

/// The number and the unit of a `NumUnit` token.
pub(crate) fn split_num_unit(t: &str) -> Option<(f64, &str)> {
    let i = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)?;
    let n: f64 = t[..i].parse().ok()?;
    Some((n, &t[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(String, Kind)> {
        lex(s).into_iter().map(|t| (t.raw, t.kind)).collect()
    }

    #[test]
    fn words_paths_numbers_and_quotes() {
        let k = kinds("grep for 'connection refused' in /var/log/syslog, please.");
        assert_eq!(
            k,
            vec![
                ("grep".into(), Kind::Word),
                ("for".into(), Kind::Word),
                ("connection refused".into(), Kind::Quoted),
                ("in".into(), Kind::Word),
                ("/var/log/syslog".into(), Kind::Pathy),
                (",".into(), Kind::Punct),
                ("please".into(), Kind::Word),
                (".".into(), Kind::Punct),
            ]
        );
    }

    #[test]
    fn apostrophes_inside_words_are_not_quotes() {
        let k = kinds("what's in Bob's folder, don't delete");
        let raws: Vec<&str> = k.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(
            raws,
            vec!["what", "in", "Bob", "folder", ",", "do", "not", "delete"]
        );
    }

    #[test]
    fn escaped_spaces_join_a_path() {
        let t = lex(r"list files in ~/My\ Documents now");
        assert_eq!(t[3].raw, "~/My Documents");
        assert_eq!(t[3].kind, Kind::Pathy);
        assert_eq!(t[4].raw, "now");
    }

    #[test]
    fn units_flags_and_spans() {
        let src = "find files over 1.5G -type f in ./build";
        let t = lex(src);
        assert_eq!(t[3].kind, Kind::NumUnit);
        assert_eq!(t[4].kind, Kind::Flag);
        assert_eq!(t[7].kind, Kind::Pathy);
        assert_eq!(&src[t[7].start..t[7].end], "./build");
        assert_eq!(split_num_unit("1.5G"), Some((1.5, "G")));
    }

    #[test]
    fn unclosed_quote_is_part_of_the_word() {
        let t = lex("echo 'hello");
        assert_eq!(t[1].raw, "'hello");
    }
}
