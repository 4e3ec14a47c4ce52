//! Maps sqlx errors to the application's three storage error kinds.

use sqlx::error::ErrorKind;
use stillpoint_app::StorageError;

use crate::dialect::sqlite_constraint_name;

/// Converts a sqlx error; `entity` and `id` describe the row for a not-found error.
pub(crate) fn map_error(error: sqlx::Error, entity: &'static str, id: &str) -> StorageError {
    match error {
        sqlx::Error::RowNotFound => StorageError::NotFound {
            entity,
            id: id.to_owned(),
        },
        sqlx::Error::Database(database_error) => match database_error.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => {
                let constraint = database_error.constraint().map_or_else(
                    || sqlite_constraint_name(database_error.message()),
                    str::to_owned,
                );
                StorageError::Conflict { constraint }
            }
            _ => StorageError::Unavailable(database_error.to_string()),
        },
        sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Encode(_)
        | sqlx::Error::Configuration(_) => StorageError::Corrupt(error_text(&error)),
        other => StorageError::Unavailable(other.to_string()),
    }
}

fn error_text(error: &sqlx::Error) -> String {
    error.to_string()
}

/// Converts an error that has no single row to name, such as a failed transaction commit.
pub(crate) fn map_write_error(error: sqlx::Error) -> StorageError {
    map_error(error, "row", "")
}
