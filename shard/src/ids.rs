//! Order ids and listing cursors. An order id (and a print job id) is `<shard>-<index>-<pos>`:
//! the shard and the log position that accepted it, so an id routes itself.

/// `<shard>-<index>-<pos>`: the order id (and print job id) carries its shard.
pub fn order_id(shard: u32, index: u64, pos: usize) -> String {
    format!("{shard}-{index}-{pos}")
}

/// The shard, index and position an order or job id names, if it is well formed.
pub fn parse_id(id: &str) -> Option<(u32, u64, u32)> {
    let mut parts = id.split('-');
    let shard = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse::<u64>().ok()?;
    let pos = parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some((shard, index, pos))
}

/// The shard an order id names, if it is well formed.
pub fn shard_of(order_id: &str) -> Option<u32> {
    parse_id(order_id).map(|(shard, _, _)| shard)
}

/// A position in a listing: acceptance time, then order id.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub at_ms: u64,
    pub order_id: String,
}

impl Cursor {
    /// `"<at_ms>:<order id>"`, the page token format.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.at_ms, self.order_id)
    }

    pub fn decode(token: &str) -> Option<Cursor> {
        let (at, id) = token.split_once(':')?;
        Some(Cursor {
            at_ms: at.parse().ok()?,
            order_id: id.to_string(),
        })
    }
}
