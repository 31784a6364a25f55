//! Which hosts a package manager downloads from, read from its repository configuration, so an
//! install can be allowed exactly those hosts and no others.

use std::path::Path;

/// Host and port of a repository URI (`http://deb.debian.org/debian`,
/// `mirror+https://…`, `tor+http://…`); `None` for local ones (`file:`, `cdrom:`).
pub(crate) fn uri_host(uri: &str) -> Option<(String, Option<u16>)> {
    let (scheme, rest) = uri.trim().split_once("://")?;
    let scheme = scheme.rsplit('+').next().unwrap_or(scheme);
    if !matches!(scheme, "http" | "https" | "ftp" | "rsync") {
        return None;
    }
    let auth = rest.split(['/', '?', '#']).next()?;
    let hostport = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains('$') {
        return None;
    }
    let port = port.and_then(|p| p.parse::<u16>().ok());
    Some((host.to_ascii_lowercase(), port))
}

/// Repository URIs of an apt sources file: one-line format (`*.list`) or deb822
/// (`*.sources`). Disabled entries (`Enabled: no`) and comments are skipped.
pub fn parse_apt_sources(text: &str, deb822: bool) -> Vec<String> {
    let mut out = Vec::new();
    if !deb822 {
        for line in text.lines() {
            let l = line.split('#').next().unwrap_or("").trim();
            let mut toks = l.split_whitespace();
            match toks.next() {
                Some("deb" | "deb-src") => {}
                _ => continue,
            }
            // Options in brackets may contain spaces: `[ arch=amd64 signed-by=… ]`.
            let rest: Vec<&str> = toks.collect();
            let mut i = 0;
            if rest.first().is_some_and(|t| t.starts_with('[')) {
                while i < rest.len() && !rest[i].ends_with(']') {
                    i += 1;
                }
                i += 1;
            }
            if let Some(uri) = rest.get(i) {
                out.push((*uri).to_owned());
            }
        }
        return out;
    }
    for para in text.split("\n\n") {
        let mut uris: Vec<String> = Vec::new();
        let mut enabled = true;
        let mut in_uris = false;
        for line in para.lines() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if in_uris {
                    uris.extend(line.split_whitespace().map(str::to_owned));
                }
                continue;
            }
            in_uris = false;
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "uris" => {
                    in_uris = true;
                    uris.extend(v.split_whitespace().map(str::to_owned));
                }
                "enabled" => enabled = !v.trim().eq_ignore_ascii_case("no"),
                _ => {}
            }
        }
        if enabled {
            out.extend(uris);
        }
    }
    out
}

/// Proxy URIs set in apt configuration (`Acquire::http::Proxy "http://proxy:3142";`).
pub(crate) fn apt_proxies(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with('#'))
        .filter(|l| l.to_ascii_lowercase().contains("proxy"))
        .filter_map(|l| {
            let start = l.find('"')? + 1;
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .filter(|u| u.contains("://"))
        .collect()
}

fn read_dir_files(dir: &Path, ext: &str) -> Vec<(std::path::PathBuf, String)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    v.sort();
    v
}

/// Hosts apt downloads from, per the configuration under `etc_apt` (normally `/etc/apt`):
/// every enabled repository and any configured proxy.
pub(crate) fn apt_hosts_under(etc_apt: &Path) -> Vec<(String, Option<u16>)> {
    let mut uris: Vec<String> = Vec::new();
    if let Ok(t) = std::fs::read_to_string(etc_apt.join("sources.list")) {
        uris.extend(parse_apt_sources(&t, false));
    }
    let d = etc_apt.join("sources.list.d");
    for (_, t) in read_dir_files(&d, "list") {
        uris.extend(parse_apt_sources(&t, false));
    }
    for (_, t) in read_dir_files(&d, "sources") {
        uris.extend(parse_apt_sources(&t, true));
    }
    if let Ok(t) = std::fs::read_to_string(etc_apt.join("apt.conf")) {
        uris.extend(apt_proxies(&t));
    }
    let conf_d = etc_apt.join("apt.conf.d");
    if let Ok(rd) = std::fs::read_dir(&conf_d) {
        let mut files: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for p in files {
            if let Ok(t) = std::fs::read_to_string(&p) {
                uris.extend(apt_proxies(&t));
            }
        }
    }
    hosts_of(&uris)
}

fn hosts_of(uris: &[String]) -> Vec<(String, Option<u16>)> {
    let mut out: Vec<(String, Option<u16>)> = Vec::new();
    for u in uris {
        if let Some(h) = uri_host(u) {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

/// Hosts apt downloads from on this machine.
pub fn apt_hosts() -> Vec<(String, Option<u16>)> {
    apt_hosts_under(Path::new("/etc/apt"))
}

/// Hosts of dnf/yum repositories (`baseurl=`, `mirrorlist=`, `metalink=` in
/// `/etc/yum.repos.d/*.repo`, enabled sections only).
pub(crate) fn dnf_hosts() -> Vec<(String, Option<u16>)> {
    let mut uris = Vec::new();
    for (_, t) in read_dir_files(Path::new("/etc/yum.repos.d"), "repo") {
        uris.extend(parse_repo_file(&t));
    }
    hosts_of(&uris)
}

/// URLs of the enabled sections of a `.repo` file.
pub(crate) fn parse_repo_file(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    let mut enabled = true;
    let mut in_baseurl = false;
    let flush = |cur: &mut Vec<String>, enabled: bool, out: &mut Vec<String>| {
        if enabled {
            out.append(cur);
        } else {
            cur.clear();
        }
    };
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            flush(&mut cur, enabled, &mut out);
            enabled = true;
            in_baseurl = false;
            continue;
        }
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) && in_baseurl {
            cur.extend(l.split_whitespace().map(str::to_owned));
            continue;
        }
        in_baseurl = false;
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        match k.trim() {
            "baseurl" => {
                in_baseurl = true;
                cur.extend(
                    v.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            "mirrorlist" | "metalink" => cur.push(v.trim().to_owned()),
            "enabled" => enabled = v.trim() != "0",
            _ => {}
        }
    }
    flush(&mut cur, enabled, &mut out);
    out
}

/// Hosts of pacman mirrors (`Server = …` in `/etc/pacman.conf` and `/etc/pacman.d/mirrorlist`).
pub(crate) fn pacman_hosts() -> Vec<(String, Option<u16>)> {
    let mut uris = Vec::new();
    for p in ["/etc/pacman.conf", "/etc/pacman.d/mirrorlist"] {
        if let Ok(t) = std::fs::read_to_string(p) {
            uris.extend(parse_pacman_servers(&t));
        }
    }
    hosts_of(&uris)
}

/// `Server = URL` lines that are not commented out.
pub(crate) fn parse_pacman_servers(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "Server").then(|| v.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // /etc/apt/sources.list.d/debian.sources on this machine (Debian 12 container).
    const DEBIAN_SOURCES: &str = "Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn deb822_sources() {
        let u = parse_apt_sources(DEBIAN_SOURCES, true);
        assert_eq!(
            u,
            vec![
                "http://deb.debian.org/debian",
                "http://deb.debian.org/debian-security"
            ]
        );
        let disabled = "Types: deb\nURIs: https://a.example/x\n https://b.example/y\nEnabled: no\n\nTypes: deb\nURIs: https://c.example:8443/z\n";
        assert_eq!(
            parse_apt_sources(disabled, true),
            vec!["https://c.example:8443/z"]
        );
    }

    #[test]
    fn one_line_sources() {
        let t = "# comment\ndeb http://deb.debian.org/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] https://download.docker.com/linux/debian bookworm stable\ndeb [ arch=amd64 ] mirror+file:/etc/apt/mirrors.txt x y\n#deb http://disabled.example/ x y\ndeb-src http://deb.debian.org/debian bookworm main # trailing\n";
        let u = parse_apt_sources(t, false);
        assert_eq!(
            u,
            vec![
                "http://deb.debian.org/debian",
                "https://download.docker.com/linux/debian",
                "mirror+file:/etc/apt/mirrors.txt",
                "http://deb.debian.org/debian",
            ]
        );
    }

    #[test]
    fn hosts_from_uris() {
        assert_eq!(
            uri_host("http://deb.debian.org/debian"),
            Some(("deb.debian.org".into(), None))
        );
        assert_eq!(
            uri_host("mirror+https://Mirrors.Example:8443/list"),
            Some(("mirrors.example".into(), Some(8443)))
        );
        assert_eq!(uri_host("file:/srv/repo"), None);
        assert_eq!(uri_host("cdrom:[Debian]/"), None);
        assert_eq!(uri_host("https://$mirror/x"), None);
    }

    #[test]
    fn proxies() {
        let t = "// comment Proxy \"http://no/\"\nAcquire::http::Proxy \"http://proxy.lan:3142\";\nAcquire::https::Proxy \"DIRECT\";\n";
        assert_eq!(apt_proxies(t), vec!["http://proxy.lan:3142"]);
    }

    #[test]
    fn a_whole_etc_apt() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("sources.list.d")).unwrap();
        std::fs::create_dir_all(d.path().join("apt.conf.d")).unwrap();
        std::fs::write(
            d.path().join("sources.list.d/debian.sources"),
            DEBIAN_SOURCES,
        )
        .unwrap();
        std::fs::write(
            d.path().join("sources.list.d/x.list.disabled"),
            "deb http://ignored.example/ x y\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("apt.conf.d/01proxy"),
            "Acquire::http::Proxy \"http://10.0.0.2:3142/\";\n",
        )
        .unwrap();
        assert_eq!(
            apt_hosts_under(d.path()),
            vec![
                ("deb.debian.org".to_owned(), None),
                ("10.0.0.2".to_owned(), Some(3142))
            ]
        );
    }

    #[test]
    fn repo_files_and_mirrorlists() {
        let repo = "[fedora]\nname=Fedora\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever\nenabled=1\n\n[debug]\nbaseurl=http://debug.example/x\nenabled=0\n\n[local]\nbaseurl=http://a.example/r\n  http://b.example/r\n";
        assert_eq!(
            parse_repo_file(repo),
            vec![
                "https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever",
                "http://a.example/r",
                "http://b.example/r"
            ]
        );
        let ml = "## Germany\n#Server = https://off.example/$repo/os/$arch\nServer = https://mirror.example.de/archlinux/$repo/os/$arch\n";
        assert_eq!(
            parse_pacman_servers(ml),
            vec!["https://mirror.example.de/archlinux/$repo/os/$arch"]
        );
    }
}
