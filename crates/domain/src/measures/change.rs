//! Change from baseline: the Reliable Change Index and the clinical-significance categories of
//! Jacobson and Truax (1991), "Clinical significance: a statistical approach to defining
//! meaningful change in psychotherapy research", J Consult Clin Psychol 59:12–19.

use serde::Serialize;

use super::instrument::{Direction, Norms, Scale};
use crate::InvalidValue;

/// An |RCI| above this value is reliable change at the 95% level.
pub const RELIABLE_Z: f64 = 1.96;

/// What a change means clinically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCategory {
    /// Reliable improvement that ends on the functional side of the cut-off.
    Recovered,
    /// Reliable improvement that does not cross the cut-off, or with no cut-off known.
    Improved,
    /// A change within measurement error.
    Unchanged,
    /// Reliable worsening.
    Deteriorated,
}

impl ChangeCategory {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Recovered => "recovered",
            Self::Improved => "improved",
            Self::Unchanged => "unchanged",
            Self::Deteriorated => "deteriorated",
        }
    }
}

/// The numbers the index needs for one scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeParameters {
    /// The standard deviation of the pre-treatment (clinical) sample.
    pub sd_pre: f64,
    /// Cronbach's alpha or a test-retest correlation.
    pub reliability: f64,
    /// The clinical-significance cut-off, when one is known.
    pub cutoff: Option<f64>,
    pub direction: Direction,
}

impl ChangeParameters {
    /// Takes the parameters from a scale's stored reliability and norms; `None` when either
    /// is missing.
    #[must_use]
    pub fn for_scale(scale: &Scale) -> Option<Self> {
        let reliability = scale.reliability.as_ref()?;
        let norms = scale.norms.as_ref()?;
        Some(Self {
            sd_pre: norms.clinical_sd,
            reliability: reliability.value,
            cutoff: cutoff(norms),
            direction: scale.direction,
        })
    }

    /// The standard error of the difference between two scores:
    /// `SD × sqrt(2) × sqrt(1 − r)`.
    #[must_use]
    pub fn standard_error_of_difference(&self) -> f64 {
        let measurement = self.sd_pre * (1.0 - self.reliability).sqrt();
        (2.0 * measurement * measurement).sqrt()
    }

    /// The smallest raw change that is reliable: `1.96 × S_diff`.
    #[must_use]
    pub fn minimum_reliable_change(&self) -> f64 {
        RELIABLE_Z * self.standard_error_of_difference()
    }

    fn validate(&self) -> Result<(), InvalidValue> {
        if !(self.sd_pre > 0.0 && self.sd_pre.is_finite()) {
            return Err(InvalidValue::new(
                "sd",
                "the pre-treatment standard deviation must be above 0",
            ));
        }
        if !(self.reliability > 0.0 && self.reliability < 1.0) {
            return Err(InvalidValue::new(
                "reliability",
                "the reliability must be between 0 and 1",
            ));
        }
        Ok(())
    }
}

/// The Jacobson–Truax cut-off from the norms: `c` when functional norms are known (the point
/// equally likely under both distributions, weighted by their standard deviations, preferred
/// when they overlap), else the published cut-off.
#[must_use]
pub fn cutoff(norms: &Norms) -> Option<f64> {
    if let (Some(mean), Some(sd)) = (norms.functional_mean, norms.functional_sd) {
        let clinical_mean = norms.clinical_mean;
        let clinical_sd = norms.clinical_sd;
        return Some((sd * clinical_mean + clinical_sd * mean) / (sd + clinical_sd));
    }
    norms.cutoff
}

/// One person's change on one scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `post − pre` in the scale's reported units.
    pub difference: f64,
    pub rci: f64,
    pub reliable: bool,
    /// Whether the score moved from the clinical side of the cut-off (or on it) to the
    /// functional side.
    pub crossed_cutoff: Option<bool>,
    pub category: ChangeCategory,
}

/// Computes the Reliable Change Index `(post − pre) / S_diff` and the category. The index is
/// reliable when its absolute value is strictly above 1.96.
pub fn reliable_change(
    pre: f64,
    post: f64,
    parameters: &ChangeParameters,
) -> Result<Change, InvalidValue> {
    parameters.validate()?;
    let difference = post - pre;
    let rci = difference / parameters.standard_error_of_difference();
    let reliable = rci.abs() > RELIABLE_Z;

    let improved = match parameters.direction {
        Direction::LowerIsBetter => rci < 0.0,
        Direction::HigherIsBetter => rci > 0.0,
    };
    // Recovery means leaving the clinical range, so a pre score already on the functional side
    // cannot cross.
    let crossed_cutoff = parameters.cutoff.map(|cutoff| match parameters.direction {
        Direction::LowerIsBetter => pre >= cutoff && post < cutoff,
        Direction::HigherIsBetter => pre <= cutoff && post > cutoff,
    });

    let category = match (reliable, improved, crossed_cutoff) {
        (false, _, _) => ChangeCategory::Unchanged,
        (true, false, _) => ChangeCategory::Deteriorated,
        (true, true, Some(true)) => ChangeCategory::Recovered,
        (true, true, _) => ChangeCategory::Improved,
    };
    Ok(Change {
        difference,
        rci,
        reliable,
        crossed_cutoff,
        category,
    })
}
