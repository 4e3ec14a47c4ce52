//! Typed identifiers. Every entity has its own id type so that a patient id can never be passed
//! where a site id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! entity_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID; the caller chooses how it was generated.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map(Self)
            }
        }
    };
}

entity_id!(
    /// Identifier of a clinic site (a location or service line with its own staff).
    SiteId
);
entity_id!(
    /// Identifier of a sign-in account, staff or patient.
    AccountId
);
entity_id!(
    /// Identifier of a patient's clinical record.
    PatientId
);
entity_id!(
    /// Identifier of a cohort: one group of patients going through an MBSR program together.
    CohortId
);
entity_id!(
    /// Identifier of one session (the orientation, a weekly class or the retreat) of a cohort.
    CohortSessionId
);
entity_id!(
    /// A patient's stored questionnaire response.
    ResponseId
);
entity_id!(
    /// A safety alert raised by a response or a patient's request for help.
    AlertId
);
entity_id!(
    /// A guided recording in the practice library.
    RecordingId
);
entity_id!(
    /// One day's practice in a patient's diary. Browsers make the id themselves, so an entry
    /// queued offline and sent twice is stored once.
    PracticeEntryId
);
entity_id!(
    /// A tailoring suggestion made to a patient's facilitator.
    SuggestionId
);
