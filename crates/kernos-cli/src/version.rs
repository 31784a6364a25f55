//! What `kernos --version` prints: the version, the git commit (see `build.rs`), the cargo
//! features and the build.

/// `kernos -V`: one line.
pub const SHORT: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KERNOS_GIT_COMMIT"),
    ")"
);

/// `kernos --version`: the version line, then one fact a line.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("KERNOS_GIT_COMMIT"),
    "\nfeatures: ",
    env!("KERNOS_FEATURES"),
    "\nbuild: ",
    env!("KERNOS_BUILD_PROFILE"),
    " ",
    env!("KERNOS_TARGET")
);
