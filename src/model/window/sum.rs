//! A running sum with TwoSum compensation, for the event-time window's sums of volumes,
//! notionals and returns.

use serde::{Deserialize, Serialize, Serializer};

use crate::model::exact_float::Exact;

/// A running sum with TwoSum compensation: after adding and later subtracting the same values,
/// the error is about one rounding of the current total, not of everything that passed through.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Sum {
    hi: f64,
    lo: f64,
}

impl Sum {
    #[inline]
    pub(super) fn add(&mut self, x: f64) {
        let sum = self.hi + x;
        let x_part = sum - self.hi;
        self.lo += (self.hi - (sum - x_part)) + (x - x_part);
        self.hi = sum;
    }

    #[inline]
    pub(super) fn value(self) -> f64 {
        self.hi + self.lo
    }

    pub(super) fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut sum = Self::default();
        values.for_each(|x| sum.add(x));
        sum
    }
}

impl Serialize for Sum {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (Exact(self.hi), Exact(self.lo)).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (hi, lo) = <(Exact, Exact)>::deserialize(deserializer)?;
        Ok(Self { hi: hi.0, lo: lo.0 })
    }
}
