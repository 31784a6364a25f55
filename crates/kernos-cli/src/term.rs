//! The terminal: is there one, may we use colour, a single-key prompt and a typed-word one.

use std::io::{IsTerminal, Read, Write};

/// Whether stdin and stdout are both terminals (a person can answer a prompt).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Whether to colour output: `NO_COLOR` wins, then the `cli.color` setting, then whether
/// stdout is a terminal.
pub fn color_enabled(setting: &str) -> bool {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    match setting {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal(),
    }
}

/// Minimal styling that disappears when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to emit escape codes.
    pub on: bool,
}

impl Style {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    /// Bold.
    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    /// Dim.
    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    /// Red.
    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    /// Green.
    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    /// Yellow.
    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    /// A risk label in its colour.
    pub fn risk(&self, r: kernos_core::Risk) -> String {
        match r {
            kernos_core::Risk::Low => self.green("low"),
            kernos_core::Risk::Medium => self.yellow("medium"),
            kernos_core::Risk::High => self.red("high"),
        }
    }
}

/// Puts the terminal in non-canonical, no-echo mode for one key press and restores it after,
/// even on early return.
struct RawGuard {
    saved: libc::termios,
}

impl RawGuard {
    fn new() -> Option<Self> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios the call fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            // ISIG off too: Ctrl-C at the prompt arrives as a key (read as "no") rather than
            // as a signal that would cancel nothing.
            t.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawGuard { saved })
        }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

/// Throws away whatever was typed before the question was shown: keys typed ahead (a word
/// meant for the shell, "stay" while a plan was being made) must never answer a prompt they
/// did not see. Nothing happens when stdin is not a terminal (a script's answers are kept).
pub fn discard_typed_ahead() {
    // SAFETY: tcflush on fd 0; it fails harmlessly (ENOTTY) when stdin is not a terminal.
    unsafe {
        libc::tcflush(0, libc::TCIFLUSH);
    }
}

/// Asks `question` and reads a whole line: true only when the answer is `word` (surrounding
/// blanks ignored). For changes one stray key must not start: the person types the word.
pub fn ask_word(question: &str, word: &str) -> std::io::Result<bool> {
    let mut out = std::io::stdout();
    discard_typed_ahead();
    write!(out, "{question}")?;
    out.flush()?;
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line)? == 0 {
        writeln!(out)?;
        return Ok(false);
    }
    Ok(line.trim() == word)
}

/// Asks `question`, reading one key among `keys` (lower case). Enter picks `default`. Falls
/// back to reading a line when the terminal cannot be put in raw mode.
pub fn ask_key(question: &str, keys: &[char], default: Option<char>) -> std::io::Result<char> {
    let mut out = std::io::stdout();
    loop {
        discard_typed_ahead();
        write!(out, "{question}")?;
        out.flush()?;
        let c = match RawGuard::new() {
            Some(_guard) => {
                let mut b = [0u8; 1];
                std::io::stdin().read_exact(&mut b)?;
                b[0] as char
            }
            None => {
                let mut line = String::new();
                if std::io::stdin().read_line(&mut line)? == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "no answer (end of input)",
                    ));
                }
                line.trim().chars().next().unwrap_or('\n')
            }
        };
        let c = c.to_ascii_lowercase();
        if (c == '\n' || c == '\r') && default.is_some() {
            let d = default.unwrap_or('n');
            writeln!(out, "{d}")?;
            return Ok(d);
        }
        // Ctrl-C and Ctrl-D at the prompt mean no.
        if c == '\u{3}' || c == '\u{4}' {
            writeln!(out)?;
            return Ok('n');
        }
        if keys.contains(&c) {
            writeln!(out, "{c}")?;
            return Ok(c);
        }
        writeln!(out)?;
    }
}
