//! Independent checks for 2FA: TOTP codes from Debian's `oathtool` (not from the code under
//! test), and QR codes read back by a real decoder (`rqrr`).

use tessera_core::Timestamp;

/// The TOTP code of `secret` (base32) at `at`, computed by oathtool; `None` (with a warning)
/// when oathtool is missing outside CI.
pub fn oathtool(secret: &str, at: Timestamp) -> Option<String> {
    match std::process::Command::new("oathtool")
        .args(["--totp", "--base32", "--digits=6"])
        .arg(format!("--now=@{}", at.unix()))
        .arg(secret)
        .output()
    {
        Ok(out) if out.status.success() => {
            Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
        }
        result => {
            let why = format!(
                "oathtool is needed to compute TOTP codes independently ({result:?}); apt-get install oathtool"
            );
            if std::env::var_os("CI").is_some() {
                panic!("{why}");
            }
            eprintln!("warning: skipping: {why}");
            None
        }
    }
}

/// Decodes the QR code drawn by an SVG of unit squares (`M{x},{y}h1v1h-1z`).
pub fn decode_qr_svg(svg: &str) -> String {
    let view: usize = svg
        .split("viewBox=\"0 0 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a square viewBox");
    let path = svg
        .split(" d=\"")
        .nth(1)
        .expect("a path")
        .split('"')
        .next()
        .unwrap();
    let mut dark = vec![false; view * view];
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let coords = square.trim_end_matches("h1v1h-1z");
        let (x, y) = coords.split_once(',').expect("x,y");
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        dark[y * view + x] = true;
    }
    const SCALE: usize = 4;
    let size = view * SCALE;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(size, size, |x, y| {
        if dark[(y / SCALE) * view + x / SCALE] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the SVG");
    grids[0].decode().expect("a decodable QR code").1
}
