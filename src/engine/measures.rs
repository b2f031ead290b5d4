//! The layer measures, registered: one declaration per measure in [`LAYER_MEASURES`]
//! (its key, the unit value it summarizes and how, its report column, whether `compare`
//! tests it, what it means) drives what every run records of a layer ([`LayerSummary`]:
//! `summary.json`'s layer objects), the report's `summary.csv` columns and its tables,
//! `compare`'s measures, and the format document. The Python writer
//! (`python/homeonorm_writer/measures.py`) computes the same keys in the same order;
//! `tests/measures.rs` fails when a registration is incomplete anywhere.
//!
//! Adding a measure: one entry here (a new unit value in [`UnitValue`] if it needs one),
//! its line in `docs/run-folder.md`'s layer table, and its key in the Python writer.
//! Across a layer's units a measure is the mean, the population std (ddof = 0, as the
//! paper reports them), the CV (std / mean) or a count; undefined values (a CV of a
//! layer with no active unit) are `None`, written as `null`.

use crate::engine::metrics::{mean_std, UnitStats};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value each unit of a layer has (or lacks): what a layer measure summarizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitValue {
    /// Fraction of test inputs with output > 0.
    ActivationProb,
    /// Its binary entropy (bits).
    Entropy,
    /// Mean output over the inputs on which the unit is active (none if never active).
    MeanActiveValue,
    /// The learned α, for methods that have one.
    Alpha,
}

impl UnitValue {
    pub fn of(self, unit: &UnitStats) -> Option<f64> {
        match self {
            UnitValue::ActivationProb => Some(unit.activation_prob),
            UnitValue::Entropy => Some(unit.entropy),
            UnitValue::MeanActiveValue => unit.mean_active_value,
            UnitValue::Alpha => unit.alpha,
        }
    }
}

/// How a layer measure summarizes the values of the layer's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Across {
    Mean,
    /// Population std (ddof = 0).
    Std,
    /// Std / mean.
    Cv,
    /// The units that lack the value (a whole number).
    Lacking,
}

/// One registered layer measure.
#[derive(Debug)]
pub struct LayerMeasure {
    /// Its key in `summary.json`'s layer objects, and in `compare`'s rows (`fc1_<key>`).
    pub key: &'static str,
    pub of: UnitValue,
    pub across: Across,
    /// Its column in `report/summary.csv` (`fc1_<column>`), if the report lists it.
    pub report_column: Option<&'static str>,
    /// Whether `compare` tests it (Welch's test over seeds, and seed by seed).
    pub compared: bool,
    /// Whether every run folder records it: a layer object without it is not read.
    pub required: bool,
    /// What it is (the format document says the same).
    pub meaning: &'static str,
}

const fn measure(key: &'static str, of: UnitValue, across: Across, meaning: &'static str) -> LayerMeasure {
    LayerMeasure { key, of, across, report_column: None, compared: true, required: false, meaning }
}

/// Every layer measure, in the order `summary.json` writes them.
pub static LAYER_MEASURES: &[LayerMeasure] = &[
    LayerMeasure {
        report_column: Some("prob_mean"),
        required: true,
        ..measure("activation_prob_mean", UnitValue::ActivationProb, Across::Mean, "mean of `activation_prob`")
    },
    LayerMeasure {
        report_column: Some("prob_std"),
        required: true,
        ..measure("activation_prob_std", UnitValue::ActivationProb, Across::Std, "its std across units")
    },
    LayerMeasure {
        report_column: Some("prob_cv"),
        ..measure("activation_prob_cv", UnitValue::ActivationProb, Across::Cv, "std / mean")
    },
    LayerMeasure {
        report_column: Some("entropy_mean"),
        required: true,
        ..measure("entropy_mean", UnitValue::Entropy, Across::Mean, "mean of `entropy`")
    },
    LayerMeasure {
        report_column: Some("active_value_mean"),
        ..measure(
            "mean_active_value_mean",
            UnitValue::MeanActiveValue,
            Across::Mean,
            "mean of `mean_active_value` over the units ever active",
        )
    },
    LayerMeasure {
        report_column: Some("active_value_std"),
        compared: false,
        ..measure("mean_active_value_std", UnitValue::MeanActiveValue, Across::Std, "its std")
    },
    LayerMeasure {
        report_column: Some("active_value_cv"),
        ..measure("mean_active_value_cv", UnitValue::MeanActiveValue, Across::Cv, "std / mean")
    },
    LayerMeasure {
        compared: false,
        required: true,
        ..measure(
            "never_active_units",
            UnitValue::MeanActiveValue,
            Across::Lacking,
            "units never active on the test set",
        )
    },
    LayerMeasure {
        report_column: Some("alpha_mean"),
        ..measure("alpha_mean", UnitValue::Alpha, Across::Mean, "mean α (null without α)")
    },
    LayerMeasure {
        report_column: Some("alpha_std"),
        compared: false,
        ..measure("alpha_std", UnitValue::Alpha, Across::Std, "its std")
    },
];

/// The registered measure named `key`.
pub fn measure_named(key: &str) -> Option<&'static LayerMeasure> {
    LAYER_MEASURES.iter().find(|m| m.key == key)
}

impl LayerMeasure {
    /// Its value for a layer of `units`: `None` where undefined (no unit has the value;
    /// a CV whose mean is 0).
    pub fn of_units(&self, units: &[UnitStats]) -> Option<f64> {
        let values: Vec<f64> = units.iter().filter_map(|u| self.of.of(u)).collect();
        if self.across == Across::Lacking {
            return Some((units.len() - values.len()) as f64);
        }
        let (mean, std) = mean_std(&values);
        let value = match self.across {
            Across::Mean => mean,
            Across::Std => std,
            Across::Cv => std / mean,
            Across::Lacking => unreachable!("counted above"),
        };
        value.is_finite().then_some(value)
    }
}

/// A layer's summary across its units: each registered measure's value, in
/// [`LAYER_MEASURES`]' order. Written as `summary.json`'s layer object (`layer`, `units`,
/// then each measure's key), a dead layer's undefined measures as `null`: a result, and
/// its run reads back as complete.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSummary {
    pub layer: String,
    pub units: usize,
    values: Vec<Option<f64>>,
}

impl LayerSummary {
    pub fn of(layer: &str, units: &[UnitStats]) -> LayerSummary {
        let values = LAYER_MEASURES.iter().map(|m| m.of_units(units)).collect();
        LayerSummary { layer: layer.to_string(), units: units.len(), values }
    }

    /// The value of the measure registered as `key` (`None`: undefined, or not a measure).
    pub fn get(&self, key: &str) -> Option<f64> {
        let index = LAYER_MEASURES.iter().position(|m| m.key == key)?;
        self.values[index]
    }
}

impl Serialize for LayerSummary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + LAYER_MEASURES.len()))?;
        map.serialize_entry("layer", &self.layer)?;
        map.serialize_entry("units", &self.units)?;
        for (measure, value) in LAYER_MEASURES.iter().zip(&self.values) {
            match (measure.across, value) {
                (Across::Lacking, Some(count)) => map.serialize_entry(measure.key, &(*count as u64))?,
                _ => map.serialize_entry(measure.key, value)?,
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for LayerSummary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let layer = match object.remove("layer") {
            Some(serde_json::Value::String(name)) => name,
            _ => return Err(D::Error::missing_field("layer")),
        };
        let units = object.remove("units").and_then(|v| v.as_u64()).ok_or_else(|| D::Error::missing_field("units"))?;
        let mut values = Vec::with_capacity(LAYER_MEASURES.len());
        for measure in LAYER_MEASURES {
            values.push(match object.get(measure.key) {
                None if measure.required => return Err(D::Error::missing_field(measure.key)),
                None | Some(serde_json::Value::Null) => None,
                Some(v) => Some(
                    v.as_f64()
                        .ok_or_else(|| D::Error::custom(format!("`{}` is {v}, not a number or null", measure.key)))?,
                ),
            });
        }
        Ok(LayerSummary { layer, units: units as usize, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::metrics::unit_stats;

    #[test]
    fn a_layer_of_units_never_always_and_half_active() {
        // unit 0 never active, unit 1 always active (values sum to 30 over 10), unit 2 active half the time
        let units = unit_stats("fc1", &[0.0, 10.0, 5.0], &[0.0, 30.0, 5.0], 10.0, Some(&[0.5, 1.0, 1.5]));
        let s = LayerSummary::of("fc1", &units);
        assert_eq!(s.get("activation_prob_mean"), Some(0.5));
        assert!((s.get("activation_prob_std").unwrap() - (1.0f64 / 6.0).sqrt()).abs() < 1e-12);
        assert!((s.get("entropy_mean").unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((s.get("mean_active_value_mean"), s.get("mean_active_value_std")), (Some(2.0), Some(1.0)));
        assert_eq!(s.get("mean_active_value_cv"), Some(0.5));
        assert_eq!(s.get("never_active_units"), Some(1.0));
        assert_eq!(s.get("alpha_mean"), Some(1.0));
        assert_eq!(s.get("no such measure"), None);
    }

    #[test]
    fn a_dead_layer_has_undefined_measures_that_read_back() {
        let units = unit_stats("fc1", &[0.0, 0.0], &[0.0, 0.0], 10.0, None);
        let s = LayerSummary::of("fc1", &units);
        let get = |keys: [&str; 3]| keys.map(|k| s.get(k));
        assert_eq!(get(["activation_prob_mean", "activation_prob_std", "entropy_mean"]), [Some(0.0); 3]);
        assert_eq!(s.get("activation_prob_cv"), None);
        assert_eq!(get(["mean_active_value_mean", "mean_active_value_std", "mean_active_value_cv"]), [None; 3]);
        assert_eq!(s.get("never_active_units"), Some(2.0));
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"never_active_units\":2,"), "a count is written as a whole number: {text}");
        assert_eq!(serde_json::from_str::<LayerSummary>(&text).unwrap(), s);
    }

    #[test]
    fn a_layer_object_without_a_required_measure_is_not_read() {
        let mut object = serde_json::to_value(LayerSummary::of("fc1", &[])).unwrap();
        object.as_object_mut().unwrap().remove("entropy_mean");
        let error = serde_json::from_value::<LayerSummary>(object).unwrap_err().to_string();
        assert!(error.contains("entropy_mean"), "{error}");
    }
}
