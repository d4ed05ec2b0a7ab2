//! Orders as the platforms publish them, one JSON object per line (as their order APIs return
//! them), mapped to surge's [`Order`]; and the shipment confirmation (回传) each platform expects
//! once an order shipped.
//!
//! | platform | record | cancelled when |
//! |---|---|---|
//! | Taobao / Tmall | `Trade` of `taobao.trade.fullinfo.get` | `status` is `TRADE_CLOSED` or `TRADE_CLOSED_BY_TAOBAO` |
//! | JD | order of `jingdong.pop.order.search` | `orderState` is `TRADE_CANCELED` |
//! | Pinduoduo | `order_info` of `pdd.order.information.get` | `refund_status` is 4 (refunded) |
//! | Douyin | `shop_order_detail` of `order.orderDetail` | `order_status` is 4 |
//! | Shopify | the REST `Order` resource | `cancelled_at` is set |
//!
//! Amounts arrive in yuan (decimal strings or numbers; Douyin in fen) and become cents exactly;
//! times in China Standard Time (Shopify: RFC 3339) become Unix ms. Receiver fields that a
//! platform sends masked or encrypted are kept as they are: they are opaque, never "fixed".
//! A record that cannot be mapped is refused naming the field (`orders.order[1].num`), and
//! nothing of it is kept.

mod douyin;
mod jd;
mod json;
mod pdd;
mod shipments;
mod shopify;
mod taobao;

pub use shipments::{shipment_request, Shipment};

use surge_proto::v1::Order;

/// A sales platform whose order shape surge reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Taobao,
    Tmall,
    Jd,
    Pinduoduo,
    Douyin,
    Shopify,
}

/// Every platform, for help texts and tests.
pub const PLATFORMS: [Platform; 6] = [
    Platform::Taobao,
    Platform::Tmall,
    Platform::Jd,
    Platform::Pinduoduo,
    Platform::Douyin,
    Platform::Shopify,
];

impl Platform {
    /// The name surge's orders carry in `Order.platform` and the CLI takes.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Taobao => "taobao",
            Platform::Tmall => "tmall",
            Platform::Jd => "jd",
            Platform::Pinduoduo => "pdd",
            Platform::Douyin => "douyin",
            Platform::Shopify => "shopify",
        }
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Platform, String> {
        let s = s.trim().to_ascii_lowercase();
        let s = if s == "pinduoduo" {
            "pdd".to_owned()
        } else {
            s
        };
        PLATFORMS
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = PLATFORMS.iter().map(|p| p.name()).collect();
                format!("platform {s:?} is not one of {}", names.join(", "))
            })
    }
}

/// What one platform record becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// An order to submit (paid, unpaid or cash on delivery).
    Order(Box<Order>),
    /// The platform cancelled or closed the order: cancel it if it was submitted.
    Cancelled {
        platform: &'static str,
        external_order_id: String,
    },
}

/// Why a record could not be mapped: the field (a path into the record) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A refused line of a file: its 1-based number and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct RecordError {
    pub line: usize,
    pub error: FieldError,
}

/// Maps one record (a JSON object) of `platform`. The order also passes surge's own checks
/// (`surge_proto::validate::order`), so an accepted record is one intake accepts.
pub fn map_record(platform: Platform, record: &str) -> Result<Mapped, FieldError> {
    let value: serde_json::Value =
        serde_json::from_str(record).map_err(|e| FieldError::new("", format!("not JSON: {e}")))?;
    let obj = json::Obj::root(&value)?;
    let mut mapped = match platform {
        Platform::Taobao | Platform::Tmall => taobao::map(platform, &obj)?,
        Platform::Jd => jd::map(&obj)?,
        Platform::Pinduoduo => pdd::map(&obj)?,
        Platform::Douyin => douyin::map(&obj)?,
        Platform::Shopify => shopify::map(&obj)?,
    };
    if let Mapped::Order(order) = &mut mapped {
        // A record without its shop's name (Shopify's have none) is filed under the platform.
        if order.shop.is_empty() {
            order.shop = platform.name().to_owned();
        }
        surge_proto::validate::order(order).map_err(|e| FieldError::new(e.field, e.reason))?;
    }
    Ok(mapped)
}

/// Maps every non-blank line of `text` (JSON Lines), with its 1-based line number.
pub fn map_lines(
    platform: Platform,
    text: &str,
) -> impl Iterator<Item = (usize, Result<Mapped, RecordError>)> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(move |(i, l)| {
            let line = i + 1;
            (
                line,
                map_record(platform, l).map_err(|error| RecordError { line, error }),
            )
        })
}

/// The parts every platform's mapping fills the same way.
pub(crate) fn cancelled(platform: Platform, external_order_id: String) -> Mapped {
    Mapped::Cancelled {
        platform: platform.name(),
        external_order_id,
    }
}
