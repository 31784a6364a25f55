//! The words the planner knows: concepts with their synonyms, glue words, prepositions,
//! pronouns, hedges, multi-word phrases, and a typo index.
//!
//! A *concept* is what a word means to the planner (`largest` for "biggest", "heaviest", …).
//! Intents are written over concepts, so a synonym added here is understood everywhere.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::lex::{Kind, Tok};

/// A concept id (index into [`Vocab::concepts`]).
pub(crate) type Cid = u8;

/// Most concepts the bit sets can hold.
pub(crate) const MAX_CONCEPTS: usize = 256;

/// Concepts and their surface words. The first word is the concept's name.
///
/// Words in [`GLUE_CONCEPTS`] carry meaning for triggers ("which files…", "who is…") but do
/// not count when judging how much of a request was understood.
#[rustfmt::skip]
const CONCEPTS: &[&[&str]] = &[
    // ---- files
    &["largest", "biggest", "heaviest", "bulkiest", "fattest", "big", "large", "huge", "bigger", "larger", "largets", "hugest"],
    &["usage", "du", "ncdu"],
    &["use", "uses", "using", "used", "take", "takes", "taking", "occupy", "occupies", "consume", "consumes", "consuming", "eat", "eats", "eating", "hog", "hogs", "hogging"],
    &["space", "room", "storage"],
    &["size", "sizes", "sized", "total"],
    &["howmuch"],
    &["howmany"],
    &["howbig"],
    &["howlong"],
    &["list", "ls", "ll", "enumerate", "listing"],
    &["file", "files"],
    &["dir", "directory", "directories", "folder", "folders", "dirs", "subfolder", "subfolders", "subdirectory", "subdirectories", "subdirs"],
    &["hidden", "dotfiles"],
    &["find", "locate", "search", "lookfor", "hunt"],
    &["grep", "rg", "ack", "appear", "appears", "occur", "occurs", "mentioned", "mention", "mentions", "mentioning", "contain", "contains", "containing", "occurrence", "occurrences", "matching", "match", "matches", "import", "imports", "imported", "importing", "references", "referenced", "referencing"],
    &["modified", "changed", "touched", "edited", "created", "written", "updated", "accessed", "altered", "change", "changes"],
    &["empty", "blank"],
    &["duplicates", "duplicated", "dupes", "dups", "dupe", "identical", "dedupe", "dedup", "deduplicate"],
    &["newest", "recent", "recently", "freshest", "newly"],
    &["oldest", "stalest", "earliest"],
    &["read", "cat", "less", "more", "bat"],
    &["open", "opened"],
    &["contents", "content", "inside"],
    &["line", "lines"],
    &["head"],
    &["tail", "follow"],
    &["write", "overwrite", "save", "put", "store"],
    &["append", "add", "adds", "adding", "appending"],
    &["create", "make", "new", "mk"],
    &["mkdir", "md"],
    &["touch"],
    &["copy", "cp", "duplicate", "copies", "copying"],
    &["backup"],
    &["move", "mv", "relocate", "transfer", "moving"],
    &["rename", "ren", "renaming"],
    &["delete", "remove", "erase", "rm", "del", "unlink", "trash", "rmdir", "deleting", "removing", "deletes", "removes", "wipe"],
    &["chmod", "permission", "permissions", "perms", "mode"],
    &["executable", "runnable"],
    &["readonly"],
    &["archive", "compress", "zip", "tar", "tarball", "pack", "gzip", "targz", "compressing", "zipping"],
    &["extract", "unzip", "untar", "unpack", "decompress", "unarchive", "gunzip", "uncompress"],
    &["checksum", "checksums", "hash", "hashes", "digest", "sha256", "sha256sum", "sha512", "sha512sum", "sha1", "sha1sum", "md5", "md5sum", "blake3", "b3sum", "shasum"],
    &["count", "wc", "tally", "number"],
    &["words", "word"],
    &["bytes", "characters", "chars"],
    // ---- system
    &["system", "machine", "computer", "box", "host", "server", "pc", "laptop"],
    &["info", "information", "details", "specs", "summary", "overview"],
    &["os", "distro", "distribution", "release", "uname", "hostnamectl", "lsb_release", "hostname"],
    &["kernel"],
    &["version", "versions"],
    &["disk", "disks", "drive", "drives", "df", "filesystem", "filesystems", "partition", "partitions", "mount", "mounts", "volume", "volumes", "lsblk"],
    &["free", "left", "remaining", "unused"],
    &["available", "avail"],
    &["memory", "ram", "mem", "swap"],
    &["cpu", "cpus", "processor", "processors", "load", "loadavg", "lscpu", "cores"],
    &["uptime"],
    &["up"],
    &["boot", "booted", "startup", "autostart"],
    &["users", "user", "loggedin", "whos"],
    &["process", "processes", "procs", "proc", "ps", "task", "tasks", "programs"],
    &["pid", "pids"],
    &["running", "alive", "active", "runs"],
    &["kill", "terminate", "pkill", "killall", "murder", "kills", "killing"],
    &["pgrep", "pidof"],
    &["top"],
    &["signal", "sig"],
    // ---- services
    &["service", "services", "daemon", "daemons", "unit", "units", "systemctl", "systemd"],
    &["status", "state"],
    &["start", "starting", "starts", "started"],
    &["stop", "halt", "stopping", "stops"],
    &["restart", "reload", "bounce", "restarting", "restarts", "reloads", "restarted"],
    &["enable", "enabled", "enables"],
    &["disable", "disabled", "disables"],
    &["failed", "failing", "crashed", "broken", "dead"],
    &["logs", "log", "journal", "journalctl", "syslog", "logfile", "logfiles"],
    &["error", "errors", "err", "failure", "failures", "problems", "problem", "crashes", "critical", "warnings"],
    // ---- packages
    &["package", "packages", "pkg", "pkgs", "apt", "dnf", "yum", "pacman", "zypper", "software", "apps", "dpkg", "rpm"],
    &["install", "installing", "installs"],
    &["installed"],
    &["uninstall", "purge", "uninstalling"],
    &["update", "updates", "upgrade", "upgrades", "upgradable", "upgradeable", "outdated", "pending"],
    // ---- network
    &["network", "net", "networking"],
    &["interface", "interfaces", "nic", "nics", "ifconfig", "adapter", "adapters", "iface"],
    &["ip"],
    &["address", "addresses", "addr", "addrs"],
    &["mac"],
    &["port", "ports"],
    &["listening", "listen", "listens", "listener", "listeners", "bound"],
    &["connection", "connections", "conns", "socket", "sockets", "netstat", "ss", "established", "tcp", "udp"],
    &["resolve", "dns", "lookup", "nslookup", "dig", "resolves"],
    &["http", "https", "fetch", "request", "endpoint", "url", "website", "site", "healthy"],
    &["curl", "wget"],
    &["ping", "reachable", "reach", "pingable", "responding"],
    // ---- git
    &["git"],
    &["repo", "repository", "repos", "checkout", "worktree"],
    &["commit", "commits", "history"],
    &["diff", "patch", "diffs"],
    &["branch", "branches"],
    &["staged", "cached"],
    &["uncommitted", "unstaged"],
    // ---- shell and control
    &["run", "execute", "exec"],
    &["command", "cmd", "script"],
    &["timeout"],
    &["same", "repeat"],
    // Changes no intent makes: never read as something else ("format the disk" is not a
    // disk report).
    &["unsupported", "format", "reformat", "shred", "reboot", "poweroff", "mkfs", "fdisk", "chown", "encrypt", "decrypt", "unmount", "umount", "eject", "overclock", "downgrade", "hibernate", "suspend"],
    &["again"],
    &["undo", "revert", "rollback", "unrevert"],
    &["recursive", "recursively", "subtree"],
    &["ignorecase"],
    &["regex", "regexp"],
    &["force", "forcefully", "forced", "hard"],
    &["sort", "sorted", "order", "ordered"],
    &["most", "highest"],
    // ---- question and pointer words that triggers use; they are glue for coverage
    &["what"],
    &["which"],
    &["who", "w"],
    &["where"],
    &["show", "display", "print", "view", "see", "give", "get", "tell", "output", "report", "check", "inspect", "examine", "peek", "lookat", "dump"],
    &["when", "since"],
    &["my", "mine"],
    &["named", "called", "name"],
];

/// Concepts that stand for an entity being present (`@url`: the clause has a URL). They have no
/// surface words; triggers use them ("@url" alone is enough for `net.http`).
#[rustfmt::skip]
pub(crate) const PSEUDO: &[&str] = &[
    "@url", "@size", "@age", "@glob", "@host", "@quoted", "@file", "@dirpath", "@path", "@sort",
    "@pid", "@port", "@today", "@named", "@mode", "@signal", "@count", "@pronoun",
];

/// Concepts that count as glue when judging coverage: question words and generic verbs.
const GLUE_CONCEPTS: &[&str] = &[
    "what", "which", "who", "where", "show", "when", "my", "up", "named",
];

/// Pure glue: politeness, articles, auxiliaries. They never carry a value and are skipped.
#[rustfmt::skip]
const GLUE: &[&str] = &[
    "please", "pls", "plz", "kindly", "could", "can", "would", "will", "shall", "should", "you",
    "u", "me", "i", "we", "us", "our", "let", "lets", "the", "a", "an", "some", "all", "any",
    "every", "each", "just", "quickly", "now", "thanks", "thank", "thx", "ty", "hey", "hi",
    "hello", "ok", "okay", "want", "wanna", "need", "like", "love", "is", "are", "am", "be",
    "been", "being", "was", "were", "do", "does", "did", "have", "has", "had", "there", "how",
    "currently", "right", "quick", "too", "also", "mind", "going", "gonna", "try", "actually",
    "exactly", "simply", "your", "whole", "entire", "so", "then", "and", "or", "if", "whether",
    "kind", "able", "possible", "go", "ahead", "help", "know", "out", "sure",
    "really", "real", "very", "much", "many", "still", "ever", "already", "instantly",
    "immediately", "asap", "yes", "yeah", "ones", "im", "ill", "existing", "their", "than",
    "his", "her", "thing", "sure", "send", "bit", "little", "hmm", "um", "well", "alright", "whats",
    "set", "else", "including", "incl", "whose",
];

/// Quantifiers that are not a path: "delete everything" must not delete a file named so.
#[rustfmt::skip]
const QUANTIFIERS: &[&str] = &[
    "everything", "anything", "something", "stuff", "things", "whatever", "nothing", "everyone",
];

/// Words that make a request unsure; a change is never planned from an unsure request.
#[rustfmt::skip]
const HEDGES: &[&str] = &[
    "maybe", "perhaps", "probably", "somehow", "guess", "dunno", "idk", "might",
    "mayhaps", "whichever", "unsure",
];

/// Words that negate; a change is never planned from a negated request.
const NEGATIONS: &[&str] = &["not", "never", "no", "dont", "nope", "without"];

/// Pronouns that point at an earlier result or target.
const PRONOUNS: &[&str] = &[
    "it", "its", "them", "those", "these", "that", "this", "they",
];

/// Prepositions, by what they say about the path that follows.
const PREPS: &[(&str, Prep)] = &[
    ("in", Prep::Loc),
    ("inside", Prep::Loc),
    ("under", Prep::Loc),
    ("within", Prep::Loc),
    ("at", Prep::Loc),
    ("on", Prep::Loc),
    ("beneath", Prep::Loc),
    ("below", Prep::Loc),
    ("across", Prep::Loc),
    ("throughout", Prep::Loc),
    ("through", Prep::Loc),
    ("to", Prep::Dest),
    ("into", Prep::Dest),
    ("onto", Prep::Dest),
    ("as", Prep::Dest),
    ("towards", Prep::Dest),
    ("from", Prep::Src),
    ("of", Prep::Of),
    ("for", Prep::For),
    ("about", Prep::For),
    ("with", Prep::With),
    ("by", Prep::By),
];

/// Names of common programs, services and packages: never "corrected" into a keyword (so
/// "install htop" is not read as "stop").
#[rustfmt::skip]
const KNOWN_NAMES: &[&str] = &[
    "nginx", "apache", "apache2", "httpd", "postgres", "postgresql", "mysql", "mysqld", "mariadb",
    "redis", "docker", "containerd", "cups", "sshd", "cron", "crond", "firefox", "chrome",
    "chromium", "node", "nodejs", "python", "python3", "java", "htop", "btop", "vim", "emacs",
    "ripgrep", "gimp", "tmux", "cargo", "rustc", "make", "cmake", "rsync", "nano", "ffmpeg",
    "steam", "slack", "code", "spotify", "thunderbird", "libreoffice", "bluetooth", "avahi",
    "snapd", "firewalld", "haproxy", "memcached", "mongodb", "mongod", "grafana", "prometheus",
    "jenkins", "postfix", "dovecot", "bind9", "dnsmasq", "chrony", "chronyd", "rsyslog", "dbus",
    "polkit", "lightdm", "pipewire", "pulseaudio", "openvpn", "wireguard", "samba", "smbd",
    "gunicorn", "supervisor", "kubelet", "podman", "libvirtd", "qemu", "neofetch", "tree",
    "ncdu", "kafka", "zookeeper", "rabbitmq", "caddy", "traefik", "vsftpd", "exim", "squid",
    "tomcat", "nodejs", "deno", "golang", "rustup", "pip3", "pipx", "conda", "ruby", "perl",
    "php", "zsh", "fish", "bash", "git-lfs", "gitea", "tailscale", "zerotier", "syncthing",
    "nextcloud", "plex", "jellyfin", "sonarr", "radarr", "transmission", "qbittorrent", "vlc",
    "mpv", "obs", "audacity", "inkscape", "krita", "blender", "thunar", "nautilus", "dolphin",
    "konsole", "kitty", "alacritty", "wezterm", "foot", "sway", "hyprland", "xorg", "wayland",
    "stow", "htop", "iotop", "nmap", "tcpdump", "wireshark", "strace", "ltrace", "gdb", "lldb",
    "valgrind", "sqlite", "sqlite3", "redis-server", "elasticsearch", "kibana", "logstash",
    "fluentd", "vector", "loki", "telegraf", "influxdb", "minio", "etcd", "consul", "vault",
    "nomad", "terraform", "ansible", "puppet", "chef", "salt",
    // Keywords that are also program or package names ("install git", "is curl installed").
    "git", "curl", "wget", "tar", "zip", "unzip", "gzip", "grep", "rg", "ack", "dig", "ncdu",
    "netstat", "ifconfig", "less", "bat", "nslookup", "top", "lsof",
];

/// What a preposition says about the path after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prep {
    /// Where to look: in, under, inside, at, on.
    Loc,
    /// Where to put: to, into, as.
    Dest,
    /// Where from: from.
    Src,
    /// Of: "the size of X", "a backup of X".
    Of,
    /// For: "search for X", "logs for X".
    For,
    /// With: "with 'text'".
    With,
    /// By: "by memory".
    By,
}

/// The grammatical role of a word, as far as the planner cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A word that may carry meaning or a value.
    Content,
    /// Politeness, articles, auxiliaries, question words.
    Glue,
    /// A preposition.
    Prep(Prep),
    /// A pronoun pointing back.
    Pronoun,
    /// "everything", "stuff".
    Quantifier,
    /// "maybe", "perhaps".
    Hedge,
    /// "not", "never".
    Negation,
}

/// What the vocabulary says about one surface word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexeme {
    /// The concept it names, if any.
    pub concept: Option<Cid>,
    /// Its class.
    pub class: Class,
    /// A well-known program/service/package name (never typo-corrected).
    pub known_name: bool,
}

/// A token with what the vocabulary knows about it.
#[derive(Debug, Clone)]
pub(crate) struct Word {
    /// The token (for a merged phrase: the span of the whole phrase, `low` its canonical word).
    pub tok: Tok,
    /// Concept, class.
    pub lex: Lexeme,
    /// When the concept came from a typo correction: the word it was corrected to.
    pub fuzzy: Option<&'static str>,
}

/// Multi-word phrases, replaced by one canonical word before lookup.
#[rustfmt::skip]
const PHRASES: &[(&[&str], &str)] = &[
    (&["get", "rid", "of"], "delete"),
    (&["copies", "of", "each", "other"], "duplicates"),
    (&["copies", "of", "one", "another"], "duplicates"),
    (&["how", "much"], "howmuch"),
    (&["how", "many"], "howmany"),
    (&["how", "long"], "howlong"),
    (&["how", "big"], "howbig"),
    (&["how", "large"], "howbig"),
    (&["how", "heavy"], "howbig"),
    (&["logged", "in"], "loggedin"),
    (&["logged", "on"], "loggedin"),
    (&["logged", "into"], "loggedin"),
    (&["logged", "onto"], "loggedin"),
    (&["signed", "in"], "loggedin"),
    (&["at", "boot"], "boot"),
    (&["on", "boot"], "boot"),
    (&["at", "startup"], "boot"),
    (&["on", "startup"], "boot"),
    (&["at", "boot", "time"], "boot"),
    (&["when", "the", "system", "boots"], "boot"),
    (&["back", "up"], "backup"),
    (&["zip", "up"], "zip"),
    (&["tar", "up"], "tar"),
    (&["look", "for"], "lookfor"),
    (&["looking", "for"], "lookfor"),
    (&["search", "for"], "search"),
    (&["turn", "off"], "stop"),
    (&["shut", "down"], "stop"),
    (&["shutdown"], "stop"),
    (&["turn", "on"], "start"),
    (&["fire", "up"], "start"),
    (&["spin", "up"], "start"),
    (&["bring", "up"], "start"),
    (&["bring", "down"], "stop"),
    (&["latest"], "newest"),
    (&["least", "recently"], "oldest"),
    (&["least", "recent"], "oldest"),
    (&["most", "recently"], "newest"),
    (&["most", "recent"], "newest"),
    (&["process", "id"], "pid"),
    (&["process", "ids"], "pid"),
    (&["read", "only"], "readonly"),
    (&["read-only"], "readonly"),
    (&["case", "insensitive"], "ignorecase"),
    (&["case-insensitive"], "ignorecase"),
    (&["case", "insensitively"], "ignorecase"),
    (&["ignore", "case"], "ignorecase"),
    (&["ignoring", "case"], "ignorecase"),
    (&["most", "space"], "largest"),
    (&["most", "room"], "largest"),
    (&["most", "disk", "space"], "largest"),
    (&["take", "up"], "use"),
    (&["takes", "up"], "use"),
    (&["taking", "up"], "use"),
    (&["look", "up"], "lookup"),
    (&["operating", "system"], "os"),
    (&["roll", "back"], "undo"),
    (&["roll", "it", "back"], "undo"),
    (&["roll", "that", "back"], "undo"),
    (&["dot", "files"], "dotfiles"),
    (&["system", "log"], "syslog"),
    (&["system", "logs"], "syslog"),
    (&["system", "journal"], "syslog"),
    (&["regular", "expression"], "regex"),
    (&["tar.gz"], "targz"),
    (&["up", "to", "date"], "uptodate"),
    (&["ip", "addr"], "ip"),
    (&["free", "-h"], "memory"),
    (&["free", "-m"], "memory"),
    (&["free", "-g"], "memory"),
    (&["what", "is", "running"], "running"),
    (&["in", "use"], "used"),
    (&["been", "up"], "uptime"),
    (&["has", "been", "running"], "uptime"),
    (&["last", "boot"], "uptime"),
    (&["last", "reboot"], "uptime"),
    (&["who", "am", "i"], "whoami"),
    (&["set", "up"], "setup"),
    (&["make", "sure"], "sure"),
    (&["make", "a", "list"], "list"),
    (&["give", "me", "a", "list"], "list"),
    (&["execute", "permission"], "executable"),
    (&["execute", "permissions"], "executable"),
    (&["exec", "permission"], "executable"),
    (&["execution", "permission"], "executable"),
    (&["execute", "bit"], "executable"),
    (&["exec", "bit"], "executable"),
    (&["make", "certain"], "sure"),
];

/// The vocabulary's maps. Their keys are this file's constants and every CLI request builds
/// them once, so they hash with foldhash instead of SipHash: SipHash's per-key cost was most
/// of building the vocabulary (~0.3 ms of a ~6 ms `kernos "how much memory is used"`). Nothing
/// from a request is ever inserted, only looked up, so there is no collision flooding to
/// defend against.
type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// The compiled vocabulary.
#[derive(Debug)]
pub(crate) struct Vocab {
    words: Map<&'static str, Lexeme>,
    ids: Map<&'static str, Cid>,
    glue_concepts: Vec<bool>,
    /// Deletion variants of every content word ≥ 4 letters → those words. Built on the first
    /// word the vocabulary does not know: it is most of what building the vocabulary costs
    /// (tens of thousands of small allocations, ~1.5 ms), and a request written in known words
    /// (most of them) never needs it.
    typo: OnceLock<Map<String, Vec<&'static str>>>,
    phrases: Vec<(&'static [&'static str], &'static str)>,
}

fn deletions(w: &str) -> Vec<String> {
    let chars: Vec<char> = w.chars().collect();
    (0..chars.len())
        .map(|i| {
            chars
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c)
                .collect()
        })
        .collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), so
/// "procesess" is one edit from "processes".
pub(crate) fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

impl Vocab {
    /// Builds the tables.
    pub fn new() -> Vocab {
        let mut concepts = Vec::new();
        let mut ids =
            Map::with_capacity_and_hasher(CONCEPTS.len() + PSEUDO.len(), Default::default());
        let mut words: Map<&'static str, Lexeme> =
            Map::with_capacity_and_hasher(CONCEPTS.len() * 4, Default::default());
        for group in CONCEPTS {
            let name = group[0];
            let id = *ids.entry(name).or_insert_with(|| {
                concepts.push(name);
                // The table is a compile-time constant well under MAX_CONCEPTS (a unit test
                // checks), so the cast cannot truncate.
                (concepts.len() - 1) as Cid
            });
            for w in group.iter() {
                words.entry(w).or_insert(Lexeme {
                    concept: Some(id),
                    class: Class::Content,
                    known_name: false,
                });
            }
        }
        for name in PSEUDO {
            ids.insert(name, concepts.len() as Cid);
            concepts.push(name);
        }
        let glue_concepts = concepts
            .iter()
            .map(|c| GLUE_CONCEPTS.contains(c) || c.starts_with('@'))
            .collect();
        let mut set = |list: &[&'static str], class: Class| {
            for w in list {
                let e = words.entry(w).or_insert(Lexeme {
                    concept: None,
                    class,
                    known_name: false,
                });
                e.class = class;
            }
        };
        set(GLUE, Class::Glue);
        set(QUANTIFIERS, Class::Quantifier);
        set(HEDGES, Class::Hedge);
        set(NEGATIONS, Class::Negation);
        set(PRONOUNS, Class::Pronoun);
        for (w, p) in PREPS {
            let e = words.entry(w).or_insert(Lexeme {
                concept: None,
                class: Class::Prep(*p),
                known_name: false,
            });
            e.class = Class::Prep(*p);
        }
        for w in KNOWN_NAMES {
            words
                .entry(w)
                .or_insert(Lexeme {
                    concept: None,
                    class: Class::Content,
                    known_name: true,
                })
                .known_name = true;
        }
        let mut phrases: Vec<_> = PHRASES.to_vec();
        phrases.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Vocab {
            words,
            ids,
            glue_concepts,
            typo: OnceLock::new(),
            phrases,
        }
    }

    /// The typo index (see the `typo` field), built on first use.
    fn typo_index(&self) -> &Map<String, Vec<&'static str>> {
        self.typo.get_or_init(|| {
            let mut typo: Map<String, Vec<&'static str>> = Map::default();
            for (w, lx) in &self.words {
                if lx.concept.is_some()
                    && lx.class == Class::Content
                    && w.chars().count() >= 4
                    && w.chars().all(|c| c.is_ascii_alphabetic())
                {
                    for d in deletions(w) {
                        typo.entry(d).or_default().push(w);
                    }
                    typo.entry((*w).to_owned()).or_default().push(w);
                }
            }
            for v in typo.values_mut() {
                v.sort_unstable();
                v.dedup();
            }
            typo
        })
    }

    /// The id of a concept name. Unknown names (a typo in an intent table) map to no id, and
    /// a unit test checks that every name used in the tables exists.
    pub fn id(&self, name: &str) -> Option<Cid> {
        self.ids.get(name).copied()
    }

    /// Whether a concept counts as glue for coverage.
    pub fn is_glue_concept(&self, c: Cid) -> bool {
        self.glue_concepts
            .get(usize::from(c))
            .copied()
            .unwrap_or(false)
    }

    /// What the vocabulary says about a lower-case word.
    pub fn lookup(&self, w: &str) -> Option<Lexeme> {
        self.words.get(w).copied()
    }

    /// A content word one edit away from `w`, when exactly one concept is that close. Only
    /// for words of 4+ letters that the vocabulary does not know.
    pub fn correct(&self, w: &str) -> Option<(&'static str, Cid)> {
        if w.chars().count() < 4 || !w.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let mut found: Option<(&'static str, Cid)> = None;
        let mut keys = deletions(w);
        keys.push(w.to_owned());
        let typo = self.typo_index();
        for k in keys {
            let Some(cands) = typo.get(&k) else {
                continue;
            };
            for c in cands {
                if osa_distance(w, c) != 1 {
                    continue;
                }
                let Some(cid) = self.words.get(c).and_then(|l| l.concept) else {
                    continue;
                };
                match found {
                    None => found = Some((c, cid)),
                    Some((_, prev)) if prev == cid => {}
                    // Two different concepts are one edit away: too ambiguous to correct.
                    Some(_) => return None,
                }
            }
        }
        found
    }

    /// Annotates tokens: merges phrases, looks words up, corrects typos.
    pub fn annotate(&self, toks: Vec<Tok>) -> Vec<Word> {
        let mut out = Vec::with_capacity(toks.len());
        let mut i = 0;
        'outer: while i < toks.len() {
            for (phrase, canon) in &self.phrases {
                let n = phrase.len();
                if i + n <= toks.len()
                    && phrase.iter().zip(&toks[i..i + n]).all(|(p, t)| {
                        (t.kind == Kind::Word || t.kind == Kind::Flag || t.kind == Kind::Pathy)
                            && t.low == *p
                    })
                {
                    let first = &toks[i];
                    let last = &toks[i + n - 1];
                    let tok = Tok {
                        raw: (*canon).to_owned(),
                        low: (*canon).to_owned(),
                        kind: Kind::Word,
                        start: first.start,
                        end: last.end,
                    };
                    let lex = self.lookup(canon).unwrap_or(Lexeme {
                        concept: None,
                        class: Class::Content,
                        known_name: false,
                    });
                    out.push(Word {
                        tok,
                        lex,
                        fuzzy: None,
                    });
                    i += n;
                    continue 'outer;
                }
            }
            let t = toks[i].clone();
            i += 1;
            let mut fuzzy = None;
            let lex = if t.kind == Kind::Word {
                match self.lookup(&t.low) {
                    Some(l) => l,
                    None => match self.correct(&t.low) {
                        Some((w, cid)) => {
                            fuzzy = Some(w);
                            Lexeme {
                                concept: Some(cid),
                                class: Class::Content,
                                known_name: false,
                            }
                        }
                        None => Lexeme {
                            concept: None,
                            class: Class::Content,
                            known_name: false,
                        },
                    },
                }
            } else {
                Lexeme {
                    concept: None,
                    class: if t.kind == Kind::Punct {
                        Class::Glue
                    } else {
                        Class::Content
                    },
                    known_name: false,
                }
            };
            out.push(Word { tok: t, lex, fuzzy });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::lex;

    #[test]
    fn concept_table_fits() {
        let v = Vocab::new();
        assert!(v.ids.len() < MAX_CONCEPTS, "{}", v.ids.len());
    }

    #[test]
    fn synonyms_share_a_concept() {
        let v = Vocab::new();
        let c = |w: &str| v.lookup(w).and_then(|l| l.concept);
        assert_eq!(c("biggest"), c("largest"));
        assert_eq!(c("folder"), c("directory"));
        assert_eq!(c("erase"), c("delete"));
        assert!(c("nginx").is_none());
    }

    #[test]
    fn typos_one_edit_away_are_corrected() {
        let v = Vocab::new();
        assert_eq!(v.correct("lagest").map(|x| x.0), Some("largest"));
        assert_eq!(v.correct("dirctory").map(|x| x.0), Some("directory"));
        assert_eq!(v.correct("procesess").map(|x| x.0), Some("processes"));
        // Short words and words two edits away are left alone.
        assert!(v.correct("kil").is_none());
        assert!(v.correct("zzzzzz").is_none());
    }

    #[test]
    fn osa_counts_transpositions_once() {
        assert_eq!(osa_distance("ab", "ba"), 1);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
        assert_eq!(osa_distance("", "abc"), 3);
    }

    #[test]
    fn phrases_merge() {
        let v = Vocab::new();
        let w = v.annotate(lex("please get rid of old.log"));
        assert_eq!(w[1].tok.low, "delete");
        assert_eq!(w[1].lex.concept, v.id("delete"));
        assert_eq!(w[2].tok.raw, "old.log");
    }

    #[test]
    fn known_names_are_not_corrected() {
        let v = Vocab::new();
        let w = v.annotate(lex("install htop"));
        assert!(w[1].fuzzy.is_none());
        assert!(w[1].lex.concept.is_none());
    }
}
