//! Schedule errors: each says what was not understood and shows a form that would be.

/// Forms of timing Kernos understands, shown after every "not understood" error.
pub const EXAMPLES: &str = "\"every day at 03:00\", \"every 5 minutes\", \"weekly on monday at 9:30\", \
\"every weekday at 18:00\", \"on the 1st of every month at 02:00\", \"hourly in Europe/Paris\", \
or a cron expression such as \"0 30 9 * * MON-FRI\" (seconds optional, L, W and # allowed)";

/// Why a schedule's timing could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing was given.
    #[error("no timing given; try {EXAMPLES}")]
    Empty,
    /// A word (or number) of plain language that fits nowhere.
    #[error("did not understand {word:?} in {text:?}; try {EXAMPLES}")]
    NotUnderstood {
        /// The whole text.
        text: String,
        /// The first word that fitted nowhere.
        word: String,
    },
    /// The words are understood but do not make one timing together.
    #[error("{text:?}: {reason}; try {EXAMPLES}")]
    Conflict {
        /// The whole text.
        text: String,
        /// What does not fit together.
        reason: String,
    },
    /// A time of day out of range ("25:00", "9:75").
    #[error("{time:?} is not a time of day (use 00:00 to 23:59, or 3am / 3:30pm)")]
    BadTime {
        /// The time as written.
        time: String,
    },
    /// A cron expression croner refused.
    #[error("cron expression {expr:?} is not valid: {reason}")]
    BadCron {
        /// The expression as written.
        expr: String,
        /// Croner's reason.
        reason: String,
    },
    /// A time zone name not in the IANA database.
    #[error(
        "{0:?} is not a time zone; use an IANA name such as Europe/Paris, America/New_York or UTC"
    )]
    UnknownZone(String),
    /// An interval of zero, or too long to be a duration.
    #[error("{0:?} is not a usable interval (from 1 second to 366 days)")]
    BadInterval(String),
}

/// Result alias for schedules.
pub type Result<T, E = ScheduleError> = std::result::Result<T, E>;
