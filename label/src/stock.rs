//! The label stocks surge prints on, in printer dots at 203 dpi (8 dots per mm).

/// A label stock: 4 x 6 in, or a Chinese e-waybill (电子面单) size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Stock {
    /// 4 x 6 in (812 x 1218 dots), the international thermal label.
    #[default]
    FourBySix,
    /// 100 x 180 mm (799 x 1439 dots), the three-part e-waybill: the carrier's part, the
    /// receiver's stub.
    Mm100x180,
    /// 76 x 130 mm (607 x 1039 dots), the two-part e-waybill.
    Mm76x130,
}

/// Every stock, for tests and error messages.
pub const STOCKS: [Stock; 3] = [Stock::FourBySix, Stock::Mm100x180, Stock::Mm76x130];

/// The largest width and height of any stock, in dots: what a printer accepts.
pub(crate) const MAX_WIDTH: u32 = 812;
pub(crate) const MAX_HEIGHT: u32 = 1439;

impl Stock {
    /// Width and height in dots at 203 dpi.
    pub fn dots(self) -> (u32, u32) {
        match self {
            Stock::FourBySix => (812, 1218),
            Stock::Mm100x180 => (799, 1439),
            Stock::Mm76x130 => (607, 1039),
        }
    }

    /// The name rules files use: `4x6`, `100x180`, `76x130`.
    pub fn name(self) -> &'static str {
        match self {
            Stock::FourBySix => "4x6",
            Stock::Mm100x180 => "100x180",
            Stock::Mm76x130 => "76x130",
        }
    }
}

impl std::str::FromStr for Stock {
    type Err = String;

    fn from_str(s: &str) -> Result<Stock, String> {
        STOCKS.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = STOCKS.iter().map(|k| k.name()).collect();
            format!("label stock {s:?} is not one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_the_stock_at_203_dpi() {
        let mm = |v: f64| (v / 25.4 * 203.0).round() as u32;
        assert_eq!(Stock::Mm100x180.dots(), (mm(100.0), mm(180.0)));
        assert_eq!(Stock::Mm76x130.dots(), (mm(76.0), mm(130.0)));
        for s in STOCKS {
            assert_eq!(s.name().parse(), Ok(s));
            let (w, h) = s.dots();
            assert!(w <= MAX_WIDTH && h <= MAX_HEIGHT);
        }
        assert!("A4".parse::<Stock>().is_err());
    }
}
