//! The dashboard's other views in a real headless chromium: history and undo, batch answers,
//! the CSRF token, the event stream across a daemon restart, agents/schedules/leases, keys,
//! the journal and usage, and the page at a phone's width, on a 4K screen and by keyboard.
//! Screenshots of every view land in `$CARGO_TARGET_DIR/dashboard-screenshots/`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::World;
use crate::browser::Browser;
use crate::daemon::{Daemon, new_key};
use crate::dashboard::{
    ask, ask_page, finished, held_seqs, route, seqs_of, sign_in, submit, waiting_approval,
};

/// Calls the API from inside the page, as its own script would (the session cookie, and the
/// CSRF token when `csrf` is "session", a literal token otherwise, none when null).
fn in_page(b: &Browser, method: &str, path: &str, body: Value, csrf: Option<&str>) -> u64 {
    let status = b.eval_async(
        "const [method, path, body, csrf, done] = arguments;
         fetch('/v1/session').then(r => r.json()).then(s => {
           const headers = {'Content-Type': 'application/json'};
           if (csrf === 'session') headers['X-CSRF-Token'] = s.csrf;
           else if (csrf !== null) headers['X-CSRF-Token'] = csrf;
           return fetch(path, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
         }).then(r => done(r.status), e => done(String(e)));",
        vec![json!(method), json!(path), body, json!(csrf)],
    );
    status
        .as_u64()
        .unwrap_or_else(|| panic!("no status: {status}"))
}

/// Waits until `f` holds for the daemon's answer to GET `path`.
fn until_api(d: &Daemon, key: &str, path: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let v = d.http("GET", path, Some(key), None).json();
        if f(&v) {
            return v;
        }
        assert!(Instant::now() < until, "{what}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_operator_approves_in_the_ask_view_then_undoes_it_from_the_history() {
    let Some(b) = Browser::start("history-undo") else {
        return;
    };
    let (w, d, key) = ask_page(&b);
    let work = w.data.join("orgs/acme/work");
    std::fs::create_dir_all(&work).unwrap();
    let f = work.join("notes.txt");
    std::fs::write(&f, "keep me").unwrap();

    ask(&b, "delete notes.txt");
    // The plan preview shows the step, its effect, its risk and that it can be undone, and
    // offers the answer right there.
    b.wait_shown("#ask-steps li.step[data-step=\"0\"] button.approve");
    let step = b.text("#ask-steps li.step[data-step=\"0\"]").unwrap();
    assert!(step.contains("fs.delete"), "{step}");
    assert!(step.contains("risk"), "{step}");
    assert!(step.contains("reversible"), "{step}");
    assert!(
        step.contains("notes.txt"),
        "the effect names the file: {step}"
    );
    b.screenshot("ask-preview");
    b.click("#ask-steps li.step[data-step=\"0\"] button.approve");
    b.wait("#ask-result to say committed", |b| {
        b.text("#ask-result").filter(|t| t.contains("committed"))
    });
    assert!(!f.exists(), "the approved delete ran");
    b.screenshot("ask-done");

    route(&b, "#/history");
    let row = "li.tx[data-status=\"committed\"] button.undo";
    b.wait_shown(row);
    b.screenshot("history");
    b.click(row);
    b.wait("the transaction to show as undone, live", |b| {
        b.shown("li.tx[data-status=\"undone\"]").then_some(())
    });
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "keep me");
    // The detail of a transaction: its events, in order.
    b.click("li.tx[data-status=\"undone\"] a");
    b.wait("the transaction's events", |b| {
        b.text("#tx-detail").filter(|t| t.contains("tx.undone"))
    });
    b.screenshot("history-detail");
    let txs = d
        .http("GET", "/v1/state/transactions", Some(&key), None)
        .json();
    assert!(
        txs.as_array().unwrap().iter().any(|t| t["undone"] == true),
        "{txs}"
    );
}

#[test]
fn several_waiting_steps_are_answered_at_once_from_the_inbox() {
    let Some(b) = Browser::start("inbox-batch") else {
        return;
    };
    let w = World::new();
    let files: Vec<_> = (0..3)
        .map(|i| w.file(&format!("old{i}.log"), "x"))
        .collect();
    let d = Daemon::start(&w, &[]);
    let key = new_key(&w, "acme", "operator");
    let cwd = w.cwd.display().to_string();
    let actions: Vec<String> = (0..3)
        .map(|i| {
            submit(
                &d,
                &key,
                json!({"request": format!("delete old{i}.log"), "cwd": cwd}),
            )
        })
        .collect();
    for a in &actions {
        waiting_approval(&d, &key, a);
    }
    sign_in(&b, &d, &key, "acme", "operator");
    route(&b, "#/inbox");
    b.wait("#inbox-count to be 3", |b| {
        b.text("#inbox-count").filter(|t| t.trim() == "3")
    });
    // Each shows its age and what it would change.
    let first = b.text("li.approval").unwrap();
    assert!(first.contains("ago"), "{first}");
    assert!(first.contains("delete"), "the dry-run change: {first}");
    b.click("#inbox-all");
    b.wait("3 selected", |b| {
        b.text("#inbox-picked").filter(|t| t.contains('3'))
    });
    b.screenshot("selected");
    b.click("#inbox-approve");
    for a in &actions {
        assert_eq!(finished(&d, &key, a)["status"], "committed");
    }
    for f in &files {
        assert!(!f.exists(), "{} was deleted", f.display());
    }
    b.wait("#inbox-count to go to 0", |b| {
        b.text("#inbox-count").filter(|t| t.trim() == "0")
    });
    b.screenshot("answered");
}

#[test]
fn every_change_a_session_makes_needs_its_csrf_token() {
    let Some(b) = Browser::start("csrf") else {
        return;
    };
    let (_w, d, key) = ask_page(&b);
    let count = || {
        d.http("GET", "/v1/state/actions", Some(&key), None)
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count();
    let body = json!({"request": "list files in .", "dry_run": true});
    assert_eq!(in_page(&b, "POST", "/v1/actions", body.clone(), None), 403);
    assert_eq!(
        in_page(
            &b,
            "POST",
            "/v1/actions",
            body.clone(),
            Some("not-the-token")
        ),
        403
    );
    assert_eq!(in_page(&b, "DELETE", "/v1/session", Value::Null, None), 403);
    assert_eq!(count(), before, "nothing was submitted without the token");
    // Reads need no token, and the page's own token is accepted.
    assert_eq!(
        in_page(&b, "GET", "/v1/state/actions", Value::Null, None),
        200
    );
    assert_eq!(
        in_page(&b, "POST", "/v1/actions", body, Some("session")),
        202
    );
    assert_eq!(count(), before + 1);
    // The refused sign-out did not sign the page out.
    assert_eq!(in_page(&b, "GET", "/v1/session", Value::Null, None), 200);
}

#[test]
fn the_page_follows_the_stream_across_a_daemon_restart_without_duplicates() {
    let Some(b) = Browser::start("sse-restart") else {
        return;
    };
    let w = World::new();
    let mut d = Daemon::start(&w, &[]);
    let key = new_key(&w, "acme", "operator");
    let read =
        json!({"request": "show the 2 largest files in .", "cwd": w.cwd.display().to_string()});
    sign_in(&b, &d, &key, "acme", "operator");
    route(&b, "#/activity");
    let before = submit(&d, &key, read.clone());
    finished(&d, &key, &before);
    let last_before = *seqs_of(&d, &key, &before).last().unwrap();
    b.wait("the first action's last event", |b| {
        held_seqs(b).contains(&last_before).then_some(())
    });

    d.restart(&w);
    // Events journaled while the page is away are replayed from its Last-Event-ID.
    let after = submit(&d, &key, read);
    finished(&d, &key, &after);
    let last_after = *seqs_of(&d, &key, &after).last().unwrap();
    b.wait("the page to reconnect and receive the new action", |b| {
        held_seqs(b).contains(&last_after).then_some(())
    });
    b.screenshot("resumed");
    let stats = b.eval("return window.kernosStats();", vec![]);
    assert!(stats["reconnects"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["duplicates"], 0, "no event was sent twice: {stats}");
    let held = held_seqs(&b);
    let mut sorted = held.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(held, sorted, "each event once, in order");
    for s in seqs_of(&d, &key, &before)
        .into_iter()
        .chain(seqs_of(&d, &key, &after))
    {
        assert!(held.contains(&s), "event {s} is on the page: {held:?}");
    }
    assert_eq!(b.text("#live").unwrap_or_default().trim(), "● live");
}

#[test]
fn schedules_leases_and_keys_are_steered_from_the_page_and_a_viewer_only_looks() {
    let Some(b) = Browser::start("ops-keys") else {
        return;
    };
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let admin = new_key(&w, "acme", "admin");
    let viewer = new_key(&w, "acme", "viewer");
    let r = d.http(
        "POST",
        "/v1/schedules",
        Some(&admin),
        Some(json!({"when": "every day at 03:00", "request": "list files in ."})),
    );
    assert_eq!(r.status, 201, "{}", crate::text(&r.body));
    let schedule = r.json()["schedule"].as_str().unwrap().to_owned();
    let viewer_id = &viewer[3..29];
    let r = d.http(
        "POST",
        "/v1/leases",
        Some(&admin),
        Some(json!({
            "grantee": format!("key:{viewer_id}"),
            "capabilities": {"actions": ["fs.*"]},
            "scope": {"paths": [w.home.join("work")]},
            "max_risk": "low",
            "ttl_s": 600,
        })),
    );
    assert_eq!(r.status, 201, "{}", crate::text(&r.body));
    let lease = r.json()["id"].as_str().unwrap().to_owned();

    // A viewer sees them, without a single control, and no Keys view.
    sign_in(&b, &d, &viewer, "acme", "viewer");
    route(&b, "#/ops");
    let card = format!("li.card[data-schedule=\"{schedule}\"]");
    b.wait_shown(&card);
    assert!(b.shown(&format!("li.card[data-lease=\"{lease}\"]")));
    for sel in [
        format!("{card} .buttons"),
        format!("li.card[data-lease=\"{lease}\"] .buttons"),
        "nav a[href=\"#/keys\"]".to_owned(),
    ] {
        assert!(!b.shown(&sel), "{sel} is hidden for a viewer");
    }
    assert_eq!(
        in_page(
            &b,
            "POST",
            &format!("/v1/schedules/{schedule}/pause"),
            Value::Null,
            Some("session")
        ),
        403,
        "and the API refuses a viewer's pause"
    );
    b.screenshot("viewer-ops");
    b.click("button#signout");
    b.wait_shown("form#signin");

    // An admin pauses and resumes the schedule, revokes the lease, makes and revokes a key.
    sign_in(&b, &d, &admin, "acme", "admin");
    route(&b, "#/ops");
    b.wait_shown(&format!("{card} button.decline"));
    b.click(&format!("{card} button.decline"));
    until_api(
        &d,
        &admin,
        &format!("/v1/schedules/{schedule}"),
        "paused",
        |v| v["paused"] == true,
    );
    b.wait_shown(&format!(
        "li.card[data-schedule=\"{schedule}\"][data-paused=\"true\"]"
    ));
    b.screenshot("ops");
    b.click(&format!("{card} button.approve"));
    until_api(
        &d,
        &admin,
        &format!("/v1/schedules/{schedule}"),
        "resumed",
        |v| v["paused"] == false,
    );
    b.click(&format!("li.card[data-lease=\"{lease}\"] button.danger"));
    until_api(&d, &admin, &format!("/v1/leases/{lease}"), "revoked", |v| {
        v["revoked"] == true
    });

    route(&b, "#/keys");
    b.wait_shown("form#key-create");
    b.type_into("input#key-label", "made in the page");
    b.click("form#key-create button");
    b.wait_shown("#key-secret code.secret");
    let secret = b.text("#key-secret code.secret").unwrap();
    assert!(secret.starts_with("kn_"), "{secret}");
    assert_eq!(
        d.http("GET", "/v1/state/actions", Some(&secret), None)
            .status,
        200,
        "the new key works"
    );
    let id = &secret[3..29];
    b.screenshot("keys");
    b.click(&format!("li.card[data-key=\"{id}\"] button.danger"));
    b.wait_shown(&format!(
        "li.card[data-key=\"{id}\"][data-revoked=\"true\"]"
    ));
    assert_eq!(
        d.http("GET", "/v1/state/actions", Some(&secret), None)
            .status,
        401,
        "the revoked key no longer works"
    );
}

/// The views a signed-in owner of `local` (the host operator) can open.
const VIEWS: [&str; 8] = [
    "ask", "inbox", "activity", "history", "journal", "ops", "usage", "keys",
];

#[test]
fn every_view_fits_a_phone_and_a_4k_screen() {
    let Some(b) = Browser::start("views") else {
        return;
    };
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let owner = new_key(&w, "local", "owner");
    let a = submit(
        &d,
        &owner,
        json!({"request": "show the 2 largest files in .", "cwd": w.cwd.display().to_string()}),
    );
    finished(&d, &owner, &a);
    sign_in(&b, &d, &owner, "local", "owner");
    for (label, width, height) in [("phone", 360, 780), ("4k", 3840, 2160)] {
        b.resize(width, height);
        for view in VIEWS {
            route(&b, &format!("#/{view}"));
            b.wait_shown(&format!("section[data-view=\"{view}\"]"));
            std::thread::sleep(Duration::from_millis(300)); // let it load its data
            let overflow = b.eval(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            );
            assert!(
                overflow.as_i64().unwrap() <= 0,
                "#/{view} is wider than a {label} screen by {overflow} px"
            );
            b.screenshot(&format!("{label}-{view}"));
        }
    }
}

#[test]
fn the_page_is_used_with_the_keyboard_alone() {
    let Some(b) = Browser::start("keyboard") else {
        return;
    };
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let key = new_key(&w, "acme", "operator");
    b.goto(&crate::dashboard::base(&d));
    b.wait_shown("input#key");
    // The key field has the focus on arrival; typing and Enter signs in.
    b.press(&key);
    b.press("\u{e007}");
    b.wait("the page to say who is signed in", |b| {
        b.text("#who").filter(|t| t.contains("acme"))
    });
    // Tab walks the navigation in order; Enter on a link opens its view.
    let mut seen = Vec::new();
    for _ in 0..12 {
        b.press("\u{e004}");
        let href = b.eval(
            "return document.activeElement.getAttribute('href');",
            vec![],
        );
        if let Some(h) = href.as_str() {
            seen.push(h.to_owned());
            if h == "#/history" {
                break;
            }
        }
    }
    assert!(
        seen.iter().any(|h| h == "#/ask") && seen.last().map(String::as_str) == Some("#/history"),
        "Tab reaches the views in order: {seen:?}"
    );
    b.press("\u{e007}");
    b.wait_shown("section[data-view=\"history\"]");
    let focus = b.eval(
        "return getComputedStyle(document.activeElement).outlineStyle;",
        vec![],
    );
    assert_ne!(focus, "none", "the focused link shows a focus ring");
    b.screenshot("history-by-keyboard");
}

#[test]
fn an_agent_is_paused_resumed_and_killed_from_the_page_with_its_budget_shown() {
    use crate::fake_llm::plan;
    use kernos_llm::testing::FakeServer;
    let Some(b) = Browser::start("agents") else {
        return;
    };
    let w = World::new();
    // The model takes its time, so the agent is alive while the page steers it.
    let llm = FakeServer::start(vec![
        plan(&[], json!({"done": true, "message": "late"})).after(Duration::from_secs(30)),
    ]);
    crate::daemon::with_model(&w, &llm.v1());
    let d = Daemon::start(&w, &[]);
    let key = new_key(&w, "local", "operator");
    let out = w
        .cmd(&["agent", "spawn", "--max-steps", "7", "watch the backups"])
        .current_dir(&w.cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::text(&out.stderr));
    let shown = crate::text(&out.stdout);
    let id = shown
        .lines()
        .find_map(|l| l.strip_prefix("spawned: "))
        .unwrap_or_else(|| panic!("{shown}"))
        .trim()
        .to_owned();

    sign_in(&b, &d, &key, "local", "operator");
    route(&b, "#/ops");
    let card = format!("li.card[data-agent=\"{id}\"]");
    b.wait_shown(&card);
    let text = b.text(&card).unwrap();
    assert!(text.contains("watch the backups"), "{text}");
    assert!(text.contains("steps"), "the budget is shown: {text}");
    b.screenshot("running");
    let state = |want: &'static str| {
        until_api(&d, &key, &format!("/v1/agents/{id}"), want, move |v| {
            v["state"] == want || v["view"]["state"] == want
        });
        b.wait_shown(&format!(
            "li.card[data-agent=\"{id}\"][data-state=\"{want}\"]"
        ));
    };
    b.click(&format!("{card} button.decline"));
    state("paused");
    b.screenshot("paused");
    b.click(&format!("{card} button.approve"));
    b.wait_shown(&format!(
        "{card}:not([data-state=\"paused\"]) button.danger"
    ));
    b.click(&format!("{card} button.danger"));
    state("killed");
    assert!(
        !b.shown(&format!("{card} .buttons")),
        "an ended agent has no controls"
    );
    b.screenshot("killed");
}

#[test]
fn the_journal_view_pages_back_and_shows_the_chain_intact_and_usage_is_drawn() {
    let Some(b) = Browser::start("journal-usage") else {
        return;
    };
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let key = new_key(&w, "acme", "operator");
    let cwd = w.cwd.display().to_string();
    // More events than one page holds.
    let mut last = String::new();
    for _ in 0..16 {
        last = submit(
            &d,
            &key,
            json!({"request": "show the 2 largest files in .", "cwd": cwd}),
        );
    }
    finished(&d, &key, &last);
    sign_in(&b, &d, &key, "acme", "operator");

    route(&b, "#/journal");
    b.wait_shown("#chain[data-ok=\"true\"]");
    assert!(b.text("#chain").unwrap().contains("intact"));
    b.wait_shown("#journal-events table tbody tr");
    let rows = |b: &Browser| {
        b.eval(
            "return document.querySelectorAll('#journal-events tbody tr').length;",
            vec![],
        )
        .as_u64()
        .unwrap()
    };
    assert_eq!(rows(&b), 100, "one page");
    b.screenshot("journal");
    b.click("#journal-more");
    b.wait("a second page", |b| (rows(b) > 100).then_some(()));
    let seqs = b.eval(
        "return Array.from(document.querySelectorAll('#journal-events tbody tr td:first-child')).map(t => Number(t.textContent));",
        vec![],
    );
    let seqs: Vec<u64> = seqs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|p| p[0] > p[1]),
        "newest first, no repeats across pages: {seqs:?}"
    );

    route(&b, "#/usage");
    b.wait_shown("#charts figure.chart svg rect");
    let bars = b.eval(
        "return document.querySelectorAll('#charts figure.chart svg rect[class^=\"s\"]').length;",
        vec![],
    );
    assert!(
        bars.as_u64().unwrap() >= 2,
        "today's units and actions are bars: {bars}"
    );
    let dots = b.eval(
        "return document.querySelectorAll('#charts svg circle').length;",
        vec![],
    );
    assert!(
        dots.as_u64().unwrap() >= 1,
        "request latency is drawn: {dots}"
    );
    b.screenshot("usage");
}

#[test]
fn the_page_follows_a_dark_system_scheme() {
    let Some(b) = Browser::start_with("dark", &["--force-dark-mode"]) else {
        return;
    };
    let w = World::new();
    let d = Daemon::start(&w, &[]);
    let key = new_key(&w, "acme", "operator");
    sign_in(&b, &d, &key, "acme", "operator");
    let dark = b.eval(
        "return matchMedia('(prefers-color-scheme: dark)').matches;",
        vec![],
    );
    assert_eq!(dark, true, "the browser reports a dark scheme");
    let bg = b.eval(
        "return getComputedStyle(document.body).backgroundColor;",
        vec![],
    );
    assert_eq!(bg, "rgb(20, 23, 26)", "the page is dark too");
    route(&b, "#/inbox");
    b.screenshot("inbox");
}
