//! A small parser for POSIX `sh` command lines, written for classification rather than
//! execution.
//!
//! It understands words with single and double quotes and backslash escapes, parameter
//! expansion (`$X`, `${X:-…}`), command substitution (`$( … )` and backticks), arithmetic
//! expansion, pipes, `&&`, `||`, `;`, `&`, redirections (including here-documents and
//! `2>&1`), subshells, brace groups, `if`, `while`/`until` and `for`, leading assignments and
//! comments. Constructs it does not model (`case`, function definitions, process
//! substitution) are parse errors, which the classifier turns into "unknown".
//!
//! The tree is deliberately flat: the classifier needs every simple command, every
//! redirection and every nested command substitution, not the control flow between them, so
//! pipelines and and-or lists are flattened into one list of commands.
//!
//! Being stricter than the shell is safe (a line we reject is classified as unknown, and a
//! line the shell rejects never runs); what must never happen is reading a line differently
//! from `sh`, so that a command hides inside something we took for a literal. Hence quotes,
//! escapes and substitutions are followed exactly, and anything doubtful is an error.

use std::fmt;

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(ParseError(msg.into()))
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Every command of the line, in order.
    pub list: List,
    /// Here-document bodies (redirections refer to them by index).
    pub heredocs: Vec<Word>,
}

/// A list of commands (pipelines and and-or lists flattened).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct List {
    /// The commands, in source order.
    pub commands: Vec<Command>,
}

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `NAME=value … word word … <redirections>`.
    Simple(Simple),
    /// A subshell, group, `if`, loop: the lists inside it, the words it expands (a `for`
    /// list) and the redirections applied to it.
    Compound {
        /// `subshell`, `group`, `if`, `while`, `until`, `for`.
        kind: &'static str,
        /// The lists inside.
        bodies: Vec<List>,
        /// Words expanded by the construct itself (the `in …` list of `for`).
        words: Vec<Word>,
        /// Redirections after the construct.
        redirs: Vec<Redir>,
    },
}

/// A simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simple {
    /// Leading `NAME=value` assignments (whole words, `NAME=` included).
    pub assigns: Vec<Word>,
    /// The command name and its arguments.
    pub words: Vec<Word>,
    /// Redirections, wherever they appeared.
    pub redirs: Vec<Redir>,
}

/// Redirection operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    In,
    /// `>`
    Out,
    /// `>>`
    Append,
    /// `>|`
    Clobber,
    /// `<>`
    ReadWrite,
    /// `<&`
    DupIn,
    /// `>&`
    DupOut,
    /// `&>` (bash: stdout and stderr to a file)
    OutBoth,
    /// `&>>`
    AppendBoth,
    /// `<<` or `<<-`
    HereDoc,
    /// `<<<` (bash here-string)
    HereString,
}

impl RedirOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            RedirOp::In => "<",
            RedirOp::Out => ">",
            RedirOp::Append => ">>",
            RedirOp::Clobber => ">|",
            RedirOp::ReadWrite => "<>",
            RedirOp::DupIn => "<&",
            RedirOp::DupOut => ">&",
            RedirOp::OutBoth => "&>",
            RedirOp::AppendBoth => "&>>",
            RedirOp::HereDoc => "<<",
            RedirOp::HereString => "<<<",
        }
    }
}

/// A redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redir {
    /// Explicit file descriptor (`2>`), if any.
    pub fd: Option<u32>,
    /// Operator.
    pub op: RedirOp,
    /// Target word (file, descriptor, here-document delimiter or here-string).
    pub target: Word,
    /// Index of the here-document body in [`Script::heredocs`].
    pub heredoc: Option<usize>,
}

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text (quotes removed); `quoted` when it came from quotes or an escape.
    Lit {
        /// The text.
        text: String,
        /// Whether it was quoted.
        quoted: bool,
    },
    /// An unquoted glob character (`*`, `?`, `[`).
    Glob(char),
    /// `$NAME` / `${…}`; `substs` are command substitutions inside `${…}`.
    Param {
        /// Parameter name.
        name: String,
        /// Inside double quotes.
        quoted: bool,
        /// Command substitutions in the expansion's word.
        substs: Vec<List>,
    },
    /// `$( … )` or `` ` … ` ``.
    Subst {
        /// The commands inside.
        list: List,
        /// Inside double quotes.
        quoted: bool,
    },
    /// `$(( … ))`.
    Arith {
        /// Inside double quotes.
        quoted: bool,
    },
}

/// A word: its parts, and its source text for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word {
    /// As written.
    pub raw: String,
    /// Parts after quote removal.
    pub parts: Vec<Part>,
}

impl Word {
    /// The word's text when it is entirely literal (no expansion, no glob).
    pub fn literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => s.push_str(text),
                _ => return None,
            }
        }
        Some(s)
    }

    /// Whether it is an unquoted literal equal to `kw` (reserved words must be unquoted).
    pub fn is_keyword(&self, kw: &str) -> bool {
        self.raw == kw
            && matches!(self.parts.as_slice(), [Part::Lit { text, quoted: false }] if text == kw)
    }

    /// Whether expanding it could yield a field that starts with `-` (an option): true when
    /// any part is an unquoted expansion (field splitting can start a new field anywhere) or
    /// when it does not begin with literal text whose first character is not `-`.
    pub fn could_be_option(&self) -> bool {
        if self.literal().is_some() {
            return self.literal().is_some_and(|t| t.starts_with('-'));
        }
        let split = self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Param { quoted: false, .. }
                    | Part::Subst { quoted: false, .. }
                    | Part::Arith { quoted: false }
            )
        });
        if split {
            return true;
        }
        !matches!(self.parts.first(), Some(Part::Lit { text, .. }) if text.chars().next().is_some_and(|c| c != '-'))
    }

    /// Whether expanding it could give several fields: an unquoted expansion (field
    /// splitting) or an unquoted glob (pathname expansion).
    pub fn could_split(&self) -> bool {
        self.parts.iter().any(|p| {
            matches!(
                p,
                Part::Param { quoted: false, .. }
                    | Part::Subst { quoted: false, .. }
                    | Part::Arith { quoted: false }
                    | Part::Glob(_)
            )
        })
    }

    /// The command substitutions anywhere in the word.
    pub fn substs(&self) -> Vec<&List> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Subst { list, .. } => out.push(list),
                Part::Param { substs, .. } => out.extend(substs.iter()),
                _ => {}
            }
        }
        out
    }

    /// A glob pattern when the word is literal text plus unquoted glob characters.
    pub fn glob_pattern(&self) -> Option<Vec<GlobTok>> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit { text, .. } => out.extend(text.chars().map(GlobTok::Char)),
                Part::Glob(c) => out.push(GlobTok::Wild(*c)),
                _ => return None,
            }
        }
        Some(out)
    }
}

/// One element of a glob pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobTok {
    /// A literal character.
    Char(char),
    /// An unquoted `*`, `?` or `[`.
    Wild(char),
}

/// Whether a glob pattern could match `name` (brackets are treated as "any one character",
/// which over-approximates, the safe direction for a classifier).
pub fn glob_could_match(pat: &[GlobTok], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    // Brackets: skip to the closing `]` and match any single character.
    let mut toks: Vec<GlobTok> = Vec::new();
    let mut i = 0;
    while i < pat.len() {
        if pat[i] == GlobTok::Wild('[') {
            let mut j = i + 1;
            while j < pat.len() && pat[j] != GlobTok::Char(']') {
                j += 1;
            }
            toks.push(GlobTok::Wild('?'));
            i = j + 1;
        } else {
            toks.push(pat[i]);
            i += 1;
        }
    }
    fn m(p: &[GlobTok], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((GlobTok::Wild('*'), rest)) => (0..=n.len()).any(|k| m(rest, &n[k..])),
            Some((GlobTok::Wild(_), rest)) => !n.is_empty() && m(rest, &n[1..]),
            Some((GlobTok::Char(c), rest)) => n.first() == Some(c) && m(rest, &n[1..]),
        }
    }
    m(&toks, &name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Pipe,
    AndIf,
    OrIf,
    Semi,
    DSemi,
    Amp,
    LParen,
    RParen,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Pipe => "|",
            Op::AndIf => "&&",
            Op::OrIf => "||",
            Op::Semi => ";",
            Op::DSemi => ";;",
            Op::Amp => "&",
            Op::LParen => "(",
            Op::RParen => ")",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Op(Op),
    Redir(Redir),
    Newline,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Eof,
    Paren,
    Keywords(&'static [&'static str]),
}

struct Pending {
    delim: String,
    strip_tabs: bool,
    quoted: bool,
    index: usize,
}

/// Words that end a list or start a compound command; not a command name in command position.
const RESERVED: &[&str] = &[
    "then", "elif", "else", "fi", "do", "done", "esac", "}", "in",
];

/// Parses a command line.
pub fn parse(src: &str) -> Result<Script> {
    let mut p = Parser::new(src);
    let list = p.list(Term::Eof)?;
    if !p.pending.is_empty() {
        return err("here-document without a body (no line after the command)");
    }
    let heredocs = p
        .heredocs
        .into_iter()
        .map(|h| h.unwrap_or_default())
        .collect();
    Ok(Script { list, heredocs })
}

struct Parser {
    src: Vec<char>,
    pos: usize,
    peeked: Option<Tok>,
    pending: Vec<Pending>,
    heredocs: Vec<Option<Word>>,
    /// Index of this parser's first here-document in the outermost parser's list (sub-parsers
    /// for backticks and here-document bodies hand theirs up when done).
    base: usize,
    depth: usize,
}

/// Nesting limit: deeper lines are refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn new(src: &str) -> Self {
        Parser {
            src: src.chars().collect(),
            pos: 0,
            peeked: None,
            pending: Vec::new(),
            heredocs: Vec::new(),
            base: 0,
            depth: 0,
        }
    }

    fn at(&self, off: usize) -> Option<char> {
        self.src.get(self.pos + off).copied()
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ------------------------------------------------------------------------- grammar

    fn peek(&mut self) -> Result<&Tok> {
        if self.peeked.is_none() {
            let t = self.lex()?;
            self.peeked = Some(t);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => err("internal: no token"),
        }
    }

    fn next(&mut self) -> Result<Tok> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex(),
        }
    }

    fn is_term(tok: &Tok, term: Term) -> bool {
        match (tok, term) {
            (Tok::Eof, Term::Eof) => true,
            (Tok::Op(Op::RParen), Term::Paren) => true,
            (Tok::Word(w), Term::Keywords(kws)) => kws.iter().any(|k| w.is_keyword(k)),
            _ => false,
        }
    }

    fn list(&mut self, term: Term) -> Result<List> {
        self.enter()?;
        let mut commands = Vec::new();
        loop {
            while *self.peek()? == Tok::Newline {
                self.next()?;
            }
            let t = self.peek()?.clone();
            if Self::is_term(&t, term) {
                break;
            }
            match t {
                Tok::Eof => return err("unexpected end of line (unclosed construct)"),
                Tok::Op(op @ (Op::RParen | Op::Semi | Op::Amp | Op::DSemi | Op::Pipe)) => {
                    return err(format!("unexpected `{}`", op.as_str()));
                }
                _ => {}
            }
            self.and_or(&mut commands)?;
            match self.peek()?.clone() {
                Tok::Op(Op::Semi | Op::Amp) | Tok::Newline => {
                    self.next()?;
                }
                t if Self::is_term(&t, term) => {}
                Tok::Eof => {}
                Tok::Op(Op::RParen) if term == Term::Paren => {}
                Tok::Word(w) => return err(format!("unexpected word `{}`", w.raw)),
                Tok::Op(op) => return err(format!("unexpected `{}`", op.as_str())),
                Tok::Redir(r) => return err(format!("unexpected `{}`", r.op.as_str())),
            }
        }
        self.leave();
        Ok(List { commands })
    }

    fn and_or(&mut self, out: &mut Vec<Command>) -> Result<()> {
        self.pipeline(out)?;
        while matches!(self.peek()?, Tok::Op(Op::AndIf | Op::OrIf)) {
            self.next()?;
            while *self.peek()? == Tok::Newline {
                self.next()?;
            }
            self.pipeline(out)?;
        }
        Ok(())
    }

    fn pipeline(&mut self, out: &mut Vec<Command>) -> Result<()> {
        if let Tok::Word(w) = self.peek()? {
            if w.is_keyword("!") {
                self.next()?;
            }
        }
        self.command(out)?;
        while *self.peek()? == Tok::Op(Op::Pipe) {
            self.next()?;
            while *self.peek()? == Tok::Newline {
                self.next()?;
            }
            self.command(out)?;
        }
        Ok(())
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<()> {
        match self.next()? {
            Tok::Word(w) if w.is_keyword(kw) => Ok(()),
            Tok::Word(w) => err(format!("expected `{kw}`, found `{}`", w.raw)),
            _ => err(format!("expected `{kw}`")),
        }
    }

    fn redirs(&mut self) -> Result<Vec<Redir>> {
        let mut v = Vec::new();
        while let Tok::Redir(_) = self.peek()? {
            if let Tok::Redir(r) = self.next()? {
                v.push(r);
            }
        }
        Ok(v)
    }

    fn command(&mut self, out: &mut Vec<Command>) -> Result<()> {
        self.enter()?;
        let t = self.peek()?.clone();
        let cmd = match t {
            Tok::Op(Op::LParen) => {
                self.next()?;
                let body = self.list(Term::Paren)?;
                match self.next()? {
                    Tok::Op(Op::RParen) => {}
                    _ => return err("expected `)`"),
                }
                Command::Compound {
                    kind: "subshell",
                    bodies: vec![body],
                    words: vec![],
                    redirs: self.redirs()?,
                }
            }
            Tok::Word(w) if w.is_keyword("{") => {
                self.next()?;
                let body = self.list(Term::Keywords(&["}"]))?;
                self.expect_keyword("}")?;
                Command::Compound {
                    kind: "group",
                    bodies: vec![body],
                    words: vec![],
                    redirs: self.redirs()?,
                }
            }
            Tok::Word(w) if w.is_keyword("if") => {
                self.next()?;
                let mut bodies = vec![self.list(Term::Keywords(&["then"]))?];
                self.expect_keyword("then")?;
                loop {
                    bodies.push(self.list(Term::Keywords(&["elif", "else", "fi"]))?);
                    match self.next()? {
                        Tok::Word(w) if w.is_keyword("elif") => {
                            bodies.push(self.list(Term::Keywords(&["then"]))?);
                            self.expect_keyword("then")?;
                        }
                        Tok::Word(w) if w.is_keyword("else") => {
                            bodies.push(self.list(Term::Keywords(&["fi"]))?);
                            self.expect_keyword("fi")?;
                            break;
                        }
                        Tok::Word(w) if w.is_keyword("fi") => break,
                        _ => return err("expected `fi`"),
                    }
                }
                Command::Compound {
                    kind: "if",
                    bodies,
                    words: vec![],
                    redirs: self.redirs()?,
                }
            }
            Tok::Word(w) if w.is_keyword("while") || w.is_keyword("until") => {
                self.next()?;
                let kind = if w.is_keyword("while") {
                    "while"
                } else {
                    "until"
                };
                let cond = self.list(Term::Keywords(&["do"]))?;
                self.expect_keyword("do")?;
                let body = self.list(Term::Keywords(&["done"]))?;
                self.expect_keyword("done")?;
                Command::Compound {
                    kind,
                    bodies: vec![cond, body],
                    words: vec![],
                    redirs: self.redirs()?,
                }
            }
            Tok::Word(w) if w.is_keyword("for") => {
                self.next()?;
                match self.next()? {
                    Tok::Word(v) if v.literal().is_some_and(|n| is_name(&n)) => {}
                    _ => return err("expected a variable name after `for`"),
                }
                while *self.peek()? == Tok::Newline {
                    self.next()?;
                }
                let mut words = Vec::new();
                if let Tok::Word(w) = self.peek()? {
                    if w.is_keyword("in") {
                        self.next()?;
                        loop {
                            match self.next()? {
                                Tok::Word(w) => words.push(w),
                                Tok::Op(Op::Semi) | Tok::Newline => break,
                                _ => return err("expected `;` or a newline after the `for` list"),
                            }
                        }
                    }
                }
                while let Tok::Newline | Tok::Op(Op::Semi) = self.peek()? {
                    self.next()?;
                }
                self.expect_keyword("do")?;
                let body = self.list(Term::Keywords(&["done"]))?;
                self.expect_keyword("done")?;
                Command::Compound {
                    kind: "for",
                    bodies: vec![body],
                    words,
                    redirs: self.redirs()?,
                }
            }
            Tok::Word(w)
                if w.is_keyword("case") || w.is_keyword("select") || w.is_keyword("function") =>
            {
                return err(format!("`{}` is not analysed", w.raw));
            }
            Tok::Word(w) if RESERVED.iter().any(|k| w.is_keyword(k)) => {
                return err(format!("unexpected `{}`", w.raw));
            }
            Tok::Word(_) | Tok::Redir(_) => Command::Simple(self.simple()?),
            Tok::Op(op) => return err(format!("unexpected `{}`", op.as_str())),
            Tok::Newline | Tok::Eof => return err("expected a command"),
        };
        out.push(cmd);
        self.leave();
        Ok(())
    }

    fn simple(&mut self) -> Result<Simple> {
        let mut s = Simple::default();
        loop {
            match self.peek()?.clone() {
                Tok::Redir(_) => {
                    if let Tok::Redir(r) = self.next()? {
                        s.redirs.push(r);
                    }
                }
                Tok::Word(w) => {
                    self.next()?;
                    if s.words.is_empty() && is_assignment(&w) {
                        s.assigns.push(w);
                    } else {
                        s.words.push(w);
                    }
                }
                Tok::Op(Op::LParen) if s.words.len() == 1 && s.assigns.is_empty() => {
                    return err("function definitions are not analysed");
                }
                _ => break,
            }
        }
        if s.words.is_empty() && s.assigns.is_empty() && s.redirs.is_empty() {
            return err("expected a command");
        }
        Ok(s)
    }

    // --------------------------------------------------------------------------- lexer

    fn skip_blanks(&mut self) {
        loop {
            match (self.at(0), self.at(1)) {
                (Some(' ' | '\t'), _) => self.pos += 1,
                (Some('\\'), Some('\n')) => self.pos += 2,
                _ => break,
            }
        }
    }

    fn lex(&mut self) -> Result<Tok> {
        self.skip_blanks();
        if self.at(0) == Some('#') {
            while let Some(c) = self.at(0) {
                if c == '\n' {
                    break;
                }
                self.pos += 1;
            }
        }
        let Some(c) = self.at(0) else {
            return Ok(Tok::Eof);
        };
        let two = |p: &Self, s: &str| s.chars().enumerate().all(|(i, ch)| p.at(i) == Some(ch));
        match c {
            '\n' => {
                self.pos += 1;
                self.read_heredocs()?;
                Ok(Tok::Newline)
            }
            '|' => {
                if two(self, "||") {
                    self.pos += 2;
                    Ok(Tok::Op(Op::OrIf))
                } else if two(self, "|&") {
                    self.pos += 2;
                    Ok(Tok::Op(Op::Pipe))
                } else {
                    self.pos += 1;
                    Ok(Tok::Op(Op::Pipe))
                }
            }
            '&' => {
                if two(self, "&&") {
                    self.pos += 2;
                    Ok(Tok::Op(Op::AndIf))
                } else if two(self, "&>>") {
                    self.pos += 3;
                    self.redir_target(None, RedirOp::AppendBoth)
                } else if two(self, "&>") {
                    self.pos += 2;
                    self.redir_target(None, RedirOp::OutBoth)
                } else {
                    self.pos += 1;
                    Ok(Tok::Op(Op::Amp))
                }
            }
            ';' => {
                if two(self, ";;") || two(self, ";&") {
                    self.pos += 2;
                    Ok(Tok::Op(Op::DSemi))
                } else {
                    self.pos += 1;
                    Ok(Tok::Op(Op::Semi))
                }
            }
            '(' => {
                self.pos += 1;
                Ok(Tok::Op(Op::LParen))
            }
            ')' => {
                self.pos += 1;
                Ok(Tok::Op(Op::RParen))
            }
            '<' | '>' => self.redir(None),
            d if d.is_ascii_digit() => {
                let mut n = 0;
                while self.at(n).is_some_and(|c| c.is_ascii_digit()) {
                    n += 1;
                }
                if matches!(self.at(n), Some('<' | '>')) {
                    let digits: String = self.src[self.pos..self.pos + n].iter().collect();
                    self.pos += n;
                    let fd = digits
                        .parse::<u32>()
                        .map_err(|_| ParseError(format!("bad file descriptor {digits}")))?;
                    self.redir(Some(fd))
                } else {
                    Ok(Tok::Word(self.word()?))
                }
            }
            _ => Ok(Tok::Word(self.word()?)),
        }
    }

    fn redir(&mut self, fd: Option<u32>) -> Result<Tok> {
        let s: String = self.src[self.pos..(self.pos + 3).min(self.src.len())]
            .iter()
            .collect();
        let (op, len, strip) = if s.starts_with("<<<") {
            (RedirOp::HereString, 3, false)
        } else if s.starts_with("<<-") {
            (RedirOp::HereDoc, 3, true)
        } else if s.starts_with("<<") {
            (RedirOp::HereDoc, 2, false)
        } else if s.starts_with("<&") {
            (RedirOp::DupIn, 2, false)
        } else if s.starts_with("<>") {
            (RedirOp::ReadWrite, 2, false)
        } else if s.starts_with("<(") || s.starts_with(">(") {
            return err("process substitution is not analysed");
        } else if s.starts_with('<') {
            (RedirOp::In, 1, false)
        } else if s.starts_with(">>") {
            (RedirOp::Append, 2, false)
        } else if s.starts_with(">|") {
            (RedirOp::Clobber, 2, false)
        } else if s.starts_with(">&") {
            (RedirOp::DupOut, 2, false)
        } else {
            (RedirOp::Out, 1, false)
        };
        self.pos += len;
        if op == RedirOp::HereDoc {
            self.skip_blanks();
            let target = self.word()?;
            if target.raw.is_empty() {
                return err("here-document without a delimiter");
            }
            let quoted = target.raw.contains(['\'', '"', '\\']);
            let delim: String = target
                .raw
                .chars()
                .filter(|c| !matches!(c, '\'' | '"' | '\\'))
                .collect();
            let index = self.base + self.heredocs.len();
            self.heredocs.push(None);
            self.pending.push(Pending {
                delim,
                strip_tabs: strip,
                quoted,
                index,
            });
            return Ok(Tok::Redir(Redir {
                fd,
                op,
                target,
                heredoc: Some(index),
            }));
        }
        self.redir_target(fd, op)
    }

    fn redir_target(&mut self, fd: Option<u32>, op: RedirOp) -> Result<Tok> {
        self.skip_blanks();
        if matches!(self.at(0), Some('(')) && matches!(op, RedirOp::In | RedirOp::Out) {
            return err("process substitution is not analysed");
        }
        let target = self.word()?;
        if target.raw.is_empty() {
            return err(format!("`{}` without a target", op.as_str()));
        }
        Ok(Tok::Redir(Redir {
            fd,
            op,
            target,
            heredoc: None,
        }))
    }

    fn read_heredocs(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        for h in pending {
            let mut body = String::new();
            let mut found = false;
            while self.pos < self.src.len() {
                let start = self.pos;
                while self.pos < self.src.len() && self.src[self.pos] != '\n' {
                    self.pos += 1;
                }
                let line: String = self.src[start..self.pos].iter().collect();
                if self.pos < self.src.len() {
                    self.pos += 1;
                }
                let check = if h.strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line.as_str()
                };
                if check == h.delim {
                    found = true;
                    break;
                }
                body.push_str(check);
                body.push('\n');
            }
            if !found {
                return err(format!("here-document `{}` is not terminated", h.delim));
            }
            let word = if h.quoted {
                Word {
                    raw: body.clone(),
                    parts: vec![Part::Lit {
                        text: body,
                        quoted: true,
                    }],
                }
            } else {
                let mut sub = self.sub(&body);
                let w = sub.heredoc_body()?;
                self.adopt(sub);
                w
            };
            if let Some(slot) = h
                .index
                .checked_sub(self.base)
                .and_then(|i| self.heredocs.get_mut(i))
            {
                *slot = Some(word);
            }
        }
        Ok(())
    }

    /// A parser for text nested in this one (backticks, here-document bodies).
    fn sub(&self, src: &str) -> Parser {
        let mut p = Parser::new(src);
        p.base = self.base + self.heredocs.len();
        p.depth = self.depth;
        p
    }

    /// Takes over the here-documents a sub-parser found (inside backticks or a here-doc body).
    fn adopt(&mut self, sub: Parser) {
        self.heredocs.extend(sub.heredocs);
    }

    /// A here-document body with an unquoted delimiter: like double quotes, minus the quotes.
    fn heredoc_body(&mut self) -> Result<Word> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        while let Some(c) = self.at(0) {
            match c {
                '\\' => match self.at(1) {
                    Some(n @ ('$' | '`' | '\\')) => {
                        lit.push(n);
                        self.pos += 2;
                    }
                    Some('\n') => self.pos += 2,
                    _ => {
                        lit.push('\\');
                        self.pos += 1;
                    }
                },
                '$' => {
                    flush(&mut parts, &mut lit, true);
                    self.dollar(&mut parts, true)?;
                }
                '`' => {
                    flush(&mut parts, &mut lit, true);
                    let list = self.backtick(true)?;
                    parts.push(Part::Subst { list, quoted: true });
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut parts, &mut lit, true);
        Ok(Word {
            raw: self.src.iter().collect(),
            parts,
        })
    }

    fn word(&mut self) -> Result<Word> {
        let start = self.pos;
        let mut parts: Vec<Part> = Vec::new();
        let mut lit = String::new();
        let mut qlit = String::new();
        // Literal text is collected per quotedness so `could_be_option` sees the first part.
        macro_rules! unq {
            () => {
                if !qlit.is_empty() {
                    flush(&mut parts, &mut qlit, true);
                }
            };
        }
        macro_rules! q {
            () => {
                if !lit.is_empty() {
                    flush(&mut parts, &mut lit, false);
                }
            };
        }
        while let Some(c) = self.at(0) {
            match c {
                ' ' | '\t' | '\n' | '|' | '&' | ';' | '<' | '>' | '(' | ')' => break,
                '\\' => {
                    match self.at(1) {
                        Some('\n') => {}
                        Some(n) => {
                            q!();
                            qlit.push(n);
                        }
                        None => {
                            unq!();
                            lit.push('\\');
                        }
                    }
                    self.pos += 2.min(self.src.len() - self.pos);
                }
                '\'' => {
                    q!();
                    self.pos += 1;
                    let mut closed = false;
                    while let Some(ch) = self.at(0) {
                        self.pos += 1;
                        if ch == '\'' {
                            closed = true;
                            break;
                        }
                        qlit.push(ch);
                    }
                    if !closed {
                        return err("unterminated single quote");
                    }
                    // An empty '' is still a (quoted, empty) part.
                    if qlit.is_empty() {
                        parts.push(Part::Lit {
                            text: String::new(),
                            quoted: true,
                        });
                    }
                }
                '"' => {
                    q!();
                    flush(&mut parts, &mut qlit, true);
                    self.pos += 1;
                    let before = parts.len();
                    self.double_quoted(&mut parts)?;
                    if parts.len() == before {
                        parts.push(Part::Lit {
                            text: String::new(),
                            quoted: true,
                        });
                    }
                }
                '$' => {
                    q!();
                    unq!();
                    self.dollar(&mut parts, false)?;
                }
                '`' => {
                    q!();
                    unq!();
                    let list = self.backtick(false)?;
                    parts.push(Part::Subst {
                        list,
                        quoted: false,
                    });
                }
                '[' if !self.bracket_closes() => {
                    // A `[` with no `]` after it in the word matches only itself.
                    unq!();
                    lit.push(c);
                    self.pos += 1;
                }
                '*' | '?' | '[' => {
                    q!();
                    unq!();
                    parts.push(Part::Glob(c));
                    self.pos += 1;
                }
                _ => {
                    unq!();
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(&mut parts, &mut lit, false);
        flush(&mut parts, &mut qlit, true);
        let parts = merge_lits(parts);
        Ok(Word {
            raw: self.src[start..self.pos].iter().collect(),
            parts,
        })
    }

    /// At a `[`: whether a `]` follows within the same word (then it is a glob bracket).
    fn bracket_closes(&self) -> bool {
        let mut i = 1;
        while let Some(c) = self.at(i) {
            match c {
                ']' => return true,
                ' ' | '\t' | '\n' | '|' | '&' | ';' | '<' | '>' | '(' | ')' => return false,
                _ => i += 1,
            }
        }
        false
    }

    /// After an opening `"`: up to and including the closing one.
    fn double_quoted(&mut self, parts: &mut Vec<Part>) -> Result<()> {
        let mut lit = String::new();
        loop {
            let Some(c) = self.at(0) else {
                return err("unterminated double quote");
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\\' => match self.at(1) {
                    Some(n @ ('$' | '`' | '"' | '\\')) => {
                        lit.push(n);
                        self.pos += 2;
                    }
                    Some('\n') => self.pos += 2,
                    _ => {
                        lit.push('\\');
                        self.pos += 1;
                    }
                },
                '$' => {
                    flush(parts, &mut lit, true);
                    self.dollar(parts, true)?;
                }
                '`' => {
                    flush(parts, &mut lit, true);
                    let list = self.backtick(true)?;
                    parts.push(Part::Subst { list, quoted: true });
                }
                _ => {
                    lit.push(c);
                    self.pos += 1;
                }
            }
        }
        flush(parts, &mut lit, true);
        Ok(())
    }

    /// At a `$`.
    fn dollar(&mut self, parts: &mut Vec<Part>, quoted: bool) -> Result<()> {
        match self.at(1) {
            Some('(') if self.at(2) == Some('(') => {
                self.pos += 3;
                let start = self.pos;
                let mut depth = 0usize;
                loop {
                    match self.at(0) {
                        None => return err("unterminated `$((`"),
                        Some('(') => depth += 1,
                        Some(')') if depth == 0 && self.at(1) == Some(')') => break,
                        Some(')') if depth == 0 => {
                            return err("`$((` closed by a single `)`: not analysed");
                        }
                        Some(')') => depth -= 1,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let inner: String = self.src[start..self.pos].iter().collect();
                self.pos += 2;
                if inner.contains(['$', '`']) {
                    // `$(( $(cmd) ))` and `a[$(cmd)]` subscripts run commands.
                    let mut sub = self.sub(&inner);
                    let w = sub.heredoc_body()?;
                    self.adopt(sub);
                    for l in w.substs() {
                        parts.push(Part::Subst {
                            list: l.clone(),
                            quoted,
                        });
                    }
                }
                parts.push(Part::Arith { quoted });
                Ok(())
            }
            Some('(') => {
                self.pos += 2;
                // The substitution is a fresh context: its own lookahead, same heredoc queue.
                let saved = self.peeked.take();
                let list = self.list(Term::Paren)?;
                match self.next()? {
                    Tok::Op(Op::RParen) => {}
                    _ => return err("unterminated `$(`"),
                }
                self.peeked = saved;
                parts.push(Part::Subst { list, quoted });
                Ok(())
            }
            Some('{') => {
                self.pos += 2;
                let mut name = String::new();
                while let Some(c) = self.at(0) {
                    if c.is_ascii_alphanumeric()
                        || c == '_'
                        || (name.is_empty() && "#?$!@*-".contains(c))
                    {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                let mut substs = Vec::new();
                loop {
                    let Some(c) = self.at(0) else {
                        return err("unterminated `${`");
                    };
                    match c {
                        '}' => {
                            self.pos += 1;
                            break;
                        }
                        '\\' => self.pos += 2.min(self.src.len() - self.pos),
                        '\'' if !quoted => {
                            self.pos += 1;
                            while self.at(0).is_some_and(|c| c != '\'') {
                                self.pos += 1;
                            }
                            if self.at(0).is_none() {
                                return err("unterminated single quote");
                            }
                            self.pos += 1;
                        }
                        '"' => {
                            self.pos += 1;
                            let mut inner = Vec::new();
                            self.double_quoted(&mut inner)?;
                            for p in inner {
                                collect_substs(p, &mut substs);
                            }
                        }
                        '$' => {
                            let mut inner = Vec::new();
                            self.dollar(&mut inner, quoted)?;
                            for p in inner {
                                collect_substs(p, &mut substs);
                            }
                        }
                        '`' => {
                            substs.push(self.backtick(quoted)?);
                        }
                        _ => self.pos += 1,
                    }
                }
                parts.push(Part::Param {
                    name,
                    quoted,
                    substs,
                });
                Ok(())
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.at(0) {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                parts.push(Part::Param {
                    name,
                    quoted,
                    substs: vec![],
                });
                Ok(())
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.pos += 2;
                parts.push(Part::Param {
                    name: c.to_string(),
                    quoted,
                    substs: vec![],
                });
                Ok(())
            }
            Some('\'') if !quoted => {
                // `$'…'`: ANSI-C quoting in bash (which is `sh` on some systems), a literal `$`
                // and a plain quote in dash. The quote ends at different places in the two,
                // so a command could hide in the difference.
                err("`$'…'` quoting differs between shells and is not analysed")
            }
            _ => {
                // A lone `$` is literal.
                self.pos += 1;
                parts.push(Part::Lit {
                    text: "$".into(),
                    quoted,
                });
                Ok(())
            }
        }
    }

    /// At a backtick: the command inside, parsed on its own after unescaping.
    fn backtick(&mut self, in_dquote: bool) -> Result<List> {
        self.pos += 1;
        let mut inner = String::new();
        loop {
            let Some(c) = self.at(0) else {
                return err("unterminated backtick");
            };
            self.pos += 1;
            match c {
                '`' => break,
                '\\' => match self.at(0) {
                    Some(n) if n == '$' || n == '`' || n == '\\' || (in_dquote && n == '"') => {
                        inner.push(n);
                        self.pos += 1;
                    }
                    _ => inner.push('\\'),
                },
                _ => inner.push(c),
            }
        }
        let mut sub = self.sub(&inner);
        sub.depth += 1;
        if sub.depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        let list = sub.list(Term::Eof)?;
        if !sub.pending.is_empty() {
            return err("here-document without a body inside backticks");
        }
        self.adopt(sub);
        Ok(list)
    }
}

fn collect_substs(p: Part, out: &mut Vec<List>) {
    match p {
        Part::Subst { list, .. } => out.push(list),
        Part::Param { substs, .. } => out.extend(substs),
        _ => {}
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String, quoted: bool) {
    if !lit.is_empty() {
        parts.push(Part::Lit {
            text: std::mem::take(lit),
            quoted,
        });
    }
}

/// Joins adjacent literal parts (keeping the first one's quotedness), so a word like
/// `a"b"c` is one literal.
fn merge_lits(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for p in parts {
        if let (Some(Part::Lit { text: a, .. }), Part::Lit { text: b, .. }) = (out.last_mut(), &p) {
            a.push_str(b);
            continue;
        }
        out.push(p);
    }
    out
}

/// A shell variable name.
pub fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// `NAME=…` written unquoted at the start of a word.
fn is_assignment(w: &Word) -> bool {
    w.raw.split_once('=').is_some_and(|(name, _)| is_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(src: &str) -> Vec<Simple> {
        fn walk(l: &List, out: &mut Vec<Simple>) {
            for c in &l.commands {
                match c {
                    Command::Simple(s) => {
                        out.push(s.clone());
                        for w in s.words.iter().chain(&s.assigns) {
                            for sub in w.substs() {
                                walk(sub, out);
                            }
                        }
                    }
                    Command::Compound { bodies, .. } => {
                        for b in bodies {
                            walk(b, out);
                        }
                    }
                }
            }
        }
        let s = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let mut out = Vec::new();
        walk(&s.list, &mut out);
        out
    }

    fn names(src: &str) -> Vec<String> {
        simple(src)
            .iter()
            .filter_map(|s| s.words.first().and_then(Word::literal))
            .collect()
    }

    #[test]
    fn words_quotes_and_escapes() {
        let s = simple(r#"echo 'a b' "c $HOME d" e\ f "" g"h"i"#);
        let w: Vec<_> = s[0].words.iter().map(|w| w.literal()).collect();
        assert_eq!(w[1].as_deref(), Some("a b"));
        assert_eq!(w[2], None);
        assert_eq!(w[3].as_deref(), Some("e f"));
        assert_eq!(w[4].as_deref(), Some(""));
        assert_eq!(w[5].as_deref(), Some("ghi"));
    }

    #[test]
    fn operators_split_commands() {
        assert_eq!(
            names("ls -l | grep x && echo ok || echo no; date & wc -l"),
            vec!["ls", "grep", "echo", "echo", "date", "wc"]
        );
        assert_eq!(names("ls;rm x"), vec!["ls", "rm"]);
    }

    #[test]
    fn substitutions_are_parsed_recursively() {
        assert_eq!(names("echo $(rm -rf x)"), vec!["echo", "rm"]);
        assert_eq!(names("echo `rm x`"), vec!["echo", "rm"]);
        assert_eq!(names(r#"echo "$(cat "$(ls)")""#), vec!["echo", "cat", "ls"]);
        assert_eq!(names("echo ${X:-$(rm y)}"), vec!["echo", "rm"]);
        assert_eq!(names("echo $((1 + $(rm z)))"), vec!["echo", "rm"]);
    }

    #[test]
    fn redirections() {
        let s = simple("ls -l 2>&1 >out.txt </dev/null 2>>err &>both");
        let ops: Vec<_> = s[0].redirs.iter().map(|r| (r.fd, r.op)).collect();
        assert_eq!(
            ops,
            vec![
                (Some(2), RedirOp::DupOut),
                (None, RedirOp::Out),
                (None, RedirOp::In),
                (Some(2), RedirOp::Append),
                (None, RedirOp::OutBoth)
            ]
        );
        assert_eq!(s[0].words.len(), 2);
    }

    #[test]
    fn heredocs() {
        let s = parse("cat <<EOF\nhello $(rm x)\nEOF\necho done").unwrap();
        assert_eq!(s.heredocs.len(), 1);
        assert_eq!(s.heredocs[0].substs().len(), 1);
        let s = parse("cat <<'EOF'\nhello $(rm x)\nEOF").unwrap();
        assert!(s.heredocs[0].substs().is_empty());
        let s = parse("cat <<-EOF\n\thello\n\tEOF\n").unwrap();
        assert_eq!(s.heredocs[0].literal().as_deref(), Some("hello\n"));
        assert!(parse("cat <<EOF\nno end").is_err());
        assert!(parse("cat <<EOF").is_err());
    }

    #[test]
    fn compound_commands() {
        assert_eq!(
            names("if test -f x; then cat x; elif true; then ls; else rm y; fi"),
            vec!["test", "cat", "true", "ls", "rm"]
        );
        assert_eq!(
            names("for f in *.log $(ls); do wc -l \"$f\"; done"),
            vec!["wc"]
        );
        assert_eq!(
            names("while read l; do echo $l; done < f"),
            vec!["read", "echo"]
        );
        assert_eq!(names("(cd /tmp && ls) > out"), vec!["cd", "ls"]);
        assert_eq!(names("{ ls; pwd; } 2>/dev/null"), vec!["ls", "pwd"]);
        assert_eq!(names("! grep -q x f"), vec!["grep"]);
        assert_eq!(names("echo if then fi"), vec!["echo"]);
    }

    #[test]
    fn assignments() {
        let s = simple("FOO=1 BAR=\"a b\" ls x=1");
        assert_eq!(s[0].assigns.len(), 2);
        assert_eq!(s[0].words.len(), 2);
        let s = simple("\"FOO\"=1");
        assert_eq!(s[0].assigns.len(), 0);
    }

    #[test]
    fn errors() {
        for bad in [
            "echo 'unterminated",
            "echo \"unterminated",
            "echo $(ls",
            "echo `ls",
            "ls |",
            "ls &&",
            "| ls",
            "; ls",
            "(ls",
            "ls )",
            "if true; then ls",
            "case x in a) ls;; esac",
            "f() { rm x; }",
            "diff <(ls a) <(ls b)",
            "echo $'\\'' ; rm x ; echo '\\'''",
            "ls >",
            "echo ${X",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn comments_and_continuations() {
        assert_eq!(names("ls # ; rm -rf /"), vec!["ls"]);
        assert_eq!(names("echo a#b"), vec!["echo"]);
        assert_eq!(names("ls \\\n -l"), vec!["ls"]);
        assert_eq!(simple("ls \\\n -l")[0].words.len(), 2);
    }

    #[test]
    fn option_detection() {
        let w = |s: &str| simple(&format!("x {s}"))[0].words[1].clone();
        assert!(w("-delete").could_be_option());
        assert!(!w("file").could_be_option());
        assert!(w("$X").could_be_option());
        assert!(w("\"$X\"").could_be_option());
        assert!(!w("./\"$X\"").could_be_option());
        assert!(w("./$X").could_be_option(), "unquoted expansion splits");
        assert!(w("*.log").could_be_option());
        assert!(!w("a*.log").could_be_option());
    }

    #[test]
    fn globs() {
        let w = simple("x *.log")[0].words[1].glob_pattern().unwrap();
        assert!(!glob_could_match(&w, "-delete"));
        assert!(glob_could_match(&w, "-x.log"));
        let w = simple("x -de*")[0].words[1].glob_pattern().unwrap();
        assert!(glob_could_match(&w, "-delete"));
        let w = simple("x [-]delete")[0].words[1].glob_pattern().unwrap();
        assert!(glob_could_match(&w, "-delete"));
    }
}
