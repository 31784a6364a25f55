//! Output for people: aligned tables with human sizes and times, plan previews, reports.

use std::time::{Duration, UNIX_EPOCH};

use kernos_core::{Column, ColumnKind, StepRef};
use kernos_tools::{Output, human_bytes};
use serde_json::{Map, Value};

use crate::term::Style;

/// A Unix time in milliseconds as RFC 3339 (UTC, milliseconds).
pub fn time_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// A Unix time in seconds as local `YYYY-MM-DD HH:MM`.
pub fn local_time(secs: i64) -> String {
    // SAFETY: localtime_r writes into the zeroed tm we own; time_t is i64 here.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let t: libc::time_t = secs;
        if libc::localtime_r(&t, &mut tm).is_null() {
            return secs.to_string();
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// How long ago a millisecond timestamp was, roughly: `5s ago`, `3m ago`, `2h ago`, `4d ago`.
pub fn ago(ms: i64) -> String {
    let s = ((kernos_core::time::now_ms() - ms) / 1000).max(0);
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        3600..=86_399 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// A duration in seconds, compactly: `0.4s`, `3m 20s`, `2h 5m`, `3d 4h`.
pub fn duration(secs: f64) -> String {
    if secs < 60.0 {
        return if secs < 10.0 {
            format!("{secs:.1}s")
        } else {
            format!("{}s", secs as u64)
        };
    }
    let s = secs as u64;
    match s {
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Cuts a path in the middle, keeping its start and its file name: `/home/u/…/file.txt`.
fn truncate_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max || max < 5 {
        return truncate(s, max);
    }
    let tail = (max - 1) / 2 + (max - 1) % 2;
    let head = max - 1 - tail;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// Prints one value as a single JSON line on stdout.
pub fn json_line<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// The home directory shown as `~`.
pub fn tilde(path: &str, home: &str) -> String {
    if !home.is_empty() && home != "/" {
        if path == home {
            return "~".into();
        }
        if let Some(rest) = path.strip_prefix(home).filter(|r| r.starts_with('/')) {
            return format!("~{rest}");
        }
    }
    path.to_owned()
}

/// Formats one cell by its column type.
pub fn cell(v: &Value, kind: ColumnKind, home: &str) -> String {
    match (kind, v) {
        (_, Value::Null) => String::new(),
        (ColumnKind::Bytes, Value::Number(n)) => {
            n.as_u64().map(human_bytes).unwrap_or_else(|| n.to_string())
        }
        (ColumnKind::Time, Value::Number(n)) => {
            n.as_i64().map(local_time).unwrap_or_else(|| n.to_string())
        }
        (ColumnKind::Duration, Value::Number(n)) => {
            n.as_f64().map(duration).unwrap_or_else(|| n.to_string())
        }
        (ColumnKind::Percent, Value::Number(n)) => {
            n.as_f64().map(|f| format!("{f:.1}%")).unwrap_or_default()
        }
        (ColumnKind::Float, Value::Number(n)) => {
            n.as_f64().map(|f| format!("{f:.2}")).unwrap_or_default()
        }
        (ColumnKind::Bool, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (ColumnKind::Path, Value::String(s)) => tilde(s, home),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Array(a)) => a
            .iter()
            .map(|x| cell(x, ColumnKind::Text, home))
            .collect::<Vec<_>>()
            .join(", "),
        (_, other) => other.to_string(),
    }
}

fn right_aligned(k: ColumnKind) -> bool {
    matches!(
        k,
        ColumnKind::Bytes
            | ColumnKind::Int
            | ColumnKind::Float
            | ColumnKind::Percent
            | ColumnKind::Pid
            | ColumnKind::Duration
    )
}

/// The width tables are fitted to. Output that goes to a file or a pipe is never cut (a
/// checksum or a path cut in the middle is wrong, not short); on a terminal `COLUMNS` wins
/// over the terminal's own size, as in `ls`, and 120 is the fallback.
pub fn width() -> usize {
    use std::io::IsTerminal;
    fit_width(
        std::io::stdout().is_terminal(),
        std::env::var("COLUMNS").ok().as_deref(),
        terminal_size::terminal_size().map(|(w, _)| w.0 as usize),
    )
}

/// `s` cut to `max` characters on a terminal; whole when the output goes to a file or a pipe
/// (see [`width`]).
pub fn fit(s: &str, max: usize) -> String {
    if width() == usize::MAX {
        s.to_owned()
    } else {
        truncate(s, max)
    }
}

/// [`width`] from what it looks at: whether stdout is a terminal, `COLUMNS`, and the
/// terminal's size.
fn fit_width(terminal: bool, columns: Option<&str>, size: Option<usize>) -> usize {
    if !terminal {
        return usize::MAX;
    }
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .or(size)
        .filter(|w| *w >= 40)
        .unwrap_or(120)
}

/// An aligned table. Text columns shrink (paths in the middle) to fit `max_width`.
pub fn table(
    columns: &[Column],
    rows: &[Map<String, Value>],
    home: &str,
    style: Style,
    max_width: usize,
) -> String {
    let cols: Vec<Column> = if columns.is_empty() {
        rows.first()
            .map(|r| r.keys().map(|k| Column::new(k, ColumnKind::Text)).collect())
            .unwrap_or_default()
    } else {
        columns.to_vec()
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| cell(r.get(&c.name).unwrap_or(&Value::Null), c.kind, home))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|c| c.name.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    // Shrink the widest shrinkable column until the table fits.
    let sep = 2;
    let total = |w: &[usize]| w.iter().sum::<usize>() + sep * w.len().saturating_sub(1);
    while total(&widths) > max_width {
        let Some((i, _)) = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| {
                matches!(cols[*i].kind, ColumnKind::Path | ColumnKind::Text) && **w > 12
            })
            .max_by_key(|(_, w)| **w)
        else {
            break;
        };
        widths[i] -= 1;
    }
    let mut out = String::new();
    let header: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if right_aligned(c.kind) {
                format!("{:>w$}", c.name, w = widths[i])
            } else {
                format!("{:<w$}", c.name, w = widths[i])
            }
        })
        .collect();
    out.push_str(&style.bold(header.join("  ").trim_end()));
    out.push('\n');
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                let c = if cols[i].kind == ColumnKind::Path {
                    truncate_middle(c, w)
                } else {
                    truncate(c, w)
                };
                if right_aligned(cols[i].kind) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Prints an action's output for people.
pub fn output(out: &Output, home: &str, style: Style) -> String {
    let mut s = String::new();
    if !out.rows.is_empty() {
        s.push_str(&table(&out.columns, &out.rows, home, style, width()));
    }
    if let Some(t) = &out.text {
        s.push_str(t);
        if !t.ends_with('\n') {
            s.push('\n');
        }
    }
    if out.rows.is_empty() && out.text.is_none() && out.changes.is_empty() && out.summary.is_none()
    {
        s.push_str(&style.dim("(nothing found)\n"));
    }
    if let Some(sum) = &out.summary {
        s.push_str(&style.dim(sum));
        s.push('\n');
    }
    if out.truncated {
        s.push_str(&style.dim("(output cut; use --json or narrow the request for all of it)\n"));
    }
    s
}

/// Whether a previewed step changes nothing with these arguments: a read-only action, or one
/// whose concrete effects only read and talk to the network and whose dry run changes
/// nothing (`net.http` GET, `net.ping`, `net.resolve`).
pub fn reads_only(s: &kernos_engine::StepPreview) -> bool {
    s.reversibility == kernos_core::Reversibility::ReadOnly
        || (!s.effects.is_empty()
            && s.effects.iter().all(|e| {
                matches!(
                    e.kind,
                    kernos_core::EffectKind::Read | kernos_core::EffectKind::Network
                )
            })
            && s.changes.as_ref().is_some_and(Vec::is_empty))
}

/// Argument names whose numbers are sizes in bytes.
const SIZE_ARGS: &[&str] = &["min_size", "max_size", "size"];
/// Argument names whose numbers are durations in seconds.
const AGE_ARGS: &[&str] = &["older_than", "newer_than", "since", "timeout"];

/// Arguments in one line: `path=~/Downloads min_size=1.0 GiB source=<output of step 1>`.
pub fn args_line(args: &Map<String, Value>, home: &str) -> String {
    args.iter()
        .map(|(k, v)| {
            let shown = if let Some(r) = StepRef::from_value(v) {
                format!(
                    "<{} of step {}>",
                    r.field.as_deref().unwrap_or("output"),
                    r.step + 1
                )
            } else {
                match v {
                    Value::Number(n) if SIZE_ARGS.contains(&k.as_str()) => {
                        n.as_u64().map(human_bytes).unwrap_or_default()
                    }
                    Value::Number(n) if AGE_ARGS.contains(&k.as_str()) => {
                        n.as_f64().map(duration).unwrap_or_default()
                    }
                    Value::String(s) => {
                        let t = tilde(s, home);
                        if t.contains(' ') { format!("{t:?}") } else { t }
                    }
                    Value::Array(a) if a.len() > 3 => format!("[{} items]", a.len()),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| cell(x, ColumnKind::Path, home))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                }
            };
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn piped_output_is_never_cut_and_columns_is_honoured() {
        assert_eq!(fit_width(false, Some("50"), Some(80)), usize::MAX);
        assert_eq!(fit_width(true, Some("50"), Some(80)), 50);
        assert_eq!(fit_width(true, None, Some(80)), 80);
        assert_eq!(fit_width(true, Some("junk"), Some(80)), 80);
        assert_eq!(fit_width(true, None, None), 120);
        assert_eq!(fit_width(true, Some("10"), None), 120);
    }

    #[test]
    fn formats_and_truncates() {
        assert_eq!(time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(
            truncate_middle("/home/user/projects/file.txt", 15),
            "/home/u…ile.txt"
        );
        assert_eq!(duration(0.42), "0.4s");
        assert_eq!(duration(200.0), "3m 20s");
        assert_eq!(duration(7500.0), "2h 5m");
        assert_eq!(tilde("/home/u/x", "/home/u"), "~/x");
        assert_eq!(tilde("/home/uu/x", "/home/u"), "/home/uu/x");
    }

    #[test]
    fn table_aligns_and_humanises() {
        let cols = vec![
            Column::new("path", ColumnKind::Path),
            Column::new("size", ColumnKind::Bytes),
        ];
        let rows: Vec<Map<String, Value>> = vec![
            json!({"path": "/home/u/a", "size": 1536})
                .as_object()
                .unwrap()
                .clone(),
            json!({"path": "/var/b", "size": 10})
                .as_object()
                .unwrap()
                .clone(),
        ];
        let t = table(&cols, &rows, "/home/u", Style { on: false }, 80);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "path       size");
        assert_eq!(lines[1], "~/a     1.5 KiB");
        assert_eq!(lines[2], "/var/b     10 B");
    }

    #[test]
    fn args_are_readable() {
        let args = json!({"path": "/home/u/Downloads", "min_size": 1073741824u64, "older_than": 2592000, "source": {"$step": 0, "$field": "path"}});
        let s = args_line(args.as_object().unwrap(), "/home/u");
        assert_eq!(
            s,
            "min_size=1.0 GiB older_than=30d 0h path=~/Downloads source=<path of step 1>"
        );
    }
}
