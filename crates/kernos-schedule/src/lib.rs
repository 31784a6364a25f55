//! Kernos schedules' timing core: when a schedule fires, what it does about fire times it
//! missed, and the thread that wakes it — pure logic and one timer, no HTTP and no engine.
//!
//! - [`When`]: a schedule's timing, from a cron expression (seconds, `L`, `W`, `#`, zones) or
//!   plain language ("every day at 03:00 in Europe/Paris"), with [`When::describe`] and
//!   [`When::next_after`].
//! - [`ScheduleState`]: what survives a restart, changed only by [`Transition`]s the daemon
//!   journals; [`ScheduleState::due`] decides what to do now — run once for missed fire times
//!   or skip them ([`MissedRuns`]), fold fire times that pass during a run into one run after it,
//!   add a randomized delay that a restart computes the same way ([`random_delay`]).
//! - [`Timer`]: one thread that sleeps until the earliest armed time and calls back.
//! - [`Clock`]: [`SystemClock`] in the daemon, [`ManualClock`] in tests.
//!
//! How the daemon uses it: on start, rebuild each schedule ([`ScheduleState::replay`]), journal
//! and apply [`ScheduleState::recover`]'s transition if it had a run in progress, and arm the
//! timer with [`ScheduleState::wake_at`]. When the timer fires a schedule, loop on
//! [`ScheduleState::due`]: journal and apply a [`Due::Skip`]'s transition and ask again; for
//! [`Due::Run`] journal and apply [`RunPlan::start`] with a new action id, then queue the
//! stored plan; on [`Due::Wait`] return its time to the timer. When a run ends, journal
//! [`Transition::Finished`] and arm the timer again.

mod clock;
mod delay;
mod error;
mod plain;
mod state;
mod timer;
mod when;
mod zone;

pub use clock::{Clock, ManualClock, SystemClock};
pub use delay::random_delay;
pub use error::{EXAMPLES, Result, ScheduleError};
pub use state::{
    COUNT_CAP, Due, LastRun, MissedRuns, ON_TIME_GRACE, RunNow, RunOutcome, RunPlan, Running,
    ScheduleState, Transition,
};
pub use timer::{MAX_SLEEP, OnFire, Timer};
pub use when::When;
pub use zone::{host_zone, parse_zone};

/// Time zones (re-exported so callers name zones without depending on chrono-tz themselves).
pub use chrono_tz::Tz;

/// Date-times (re-exported: every time in this API is a `DateTime<Utc>`).
pub use chrono::{DateTime, Utc};
