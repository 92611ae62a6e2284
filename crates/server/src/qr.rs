//! QR codes as inline SVG: one square per dark module, with the quiet zone the standard
//! asks for, scaling to any size without blur.

use qrcode::{Color, EcLevel, QrCode};
use std::fmt::Write;

const QUIET_ZONE: usize = 4;

/// An SVG document showing `text` as a QR code (error correction M).
pub fn svg(text: &str) -> String {
    let Ok(code) = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M) else {
        // Only texts beyond a QR code's capacity fail; an otpauth URI is far below it.
        return String::new();
    };
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            let _ = write!(path, "M{x},{y}h1v1h-1z");
        }
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\" role=\"img\" \
         aria-label=\"QR code for your authenticator app\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{path}\"/></svg>",
        px = size * 5
    )
}
