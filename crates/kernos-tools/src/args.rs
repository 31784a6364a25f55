//! Argument types of every action in the v1 catalog.
//!
//! These types are the contract between planners (offline and LLM), the validator and the tools:
//! the JSON schema each action publishes is generated from its type here, and a step's `args`
//! are valid exactly when they deserialise into it (`deny_unknown_fields` catches misspelt
//! argument names). Names are stable: plans, scripts and tests use them.
//!
//! Conventions: paths are strings as the user wrote them (`~` already expanded by the planner or
//! not — tools expand it), relative to the working directory; sizes are bytes; ages and
//! durations are seconds; counts are integers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kernos_core::StepRef;

/// One path, several paths, or the paths another step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Paths {
    /// The paths in a column of an earlier step's output rows (resolved by the engine).
    From(StepRef),
    /// A single path.
    One(String),
    /// Several paths.
    Many(Vec<String>),
}

impl Paths {
    /// The literal paths; empty for an unresolved reference.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Paths::One(p) => vec![p.as_str()],
            Paths::Many(v) => v.iter().map(String::as_str).collect(),
            Paths::From(_) => Vec::new(),
        }
    }

    /// The step reference, when this is one.
    pub fn step_ref(&self) -> Option<&StepRef> {
        match self {
            Paths::From(r) => Some(r),
            _ => None,
        }
    }
}

/// One name or several (packages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    /// A single name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl Names {
    /// The names.
    pub fn list(&self) -> Vec<&str> {
        match self {
            Names::One(p) => vec![p.as_str()],
            Names::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn dot() -> String {
    ".".to_owned()
}

// ----------------------------------------------------------------------------------------- fs

/// What kind of filesystem entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// `fs.list`: the entries of a directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsList {
    /// Directory to list.
    #[serde(default = "dot")]
    pub path: String,
    /// Include hidden entries (names starting with a dot).
    #[serde(default)]
    pub all: bool,
    /// List the whole tree below the directory, not only its own entries (names are then
    /// relative to it, like `ls -R`/`find`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

/// `fs.find`: files matching conditions, searched recursively.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct FsFind {
    /// Where to search.
    #[serde(default = "dot")]
    pub path: String,
    /// Glob on the file name, e.g. `*.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only this kind of entry.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub entry_type: Option<EntryType>,
    /// Only files at least this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    /// Only files at most this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Only entries last modified more than this many seconds ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<u64>,
    /// Only entries modified within the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_than: Option<u64>,
    /// Only empty files / empty directories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty: bool,
    /// Include hidden files and directories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// How deep to descend (1 = only the directory itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    /// At most this many results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Order the matches by modification time before `limit` applies: `newest` first ("the
    /// 5 most recently modified files") or `oldest` first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<FindSort>,
}

/// The order of `fs.find`'s matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindSort {
    /// Most recently modified first.
    Newest,
    /// Least recently modified first.
    Oldest,
}

/// Files or directories, for `fs.largest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum SizeKind {
    /// Individual files.
    #[default]
    Files,
    /// Directories, by the total size beneath them.
    Dirs,
}

/// `fs.largest`: the biggest files (or directories) under a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsLargest {
    /// Where to look.
    #[serde(default = "dot")]
    pub path: String,
    /// How many to show.
    #[serde(default = "ten")]
    pub count: usize,
    /// Files or directories.
    #[serde(default)]
    pub kind: SizeKind,
}

fn ten() -> usize {
    10
}

/// `fs.usage`: total size of a directory tree and of its immediate children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsUsage {
    /// The directory (or file).
    #[serde(default = "dot")]
    pub path: String,
}

/// `fs.read`: a file's content, or its first or last lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsRead {
    /// The file.
    pub path: String,
    /// Only the first this many lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<usize>,
    /// Only the last this many lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
}

/// `fs.search`: lines matching a pattern in a file or a tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsSearch {
    /// File or directory to search.
    #[serde(default = "dot")]
    pub path: String,
    /// Text to look for (literal unless `regex`).
    pub pattern: String,
    /// Only files whose name matches this glob, e.g. `*.py`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    /// Treat `pattern` as a regular expression.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
    /// Ignore case.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_case: bool,
    /// At most this many matching lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `fs.write`: write text to a file, replacing what is there (undo restores it). Like
/// `fs.append`, it leaves a text file that ends with a newline (non-empty text without one gets
/// one), so `cat` and `wc -l` see a whole line and a later append needs no repair; `exact`
/// writes the bytes as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsWrite {
    /// The file.
    pub path: String,
    /// The text to write.
    pub content: String,
    /// Write `content` byte for byte, without adding a final newline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
}

/// `fs.append`: add text at the end of a file (a newline is added first if the file does not
/// end with one, and after the text if it has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsAppend {
    /// The file (created if missing).
    pub path: String,
    /// The text to add.
    pub content: String,
}

/// `fs.mkdir`: create a directory (and missing parents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsMkdir {
    /// The directory to create.
    pub path: String,
}

/// `fs.copy`: copy files or directory trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsCopy {
    /// What to copy.
    pub source: Paths,
    /// Where to: a new name, or an existing directory to copy into.
    pub dest: String,
}

/// `fs.move`: move or rename files or directories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsMove {
    /// What to move.
    pub source: Paths,
    /// Where to: a new name, or an existing directory to move into.
    pub dest: String,
}

/// `fs.delete`: move files or directories to Kernos's trash (undo puts them back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsDelete {
    /// What to delete.
    pub path: Paths,
    /// Allow deleting directories that are not empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

/// `fs.chmod`: change permission bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsChmod {
    /// Which files.
    pub path: Paths,
    /// Octal (`600`, `0755`) or symbolic (`+x`, `u+rw,go-w`).
    pub mode: String,
    /// Apply to everything beneath directories too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// `.tar.gz` / `.tgz`
    TarGz,
    /// `.tar`
    Tar,
    /// `.zip`
    Zip,
}

/// `fs.archive`: pack files or directories into an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsArchive {
    /// What to pack.
    pub source: Paths,
    /// The archive to create, e.g. `logs.tar.gz`.
    pub dest: String,
    /// Format; guessed from `dest`'s extension when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ArchiveFormat>,
}

/// `fs.extract`: unpack an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsExtract {
    /// The archive.
    pub archive: String,
    /// Where to unpack; the current directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
}

/// Checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum HashAlgo {
    /// SHA-256.
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
    /// SHA-1.
    Sha1,
    /// MD5.
    Md5,
    /// BLAKE3.
    Blake3,
}

/// `fs.checksum`: hash files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsChecksum {
    /// Which files.
    pub path: Paths,
    /// Algorithm.
    #[serde(default)]
    pub algorithm: HashAlgo,
}

/// `fs.duplicates`: files with the same content under a directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsDuplicates {
    /// Where to look (searched recursively).
    #[serde(default = "dot")]
    pub path: String,
    /// Only files at least this many bytes (default 1: empty files are all alike and not
    /// reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    /// Include hidden files and directories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

/// What `fs.count` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountWhat {
    /// Files beneath a directory.
    Files,
    /// Directories beneath a directory.
    Dirs,
    /// Lines of a file.
    Lines,
    /// Words of a file.
    Words,
    /// Bytes of a file.
    Bytes,
}

/// `fs.count`: count files in a tree, or lines/words/bytes of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsCount {
    /// File or directory.
    #[serde(default = "dot")]
    pub path: String,
    /// What to count; files for a directory and lines for a file when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<CountWhat>,
}

// ---------------------------------------------------------------------------------------- sys

/// Arguments of actions that take none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `sys.disk`: filesystems and their free space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SysDisk {
    /// Only the filesystem holding this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

// --------------------------------------------------------------------------------------- proc

/// Sort order for process lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProcSort {
    /// Highest CPU use first.
    #[default]
    Cpu,
    /// Highest memory use first.
    Memory,
    /// By process id.
    Pid,
    /// By name.
    Name,
}

/// `proc.list`: running processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ProcList {
    /// Order.
    #[serde(default)]
    pub sort: ProcSort,
    /// At most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only processes of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `proc.find`: processes whose name or command line contains a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcFind {
    /// Name (or part of the command line) to look for.
    pub name: String,
}

/// `proc.kill`: send a signal to a process by id, or to every process with a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcKill {
    /// Process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Exact process name (all processes with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Signal name or number (`TERM`, `KILL`, `HUP`, `9`).
    #[serde(default = "term")]
    pub signal: String,
}

fn term() -> String {
    "TERM".to_owned()
}

// ---------------------------------------------------------------------------------------- svc

/// `svc.list`: services and their state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SvcList {
    /// Only services in this state (`running`, `failed`, `inactive`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `svc.status|start|stop|restart|enable|disable`: one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SvcName {
    /// Service (unit) name, e.g. `nginx`.
    pub name: String,
}

/// `svc.logs`: a service's recent log lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SvcLogs {
    /// Service name.
    pub name: String,
    /// How many lines.
    #[serde(default = "fifty")]
    pub lines: usize,
    /// Only entries from the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
}

fn fifty() -> usize {
    50
}

// ---------------------------------------------------------------------------------------- pkg

/// `pkg.search`: packages matching words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PkgSearch {
    /// What to search for.
    pub query: String,
}

/// `pkg.info`: one package: installed or not, version, description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PkgInfo {
    /// Package name.
    pub name: String,
}

/// `pkg.install` / `pkg.remove`: packages to add or remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PkgNames {
    /// Package name(s).
    pub packages: Names,
}

/// `pkg.list`: installed packages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PkgList {
    /// Only names containing this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

// ---------------------------------------------------------------------------------------- net

/// `net.ports`: listening sockets and the processes behind them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NetPorts {
    /// Only this port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// `net.connections`: open connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NetConnections {
    /// Only connections in this TCP state (e.g. `established`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `net.resolve`: DNS lookup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetResolve {
    /// Host name.
    pub host: String,
}

/// `net.http`: an HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetHttp {
    /// The URL.
    pub url: String,
    /// Method (`GET`, `HEAD`, `POST`, …). Anything but GET/HEAD is treated as a change.
    #[serde(default = "get")]
    pub method: String,
    /// Request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Timeout, seconds.
    #[serde(default = "http_timeout")]
    pub timeout: u64,
}

fn get() -> String {
    "GET".to_owned()
}

fn http_timeout() -> u64 {
    10
}

/// `net.ping`: is a host reachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetPing {
    /// Host name or address.
    pub host: String,
    /// How many echo requests.
    #[serde(default = "four")]
    pub count: u32,
}

fn four() -> u32 {
    4
}

// --------------------------------------------------------------------------------------- logs

/// `logs.errors`: error-level entries from the system log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LogsErrors {
    /// Only entries from the last this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Only entries since local midnight.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub today: bool,
    /// Only this service's entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// At most this many entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `logs.tail`: the last lines of a log file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsTail {
    /// The log file.
    pub path: String,
    /// How many lines.
    #[serde(default = "fifty")]
    pub lines: usize,
}

// ---------------------------------------------------------------------------------------- git

/// `git.status` / `git.branches`: a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitRepo {
    /// Repository directory (or any directory inside it).
    #[serde(default = "dot")]
    pub repo: String,
}

/// `git.log`: recent commits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitLog {
    /// Repository directory.
    #[serde(default = "dot")]
    pub repo: String,
    /// How many commits.
    #[serde(default = "ten")]
    pub count: usize,
    /// Only commits touching this path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `git.diff`: uncommitted changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitDiff {
    /// Repository directory.
    #[serde(default = "dot")]
    pub repo: String,
    /// Only this file or directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Staged changes instead of unstaged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staged: bool,
}

// -------------------------------------------------------------------------------------- shell

/// `shell.run`: run a command line with `sh -c`, confined by the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellRun {
    /// The command line.
    pub command: String,
    /// Working directory; the current directory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Wall-clock limit, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_accept_one_many_and_refs() {
        let a: FsMove = serde_json::from_value(json!({"source": "a.txt", "dest": "b"})).unwrap();
        assert_eq!(a.source.list(), vec!["a.txt"]);
        let a: FsMove = serde_json::from_value(json!({"source": ["a", "b"], "dest": "c"})).unwrap();
        assert_eq!(a.source.list(), vec!["a", "b"]);
        let a: FsMove =
            serde_json::from_value(json!({"source": {"$step": 0, "$field": "path"}, "dest": "c"}))
                .unwrap();
        assert_eq!(a.source.step_ref(), Some(&StepRef::new(0, Some("path"))));
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let e = serde_json::from_value::<FsLargest>(json!({"path": "/", "cnt": 3})).unwrap_err();
        assert!(e.to_string().contains("cnt"), "{e}");
    }

    #[test]
    fn defaults_fill_in() {
        let a: FsLargest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            (a.path.as_str(), a.count, a.kind),
            (".", 10, SizeKind::Files)
        );
        let k: ProcKill = serde_json::from_value(json!({"pid": 5})).unwrap();
        assert_eq!(k.signal, "TERM");
        let f: FsFind = serde_json::from_value(json!({"type": "dir", "empty": true})).unwrap();
        assert_eq!(f.entry_type, Some(EntryType::Dir));
    }
}
