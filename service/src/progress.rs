//! Progress on stderr for long commands, shown only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A spinner through `steps` named steps, the first named `first`.
    pub fn steps(steps: u64, first: &'static str) -> Self {
        let progress = Self::new(steps, "{spinner} [{pos}/{len}] {msg} ({elapsed})");
        progress.0.iter().for_each(|bar| bar.set_message(first));
        progress
    }

    /// A bar of `what` (entries, rows), its length set as they are counted.
    pub fn counting(what: &str) -> Self {
        let template =
            format!("{{spinner}} [{{bar:30}}] {{pos}}/{{len}} {what} ({{elapsed}}, eta {{eta}})");
        Self::new(0, &template)
    }

    /// A bar of runs, its length set as they are counted.
    pub fn runs() -> Self {
        Self::new(
            0,
            "{spinner} [{bar:30}] {pos}/{len} runs, {msg} ({elapsed}, eta {eta})",
        )
    }

    fn new(len: u64, template: &str) -> Self {
        Progress(std::io::stderr().is_terminal().then(|| {
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(len).with_style(style.progress_chars("=> "));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }))
    }

    /// The next step.
    pub fn step(&self, what: &'static str) {
        self.0.iter().for_each(|bar| {
            bar.inc(1);
            bar.set_message(what);
        });
    }

    /// `done` of `total`, in phase `what`.
    pub fn set(&self, done: u64, total: u64, what: String) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(what);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.iter().for_each(ProgressBar::finish_and_clear);
    }
}
