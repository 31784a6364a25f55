//! Parsers for git's machine-readable output (porcelain v2, numstat -z, custom formats).

/// Branch line of `git status --porcelain=v2 --branch`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Branch {
    /// `None` when HEAD is detached.
    pub head: Option<String>,
    pub oid: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u64,
    pub behind: u64,
}

/// One changed path of `git status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStatus {
    pub path: String,
    pub orig_path: Option<String>,
    /// State in the index (staged); `None` when unchanged there.
    pub index: Option<&'static str>,
    /// State in the working tree; `None` when unchanged there.
    pub worktree: Option<&'static str>,
}

fn state(c: u8) -> Option<&'static str> {
    match c {
        b'M' => Some("modified"),
        b'T' => Some("type_changed"),
        b'A' => Some("added"),
        b'D' => Some("deleted"),
        b'R' => Some("renamed"),
        b'C' => Some("copied"),
        b'U' => Some("unmerged"),
        _ => None,
    }
}

fn conflict(xy: &[u8]) -> &'static str {
    match xy {
        b"DD" => "both deleted",
        b"AU" => "added by us",
        b"UD" => "deleted by them",
        b"UA" => "added by them",
        b"DU" => "deleted by us",
        b"AA" => "both added",
        _ => "both modified",
    }
}

/// Parses `git status --porcelain=v2 --branch -z`.
pub(crate) fn parse_status(out: &[u8]) -> (Branch, Vec<FileStatus>) {
    let mut branch = Branch::default();
    let mut files = Vec::new();
    let mut recs = out.split(|b| *b == 0).filter(|r| !r.is_empty());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    while let Some(r) = recs.next() {
        let s = text(r);
        if let Some(h) = s.strip_prefix("# branch.") {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            match k {
                "oid" if v != "(initial)" => branch.oid = Some(v.to_owned()),
                "head" if v != "(detached)" => branch.head = Some(v.to_owned()),
                "upstream" => branch.upstream = Some(v.to_owned()),
                "ab" => {
                    for part in v.split_whitespace() {
                        if let Some(n) = part.strip_prefix('+') {
                            branch.ahead = n.parse().unwrap_or(0);
                        } else if let Some(n) = part.strip_prefix('-') {
                            branch.behind = n.parse().unwrap_or(0);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let kind = r.first().copied();
        // Field counts before the path: 1 → 8, 2 → 9 (then the original path as its own
        // record), u → 10.
        let (skip, renamed) = match kind {
            Some(b'1') => (8, false),
            Some(b'2') => (9, true),
            Some(b'u') => (10, false),
            Some(b'?') => {
                files.push(FileStatus {
                    path: text(&r[2.min(r.len())..]),
                    orig_path: None,
                    index: None,
                    worktree: Some("untracked"),
                });
                continue;
            }
            _ => continue,
        };
        let mut parts = r.splitn(skip + 1, |b| *b == b' ');
        let _ = parts.next();
        let xy = parts.next().unwrap_or(b"..");
        let path = parts.nth(skip - 2).map(text).unwrap_or_default();
        let orig_path = if renamed { recs.next().map(text) } else { None };
        let (index, worktree) = if kind == Some(b'u') {
            (Some("unmerged"), Some(conflict(xy)))
        } else {
            (
                xy.first().copied().and_then(state),
                xy.get(1).copied().and_then(state),
            )
        };
        files.push(FileStatus {
            path,
            orig_path,
            index,
            worktree,
        });
    }
    (branch, files)
}

/// One commit of `git log --format=%h%x1f%an%x1f%ae%x1f%at%x1f%s%x1e`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commit {
    pub hash: String,
    pub author: String,
    pub email: String,
    pub date: i64,
    pub subject: String,
}

/// The `--format` that [`parse_log`] reads.
pub(crate) const LOG_FORMAT: &str = "--format=%h%x1f%an%x1f%ae%x1f%at%x1f%s%x1e";

pub(crate) fn parse_log(out: &str) -> Vec<Commit> {
    out.split('\x1e')
        .map(|r| r.trim_matches('\n'))
        .filter(|r| !r.is_empty())
        .filter_map(|r| {
            let f: Vec<&str> = r.split('\x1f').collect();
            Some(Commit {
                hash: (*f.first()?).to_owned(),
                author: (*f.get(1)?).to_owned(),
                email: (*f.get(2)?).to_owned(),
                date: f.get(3)?.parse().ok()?,
                subject: f.get(4).copied().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

/// One file of `git diff --numstat -z`: lines added and removed (`None` for binary files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumStat {
    pub path: String,
    pub orig_path: Option<String>,
    pub added: Option<u64>,
    pub removed: Option<u64>,
}

pub(crate) fn parse_numstat(out: &[u8]) -> Vec<NumStat> {
    let mut recs = out.split(|b| *b == 0);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut v = Vec::new();
    while let Some(r) = recs.next() {
        if r.is_empty() {
            continue;
        }
        let mut f = r.splitn(3, |b| *b == b'\t');
        let added = f.next().and_then(|n| text(n).parse().ok());
        let removed = f.next().and_then(|n| text(n).parse().ok());
        let path = f.next().unwrap_or(b"");
        // A rename leaves the path empty and gives old and new names as the next records.
        let (path, orig_path) = if path.is_empty() {
            let from = recs.next().map(text);
            (recs.next().map(text).unwrap_or_default(), from)
        } else {
            (text(path), None)
        };
        v.push(NumStat {
            path,
            orig_path,
            added,
            removed,
        });
    }
    v
}

/// One branch of `git for-each-ref` with [`BRANCH_FORMAT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BranchInfo {
    pub current: bool,
    pub name: String,
    pub upstream: Option<String>,
    pub ahead: u64,
    pub behind: u64,
    pub gone: bool,
    pub commit: String,
    pub date: Option<i64>,
    pub subject: String,
}

/// The `--format` that [`parse_branches`] reads.
pub(crate) const BRANCH_FORMAT: &str = "--format=%(HEAD)%1f%(refname:short)%1f%(upstream:short)%1f%(upstream:track,nobracket)%1f%(objectname:short)%1f%(committerdate:unix)%1f%(contents:subject)";

pub(crate) fn parse_branches(out: &str) -> Vec<BranchInfo> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\x1f').collect();
            let track = f.get(3).copied().unwrap_or("");
            let mut ahead = 0;
            let mut behind = 0;
            for part in track.split(',') {
                let part = part.trim();
                if let Some(n) = part.strip_prefix("ahead ") {
                    ahead = n.parse().unwrap_or(0);
                } else if let Some(n) = part.strip_prefix("behind ") {
                    behind = n.parse().unwrap_or(0);
                }
            }
            let upstream = f.get(2).filter(|u| !u.is_empty()).map(|u| (*u).to_owned());
            Some(BranchInfo {
                current: *f.first()? == "*",
                name: (*f.get(1)?).to_owned(),
                upstream,
                ahead,
                behind,
                gone: track == "gone",
                commit: f.get(4).copied().unwrap_or("").to_owned(),
                date: f.get(5).and_then(|d| d.parse().ok()),
                subject: f.get(6).copied().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from git 2.47 on the development VM: a renamed file with a space in its old
    // name, a staged-then-modified new file, an unstaged change, an untracked directory.
    const STATUS: &[u8] = b"# branch.oid 5f16bbfcc380319d930d0f3be1626652a7787886\0# branch.head main\0\
1 .M N... 100644 100644 100644 78981922613b2afb6025042ff6bd878ac1994e85 78981922613b2afb6025042ff6bd878ac1994e85 a.txt\0\
2 R. N... 100644 100644 100644 61780798228d17af2d34fce4cfbdf35556832472 61780798228d17af2d34fce4cfbdf35556832472 R100 d.txt\0b c.txt\0\
1 AM N... 000000 100644 100644 0000000000000000000000000000000000000000 3e757656cf36eca53338e520d134963a44f793f8 new.txt\0\
? sub/\0";

    #[test]
    fn status_v2() {
        let (b, f) = parse_status(STATUS);
        assert_eq!(b.head.as_deref(), Some("main"));
        assert_eq!(b.upstream, None);
        let fs = |path: &str, orig: Option<&str>, index, worktree| FileStatus {
            path: path.into(),
            orig_path: orig.map(str::to_owned),
            index,
            worktree,
        };
        assert_eq!(
            f,
            vec![
                fs("a.txt", None, None, Some("modified")),
                fs("d.txt", Some("b c.txt"), Some("renamed"), None),
                fs("new.txt", None, Some("added"), Some("modified")),
                fs("sub/", None, None, Some("untracked")),
            ]
        );
    }

    #[test]
    fn status_branch_tracking_and_conflicts() {
        let out = b"# branch.oid (initial)\0# branch.head (detached)\0# branch.upstream origin/main\0# branch.ab +2 -5\0\
u UU N... 100644 100644 100644 100644 aaaa bbbb cccc file with space.txt\0";
        let (b, f) = parse_status(out);
        assert_eq!(b.head, None);
        assert_eq!(b.oid, None);
        assert_eq!(b.upstream.as_deref(), Some("origin/main"));
        assert_eq!((b.ahead, b.behind), (2, 5));
        assert_eq!(f[0].path, "file with space.txt");
        assert_eq!(
            (f[0].index, f[0].worktree),
            (Some("unmerged"), Some("both modified"))
        );
    }

    #[test]
    fn log_records() {
        let out = "5f16bbf\x1fAnn Example\x1fa@b.c\x1f1795357248\x1ffirst commit\x1e\n256a502\x1fBo\x1fb@c.d\x1f1795357249\x1f\x1e\n";
        let c = parse_log(out);
        assert_eq!(
            c[0],
            Commit {
                hash: "5f16bbf".into(),
                author: "Ann Example".into(),
                email: "a@b.c".into(),
                date: 1_795_357_248,
                subject: "first commit".into()
            }
        );
        assert_eq!(c[1].subject, "");
    }

    #[test]
    fn numstat_with_rename_and_binary() {
        let c = parse_numstat(b"0\t0\t\0b c.txt\0d.txt\x001\t0\tnew.txt\0-\t-\timg.png\0");
        assert_eq!(c.len(), 3);
        assert_eq!(
            (c[0].path.as_str(), c[0].orig_path.as_deref()),
            ("d.txt", Some("b c.txt"))
        );
        assert_eq!((c[1].added, c[1].removed), (Some(1), Some(0)));
        assert_eq!((c[2].added, c[2].removed), (None, None));
    }

    #[test]
    fn branches() {
        let out = " \x1ffeature\x1f\x1f\x1f256a502\x1f1795357248\x1ffeature: more a\n\
*\x1fmain\x1forigin/main\x1fahead 1, behind 2\x1f5f16bbf\x1f1795357248\x1ffirst commit\n\
 \x1fold\x1forigin/old\x1fgone\x1f1111111\x1f1795357000\x1fx\n";
        let b = parse_branches(out);
        assert_eq!(b.len(), 3);
        assert!(!b[0].current && b[0].upstream.is_none());
        assert!(b[1].current);
        assert_eq!((b[1].ahead, b[1].behind), (1, 2));
        assert_eq!(b[1].upstream.as_deref(), Some("origin/main"));
        assert!(b[2].gone);
        assert_eq!(b[0].date, Some(1_795_357_248));
    }
}
