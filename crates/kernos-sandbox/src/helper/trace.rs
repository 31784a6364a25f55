//! Phase timings of one step (`KERNOS_SANDBOX_TRACE=1`), reported with its outcome.

use crate::sys;

/// Timestamps (CLOCK_MONOTONIC µs) of the phases a step went through, when asked for.
pub(super) struct Trace {
    on: bool,
    marks: Vec<(String, u64)>,
}

impl Trace {
    /// Starts at `main_us`, the moment the helper's main() ran; records nothing unless `on`.
    pub(super) fn new(on: bool, main_us: u64) -> Self {
        let mut marks = Vec::new();
        if on {
            marks.push(("helper main()".to_owned(), main_us));
        }
        Trace { on, marks }
    }

    /// Records that the phase `name` ended now.
    pub(super) fn mark(&mut self, name: &str) {
        if self.on {
            self.marks.push((name.to_owned(), sys::mono_us()));
        }
    }

    /// Appends phases timed elsewhere (by the init and the command).
    pub(super) fn extend(&mut self, marks: Vec<(String, u64)>) {
        self.marks.extend(marks);
    }

    /// Every phase, in order.
    pub(super) fn into_marks(self) -> Vec<(String, u64)> {
        self.marks
    }
}
