//! The Prometheus text exposition format (version 0.0.4), written by hand: a family's `# HELP`
//! and `# TYPE` lines, then its samples, with help text and label values escaped as the format
//! requires. Used by every `/metrics` writer so there is one escaping.
//!
//! ```
//! use kernos_core::prom::{Kind, Writer};
//!
//! let mut w = Writer::new();
//! w.family("jobs_total", Kind::Counter, "Jobs run.");
//! w.sample("jobs_total", &[("queue", "a\"b")], 3);
//! assert_eq!(
//!     w.finish(),
//!     "# HELP jobs_total Jobs run.\n# TYPE jobs_total counter\njobs_total{queue=\"a\\\"b\"} 3\n"
//! );
//! ```

use std::fmt::{Display, Write as _};

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le=…}`), `_sum` and `_count`.
    Histogram,
}

impl Kind {
    /// The name in the `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Accumulates exposition text.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// An empty writer with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Writer {
        Writer {
            out: String::with_capacity(bytes),
        }
    }

    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Writer {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}\n# TYPE {name} {}",
            escape_help(help),
            kind.as_str()
        );
        self
    }

    /// One sample: `name{label="value",…} value` (no braces without labels). Values print
    /// with [`Display`], so integers stay integers and `f64` prints its shortest form.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Writer {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        value: impl Display,
    ) -> &mut Writer {
        self.family(name, kind, help).sample(name, &[], value)
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value escaped: backslash, double quote and line feed become `\\`, `\"` and `\n`.
pub fn escape_label(s: &str) -> String {
    escape(s, true)
}

/// Help text escaped: backslash and line feed become `\\` and `\n` (quotes stay).
pub fn escape_help(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_the_format_says() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("say \"hi\"\\\n"), "say \"hi\"\\\\\\n");
    }

    #[test]
    fn writes_families_and_samples() {
        let mut w = Writer::with_capacity(64);
        w.single("up", Kind::Gauge, "Whether it is up.", 1);
        w.family("lat", Kind::Histogram, "Latency.");
        w.sample("lat_bucket", &[("route", "/x"), ("le", "0.5")], 2u64);
        w.sample("lat_sum", &[("route", "/x")], 0.25);
        assert_eq!(
            w.finish(),
            "# HELP up Whether it is up.\n# TYPE up gauge\nup 1\n\
             # HELP lat Latency.\n# TYPE lat histogram\n\
             lat_bucket{route=\"/x\",le=\"0.5\"} 2\nlat_sum{route=\"/x\"} 0.25\n"
        );
    }
}
