//! The statistics the tables print: a sample's mean, sample std (n − 1) and 95 %
//! confidence interval of the mean (Student's t), and Welch's t-test between two
//! samples — given as values, or as the mean ± std and n a paper publishes.

use crate::engine::metrics::mean_sample_std;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A sample's mean, sample std and size: what a table prints of it, and what a paper
/// publishes of its runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub mean: f64,
    /// The sample std (n − 1); NaN for one value.
    pub std: f64,
    pub n: usize,
}

impl Sample {
    /// The finite values' sample; `None` when there is none.
    pub fn of(values: &[f64]) -> Option<Sample> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let (mean, std) = mean_sample_std(&finite);
        Some(Sample { mean, std, n: finite.len() })
    }

    /// The 95 % confidence interval of the mean, mean ± t(0.975, n − 1) · std / √n;
    /// `None` with fewer than two values.
    pub fn ci95(&self) -> Option<(f64, f64)> {
        if self.n < 2 || !self.std.is_finite() {
            return None;
        }
        let t = StudentsT::new(0.0, 1.0, (self.n - 1) as f64).ok()?.inverse_cdf(0.975);
        let half = t * self.std / (self.n as f64).sqrt();
        Some((self.mean - half, self.mean + half))
    }
}

/// Welch's t-test of two samples' means: the two-sided p-value; `None` with fewer than
/// two values on a side.
pub fn welch(a: &Sample, b: &Sample) -> Option<f64> {
    if a.n < 2 || b.n < 2 || !a.std.is_finite() || !b.std.is_finite() {
        return None;
    }
    let (va, vb) = (a.std * a.std / a.n as f64, b.std * b.std / b.n as f64);
    if va + vb == 0.0 {
        return Some(if a.mean == b.mean { 1.0 } else { 0.0 });
    }
    let t = (a.mean - b.mean) / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(2.0 * (1.0 - dist.cdf(t.abs())))
}

/// [`welch`] of two samples given as values.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    welch(&Sample::of(a)?, &Sample::of(b)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confidence_interval_is_t_times_the_standard_error() {
        // 1, 2, 3: mean 2, std 1, n 3; t(0.975, 2) = 4.302652729911275.
        let s = Sample::of(&[1.0, 2.0, 3.0]).unwrap();
        let (lo, hi) = s.ci95().unwrap();
        let half = 4.302652729911275 / 3f64.sqrt();
        assert!((lo - (2.0 - half)).abs() < 1e-9 && (hi - (2.0 + half)).abs() < 1e-9, "{lo} {hi}");
        assert_eq!(Sample::of(&[5.0]).unwrap().ci95(), None);
        assert_eq!(Sample::of(&[f64::NAN]), None);
    }

    #[test]
    fn welch_of_published_numbers_is_welch_of_their_values() {
        // A published mean ± std with its n is the same test as the values themselves.
        let ours = [0.61, 0.63, 0.62, 0.66, 0.60];
        let theirs = [0.64, 0.65, 0.67, 0.66];
        let published = Sample::of(&theirs).unwrap();
        assert_eq!(welch(&Sample::of(&ours).unwrap(), &published), welch_p(&ours, &theirs));
        // t = −2.55106, Welch's df = 6.43664; Student's t density integrated numerically
        // (Simpson) beyond |t|, both tails: p = 0.040852.
        let p = welch_p(&ours, &theirs).unwrap();
        assert!((p - 0.040_852).abs() < 2e-6, "{p}");
    }
}
