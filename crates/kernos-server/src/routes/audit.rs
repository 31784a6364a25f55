//! The audit log: GET /v1/audit (JSON) and GET /v1/audit.csv, the same records. A record is
//! every mutation of the caller's organisation: `audit.*` events, submissions, and
//! transactions the CLI ran without the daemon.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use kernos_core::Event;
use kernos_core::event::kind;
use kernos_journal::{Journal, JournalError, Query as JQuery};
use serde_json::Value;

use crate::St;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Q;
use crate::wire::{AuditParams, AuditRecord, clamp_limit};

/// GET /v1/audit.
pub(super) async fn audit_json(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<AuditParams>,
) -> ApiResult<Json<Vec<AuditRecord>>> {
    Ok(Json(audit_records(&st, &p, q).await?))
}

/// GET /v1/audit.csv.
pub(super) async fn audit_csv(
    axum::extract::State(st): axum::extract::State<St>,
    p: Principal,
    Q(q): Q<AuditParams>,
) -> ApiResult<Response> {
    let recs = audit_records(&st, &p, q).await?;
    let mut r = to_csv(recs).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(r)
}

/// Parses a time given as ms since the epoch or RFC 3339.
fn parse_time(s: &str, what: &str) -> ApiResult<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what}={s:?} is not a time: give RFC 3339 (2026-01-31T12:00:00Z) or ms since the epoch"
            ))
        })
}

/// The journal queries for `?action=`: one kind, or every kind that makes audit records.
fn kinds(action: Option<&str>) -> Vec<JQuery> {
    match action {
        Some(a) => {
            let k = if a.starts_with("audit.")
                || [kind::ACTION_SUBMITTED, kind::TX_STARTED, kind::TX_UNDONE].contains(&a)
            {
                a.to_owned()
            } else if a == "submitted" {
                kind::ACTION_SUBMITTED.to_owned()
            } else {
                format!("audit.{a}")
            };
            vec![JQuery::kind(&k)]
        }
        None => vec![
            JQuery::kind_prefix("audit."),
            JQuery::kind(kind::ACTION_SUBMITTED),
            JQuery::kind(kind::TX_STARTED),
            JQuery::kind(kind::TX_UNDONE),
        ],
    }
}

/// The caller's organisation's records, oldest first.
async fn audit_records(st: &St, p: &Principal, q: AuditParams) -> ApiResult<Vec<AuditRecord>> {
    let since = q
        .since
        .as_deref()
        .map(|s| parse_time(s, "since"))
        .transpose()?;
    let until = q
        .until
        .as_deref()
        .map(|s| parse_time(s, "until"))
        .transpose()?;
    let limit = clamp_limit(q.limit, 1000, 10_000);
    let kinds = kinds(q.action.as_deref());
    let org = p.org.clone();
    let actor = q.actor.clone();
    let mut evs = st
        .read(move |j| {
            let mut all = Vec::new();
            for mut k in kinds {
                k.org = Some(org.clone());
                k.actor = actor.clone();
                k.since_ms = since;
                k.until_ms = until;
                k.limit = Some(limit);
                for e in j.query(&k)? {
                    if !ran_by_daemon(j, &e)? {
                        all.push(e);
                    }
                }
            }
            Ok(all)
        })
        .await?;
    evs.sort_by_key(|e| e.seq);
    evs.truncate(limit);
    Ok(evs.iter().map(record).collect())
}

/// Transactions are audit records only when the CLI ran them itself (no daemon): through the
/// daemon, action.submitted and audit.* say it already.
fn ran_by_daemon(j: &Journal, e: &Event) -> Result<bool, JournalError> {
    if !e.kind.starts_with("tx.") {
        return Ok(false);
    }
    let Some(a) = e.action else {
        return Ok(false);
    };
    let has = |k: &str| {
        j.count(&JQuery {
            action: Some(a.to_string()),
            kind: Some(k.into()),
            ..JQuery::default()
        })
    };
    Ok(has(kind::ACTION_SUBMITTED)? > 0 || has("audit.undo.requested")? > 0)
}

/// An event as an audit record: who, from where, on what, before and after.
fn record(e: &Event) -> AuditRecord {
    let p = &e.payload;
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let target = s("key_id")
        .or_else(|| s("lease_id"))
        .or_else(|| s("approval"))
        .or_else(|| p.get("tx").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| e.tx.map(|t| t.to_string()))
        .or_else(|| e.action.map(|a| a.to_string()));
    AuditRecord {
        seq: e.seq,
        ts_ms: e.ts_ms,
        kind: e.kind.clone(),
        actor: e.actor.0.clone(),
        org: e.org.clone(),
        role: s("role").or_else(|| s("actor_role")),
        source: s("source").or_else(|| {
            e.kind
                .starts_with("tx.")
                .then(|| "cli (embedded engine)".to_owned())
        }),
        target,
        before: p.get("before").cloned().filter(|v| !v.is_null()),
        after: p
            .get("after")
            .cloned()
            .filter(|v| !v.is_null())
            .or_else(|| {
                (e.kind == kind::ACTION_SUBMITTED || e.kind.starts_with("tx.")).then(|| p.clone())
            }),
    }
}

fn csv_field(s: &str) -> String {
    // Cells that a spreadsheet would run as a formula are prefixed with a quote.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The records as CSV with a header row; times in RFC 3339, before/after as JSON.
fn to_csv(recs: Vec<AuditRecord>) -> String {
    let mut out = String::from("seq,time,kind,actor,org,role,source,target,before,after\n");
    for r in recs {
        let t = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_millis(r.ts_ms.max(0) as u64),
        )
        .to_string();
        let j = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        let row = [
            r.seq.to_string(),
            t,
            r.kind,
            r.actor,
            r.org,
            r.role.unwrap_or_default(),
            r.source.unwrap_or_default(),
            r.target.unwrap_or_default(),
            j(&r.before),
            j(&r.after),
        ];
        out.push_str(
            &row.iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("1000", "since").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z", "since").unwrap(), 1000);
        assert!(parse_time("yesterday", "since").is_err());
    }
}
