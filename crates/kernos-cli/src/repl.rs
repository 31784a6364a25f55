//! `kernos` with no arguments: an interactive prompt with history, completion of tool names
//! and paths, and conversation context ("them", "do the same for /opt", "undo that").

use std::process::ExitCode;

use kernos_core::CancelToken;
use kernos_planner::Conversation;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::app::App;

/// Completes tool action names (`fs.fi` → `fs.find`) and paths.
struct KernosHelper {
    names: Vec<String>,
    files: FilenameCompleter,
}

impl Completer for KernosHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..pos];
        let looks_like_path = word.starts_with('/')
            || word.starts_with('.')
            || word.starts_with('~')
            || word.contains('/');
        if !looks_like_path {
            let hits: Vec<Pair> = self
                .names
                .iter()
                .filter(|n| !word.is_empty() && n.starts_with(word))
                .map(|n| Pair {
                    display: n.clone(),
                    replacement: n.clone(),
                })
                .collect();
            if !hits.is_empty() {
                return Ok((start, hits));
            }
        }
        self.files.complete(line, pos, ctx)
    }
}

impl Hinter for KernosHelper {
    type Hint = String;
}
impl Highlighter for KernosHelper {}
impl Validator for KernosHelper {}
impl Helper for KernosHelper {}

const HELP: &str = "Type what you want, e.g.:
  show the 5 largest files in /var/log
  find log files older than 30 days in /var/log
  ...and then: compress them into old-logs.tar.gz
  undo that
Commands: help, history, tools, clear, exit (or Ctrl-D).";

/// Runs the prompt until exit.
pub fn run(app: &App, cancel: &CancelToken) -> anyhow::Result<ExitCode> {
    let registry = app.registry();
    let mut names: Vec<String> = registry.names().map(str::to_owned).collect();
    names.extend(["help", "history", "tools", "clear", "exit", "quit", "undo"].map(String::from));
    let mut rl: Editor<KernosHelper, DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(KernosHelper {
        names,
        files: FilenameCompleter::new(),
    }));
    let history = app.data_dir.join("repl_history");
    let _ = kernos_journal::create_private_dir(&app.data_dir);
    let _ = rl.load_history(&history);
    let mut conversation: Option<Conversation> = None;
    println!(
        "kernos {} — say what you want; `help` for examples, Ctrl-D to leave.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        match rl.readline("kernos> ") {
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line);
                let result = match line {
                    "exit" | "quit" => break,
                    "clear" | "cls" => {
                        // As in a shell: the screen is cleared, history and context stay.
                        let _ = rl.clear_screen();
                        Ok(ExitCode::SUCCESS)
                    }
                    "help" | "?" => {
                        println!("{HELP}");
                        Ok(ExitCode::SUCCESS)
                    }
                    "history" => crate::txn_cmd::history(app, 20),
                    "tools" => crate::tools_cmd::run(app, None, false),
                    _ => {
                        // A fresh token per request: Ctrl-C stops this request, not the prompt.
                        let token = CancelToken::new();
                        crate::set_current_cancel(&token);
                        let r = crate::request::run(
                            app,
                            kernos_engine::Ask::Text(line.to_owned()),
                            &mut conversation,
                            &token,
                        );
                        crate::set_current_cancel(cancel);
                        r
                    }
                };
                if let Err(e) = result {
                    eprintln!("kernos: {e}");
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    let _ = rl.save_history(&history);
    Ok(ExitCode::SUCCESS)
}
