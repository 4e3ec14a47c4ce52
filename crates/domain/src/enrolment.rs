//! A patient's path through an MBSR program, as a state machine: referral, screening, consent,
//! orientation, enrolment (or the waitlist), the program itself, and how it ends.
//!
//! ```text
//! referred → screening → eligible → consented → oriented → enrolled → active → completed
//!                      ↘ not eligible (reason)             ↘ waitlisted ↗       ↘ withdrawn (reason)
//!                      ↘ higher level of care                                   ↘ lapsed → returned → active
//! ```
//!
//! Screening that finds an exclusion flag (such as active suicidality or psychosis) routes the
//! patient to a higher level of care instead of enrolment. Every state before the program ends
//! can also end in withdrawal, with a reason. The application layer audits every transition with
//! its actor and reason.

use std::fmt;

use crate::{CohortId, Icd10Code, InvalidValue};

/// A patient's position on the pathway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrolmentState {
    Referred,
    Screening,
    Eligible,
    NotEligible {
        reason: String,
    },
    /// Screening found a need the program cannot meet safely; the patient was referred on.
    HigherLevelOfCare {
        flags: Vec<ExclusionFlag>,
    },
    Consented,
    /// The technology check is done.
    Oriented,
    Enrolled {
        cohort: CohortId,
    },
    Waitlisted {
        cohort: CohortId,
    },
    Active {
        cohort: CohortId,
    },
    Completed {
        cohort: CohortId,
    },
    Withdrawn {
        reason: String,
    },
    Lapsed {
        cohort: CohortId,
    },
    /// Back after a lapse, rejoining at the cohort's current week.
    Returned {
        cohort: CohortId,
    },
}

impl EnrolmentState {
    /// Returns whether the patient holds a place in a cohort: enrolled, active, lapsed or
    /// returned. A place counts against the capacity and puts the patient in the care team of
    /// the cohort's facilitators.
    #[must_use]
    pub const fn holds_place(&self) -> bool {
        matches!(
            self,
            Self::Enrolled { .. }
                | Self::Active { .. }
                | Self::Lapsed { .. }
                | Self::Returned { .. }
        )
    }

    /// Returns whether the patient takes or took part in their cohort's sessions: holding a place,
    /// or completed. Their roll call and attendance count.
    #[must_use]
    pub const fn takes_part(&self) -> bool {
        self.holds_place() || matches!(self, Self::Completed { .. })
    }

    /// Returns the stable code used in storage, the API and translation message ids.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Referred => "referred",
            Self::Screening => "screening",
            Self::Eligible => "eligible",
            Self::NotEligible { .. } => "not_eligible",
            Self::HigherLevelOfCare { .. } => "higher_level_of_care",
            Self::Consented => "consented",
            Self::Oriented => "oriented",
            Self::Enrolled { .. } => "enrolled",
            Self::Waitlisted { .. } => "waitlisted",
            Self::Active { .. } => "active",
            Self::Completed { .. } => "completed",
            Self::Withdrawn { .. } => "withdrawn",
            Self::Lapsed { .. } => "lapsed",
            Self::Returned { .. } => "returned",
        }
    }

    /// Returns whether the pathway has ended here (a new referral starts a new pathway).
    #[must_use]
    pub const fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Completed { .. } | Self::Withdrawn { .. } | Self::HigherLevelOfCare { .. }
        )
    }
}

impl EnrolmentState {
    /// Rebuilds a state from its stored parts; `None` when they do not fit together.
    #[must_use]
    pub fn from_parts(
        code: &str,
        cohort: Option<CohortId>,
        reason: Option<String>,
        flags: Vec<ExclusionFlag>,
    ) -> Option<Self> {
        let state = match (code, cohort) {
            ("referred", None) => Self::Referred,
            ("screening", None) => Self::Screening,
            ("eligible", None) => Self::Eligible,
            ("not_eligible", None) => Self::NotEligible { reason: reason? },
            ("higher_level_of_care", None) => Self::HigherLevelOfCare { flags },
            ("consented", None) => Self::Consented,
            ("oriented", None) => Self::Oriented,
            ("enrolled", Some(cohort)) => Self::Enrolled { cohort },
            ("waitlisted", Some(cohort)) => Self::Waitlisted { cohort },
            ("active", Some(cohort)) => Self::Active { cohort },
            ("completed", Some(cohort)) => Self::Completed { cohort },
            ("withdrawn", _) => Self::Withdrawn { reason: reason? },
            ("lapsed", Some(cohort)) => Self::Lapsed { cohort },
            ("returned", Some(cohort)) => Self::Returned { cohort },
            _ => return None,
        };
        Some(state)
    }

    /// Returns the cohort of an enrolled, waitlisted, active, lapsed, returned or completed
    /// patient.
    #[must_use]
    pub const fn cohort(&self) -> Option<CohortId> {
        match self {
            Self::Enrolled { cohort }
            | Self::Waitlisted { cohort }
            | Self::Active { cohort }
            | Self::Completed { cohort }
            | Self::Lapsed { cohort }
            | Self::Returned { cohort } => Some(*cohort),
            _ => None,
        }
    }

    /// Returns the reason of a not-eligible or withdrawn state.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::NotEligible { reason } | Self::Withdrawn { reason } => Some(reason),
            _ => None,
        }
    }

    /// Returns the flags of a higher-level-of-care state.
    #[must_use]
    pub fn exclusion_flags(&self) -> &[ExclusionFlag] {
        match self {
            Self::HigherLevelOfCare { flags } => flags,
            _ => &[],
        }
    }
}

impl fmt::Display for EnrolmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A finding at screening that routes the patient to a higher level of care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionFlag {
    ActiveSuicidality,
    Psychosis,
    /// Another need the screening clinician judges the group program cannot meet safely.
    OtherUrgentNeed,
}

impl ExclusionFlag {
    pub const ALL: [Self; 3] = [
        Self::ActiveSuicidality,
        Self::Psychosis,
        Self::OtherUrgentNeed,
    ];

    /// Returns the stable code used in storage and the API.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::ActiveSuicidality => "active_suicidality",
            Self::Psychosis => "psychosis",
            Self::OtherUrgentNeed => "other_urgent_need",
        }
    }

    /// Parses a comma-separated list of codes.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, InvalidValue> {
        text.split(',')
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(|code| {
                Self::ALL
                    .into_iter()
                    .find(|flag| flag.code() == code)
                    .ok_or_else(|| {
                        InvalidValue::new(
                            "exclusion_flags",
                            format!(
                                "'{code}' is not an exclusion flag; use active_suicidality, psychosis or other_urgent_need"
                            ),
                        )
                    })
            })
            .collect()
    }

    /// Joins flags as a comma-separated list of codes.
    #[must_use]
    pub fn join(flags: &[Self]) -> String {
        flags
            .iter()
            .map(|flag| flag.code())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The findings a clinician records at screening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screening {
    /// Chronic conditions, coded in ICD-10-CM.
    pub conditions: Vec<Icd10Code>,
    /// Overall symptom burden as the patient rates it, 0 (none) to 10 (worst imaginable).
    pub symptom_burden: u8,
    /// Whether the patient is interested in learning non-drug ways of coping.
    pub interested_in_non_drug_coping: bool,
    pub exclusion_flags: Vec<ExclusionFlag>,
}

impl Screening {
    /// Checks the recorded values.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.symptom_burden > 10 {
            return Err(InvalidValue::new(
                "symptom_burden",
                format!(
                    "{} is outside 0 to 10; enter the patient's rating from 0 to 10",
                    self.symptom_burden
                ),
            ));
        }
        if self.conditions.is_empty() {
            return Err(InvalidValue::new(
                "conditions",
                "record at least one chronic condition (ICD-10-CM code)",
            ));
        }
        Ok(())
    }
}

/// A requested move along the pathway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    StartScreening,
    /// Screening finished: eligible, not eligible, or routed on, depending on the findings.
    CompleteScreening {
        screening: Screening,
        not_eligible_reason: Option<String>,
    },
    /// The patient agreed to every required consent document; the caller checked that.
    RecordConsent,
    /// The technology check is done.
    CompleteOrientation,
    /// Enrol in a cohort with `enrolled` patients of `capacity`; a full cohort waitlists.
    Enrol {
        cohort: CohortId,
        enrolled: u32,
        capacity: u32,
    },
    /// A place opened in the cohort the patient waits for.
    OfferPlace,
    /// The program started.
    Start,
    Complete,
    MarkLapsed,
    Return,
    Withdraw {
        reason: String,
    },
}

impl Transition {
    /// Returns the code of the state this transition requests, for error messages.
    const fn target_code(&self) -> &'static str {
        match self {
            Self::StartScreening => "screening",
            Self::CompleteScreening { .. } => "eligible",
            Self::RecordConsent => "consented",
            Self::CompleteOrientation => "oriented",
            Self::Enrol { .. } | Self::OfferPlace => "enrolled",
            Self::Start | Self::Return => "active",
            Self::Complete => "completed",
            Self::MarkLapsed => "lapsed",
            Self::Withdraw { .. } => "withdrawn",
        }
    }
}

/// A transition that the current state does not allow, or with invalid details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a patient who is '{current}' cannot move to '{requested}'")]
    NotAllowed {
        current: &'static str,
        requested: &'static str,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
}

/// Applies `transition` to `current` and returns the new state.
pub fn apply(
    current: &EnrolmentState,
    transition: Transition,
) -> Result<EnrolmentState, TransitionError> {
    use EnrolmentState as S;
    use Transition as T;

    let not_allowed = |transition: &Transition| TransitionError::NotAllowed {
        current: current.code(),
        requested: transition.target_code(),
    };
    match (current, transition) {
        (S::Referred | S::NotEligible { .. }, T::StartScreening) => Ok(S::Screening),
        (
            S::Screening,
            T::CompleteScreening {
                screening,
                not_eligible_reason,
            },
        ) => {
            screening.validate()?;
            if !screening.exclusion_flags.is_empty() {
                return Ok(S::HigherLevelOfCare {
                    flags: screening.exclusion_flags,
                });
            }
            match not_eligible_reason.map(|reason| reason.trim().to_owned()) {
                Some(reason) if !reason.is_empty() => Ok(S::NotEligible { reason }),
                _ => Ok(S::Eligible),
            }
        }
        (S::Eligible, T::RecordConsent) => Ok(S::Consented),
        (S::Consented, T::CompleteOrientation) => Ok(S::Oriented),
        (
            S::Oriented,
            T::Enrol {
                cohort,
                enrolled,
                capacity,
            },
        ) => {
            if capacity == 0 {
                return Err(InvalidValue::new(
                    "capacity",
                    "a cohort needs room for at least one patient",
                )
                .into());
            }
            if enrolled >= capacity {
                Ok(S::Waitlisted { cohort })
            } else {
                Ok(S::Enrolled { cohort })
            }
        }
        (S::Waitlisted { cohort }, T::OfferPlace) => Ok(S::Enrolled { cohort: *cohort }),
        (S::Enrolled { cohort }, T::Start) => Ok(S::Active { cohort: *cohort }),
        (S::Active { cohort } | S::Returned { cohort }, T::Complete) => {
            Ok(S::Completed { cohort: *cohort })
        }
        (S::Active { cohort } | S::Returned { cohort }, T::MarkLapsed) => {
            Ok(S::Lapsed { cohort: *cohort })
        }
        (S::Lapsed { cohort }, T::Return) => Ok(S::Returned { cohort: *cohort }),
        (state, T::Withdraw { reason }) if !state.is_final() => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(InvalidValue::new(
                    "reason",
                    "record why the patient is withdrawing, for example in the patient's words",
                )
                .into());
            }
            Ok(S::Withdrawn {
                reason: reason.to_owned(),
            })
        }
        (_, transition) => Err(not_allowed(&transition)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort() -> CohortId {
        CohortId::from_uuid(uuid::Uuid::from_u128(7))
    }

    fn screening(flags: Vec<ExclusionFlag>) -> Screening {
        Screening {
            conditions: vec![Icd10Code::parse("G89.4").expect("chronic pain syndrome")],
            symptom_burden: 6,
            interested_in_non_drug_coping: true,
            exclusion_flags: flags,
        }
    }

    /// Lists every state, in pathway order.
    fn states() -> Vec<EnrolmentState> {
        use EnrolmentState as S;
        vec![
            S::Referred,
            S::Screening,
            S::Eligible,
            S::NotEligible {
                reason: "r".to_owned(),
            },
            S::HigherLevelOfCare {
                flags: vec![ExclusionFlag::Psychosis],
            },
            S::Consented,
            S::Oriented,
            S::Enrolled { cohort: cohort() },
            S::Waitlisted { cohort: cohort() },
            S::Active { cohort: cohort() },
            S::Completed { cohort: cohort() },
            S::Withdrawn {
                reason: "r".to_owned(),
            },
            S::Lapsed { cohort: cohort() },
            S::Returned { cohort: cohort() },
        ]
    }

    /// Lists every kind of transition, with valid details.
    fn transitions() -> Vec<Transition> {
        use Transition as T;
        vec![
            T::StartScreening,
            T::CompleteScreening {
                screening: screening(Vec::new()),
                not_eligible_reason: None,
            },
            T::RecordConsent,
            T::CompleteOrientation,
            T::Enrol {
                cohort: cohort(),
                enrolled: 3,
                capacity: 15,
            },
            T::OfferPlace,
            T::Start,
            T::Complete,
            T::MarkLapsed,
            T::Return,
            T::Withdraw {
                reason: "moving away".to_owned(),
            },
        ]
    }

    /// The allowed (state, transition) → new state codes, written out from the pathway.
    const ALLOWED: &[(&str, &str, &str)] = &[
        ("referred", "start_screening", "screening"),
        ("not_eligible", "start_screening", "screening"),
        ("screening", "complete_screening", "eligible"),
        ("eligible", "record_consent", "consented"),
        ("consented", "complete_orientation", "oriented"),
        ("oriented", "enrol", "enrolled"),
        ("waitlisted", "offer_place", "enrolled"),
        ("enrolled", "start", "active"),
        ("active", "complete", "completed"),
        ("returned", "complete", "completed"),
        ("active", "mark_lapsed", "lapsed"),
        ("returned", "mark_lapsed", "lapsed"),
        ("lapsed", "return", "returned"),
        ("referred", "withdraw", "withdrawn"),
        ("screening", "withdraw", "withdrawn"),
        ("eligible", "withdraw", "withdrawn"),
        ("not_eligible", "withdraw", "withdrawn"),
        ("consented", "withdraw", "withdrawn"),
        ("oriented", "withdraw", "withdrawn"),
        ("enrolled", "withdraw", "withdrawn"),
        ("waitlisted", "withdraw", "withdrawn"),
        ("active", "withdraw", "withdrawn"),
        ("lapsed", "withdraw", "withdrawn"),
        ("returned", "withdraw", "withdrawn"),
    ];

    fn transition_name(transition: &Transition) -> &'static str {
        match transition {
            Transition::StartScreening => "start_screening",
            Transition::CompleteScreening { .. } => "complete_screening",
            Transition::RecordConsent => "record_consent",
            Transition::CompleteOrientation => "complete_orientation",
            Transition::Enrol { .. } => "enrol",
            Transition::OfferPlace => "offer_place",
            Transition::Start => "start",
            Transition::Complete => "complete",
            Transition::MarkLapsed => "mark_lapsed",
            Transition::Return => "return",
            Transition::Withdraw { .. } => "withdraw",
        }
    }

    #[test]
    fn every_transition_matches_the_pathway() {
        let mut allowed_seen = 0;
        for state in states() {
            for transition in transitions() {
                let name = transition_name(&transition);
                let expected = ALLOWED
                    .iter()
                    .find(|(from, via, _)| *from == state.code() && *via == name)
                    .map(|(_, _, to)| *to);
                match (apply(&state, transition), expected) {
                    (Ok(next), Some(to)) => {
                        assert_eq!(next.code(), to, "{state} --{name}-->");
                        allowed_seen += 1;
                    }
                    (Err(TransitionError::NotAllowed { current, requested }), None) => {
                        assert_eq!(current, state.code());
                        assert!(!requested.is_empty());
                    }
                    (outcome, expected) => {
                        panic!("{state} --{name}--> gave {outcome:?}, expected {expected:?}")
                    }
                }
            }
        }
        assert_eq!(allowed_seen, ALLOWED.len());
    }

    #[test]
    fn rejected_transition_names_both_states() {
        let error = apply(&EnrolmentState::Screening, Transition::Start).expect_err("not allowed");
        assert_eq!(
            error.to_string(),
            "a patient who is 'screening' cannot move to 'active'"
        );
    }

    #[test]
    fn screening_routes_by_findings() {
        let flagged = apply(
            &EnrolmentState::Screening,
            Transition::CompleteScreening {
                screening: screening(vec![ExclusionFlag::ActiveSuicidality]),
                not_eligible_reason: None,
            },
        )
        .expect("valid");
        assert_eq!(flagged.code(), "higher_level_of_care");
        assert!(flagged.is_final());

        let not_eligible = apply(
            &EnrolmentState::Screening,
            Transition::CompleteScreening {
                screening: screening(Vec::new()),
                not_eligible_reason: Some(" cannot attend evening classes ".to_owned()),
            },
        )
        .expect("valid");
        assert_eq!(
            not_eligible,
            EnrolmentState::NotEligible {
                reason: "cannot attend evening classes".to_owned()
            }
        );

        let mut bad = screening(Vec::new());
        bad.symptom_burden = 11;
        let error = apply(
            &EnrolmentState::Screening,
            Transition::CompleteScreening {
                screening: bad,
                not_eligible_reason: None,
            },
        )
        .expect_err("out of range");
        assert!(matches!(
            error,
            TransitionError::Invalid(InvalidValue {
                field: "symptom_burden",
                ..
            })
        ));
    }

    #[test]
    fn full_cohort_waitlists() {
        let waitlisted = apply(
            &EnrolmentState::Oriented,
            Transition::Enrol {
                cohort: cohort(),
                enrolled: 15,
                capacity: 15,
            },
        )
        .expect("valid");
        assert_eq!(waitlisted, EnrolmentState::Waitlisted { cohort: cohort() });
        let enrolled = apply(&waitlisted, Transition::OfferPlace).expect("valid");
        assert_eq!(enrolled, EnrolmentState::Enrolled { cohort: cohort() });
    }

    #[test]
    fn states_round_trip_through_parts() {
        for state in states() {
            let rebuilt = EnrolmentState::from_parts(
                state.code(),
                state.cohort(),
                state.reason().map(str::to_owned),
                state.exclusion_flags().to_vec(),
            );
            assert_eq!(rebuilt.as_ref(), Some(&state), "{state}");
        }
        assert_eq!(
            EnrolmentState::from_parts("active", None, None, Vec::new()),
            None
        );
        let flags = ExclusionFlag::parse_list("psychosis, active_suicidality").expect("valid");
        assert_eq!(ExclusionFlag::join(&flags), "psychosis,active_suicidality");
        assert!(ExclusionFlag::parse_list("sadness").is_err());
    }

    #[test]
    fn withdrawal_needs_a_reason() {
        let error = apply(
            &EnrolmentState::Active { cohort: cohort() },
            Transition::Withdraw {
                reason: "  ".to_owned(),
            },
        )
        .expect_err("no reason");
        assert!(matches!(
            error,
            TransitionError::Invalid(InvalidValue {
                field: "reason",
                ..
            })
        ));
    }
}
