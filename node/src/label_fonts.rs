//! The label renderer a node starts with: the configured CJK font, or the first installed one,
//! or none (with a warning and `surge_label_cjk_font 0`, since Chinese text then prints only
//! on printers that have the glyphs and shows as `?` in PDF previews).

use std::sync::Arc;

use surge_label::Renderer;
use tracing::{info, warn};

use crate::config::Config;

/// Loads the fonts `[labels]` names (or finds installed ones) and reports what was found.
pub fn load(config: &Config) -> Result<Arc<Renderer>, crate::config::ConfigError> {
    let renderer = config.labels.renderer()?;
    let found = renderer.fonts().is_some();
    match renderer.fonts() {
        Some(fonts) => info!(
            font = %fonts.regular.path.display(),
            bold = %fonts.bold.path.display(),
            zpl_text = ?renderer.zpl_text(),
            "labels draw Chinese text with this font"
        ),
        None => warn!(
            tried = ?surge_label::SYSTEM_FONTS.iter().map(|(r, _)| *r).collect::<Vec<_>>(),
            "no CJK font for labels: install fonts-noto-cjk or set [labels] font; Chinese text \
             goes to printers as text (their fonts may lack it) and shows as ? in PDF previews"
        ),
    }
    let gauge = prometheus::IntGauge::new(
        "surge_label_cjk_font",
        "1 when labels draw Chinese text with a loaded CJK font, 0 without one",
    );
    if let Ok(gauge) = gauge {
        gauge.set(i64::from(found));
        // Registered once per process; a second node in one test process keeps the first.
        let _ = prometheus::register(Box::new(gauge));
    }
    Ok(Arc::new(renderer))
}
