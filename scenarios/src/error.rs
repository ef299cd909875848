//! Why a scenario cannot be read or run.

use allot_engine::input::InputError;

/// Why a scenario cannot be read or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the scenario file or a city CSV file, with the line and the field.
    #[error(transparent)]
    Input(#[from] Box<InputError>),
    /// A file that cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The city's clinics and doctors do not make a schedule (e.g. a variant closed every clinic).
    #[error("{variant}: the clinic network is not a valid schedule: {problem}")]
    Schedule { variant: String, problem: String },
    /// A fair or school allocation cannot run with this input and these parameters.
    #[error("{variant}: {source}")]
    Allocation {
        variant: String,
        #[source]
        source: allot_engine::allocation::Error,
    },
    /// The appointment engine refused an operation the simulation relies on.
    #[error("{variant}: appointments: {source}")]
    Appointments {
        variant: String,
        #[source]
        source: allot_engine::appointments::Error,
    },
    /// A request that cannot be served as asked (no runs, too many runs, ...).
    #[error("{0}")]
    Request(String),
    /// The caller cancelled the runs.
    #[error("cancelled")]
    Cancelled,
    /// The thread pool could not be built.
    #[error("cannot start {threads} worker threads: {problem}")]
    Threads { threads: usize, problem: String },
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(Box::new(e))
    }
}
