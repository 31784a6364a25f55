//! Secrets out of text bound for a remote model. A prompt carries whatever the planner and the
//! agent saw — file contents, command output, configuration — and a remote provider keeps what
//! it is sent, so before a request leaves the machine every secret found in it by a well-known
//! shape (private keys, cloud and service tokens, password hashes, `password=`-style
//! assignments) is replaced with a marker naming its kind, e.g. `[redacted: private key]`, and
//! the rest of the text is left as it was so the model can still work with it.
//!
//! Whether a provider is remote is decided from its base URL alone ([`is_loopback`]): a model
//! served on this machine (loopback address, `localhost`, a unix socket) may see raw text, as
//! configured by [`crate::LlmConfig::raw_for_loopback`].

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::types::ChatRequest;

/// What replaces a secret: `[redacted: KIND]`.
pub fn marker(kind: &str) -> String {
    format!("[redacted: {kind}]")
}

/// The marker that replaces all of a text whose origin is a credential store.
pub const CREDENTIAL_STORE: &str = "[redacted: content of a credential store]";

/// How one kind of secret is found and what of the match is replaced.
struct Rule {
    /// Named in the marker.
    kind: &'static str,
    re: Regex,
    /// The capture group that is the secret (0: the whole match); the text around it in the
    /// match (a key name, `=`, quotes) is kept.
    group: usize,
}

/// Secret-looking key names: the word must end the name (`DB_PASSWORD`, `github_token`,
/// `client_secret`, `api-key`), so `max_tokens`, `tokenizer` and `secretary` are not keys.
const KEY: &str = r"[A-Za-z0-9_.-]*(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)(?:[_-]?(?:key|base))?";

/// A value: quoted (whatever is inside) or bare (up to a space, quote, separator).
const VALUE: &str = r#""[^"\n]+"|'[^'\n]+'|[^\s"'&;,]+"#;

/// A rule, or `None` if its pattern does not compile. The patterns are constants; the unit test
/// `every_rule_compiles` fails the build's tests if one does not, so a rule is never dropped
/// unnoticed.
fn rule(kind: &'static str, pattern: &str, group: usize) -> Option<Rule> {
    Regex::new(pattern).ok().map(|re| Rule { kind, re, group })
}

/// The rules, most specific first: a token inside an assignment is named by its own kind, and
/// what one rule replaced is a marker the later ones leave alone.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    [
        // A PEM (or PGP) private key; one cut off before its END line is redacted to the end
        // of the text, since what follows the BEGIN line is key material.
        rule(
            "private key",
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            0,
        ),
        rule("AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", 0),
        rule(
            "AWS secret access key",
            r#"(?i)aws_?secret_?access_?key["']?\s*[=:]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
            1,
        ),
        rule(
            "GitHub token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
            0,
        ),
        rule("Slack token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}", 0),
        rule("Anthropic API key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", 0),
        rule("OpenAI API key", r"\bsk-[A-Za-z0-9_-]{20,}", 0),
        rule("Google API key", r"\bAIza[0-9A-Za-z_-]{35}", 0),
        rule("Stripe key", r"\b[sr]k_live_[0-9A-Za-z]{16,}", 0),
        rule(
            "JWT",
            r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
            0,
        ),
        // crypt(3) hashes as in /etc/shadow: MD5 `$1$`, SHA-256/512 `$5$`/`$6$` (with an
        // optional `rounds=N$`), yescrypt `$y$`, gost-yescrypt `$gy$`, scrypt `$7$`, bcrypt
        // `$2a$`/`$2b$`/`$2y$`.
        rule(
            "password hash",
            r"\$(?:1|5|6|7|y|gy|2[abxy]?)\$[./A-Za-z0-9=,$]{8,}",
            0,
        ),
        // The password in a URL's user part: `postgres://user:PASSWORD@host`.
        rule(
            "password",
            r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:([^\s@/]+)@",
            1,
        ),
        rule(
            "credential",
            r"(?i)\bauthorization\s*:\s*(?:bearer|basic|token)\s+([A-Za-z0-9._~+/=-]{8,})",
            1,
        ),
        // `password=…`, `DB_PASSWORD="…"`, `export GITHUB_TOKEN=…`, `?token=…&`: the value.
        rule("secret", &format!(r"(?i)\b(?:{KEY})\b\s*=\s*({VALUE})"), 1),
        // YAML and JSON: `password: …`, `"api_key": "…"` — only as a whole line, so prose
        // such as "the password: keep it safe" is left alone.
        rule(
            "secret",
            &format!(r#"(?im)^\s*["']?(?:{KEY})["']?\s*:\s*({VALUE})\s*,?\s*$"#),
            1,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// Whether an assignment's value is not a secret itself: a marker an earlier rule left, a
/// reference to a variable (`$DB_PASS`, `${TOKEN}`), or an empty quote.
fn not_a_value(v: &str) -> bool {
    let inner = v.trim_matches(|c| c == '"' || c == '\'');
    inner.is_empty()
        || inner.starts_with("[redacted:")
        || inner.starts_with("${")
        || (inner.starts_with('$')
            && inner.len() > 1
            && inner[1..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
}

/// `text` with every secret found replaced by a marker, and how many were replaced.
pub fn redact(text: &str) -> (Cow<'_, str>, u32) {
    let mut out = Cow::Borrowed(text);
    let mut count = 0u32;
    for r in RULES.iter() {
        if !r.re.is_match(&out) {
            continue;
        }
        let replaced = r.re.replace_all(&out, |c: &Captures<'_>| {
            let whole = c.get(0).map_or("", |m| m.as_str());
            let Some(secret) = c.get(r.group) else {
                return whole.to_owned();
            };
            if r.group != 0 && not_a_value(secret.as_str()) {
                return whole.to_owned();
            }
            count += 1;
            let start = secret.start() - c.get(0).map_or(0, |m| m.start());
            let end = start + secret.len();
            format!("{}{}{}", &whole[..start], marker(r.kind), &whole[end..])
        });
        out = Cow::Owned(replaced.into_owned());
    }
    (out, count)
}

/// `req` with the secrets in its system prompt and messages redacted, and how many were. The
/// texts in [`ChatRequest::sensitive`] (read from a credential store) are replaced whole first.
pub fn redact_request(req: &ChatRequest) -> (Cow<'_, ChatRequest>, u32) {
    let mut count = 0u32;
    let mut scrub = |s: &str| -> Option<String> {
        let mut t = Cow::Borrowed(s);
        for secret in req.sensitive.iter().filter(|x| !x.trim().is_empty()) {
            if t.contains(secret.as_str()) {
                count += u32::try_from(t.matches(secret.as_str()).count()).unwrap_or(u32::MAX);
                t = Cow::Owned(t.replace(secret.as_str(), CREDENTIAL_STORE));
            }
        }
        let whole = matches!(t, Cow::Owned(_));
        let (r, n) = redact(&t);
        count = count.saturating_add(n);
        (whole || n > 0).then(|| r.into_owned())
    };
    let system = scrub(&req.system);
    let messages: Vec<Option<String>> = req.messages.iter().map(|m| scrub(&m.content)).collect();
    if system.is_none() && messages.iter().all(Option::is_none) {
        return (Cow::Borrowed(req), count);
    }
    let mut owned = req.clone();
    if let Some(s) = system {
        owned.system = s;
    }
    for (m, new) in owned.messages.iter_mut().zip(messages) {
        if let Some(c) = new {
            m.content = c;
        }
    }
    (Cow::Owned(owned), count)
}

/// Whether `base_url` points at this machine: a loopback address (127.0.0.0/8, `::1`, an
/// IPv4-mapped loopback), `localhost` or a name under it, or a unix socket (`unix:`,
/// `http+unix://`). Anything that does not parse is treated as remote.
pub fn is_loopback(base_url: &str) -> bool {
    let lower = base_url.trim().to_ascii_lowercase();
    if lower.starts_with("unix:") || lower.starts_with("http+unix:") {
        return true;
    }
    let Ok(url) = reqwest::Url::parse(base_url.trim()) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => {
            let d = host.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        // One per `rule(…)` in `RULES`: a pattern that fails to compile would be dropped.
        assert_eq!(RULES.len(), 15);
    }
    use crate::types::Message;

    fn red(s: &str) -> (String, u32) {
        let (t, n) = redact(s);
        (t.into_owned(), n)
    }

    /// Asserts `secret` is gone from the redaction of `text`, a `kind` marker is there, and
    /// `kept` survived.
    fn gone(text: &str, secret: &str, kind: &str, kept: &str) {
        let (t, n) = red(text);
        assert!(!t.contains(secret), "{secret} still in {t}");
        assert!(t.contains(&marker(kind)), "no {kind} marker in {t}");
        assert!(t.contains(kept), "{kept} lost from {t}");
        assert!(n >= 1);
    }

    #[test]
    fn pem_private_keys_go_whole_even_cut_off() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----";
        let (t, n) = red(&format!("before\n{key}\nafter"));
        assert_eq!(t, "before\n[redacted: private key]\nafter");
        assert_eq!(n, 1);
        gone(
            "x -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",
            "MIIEowIBAAKCAQEA",
            "private key",
            "x ",
        );
        gone(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF",
            "private key",
            "",
        );
        // A public key or certificate is not a secret.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(red(cert), (cert.to_owned(), 0));
    }

    #[test]
    fn cloud_and_service_tokens() {
        gone(
            "id AKIAIOSFODNN7EXAMPLE ok",
            "AKIAIOSFODNN7EXAMPLE",
            "AWS access key id",
            "id ",
        );
        gone(
            "ASIAY34FZKBOKMUTVV7A",
            "ASIAY34FZKBOKMUTVV7A",
            "AWS access key id",
            "",
        );
        gone(
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
            "wJalrXUtnFEMI",
            "AWS secret access key",
            "aws_secret_access_key = ",
        );
        gone(
            "token ghp_1234567890abcdefghijklmnopqrstuvwxyz here",
            "ghp_1234567890",
            "GitHub token",
            " here",
        );
        gone(
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "github_pat_11",
            "GitHub token",
            "",
        );
        gone(
            "xoxb-123456789012-abcdefghijkl",
            "xoxb-1234",
            "Slack token",
            "",
        );
        gone(
            "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
            "sk-ant-api03",
            "Anthropic API key",
            "key ",
        );
        gone(
            "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
            "sk-proj-abc",
            "OpenAI API key",
            "",
        );
        gone(
            "AIzaSyA1234567890abcdefghijklmnopqrstuv",
            "AIzaSyA",
            "Google API key",
            "",
        );
        gone(
            "sk_live_abcdefghijklmnop1234",
            "sk_live_abc",
            "Stripe key",
            "",
        );
        gone(
            "Bearer? eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "eyJhbGci",
            "JWT",
            " end",
        );
        gone(
            "Authorization: Bearer abcdef0123456789",
            "abcdef0123456789",
            "credential",
            "Authorization: Bearer ",
        );
        gone(
            "postgres://app:hunter2@db.example.com/app",
            "hunter2",
            "password",
            "postgres://app:",
        );
    }

    #[test]
    fn shadow_lines_keep_their_other_fields() {
        let line = "root:$6$rounds=5000$saltsalt$Xk9Jz3e0tqj9rQ.3VvY5qk0Zl3u1:19000:0:99999:7:::";
        let (t, n) = red(line);
        assert_eq!(t, "root:[redacted: password hash]:19000:0:99999:7:::");
        assert_eq!(n, 1);
        for h in [
            "$1$abcdefgh$0123456789abcdefghij",
            "$5$saltsalt$abcdefghijklmnop",
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        ] {
            gone(&format!("u:{h}:1"), h, "password hash", "u:");
        }
        // Locked or passwordless accounts carry no hash.
        let locked = "daemon:*:19000:0:99999:7:::\nbob:!:19000::::::";
        assert_eq!(red(locked), (locked.to_owned(), 0));
    }

    #[test]
    fn assignments_and_env_lines_lose_their_values() {
        let env = "DB_HOST=db\nDB_PASSWORD=hunter2\nexport GITHUB_TOKEN=\"abc def\"\nclient_secret: s3cr3t\n\"api_key\": \"k-123\",\nPORT=80";
        let (t, n) = red(env);
        assert_eq!(
            t,
            "DB_HOST=db\nDB_PASSWORD=[redacted: secret]\nexport GITHUB_TOKEN=[redacted: secret]\nclient_secret: [redacted: secret]\n\"api_key\": [redacted: secret],\nPORT=80"
        );
        assert_eq!(n, 4);
        gone(
            "https://x.test/cb?token=abc123&next=/",
            "abc123",
            "secret",
            "&next=/",
        );
        gone("password = 'p w'", "p w", "secret", "password = ");
        // A token found by its own shape is named by it, and counted once.
        let (t, n) = red("GITHUB_TOKEN=ghp_1234567890abcdefghijklmnopqrstuvwxyz");
        assert_eq!(t, "GITHUB_TOKEN=[redacted: GitHub token]");
        assert_eq!(n, 1);
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "id 123e4567-e89b-12d3-a456-426614174000",
            "aGVsbG8gd29ybGQsIHRoaXMgaXMganVzdCBzb21lIGJhc2U2NA==",
            "/home/alice/.config/app/settings.toml and ~/projects/sk-learn",
            "Choose a strong password and keep the secret safe; the token expires.",
            "The password: never share it with anyone.",
            "max_tokens=256 tokenizer=bert secretary=Ann",
            "password=$DB_PASS token=${TOKEN} secret=\"\"",
            "price: $5$ or $6 each",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "https://example.com/path?q=1",
        ] {
            assert_eq!(red(s), (s.to_owned(), 0), "{s}");
        }
    }

    #[test]
    fn requests_are_redacted_in_every_text_and_untouched_when_clean() {
        let req = ChatRequest {
            system: "sys".into(),
            messages: vec![
                Message::user("hello"),
                Message::assistant("AKIAIOSFODNN7EXAMPLE"),
                Message::user("cat says: root:x:0:0\nline two"),
            ],
            sensitive: vec!["root:x:0:0\nline two".into()],
            ..ChatRequest::default()
        };
        let (r, n) = redact_request(&req);
        assert_eq!(n, 2);
        assert_eq!(r.messages[0].content, "hello");
        assert_eq!(r.messages[1].content, "[redacted: AWS access key id]");
        assert_eq!(
            r.messages[2].content,
            format!("cat says: {CREDENTIAL_STORE}")
        );
        let clean = ChatRequest {
            messages: vec![Message::user("hello")],
            ..ChatRequest::default()
        };
        let (r, n) = redact_request(&clean);
        assert!(matches!(r, Cow::Borrowed(_)));
        assert_eq!(n, 0);
    }

    #[test]
    fn loopback_is_this_machine_only() {
        for u in [
            "http://127.0.0.1:8080/v1",
            "http://127.3.4.5",
            "http://localhost:11434",
            "http://LOCALHOST./v1",
            "http://api.localhost/v1",
            "http://[::1]:8000/v1",
            "http://[::ffff:127.0.0.1]/v1",
            "unix:/run/llm.sock",
            "http+unix://%2Frun%2Fllm.sock/v1",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "https://api.openai.com/v1",
            "http://10.0.0.5:8080/v1",
            "http://192.168.1.2",
            "http://localhost.example.com/v1",
            "http://127.0.0.1.nip.io/v1",
            "http://[::2]/v1",
            "not a url",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }
}
