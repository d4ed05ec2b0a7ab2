//! How much of the cluster one tenant may take at once: orders per second with a burst,
//! concurrent streams, list and watch reads per second. Set by `surgectl tenant limits set`,
//! carried to every node in the directory and enforced there. Zero means no limit.

use serde::{Deserialize, Serialize};

use crate::meta::MetaError;

/// Highest values `tenant limits set` accepts.
pub const MAX_ORDERS_PER_SEC: u32 = 1_000_000;
pub const MAX_STREAMS: u32 = 10_000;
pub const MAX_READS_PER_SEC: u32 = 1_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Orders admitted per second, cluster-wide (0: no limit).
    pub orders_per_sec: u32,
    /// Orders admitted at once above the rate, cluster-wide (0: one second's worth).
    pub orders_burst: u32,
    /// Order-watch and print-job streams open at once, on each node (0: no limit).
    pub streams: u32,
    /// ListOrders, ReadEvents and stream opens per second, on each node (0: no limit).
    pub reads_per_sec: u32,
}

impl TenantLimits {
    /// Refuses values past the bounds, naming the field.
    pub fn check(&self) -> Result<(), MetaError> {
        let bad = |field: &str, max: u32| MetaError::BadSetting {
            field: format!("limits.{field}"),
            reason: format!("at most {max} (0: no limit)"),
        };
        if self.orders_per_sec > MAX_ORDERS_PER_SEC {
            return Err(bad("orders_per_sec", MAX_ORDERS_PER_SEC));
        }
        if self.orders_burst > MAX_ORDERS_PER_SEC.saturating_mul(10) {
            return Err(bad("orders_burst", MAX_ORDERS_PER_SEC * 10));
        }
        if self.streams > MAX_STREAMS {
            return Err(bad("streams", MAX_STREAMS));
        }
        if self.reads_per_sec > MAX_READS_PER_SEC {
            return Err(bad("reads_per_sec", MAX_READS_PER_SEC));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_past_their_bounds_name_the_field() {
        assert!(TenantLimits::default().check().is_ok());
        let too_many = TenantLimits {
            streams: MAX_STREAMS + 1,
            ..TenantLimits::default()
        };
        assert!(
            matches!(too_many.check(), Err(MetaError::BadSetting { field, .. }) if field == "limits.streams")
        );
    }
}
