//! The intent table: for every action of the v1 catalog, the words that trigger it, the words
//! that support it, the argument slots it fills, whether it changes anything, and an example.
//!
//! Triggers are alternatives separated by `|`; each alternative is a set of concepts (see
//! `vocab.rs`) that must all be present, in any order. `@name` stands for an entity of that
//! kind (`@url`: a URL). Cues are concepts that make the intent likelier and count as
//! understood when present.

use crate::vocab::{Cid, Vocab};

/// How an argument gets its value. See `slots.rs` for what each one looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Where to look: a path not after "to"/"into"; the default when none (`None`: required).
    Where(Option<&'static str>),
    /// Optional place (sys.disk).
    OptWhere,
    /// What a file action acts on: one path, several, or an earlier step's results.
    Objects,
    /// One file (required).
    Object,
    /// One file (optional).
    OptObject,
    /// Destination after "to"/"into"/"as" (required).
    Dest,
    /// Destination or place (optional): "extract x to /tmp", "unzip x in /tmp".
    OptDest,
    /// fs.copy's destination: "to D", or `<source>.bak` for "make a backup of".
    CopyDest,
    /// fs.archive's destination: "into a.tar.gz", or `<source>.tar.gz`.
    ArchiveDest,
    /// fs.mkdir: "called X in Y" → Y/X.
    MkdirPath,
    /// A plain count.
    Count,
    /// fs.largest: files or dirs.
    SizeKind,
    /// fs.find: file or dir.
    EntryType,
    /// fs.count: files, dirs, lines, words, bytes.
    CountWhat,
    /// Size at least.
    MinSize,
    /// Size at most.
    MaxSize,
    /// Modified more than … ago.
    OlderThan,
    /// Modified within the last ….
    NewerThan,
    /// A file-name glob.
    Glob,
    /// `true` when one of the concepts (or flags) is present.
    Flag(&'static [&'static str]),
    /// fs.delete's `recursive`: said, or the object is a directory.
    Recursive,
    /// Text to search for.
    Pattern,
    /// Quoted text to write (required).
    Text,
    /// The empty string, always (an empty file); any quoted text is left unused, so a
    /// request with text to write is better understood by fs.write/fs.append.
    NoText,
    /// A service/process/package name (required); `true`: several make several steps.
    Name(bool),
    /// Package names (one or many).
    Names,
    /// Optional name (pkg.list pattern, logs.errors unit).
    OptName,
    /// Free words as a query.
    Query,
    /// proc.kill: a pid or a name.
    KillTarget,
    /// A signal name.
    Signal,
    /// Process sort key.
    Sort,
    /// fs.find: newest or oldest first ("the 5 most recently modified files").
    MtimeOrder,
    /// Process owner.
    User,
    /// Permission mode.
    Mode,
    /// Checksum algorithm.
    Algo,
    /// fs.read: first or last lines.
    HeadTail,
    /// Port number.
    Port,
    /// Host name or address (required).
    Host,
    /// URL (required).
    Url,
    /// Seconds back (logs).
    Since,
    /// "today".
    Today,
    /// Service state filter.
    SvcState,
    /// shell.run: the command line.
    Command,
    /// shell.run: where.
    Cwd,
    /// shell.run: time limit.
    Timeout,
}

impl Slot {
    /// Whether several values of this slot, found under `key` of the arguments, make one
    /// step each ("restart nginx and redis"); `arg` is the slot's argument name.
    pub fn fans_out(self, arg: &str, key: &str) -> bool {
        match self {
            Slot::Name(true) => arg == key,
            // Fills `pid` or `name`; several names are several processes.
            Slot::KillTarget => key == "name",
            _ => false,
        }
    }

    /// Whether the intent cannot run without it.
    pub fn required(self) -> bool {
        matches!(
            self,
            Slot::Where(None)
                | Slot::Objects
                | Slot::Object
                | Slot::Dest
                | Slot::MkdirPath
                | Slot::Pattern
                | Slot::Text
                | Slot::Name(_)
                | Slot::Names
                | Slot::Query
                | Slot::KillTarget
                | Slot::Mode
                | Slot::Host
                | Slot::Url
                | Slot::Command
        )
    }
}

/// One intent, as written in the table.
#[derive(Debug)]
pub(crate) struct IntentDef {
    /// `tool.action`.
    pub action: &'static str,
    /// Trigger alternatives.
    pub triggers: &'static str,
    /// Supporting concepts.
    pub cues: &'static str,
    /// Argument name → slot. Slots fill in this order (destinations before sources, so a
    /// source never takes the destination).
    pub slots: &'static [(&'static str, Slot)],
    /// Changes something (write, delete, exec, privileged): needs exact trigger words.
    pub mutating: bool,
    /// A request it understands (for suggestions).
    pub example: &'static str,
    /// What it needs, for "I need …" messages.
    pub needs: &'static str,
    /// How it reads the clause beyond its slots.
    pub flags: Flags,
}

/// How an intent reads a clause beyond its slots.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flags {
    /// "called X" is a file-name pattern (`Slot::Glob`), not an object: "find the file
    /// called notes.txt".
    pub named_is_glob: bool,
    /// Its `path` is a directory to look in: a path that looks like a file (and is not
    /// counted by lines, words or bytes) makes the reading less likely.
    pub path_is_dir: bool,
    /// Its `path` is made by it (mkdir, write, append), so it need not exist already.
    pub creates: bool,
}

/// No flags.
const PLAIN: Flags = Flags {
    named_is_glob: false,
    path_is_dir: false,
    creates: false,
};

/// The `path` is made by the action.
const CREATES: Flags = Flags {
    named_is_glob: false,
    path_is_dir: false,
    creates: true,
};

/// The `path` is a directory to look in.
const IN_DIR: Flags = Flags {
    named_is_glob: false,
    path_is_dir: true,
    creates: false,
};

use Slot::*;

const HIDDEN: &[&str] = &["hidden", "-a", "-la", "-al", "--all", "-A"];

/// The table. Order breaks ties: earlier wins.
pub(crate) const INTENTS: &[IntentDef] = &[
    IntentDef {
        action: "fs.largest",
        triggers: "largest | top file | top dir | which file use space | which dir use space | what use space | sort size",
        cues: "file dir space use size show list find most recursive",
        slots: &[
            ("path", Where(Some("."))),
            ("count", Count),
            ("kind", SizeKind),
        ],
        mutating: false,
        example: "show the 5 largest files in /var/log",
        needs: "a place to look",
        flags: IN_DIR,
    },
    IntentDef {
        action: "fs.usage",
        triggers: "usage | howmuch space | space use | size | howbig | howmuch disk | space | howmuch use | howmuch space use",
        cues: "disk use space dir file show size",
        slots: &[("path", Where(None))],
        mutating: false,
        example: "how much space does /var/cache use",
        needs: "a file or directory to measure",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.list",
        triggers: "list | show file | show dir | contents dir | hidden file | hidden | what @dirpath | contents @dirpath | show @dirpath",
        cues: "file dir hidden show contents recursive",
        slots: &[
            ("path", Where(Some("."))),
            ("all", Flag(HIDDEN)),
            ("recursive", Flag(&["recursive", "-R"])),
        ],
        mutating: false,
        example: "list files in /etc",
        needs: "a directory",
        flags: IN_DIR,
    },
    IntentDef {
        action: "fs.find",
        triggers: "find | which file | where file | file @size | file @age | @glob | dir empty | file empty | which dir | file modified | dir modified | where @glob | @size | modified @age | newest file | oldest file | newest dir | oldest dir | newest modified | oldest modified | newest @count | oldest @count",
        cues: "file dir modified empty hidden show list named newest oldest recursive",
        slots: &[
            ("path", Where(Some("."))),
            ("name", Glob),
            ("type", EntryType),
            ("min_size", MinSize),
            ("max_size", MaxSize),
            ("older_than", OlderThan),
            ("newer_than", NewerThan),
            ("empty", Flag(&["empty"])),
            ("hidden", Flag(&["hidden"])),
            ("limit", Count),
            ("sort", MtimeOrder),
        ],
        mutating: false,
        example: "find files larger than 100MB in /home",
        needs: "conditions to match",
        flags: Flags {
            named_is_glob: true,
            path_is_dir: true,
            creates: false,
        },
    },
    IntentDef {
        action: "fs.duplicates",
        triggers: "duplicates | duplicates file | same contents | same contents file | copy same",
        cues: "file show find list dir contents same",
        slots: &[
            ("path", Where(Some("."))),
            ("min_size", MinSize),
            ("hidden", Flag(&["hidden"])),
        ],
        mutating: false,
        example: "find duplicate files in ~/Pictures",
        needs: "a place to look",
        flags: IN_DIR,
    },
    IntentDef {
        action: "fs.search",
        triggers: "grep | find | grep file",
        cues: "file line show find recursive",
        slots: &[
            ("pattern", Pattern),
            ("path", Where(Some("."))),
            ("glob", Glob),
            ("ignore_case", Flag(&["ignorecase", "-i"])),
            ("regex", Flag(&["regex", "-E", "-e"])),
        ],
        mutating: false,
        example: "search for TODO in src",
        needs: "the text to search for",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.read",
        triggers: "read | line | contents | head | show @file | what @file | contents @file | read @file | open",
        cues: "file line show contents",
        slots: &[("path", Object), ("head", HeadTail)],
        mutating: false,
        example: "show the first 20 lines of /etc/passwd",
        needs: "the file to read",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.write",
        triggers: "write | create file @quoted",
        cues: "file create",
        slots: &[("content", Text), ("path", Object)],
        mutating: true,
        example: "write 'hello world' to greeting.txt",
        needs: "quoted text and a file",
        flags: CREATES,
    },
    IntentDef {
        action: "fs.append",
        triggers: "append",
        cues: "file line",
        slots: &[("content", Text), ("path", Object)],
        mutating: true,
        example: "append 'export EDITOR=vim' to ~/.bashrc",
        needs: "quoted text and a file",
        flags: CREATES,
    },
    // An empty file: appending nothing creates it when missing and leaves an existing one's
    // content alone — "create a file" must never truncate one that is there.
    IntentDef {
        action: "fs.append",
        triggers: "touch | create file | create empty file",
        cues: "file create empty named",
        slots: &[("content", NoText), ("path", MkdirPath)],
        mutating: true,
        example: "create an empty file called notes.txt in ~/work",
        needs: "the file to create",
        flags: CREATES,
    },
    IntentDef {
        action: "fs.mkdir",
        triggers: "mkdir | create dir",
        cues: "dir create named",
        slots: &[("path", MkdirPath)],
        mutating: true,
        example: "create a folder called reports in ~/work",
        needs: "the directory to create",
        flags: CREATES,
    },
    IntentDef {
        action: "fs.copy",
        triggers: "copy | backup",
        cues: "file dir create",
        slots: &[("dest", CopyDest), ("source", Objects)],
        mutating: true,
        example: "copy config.yaml to config.yaml.bak",
        needs: "what to copy and where to",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.move",
        triggers: "move | rename",
        cues: "file dir",
        slots: &[("dest", Dest), ("source", Objects)],
        mutating: true,
        example: "move report.pdf to ~/Documents",
        needs: "what to move and where to",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.delete",
        triggers: "delete",
        cues: "file dir recursive",
        slots: &[("path", Objects), ("recursive", Recursive)],
        mutating: true,
        example: "delete old.log",
        needs: "the file or folder to delete",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.chmod",
        triggers: "chmod | executable | readonly",
        cues: "create file dir recursive",
        slots: &[
            ("mode", Mode),
            ("path", Objects),
            ("recursive", Flag(&["recursive", "-R", "-r"])),
        ],
        mutating: true,
        example: "make deploy.sh executable",
        needs: "a file and a mode",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.archive",
        triggers: "archive",
        cues: "file dir create",
        slots: &[("dest", ArchiveDest), ("source", Objects)],
        mutating: true,
        example: "compress the logs folder into logs.tar.gz",
        needs: "what to pack",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.extract",
        triggers: "extract",
        cues: "file",
        slots: &[("dest", OptDest), ("archive", Object)],
        mutating: true,
        example: "extract backup.tar.gz to /tmp/restore",
        needs: "the archive to unpack",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.checksum",
        triggers: "checksum",
        cues: "file show",
        slots: &[("algorithm", Algo), ("path", Objects)],
        mutating: false,
        example: "sha256 of ubuntu.iso",
        needs: "the file to hash",
        flags: PLAIN,
    },
    IntentDef {
        action: "fs.count",
        triggers: "count | howmany | count line",
        cues: "file dir line words bytes show recursive",
        slots: &[("path", Where(Some("."))), ("what", CountWhat)],
        mutating: false,
        example: "how many files are in ~/Music",
        needs: "what to count",
        flags: IN_DIR,
    },
    IntentDef {
        action: "sys.info",
        triggers: "os | kernel | system info | info | version os | version kernel | system",
        cues: "system info os kernel version running show",
        slots: &[],
        mutating: false,
        example: "what OS and kernel am I running",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "sys.disk",
        triggers: "disk | free space | space available | disk free",
        cues: "disk space free available usage show howmuch system use list",
        slots: &[("path", OptWhere)],
        mutating: false,
        example: "how much disk space is free",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "sys.memory",
        triggers: "memory",
        cues: "usage use free available howmuch show system",
        slots: &[],
        mutating: false,
        example: "how much memory is used",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "sys.cpu",
        triggers: "cpu",
        cues: "usage use show system info",
        slots: &[],
        mutating: false,
        example: "what is the cpu load",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "sys.uptime",
        triggers: "uptime | howlong up | howlong running | boot when | howlong system",
        cues: "system up boot howlong running show",
        slots: &[],
        mutating: false,
        example: "how long has this machine been up",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "sys.users",
        triggers: "users | who | who users | who system",
        cues: "users system show list use",
        slots: &[],
        mutating: false,
        example: "who is logged in",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "proc.list",
        triggers: "process | top | @sort | process list | what use cpu | what use memory | who use cpu | who use memory",
        cues: "running list show use most top process sort",
        slots: &[("sort", Sort), ("limit", Count), ("user", User)],
        mutating: false,
        example: "top 5 processes by memory",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "proc.find",
        triggers: "running | process named | find process | pid | process @named | running process | find process named | pgrep",
        cues: "process running named find show pid",
        slots: &[("name", Name(true))],
        mutating: false,
        example: "is postgres running",
        needs: "the process name",
        flags: PLAIN,
    },
    IntentDef {
        action: "proc.kill",
        triggers: "kill | stop process | stop @pid | kill process | signal | @signal",
        cues: "process force signal named running pid",
        slots: &[("pid", KillTarget), ("signal", Signal)],
        mutating: true,
        example: "kill process 4242",
        needs: "a process id or name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.list",
        triggers: "service | service list",
        cues: "service list show running failed enable",
        slots: &[("state", SvcState)],
        mutating: false,
        example: "list services",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.status",
        triggers: "status | service running | service up | running status",
        cues: "service running show up",
        slots: &[("name", Name(true))],
        mutating: false,
        example: "status of nginx",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.start",
        triggers: "start",
        cues: "service again",
        slots: &[("name", Name(true))],
        mutating: true,
        example: "start the docker service",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.stop",
        triggers: "stop",
        cues: "service",
        slots: &[("name", Name(true))],
        mutating: true,
        example: "stop apache2",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.restart",
        triggers: "restart",
        cues: "service",
        slots: &[("name", Name(true))],
        mutating: true,
        example: "restart nginx",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.enable",
        triggers: "enable | start boot | enable boot",
        cues: "service boot",
        slots: &[("name", Name(true))],
        mutating: true,
        example: "enable redis at boot",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.disable",
        triggers: "disable | disable boot",
        cues: "service boot",
        slots: &[("name", Name(true))],
        mutating: true,
        example: "disable cups",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "svc.logs",
        triggers: "logs | logs service",
        cues: "service show line newest",
        slots: &[("name", Name(false)), ("lines", Count), ("since", Since)],
        mutating: false,
        example: "show logs for the postgresql service",
        needs: "the service name",
        flags: PLAIN,
    },
    IntentDef {
        action: "logs.errors",
        triggers: "error | error logs",
        cues: "logs show system failed newest",
        slots: &[
            ("since", Since),
            ("today", Today),
            ("unit", OptName),
            ("limit", Count),
        ],
        mutating: false,
        example: "show errors from the system log in the last hour",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "logs.tail",
        triggers: "tail | tail logs",
        cues: "logs file line show",
        slots: &[("path", Object), ("lines", Count)],
        mutating: false,
        example: "tail /var/log/auth.log",
        needs: "the log file",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.search",
        triggers: "package find | find package",
        cues: "package find available",
        slots: &[("query", Query)],
        mutating: false,
        example: "search packages for image editor",
        needs: "what to search for",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.info",
        triggers: "installed | package info | package version | version",
        cues: "package info version show installed",
        slots: &[("name", Name(true))],
        mutating: false,
        example: "is curl installed",
        needs: "the package name",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.install",
        triggers: "install",
        cues: "package",
        slots: &[("packages", Names)],
        mutating: true,
        example: "install htop",
        needs: "the package name",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.remove",
        triggers: "uninstall | delete package",
        cues: "package",
        slots: &[("packages", Names)],
        mutating: true,
        example: "uninstall vlc",
        needs: "the package name",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.list",
        triggers: "installed package | list package | package",
        cues: "list show installed package",
        slots: &[("pattern", OptName)],
        mutating: false,
        example: "list installed packages",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "pkg.upgradable",
        triggers: "update | update available | update package",
        cues: "available package show list",
        slots: &[],
        mutating: false,
        example: "what updates are available",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.interfaces",
        triggers: "interface | ip address | ip | mac address | mac | network address",
        cues: "network ip address show list",
        slots: &[],
        mutating: false,
        example: "show network interfaces",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.ports",
        triggers: "port | listening",
        cues: "listening use show network list running open",
        slots: &[("port", Port)],
        mutating: false,
        example: "what is using port 8080",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.connections",
        triggers: "connection | connection network",
        cues: "network show list open",
        slots: &[],
        mutating: false,
        example: "show open network connections",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.resolve",
        triggers: "resolve | ip @host | address @host",
        cues: "ip address show network",
        slots: &[("host", Host)],
        mutating: false,
        example: "resolve example.com",
        needs: "a host name",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.http",
        triggers: "@url | http",
        cues: "http up running show curl",
        slots: &[("url", Url)],
        mutating: false,
        example: "check if http://localhost:3000/health is up",
        needs: "a URL",
        flags: PLAIN,
    },
    IntentDef {
        action: "net.ping",
        triggers: "ping | @host up | up @host",
        cues: "up ping",
        slots: &[("host", Host), ("count", Count)],
        mutating: false,
        example: "ping 10.0.0.1",
        needs: "a host",
        flags: PLAIN,
    },
    IntentDef {
        action: "git.status",
        triggers: "git status | status repo | modified repo | git modified | git",
        cues: "git repo status modified show",
        slots: &[("repo", Where(Some(".")))],
        mutating: false,
        example: "git status",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "git.log",
        triggers: "commit | git logs | git commit",
        cues: "git repo show logs newest",
        slots: &[("count", Count), ("repo", Where(Some(".")))],
        mutating: false,
        example: "show the last 10 commits",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "git.diff",
        triggers: "diff | uncommitted | git diff | staged | modified",
        cues: "git repo show staged file modified uncommitted",
        slots: &[
            ("path", OptObject),
            ("staged", Flag(&["staged", "--staged", "--cached"])),
        ],
        mutating: false,
        example: "show the diff of src/main.rs",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "git.branches",
        triggers: "branch | git branch",
        cues: "git list show repo",
        slots: &[],
        mutating: false,
        example: "list git branches",
        needs: "",
        flags: PLAIN,
    },
    IntentDef {
        action: "shell.run",
        triggers: "run",
        cues: "command",
        slots: &[("command", Command), ("cwd", Cwd), ("timeout", Timeout)],
        mutating: true,
        example: "run uname -a",
        needs: "the command line",
        flags: PLAIN,
    },
];

/// A compiled intent.
#[derive(Debug)]
pub(crate) struct Intent {
    /// The table entry.
    pub def: &'static IntentDef,
    /// `tool`.
    pub tool: &'static str,
    /// `action`.
    pub name: &'static str,
    /// Trigger alternatives as concept ids.
    pub triggers: Vec<Vec<Cid>>,
    /// Cue concept ids.
    pub cues: Vec<Cid>,
}

/// Compiles the table against the vocabulary. Unknown concept names are collected in the
/// second value (a unit test keeps it empty).
pub(crate) fn compile(vocab: &Vocab) -> (Vec<Intent>, Vec<String>) {
    let mut unknown = Vec::new();
    let ids = |s: &str, unknown: &mut Vec<String>| -> Vec<Cid> {
        s.split_whitespace()
            .filter_map(|w| {
                let id = vocab.id(w);
                if id.is_none() {
                    unknown.push(w.to_owned());
                }
                id
            })
            .collect()
    };
    let intents = INTENTS
        .iter()
        .map(|def| {
            let (tool, name) = def.action.split_once('.').unwrap_or((def.action, ""));
            let triggers = def
                .triggers
                .split('|')
                .map(|alt| ids(alt, &mut unknown))
                .filter(|v| !v.is_empty())
                .collect();
            let cues = ids(def.cues, &mut unknown);
            Intent {
                def,
                tool,
                name,
                triggers,
                cues,
            }
        })
        .collect();
    (intents, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_concept_in_the_table_exists() {
        let v = Vocab::new();
        let (intents, unknown) = compile(&v);
        assert!(unknown.is_empty(), "unknown concepts: {unknown:?}");
        assert_eq!(intents.len(), INTENTS.len());
        assert!(intents.iter().all(|i| !i.triggers.is_empty()));
    }

    #[test]
    fn the_table_covers_the_v1_catalog() {
        let want = [
            "fs.list",
            "fs.find",
            "fs.largest",
            "fs.usage",
            "fs.read",
            "fs.search",
            "fs.write",
            "fs.append",
            "fs.mkdir",
            "fs.copy",
            "fs.move",
            "fs.delete",
            "fs.chmod",
            "fs.archive",
            "fs.extract",
            "fs.checksum",
            "fs.count",
            "fs.duplicates",
            "sys.info",
            "sys.disk",
            "sys.memory",
            "sys.cpu",
            "sys.uptime",
            "sys.users",
            "proc.list",
            "proc.find",
            "proc.kill",
            "svc.list",
            "svc.status",
            "svc.start",
            "svc.stop",
            "svc.restart",
            "svc.enable",
            "svc.disable",
            "svc.logs",
            "pkg.search",
            "pkg.info",
            "pkg.install",
            "pkg.remove",
            "pkg.list",
            "pkg.upgradable",
            "net.interfaces",
            "net.ports",
            "net.connections",
            "net.resolve",
            "net.http",
            "net.ping",
            "logs.errors",
            "logs.tail",
            "git.status",
            "git.log",
            "git.diff",
            "git.branches",
            "shell.run",
        ];
        for a in want {
            assert!(INTENTS.iter().any(|i| i.action == a), "{a} missing");
        }
    }
}
