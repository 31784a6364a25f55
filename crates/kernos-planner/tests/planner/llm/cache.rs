//! The plan cache through the cascade: hit and miss, `--no-cache`, TTL, LRU eviction, and
//! keys that change with the catalog, the context and the conversation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use kernos_llm::{BlockingRouter, StructuredMode};
use kernos_planner::llm::{CacheUse, Cascade, ChatModel, PlanCache, PlanOptions, Source};
use kernos_planner::{Conversation, Outcome};
use kernos_tools::Registry;

use super::fixtures::openai;
use super::*;
use kernos_llm::testing::{FakeServer, Reply};

fn cached_cascade(srv: &FakeServer, cache: PlanCache) -> Cascade {
    cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]))
    .with_cache(cache)
}

#[test]
fn a_hit_answers_without_calling_the_model_and_no_cache_bypasses_it() {
    let dir = tempfile::tempdir().unwrap();
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let c = cached_cascade(
        &srv,
        PlanCache::open(dir.path().join("plan-cache.db")).unwrap(),
    );
    let opts = PlanOptions::default();
    let first = c.plan(NGINX, &ctx(), &opts);
    assert_eq!(first.cache, CacheUse::Miss);
    assert!(matches!(first.source, Source::Model { .. }));
    assert_eq!(srv.count(), 1);
    // The same request, differently typed: normalised to the same key.
    let second = c.plan("  Why is nginx failing? ", &ctx(), &opts);
    assert_eq!(
        (second.cache, &second.source),
        (CacheUse::Hit, &Source::Cache)
    );
    assert_eq!(srv.count(), 1, "a hit never calls the model");
    match (&first.outcome, &second.outcome) {
        (Outcome::Plan { plan: a, .. }, Outcome::Plan { plan: b, .. }) => {
            assert_eq!(a.steps, b.steps);
            assert_eq!(b.planner, a.planner, "the cached plan keeps who made it");
            assert_eq!(b.request.as_deref(), Some("  Why is nginx failing? "));
        }
        other => panic!("{other:?}"),
    }
    let no_cache = PlanOptions {
        no_cache: true,
        ..PlanOptions::default()
    };
    let third = c.plan(NGINX, &ctx(), &no_cache);
    assert_eq!(third.cache, CacheUse::Off);
    assert_eq!(srv.count(), 2, "--no-cache asks the model");
    let s = c.cache().unwrap().stats().unwrap();
    assert_eq!((s.hits, s.misses, s.entries), (1, 1, 1));
    // Confident offline requests never touch the cache.
    let offline = c.plan("show the 5 largest files in /var/log", &ctx(), &opts);
    assert_eq!(offline.cache, CacheUse::NotUsed);
    assert_eq!(c.cache().unwrap().stats().unwrap().misses, 1);
}

#[test]
fn entries_expire_and_the_least_recently_used_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicI64::new(10_000_000));
    let clock = now.clone();
    let cache = PlanCache::open_with(dir.path().join("c.db"), Duration::from_secs(3600), 2)
        .unwrap()
        .with_clock(move || clock.load(Ordering::SeqCst));
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let c = cached_cascade(&srv, cache);
    let o = PlanOptions::default();
    let tick = || now.fetch_add(1_000, Ordering::SeqCst);
    for r in [
        "why is nginx failing?",
        "why is redis failing?",
        "why is nginx failing?",
    ] {
        c.plan(r, &ctx(), &o);
        tick();
    }
    assert_eq!(srv.count(), 2, "nginx hit the second time");
    c.plan("why is postgres failing?", &ctx(), &o); // evicts redis (least recently used)
    tick();
    assert_eq!(
        c.plan("why is nginx failing?", &ctx(), &o).cache,
        CacheUse::Hit
    );
    assert_eq!(
        c.plan("why is redis failing?", &ctx(), &o).cache,
        CacheUse::Miss
    );
    assert_eq!(srv.count(), 4);
    now.fetch_add(3_600_000, Ordering::SeqCst);
    assert_eq!(
        c.plan("why is redis failing?", &ctx(), &o).cache,
        CacheUse::Miss,
        "expired"
    );
    assert_eq!(srv.count(), 5);
}

#[test]
fn the_key_follows_the_catalog_the_place_and_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let cfg = config(vec![provider("local", &srv.v1(), StructuredMode::Auto)]);
    let o = PlanOptions::default();
    let c = cached_cascade(&srv, PlanCache::open(&path).unwrap());
    c.plan(NGINX, &ctx(), &o);
    assert_eq!(c.plan(NGINX, &ctx(), &o).cache, CacheUse::Hit);
    // Another working directory, another home, a conversation: other keys.
    let elsewhere = kernos_planner::PlanContext::new("/home/u", "/srv");
    assert_eq!(c.plan(NGINX, &elsewhere, &o).cache, CacheUse::Miss);
    let other_home = kernos_planner::PlanContext::new("/home/v", "/home/u/work");
    assert_eq!(c.plan(NGINX, &other_home, &o).cache, CacheUse::Miss);
    let follow = ctx().with_conversation(Conversation {
        last_request: Some("restart nginx".into()),
        ..Conversation::default()
    });
    // A conversation the request does not refer to is not in the prompt, so not in the key
    // either; one it refers to ("restart it") is.
    assert_eq!(c.plan(NGINX, &follow, &o).cache, CacheUse::Hit);
    assert_eq!(
        c.cache_key(NGINX, &follow, &o),
        c.cache_key(NGINX, &ctx(), &o)
    );
    assert_ne!(
        c.cache_key("restart it", &follow, &o),
        c.cache_key("restart it", &ctx(), &o)
    );
    assert_eq!(srv.count(), 3);

    // A catalog with one action fewer: its version differs, so nothing cached before is served.
    let mut smaller = Registry::empty();
    kernos_tools::svc::register(&mut smaller);
    assert_ne!(smaller.catalog_version(), registry().catalog_version());
    let router_cfg = cfg.clone();
    let c2 = Cascade::with_factory(Arc::new(smaller), cfg, facts(), move || {
        Ok(Box::new(BlockingRouter::new(router_cfg.clone())?) as Box<dyn ChatModel>)
    })
    .with_cache(PlanCache::open(&path).unwrap());
    assert_eq!(c2.plan(NGINX, &ctx(), &o).cache, CacheUse::Miss);
    assert_eq!(srv.count(), 4);
    // …while the full catalog still hits its own entry in the same file.
    assert_eq!(c.plan(NGINX, &ctx(), &o).cache, CacheUse::Hit);
}

#[test]
fn failed_and_untrusted_plans_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let srv = FakeServer::start(vec![
        Reply::status_json(400, r#"{"error":{"message":"bad"}}"#),
        Reply::json(openai(&nginx_answer().to_string())),
    ]);
    let c = cached_cascade(&srv, PlanCache::open(dir.path().join("c.db")).unwrap());
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(p.source, Source::Offline);
    let with_data = PlanOptions {
        data: vec![kernos_planner::llm::DataBlock::new(
            "fs.read /tmp/x",
            "some text",
        )],
        ..PlanOptions::default()
    };
    let p = c.plan(NGINX, &ctx(), &with_data);
    assert_eq!(p.cache, CacheUse::NotUsed);
    assert!(matches!(&p.outcome, Outcome::Plan { plan, .. } if plan.untrusted_input));
    assert_eq!(c.cache().unwrap().stats().unwrap().entries, 0);
}

#[test]
fn a_lazy_cache_opens_only_when_needed_and_a_broken_one_is_reported() {
    use std::sync::atomic::AtomicUsize;
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let path = blocker.join("plan-cache.db"); // its parent is a file: cannot be opened
    let opened = Arc::new(AtomicUsize::new(0));
    let seen = opened.clone();
    let srv = FakeServer::always(Reply::json(openai(&nginx_answer().to_string())));
    let c = cascade(config(vec![provider(
        "local",
        &srv.v1(),
        StructuredMode::Auto,
    )]))
    .with_cache_lazy(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        PlanCache::open(&path)
    });
    c.plan(
        "show the 5 largest files in /var/log",
        &ctx(),
        &PlanOptions::default(),
    );
    assert_eq!(
        opened.load(Ordering::SeqCst),
        0,
        "a confident offline answer opens nothing"
    );
    let p = c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert!(matches!(p.source, Source::Model { .. }));
    assert_eq!(p.cache, CacheUse::Off);
    assert!(p.notice.unwrap().contains("planning without the cache"));
    c.plan(NGINX, &ctx(), &PlanOptions::default());
    assert_eq!(opened.load(Ordering::SeqCst), 1, "tried once per process");
}
