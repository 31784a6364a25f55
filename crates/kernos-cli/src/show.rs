//! How plans, previews, reports and undo lists look on the terminal: shared by the embedded
//! path, the daemon client, the approval prompt and the agent, so they look the same everywhere.

use kernos_core::{Plan, Risk};
use kernos_engine::{Preview, StepStatus, TxReport, short_id};

use crate::render;
use crate::term::Style;

/// The plan with each step's effects, risk and reversibility, and what it would change.
pub fn print_preview(plan: &Plan, preview: &Preview, style: Style, home: &str) {
    let reversible = preview
        .steps
        .iter()
        .all(|s| s.reversibility != kernos_core::Reversibility::Irreversible);
    // A plan a language model wrote says so: the person judges it knowing who wrote it.
    let by_model = plan
        .planner
        .as_deref()
        .and_then(|p| p.strip_prefix("llm:"))
        .map(|m| format!(", planned by the language model {m}"))
        .unwrap_or_default();
    println!(
        "{} ({} step{}, risk {}{}{})",
        style.bold("Plan"),
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" },
        style.risk(preview.risk),
        if preview.read_only || preview.steps.iter().all(render::reads_only) {
            ""
        } else if reversible {
            ", reversible"
        } else {
            ", NOT fully reversible"
        },
        by_model
    );
    for s in &preview.steps {
        println!(
            "  {}. {:<14} {}   {} {}",
            s.index + 1,
            style.bold(&s.name),
            render::args_line(&s.args, home),
            style.risk(s.assessment.risk),
            style.dim(if render::reads_only(s) {
                kernos_core::Reversibility::ReadOnly.as_str()
            } else {
                s.reversibility.as_str()
            })
        );
        if let Some(changes) = &s.changes {
            for c in changes.iter().take(5) {
                println!("       {}", c.describe());
            }
            if changes.len() > 5 {
                println!(
                    "       {}",
                    style.dim(&format!("… and {} more (d to see all)", changes.len() - 5))
                );
            }
        }
        if let Some(n) = &s.note {
            println!("       {}", style.dim(n));
        }
        if s.assessment.risk > Risk::Low {
            if let Some(r) = s.assessment.reasons.first() {
                println!(
                    "       {}",
                    style.dim(&format!("why {}: {r}", s.assessment.risk))
                );
            }
        }
    }
    if let Some(t) = &preview.trash {
        println!("{} {}", style.yellow("warning:"), t.describe());
    }
}

/// What each step would change, in full (the prompt's `d`, and a dry run's result).
pub fn print_changes(preview: &Preview, style: Style) {
    for s in &preview.steps {
        match &s.changes {
            Some(c) if c.is_empty() => println!(
                "{}. {}: {}",
                s.index + 1,
                s.name,
                style.dim("changes nothing")
            ),
            Some(c) => {
                println!("{}. {}:", s.index + 1, s.name);
                for ch in c {
                    println!("   {}", ch.describe());
                }
            }
            None => println!(
                "{}. {}: {}",
                s.index + 1,
                s.name,
                style.dim(
                    s.note
                        .as_deref()
                        .unwrap_or("unknown until earlier steps run")
                )
            ),
        }
    }
}

/// Why each step is there, its effects, risk and reversibility (the prompt's `?`).
pub fn explain(plan: &Plan, preview: &Preview, style: Style) {
    for (s, step) in preview.steps.iter().zip(&plan.steps) {
        println!("{}. {} — {}", s.index + 1, style.bold(&s.name), s.summary);
        if let Some(why) = &step.why {
            println!(
                "   why: {why} {}",
                style.dim(&format!("({})", crate::llm_cmd::why_source(plan)))
            );
        }
        for e in &s.effects {
            println!("   {} {}", e.kind, e.target);
        }
        println!(
            "   risk {}: {}",
            style.risk(s.assessment.risk),
            s.assessment.reasons.join("; ")
        );
        println!(
            "   {}",
            match s.reversibility {
                kernos_core::Reversibility::ReadOnly => "changes nothing",
                kernos_core::Reversibility::Reversible => "undo puts it back (`kernos undo`)",
                kernos_core::Reversibility::Irreversible => "cannot be undone",
            }
        );
    }
}

/// What a transaction did, step by step, and how to undo it.
pub fn print_report(report: &TxReport, style: Style, home: &str) {
    let multi = report.steps.len() > 1;
    for s in &report.steps {
        if multi {
            println!("{}", style.bold(&format!("{}. {}", s.index + 1, s.name)));
        }
        match &s.status {
            StepStatus::Done => {
                if let Some(out) = &s.output {
                    if out.changes.is_empty() {
                        print!("{}", render::output(out, home, style));
                    } else {
                        // For changes, the list of what was done says it all; the rows would
                        // repeat it.
                        for c in &out.changes {
                            println!("{} {}", style.green("✓"), c.describe());
                        }
                        if let Some(t) = &out.text {
                            print!("{t}");
                        }
                        if let Some(sum) = &out.summary {
                            println!("{}", style.dim(sum));
                        }
                    }
                }
            }
            StepStatus::Failed { error } => println!("{} {error}", style.red("failed:")),
            StepStatus::Skipped { reason } => {
                println!("{}", style.dim(&format!("skipped: {reason}")))
            }
            StepStatus::Denied { reason } => println!("{} {reason}", style.red("refused:")),
            StepStatus::Declined { reason } => println!("{} {reason}", style.yellow("not run:")),
            StepStatus::Cancelled => println!(
                "{}",
                style.yellow("cancelled (what was done so far can be undone)")
            ),
        }
    }
    if report.undoable {
        println!(
            "{}",
            style.dim(&format!("undo with: kernos undo {}", short_id(&report.tx)))
        );
    }
}

/// Prints what undo would put back: the transaction, its request, one line per item.
pub fn print_undo_plan<'a>(
    tx: &str,
    request: Option<&str>,
    items: impl Iterator<Item = &'a str>,
    s: Style,
) {
    println!(
        "{} {}{}:",
        s.bold("Undo"),
        short_id(&tx),
        request.map(|r| format!(" ({r})")).unwrap_or_default()
    );
    for item in items {
        println!("  - {item}");
    }
}
