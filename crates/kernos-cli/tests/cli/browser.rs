//! A real headless browser for the dashboard tests: Debian's `chromium`, driven through its
//! `chromedriver` over WebDriver (fantoccini), with blocking helpers so a test reads as the
//! steps a person takes. Screenshots go to `$CARGO_TARGET_DIR/dashboard-screenshots/`.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long any one wait for the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// `name` on `$PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Where screenshots go: `$CARGO_TARGET_DIR/dashboard-screenshots`, else the workspace's
/// `target/dashboard-screenshots`.
pub(crate) fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("dashboard-screenshots")
}

/// A headless chromium session for one test. Dropping it ends the session and kills
/// chromedriver's whole process group (chromedriver and the browser it started).
pub(crate) struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// Holds the browser's profile and `$HOME`, so nothing is written outside it.
    _dir: tempfile::TempDir,
    test: String,
}

impl Browser {
    /// A fresh browser for `test` (names its screenshots), or `None` with a `SKIPPED:` line
    /// when chromium or chromedriver is not installed.
    pub(crate) fn start(test: &str) -> Option<Browser> {
        Browser::start_with(test, &[])
    }

    /// [`Browser::start`] with more chromium command-line switches (the dashboard bench adds
    /// `--enable-precise-memory-info`, for heap sizes that are not rounded into buckets).
    pub(crate) fn start_with(test: &str, extra_args: &[&str]) -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
        else {
            eprintln!(
                "SKIPPED: {test}: chromium or chromedriver is not on PATH (scripts/test \
                 installs Debian's chromium and chromium-driver)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own process group: on drop one signal reaches the browser processes too, which
        // outlive a killed chromedriver otherwise. HOME and XDG dirs point into the temp dir
        // (chromium writes crash reports and dconf there).
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join(".config"))
            .env("XDG_CACHE_HOME", dir.path().join(".cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let until = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = dir.path().join("profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let mut b = Browser {
            rt,
            client: None,
            driver,
            _dir: dir,
            test: test.to_owned(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let client =
            b.rt.block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .unwrap_or_else(|e| panic!("no headless chromium session: {e}"));
        b.client = Some(client);
        Some(b)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    /// The browser's user agent (names the headless browser and its version).
    pub(crate) fn user_agent(&self) -> String {
        self.eval("return navigator.userAgent;", vec![])
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Opens `url` and waits for it to load.
    pub(crate) fn goto(&self, url: &str) {
        self.rt
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("could not open {url}: {e}"));
    }

    /// Runs `script` in the page (WebDriver "execute script"): `arguments[i]` are `args`.
    pub(crate) fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.client().execute(script, args))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` asynchronously: it ends by calling `arguments[arguments.length - 1]`
    /// with its answer.
    pub(crate) fn eval_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.rt
            .block_on(self.client().execute_async(script, args))
            .unwrap_or_else(|e| panic!("async script failed: {e}\n{script}"))
    }

    /// The visible text of the first element matching `css`, `None` when there is none.
    pub(crate) fn text(&self, css: &str) -> Option<String> {
        self.eval(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
            vec![json!(css)],
        )
        .as_str()
        .map(str::to_owned)
    }

    /// Whether the first element matching `css` exists and is shown (not `hidden`, not
    /// `display: none` itself or through an ancestor).
    pub(crate) fn shown(&self, css: &str) -> bool {
        self.eval(
            "const e = document.querySelector(arguments[0]);
             return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0;",
            vec![json!(css)],
        )
        .as_bool()
        .unwrap_or(false)
    }

    /// Polls `f` until it answers `Some`, failing the test after [`PATIENCE`] with what the
    /// page showed then (and a screenshot, `<test>-failed.png`).
    pub(crate) fn wait<T>(&self, what: &str, mut f: impl FnMut(&Browser) -> Option<T>) -> T {
        let until = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() >= until {
                let body = self.text("body").unwrap_or_default();
                let url = self.eval("return location.href;", vec![]);
                panic!(
                    "waited {PATIENCE:?} for {what}; the page ({url}) shows:\n{}",
                    body.chars().take(2000).collect::<String>()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matching `css` is shown.
    pub(crate) fn wait_shown(&self, css: &str) {
        self.wait(&format!("{css} to be shown"), |b| {
            b.shown(css).then_some(())
        });
    }

    /// Clicks the first element matching `css`, as a person would (WebDriver element click).
    pub(crate) fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.client().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("could not click {css}: {e}"));
    }

    /// Types `keys` into the first element matching `css`.
    pub(crate) fn type_into(&self, css: &str, keys: &str) {
        self.rt
            .block_on(async {
                self.client()
                    .find(Locator::Css(css))
                    .await?
                    .send_keys(keys)
                    .await
            })
            .unwrap_or_else(|e| panic!("could not type into {css}: {e}"));
    }

    /// Sends `keys` to whatever has the focus, as a keyboard would (`\u{e004}` is Tab,
    /// `\u{e007}` Enter: WebDriver's key codes).
    pub(crate) fn press(&self, keys: &str) {
        self.rt
            .block_on(async { self.client().active_element().await?.send_keys(keys).await })
            .unwrap_or_else(|e| panic!("could not press {keys:?}: {e}"));
    }

    /// Resizes the window to `w` × `h` CSS pixels (a phone is 360 wide, a 4K screen 3840).
    pub(crate) fn resize(&self, w: u32, h: u32) {
        self.rt
            .block_on(self.client().set_window_size(w, h))
            .unwrap_or_else(|e| panic!("could not resize to {w}x{h}: {e}"));
    }

    /// Saves what the browser shows as `<test>-<step>.png` and answers its path.
    pub(crate) fn screenshot(&self, step: &str) -> PathBuf {
        let png = self
            .rt
            .block_on(self.client().screenshot())
            .unwrap_or_else(|e| panic!("no screenshot: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{step}.png", self.test));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The timers are made inside `block_on`: they need the runtime's context.
        let patience = Duration::from_secs(5);
        if std::thread::panicking()
            && let Some(c) = &self.client
            && let Ok(Ok(png)) = self
                .rt
                .block_on(async { tokio::time::timeout(patience, c.screenshot()).await })
        {
            let dir = screenshot_dir();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{}-failed.png", self.test)), png);
        }
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(patience, c.close()).await });
        }
        // SAFETY: signalling the process group of a child we started in its own group.
        unsafe { libc::kill(-(self.driver.id() as i32), libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}
