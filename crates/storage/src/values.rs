//! Conversions between domain values and the text and integer columns both dialects share.

use std::fmt::Display;
use std::str::FromStr;

use jiff::Timestamp;
use stillpoint_app::StorageError;

/// An instant as UTC milliseconds since the Unix epoch.
pub(crate) fn to_millis(instant: Timestamp) -> i64 {
    instant.as_millisecond()
}

pub(crate) fn from_millis(millis: i64) -> Result<Timestamp, StorageError> {
    Timestamp::from_millisecond(millis).map_err(|error| corrupt("timestamp", &error))
}

/// Reads a nullable instant column.
pub(crate) fn optional_instant(
    row: &sqlx::any::AnyRow,
    name: &str,
) -> Result<Option<Timestamp>, StorageError> {
    column::<Option<i64>>(row, name)?
        .map(from_millis)
        .transpose()
}

/// Parses a stored column back into its domain type. A failure means the row was written by
/// something other than this code, so it is reported as a storage fault, not as user input.
pub(crate) fn parse_column<T>(column: &'static str, text: &str) -> Result<T, StorageError>
where
    T: FromStr,
    T::Err: Display,
{
    text.parse().map_err(|error| corrupt(column, &error))
}

pub(crate) fn corrupt(column: &str, error: &dyn Display) -> StorageError {
    StorageError::Corrupt(format!("stored {column} is not valid: {error}"))
}

/// Reads one column, reporting a missing or mistyped column as a storage fault.
pub(crate) fn column<'r, T>(row: &'r sqlx::any::AnyRow, name: &str) -> Result<T, StorageError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row as _;

    row.try_get(name).map_err(|error| corrupt(name, &error))
}
