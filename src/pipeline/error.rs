use std::fmt;

/// Errors of a generation run. `Cancelled` is not a failure: the caller asked for it, and
/// whatever finished before it was already reported through the [`super::Observer`].
#[derive(Debug)]
pub enum Error {
    Cancelled,
    Candle(candle_core::Error),
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled => write!(f, "cancelled"),
            Error::Candle(e) => write!(f, "{e}"),
            Error::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(e)
    }
}
