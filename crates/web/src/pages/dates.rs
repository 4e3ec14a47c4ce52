//! Dates and times in the reader's language and time zone; see [`stillpoint_i18n::dates`].

pub use stillpoint_i18n::dates::*;
