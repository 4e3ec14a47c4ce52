//! Change from baseline: the Reliable Change Index and the clinical-significance categories of
//! Jacobson and Truax (1991), "Clinical significance: a statistical approach to defining
//! meaningful change in psychotherapy research", J Consult Clin Psychol 59:12–19.

use serde::Serialize;

use super::instrument::{Direction, Norms, Scale};
use crate::InvalidValue;

/// An |RCI| above this value is reliable change at the 95% level.
pub const RELIABLE_Z: f64 = 1.96;

/// The clinical meaning of a change.
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

/// The fewest baseline scores whose standard deviation replaces published norms.
// NOTE: a judgement, not a published rule: with 15 scores the sample SD is within about ±20%
// of the population SD (one standard error), which the index inherits.
pub const MIN_BASELINE_SAMPLE: usize = 15;

/// The origin of the pre-treatment standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SdSource {
    /// The instrument's published clinical-sample norms.
    Norms,
    /// The baseline scores of this clinic's own patients, which is the pre-treatment sample
    /// Jacobson and Truax describe, used when no published norms are stored.
    ClinicBaselines { count: usize },
}

impl ChangeParameters {
    /// Takes the parameters from a scale's stored reliability and its norms, or, without norms,
    /// from the standard deviation of the clinic's baseline scores when there are at least
    /// [`MIN_BASELINE_SAMPLE`]. Returns `None` without a reliability or either source of SD.
    #[must_use]
    pub fn for_scale(scale: &Scale, baselines: &[f64]) -> Option<(Self, SdSource)> {
        let reliability = scale.reliability.as_ref()?;
        let (sd_pre, source) = match &scale.norms {
            Some(norms) => (norms.clinical_sd, SdSource::Norms),
            None if baselines.len() >= MIN_BASELINE_SAMPLE => (
                sample_sd(baselines),
                SdSource::ClinicBaselines {
                    count: baselines.len(),
                },
            ),
            None => return None,
        };
        let cutoff = scale
            .norms
            .as_ref()
            .and_then(cutoff)
            .or_else(|| scale.cutoff.as_ref().map(|cutoff| cutoff.value));
        Some((
            Self {
                sd_pre,
                reliability: reliability.value,
                cutoff,
                direction: scale.direction,
            },
            source,
        ))
    }

    /// Returns the standard error of the difference between two scores:
    /// `SD × sqrt(2) × sqrt(1 − r)`.
    #[must_use]
    pub fn standard_error_of_difference(&self) -> f64 {
        let measurement = self.sd_pre * (1.0 - self.reliability).sqrt();
        (2.0 * measurement * measurement).sqrt()
    }

    /// Returns the smallest raw change that is reliable: `1.96 × S_diff`.
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

/// The sample standard deviation (n − 1 in the denominator).
#[must_use]
pub fn sample_sd(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss)]
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
    (squares / (count - 1.0)).sqrt()
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
