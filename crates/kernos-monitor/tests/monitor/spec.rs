//! Monitor specs as an operator writes them in TOML: every kind, defaults, and the errors a
//! mistake gets.

use std::time::Duration;

use kernos_monitor::{Direction, MonitorSpec, Probe, SpecError, parse_monitors};

const EVERY_KIND: &str = r#"
[[monitor]]
name = "scratch-full"
kind = "disk"
mount = "/srv/scratch"
threshold = 90
clear_below = 80
cooldown = "10m"
interval = "30s"
[monitor.remediation]
lease = "ls_01"
max_risk = "medium"
plan = { steps = [{ tool = "fs", action = "clean", args = { path = "{mount}/cache" } }] }

[[monitor]]
name = "inodes"
kind = "inodes"
mount = "/"
threshold = 95

[[monitor]]
name = "mem"
kind = "memory"
threshold = 90

[[monitor]]
name = "swap"
kind = "swap"
threshold = 50

[[monitor]]
name = "load"
kind = "load"
average = "5m"
threshold = 2.5

[[monitor]]
name = "web-proc"
kind = "process"
process = "nginx"

[[monitor]]
name = "web"
kind = "service"
unit = "nginx.service"
pidfile = "/run/nginx.pid"

[[monitor]]
name = "ssh-port"
kind = "port"
port = 22
address = "127.0.0.1"

[[monitor]]
name = "health"
kind = "http"
url = "http://127.0.0.1:8080/health"
expect_status = [200, 204]
timeout = "2s"
max_latency = "500ms"

[[monitor]]
name = "site-cert"
kind = "tls_expiry"
url = "https://example.org"
threshold = 14
clear_above = 30

[[monitor]]
name = "cert-file"
kind = "tls_expiry"
file = "/etc/ssl/site.pem"

[[monitor]]
name = "oom"
kind = "log_pattern"
path = "/var/log/kern.log"
pattern = "Out of memory: Killed process"
window = "5m"
[monitor.remediation]
agent = "find what {last_line} was about and stop it recurring"

[[monitor]]
name = "etc"
kind = "file_changes"
path = "/etc"

[[monitor]]
name = "failures"
kind = "journal_event"
event = "step.*"
org = "acme"
threshold = 10
"#;

fn one(toml: &str) -> Result<MonitorSpec, SpecError> {
    parse_monitors(toml).map(|mut v| v.remove(0))
}

fn error_of(toml: &str) -> String {
    one(toml).unwrap_err().to_string()
}

#[test]
fn every_kind_parses_and_round_trips_through_json() {
    let specs = parse_monitors(EVERY_KIND).unwrap();
    let kinds: Vec<&str> = specs.iter().map(|s| s.probe.kind()).collect();
    assert_eq!(
        kinds,
        [
            "disk",
            "inodes",
            "memory",
            "swap",
            "load",
            "process",
            "service",
            "port",
            "http",
            "tls_expiry",
            "tls_expiry",
            "log_pattern",
            "file_changes",
            "journal_event"
        ]
    );
    for s in &specs {
        let json = serde_json::to_value(s).unwrap();
        let back: MonitorSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, s, "{json}");
    }
}

#[test]
fn fields_left_out_take_the_kinds_defaults() {
    let specs = parse_monitors(EVERY_KIND).unwrap();
    let by = |n: &str| specs.iter().find(|s| s.name == n).unwrap();
    let disk = by("scratch-full");
    assert_eq!((disk.threshold, disk.clear), (90.0, 80.0));
    assert_eq!(disk.cooldown, Duration::from_secs(600));
    let inodes = by("inodes");
    assert_eq!(inodes.clear, 95.0, "no hysteresis unless asked");
    assert_eq!(inodes.interval, kernos_monitor::spec::DEFAULT_INTERVAL);
    assert_eq!(inodes.cooldown, kernos_monitor::spec::DEFAULT_COOLDOWN);
    assert_eq!(by("web-proc").threshold, 1.0, "down is 1");
    let cert = by("cert-file");
    assert_eq!(cert.probe.direction(), Direction::Falling);
    assert_eq!(cert.threshold, 14.0);
    assert!(matches!(
        by("etc").probe,
        Probe::FileChanges {
            recursive: true,
            ..
        }
    ));
}

#[test]
fn an_unknown_field_is_refused_naming_the_monitor() {
    let e = error_of(
        "[[monitor]]\nname = \"d\"\nkind = \"disk\"\nmount = \"/\"\nthreshold = 9\nmonut = \"/x\"\n",
    );
    assert!(e.contains("\"d\"") && e.contains("monut"), "{e}");
    let e =
        error_of("[[monitor]]\nname = \"m\"\nkind = \"memory\"\nthreshold = 9\nmount = \"/\"\n");
    assert!(e.contains("mount"), "memory takes no mount: {e}");
}

#[test]
fn a_missing_or_unknown_kind_lists_the_kinds() {
    let e = error_of("[[monitor]]\nname = \"x\"\nthreshold = 1\n");
    assert!(
        e.contains("missing `kind`") && e.contains("log_pattern"),
        "{e}"
    );
    let e = error_of("[[monitor]]\nname = \"x\"\nkind = \"dsk\"\n");
    assert!(e.contains("dsk") && e.contains("disk"), "{e}");
}

#[test]
fn thresholds_must_suit_the_kinds_direction() {
    let e = error_of(
        "[[monitor]]\nname = \"d\"\nkind = \"disk\"\nmount = \"/\"\nthreshold = 80\nclear_below = 90\n",
    );
    assert!(e.contains("clear_below 90 is above threshold 80"), "{e}");
    let e = error_of(
        "[[monitor]]\nname = \"c\"\nkind = \"tls_expiry\"\nfile = \"/x.pem\"\nclear_below = 3\n",
    );
    assert!(e.contains("use clear_above"), "{e}");
    let e = error_of("[[monitor]]\nname = \"d\"\nkind = \"disk\"\nmount = \"/\"\n");
    assert!(e.contains("needs a threshold"), "{e}");
}

#[test]
fn a_remediation_may_only_use_placeholders_its_kind_fills() {
    let e = error_of(
        r#"[[monitor]]
name = "d"
kind = "disk"
mount = "/srv"
threshold = 90
remediation = { plan = { steps = [{ tool = "fs", action = "clean", args = { path = "{mnt}" } }] } }
"#,
    );
    assert!(e.contains("{mnt}") && e.contains("mount"), "{e}");
    let e = error_of(
        r#"[[monitor]]
name = "d"
kind = "disk"
mount = "/srv"
threshold = 90
remediation = { agent = "x", plan = { steps = [] } }
"#,
    );
    assert!(e.contains("exactly one of plan and agent"), "{e}");
}

#[test]
fn parameters_are_checked() {
    for (toml, want) in [
        (
            "kind = \"disk\"\nmount = \"srv\"\nthreshold = 1",
            "absolute",
        ),
        ("kind = \"http\"\nurl = \"ftp://x\"", "scheme"),
        ("kind = \"tls_expiry\"", "exactly one of url and file"),
        (
            "kind = \"log_pattern\"\npath = \"/l\"\npattern = \"(\"",
            "pattern",
        ),
        ("kind = \"port\"\nport = 0", "port 0"),
        (
            "kind = \"process\"\nprocess = \"/usr/sbin/x\"",
            "program name",
        ),
        (
            "kind = \"memory\"\nthreshold = 1\ninterval = \"1ms\"",
            "shorter than the minimum",
        ),
        (
            "kind = \"memory\"\nthreshold = 1\ncooldown = \"soon\"",
            "not a duration like",
        ),
    ] {
        let e = error_of(&format!("[[monitor]]\nname = \"x\"\n{toml}\n"));
        assert!(e.contains(want), "{toml}: {e}");
    }
}

#[test]
fn two_monitors_of_one_name_are_refused() {
    let e = parse_monitors(
        "[[monitor]]\nname = \"a\"\nkind = \"swap\"\nthreshold = 1\n\
         [[monitor]]\nname = \"a\"\nkind = \"memory\"\nthreshold = 1\n",
    )
    .unwrap_err();
    assert!(matches!(e, SpecError::Duplicate(ref n) if n == "a"), "{e}");
}
