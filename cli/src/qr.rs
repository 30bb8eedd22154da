//! Rendering the pairing code as a QR code: terminal, PNG, SVG.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use localpair_core::state::write_private;
use qrcode::{Color, EcLevel, QrCode};

use crate::error::Error;

/// Where the QR code goes (`--qr`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrTarget {
    /// Unicode half blocks on the terminal.
    Terminal,
    /// No QR code, just the text.
    None,
    /// A PNG file.
    Png(PathBuf),
    /// An SVG file.
    Svg(PathBuf),
}

impl FromStr for QrTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "terminal" => Ok(Self::Terminal),
            "none" => Ok(Self::None),
            _ => match s.split_once(':') {
                Some(("png", path)) if !path.is_empty() => Ok(Self::Png(path.into())),
                Some(("svg", path)) if !path.is_empty() => Ok(Self::Svg(path.into())),
                _ => Err("expected terminal, none, png:FILE or svg:FILE".to_owned()),
            },
        }
    }
}

/// Modules of white border the QR specification asks for.
const QUIET_ZONE: usize = 4;

fn encode(text: &str) -> Result<QrCode, Error> {
    // M: survives a smudge or a glare, and a 110-character code still fits version 5.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(Error::Qr)
}

/// Dark modules with a quiet zone, row by row.
fn modules(code: &QrCode) -> (usize, Vec<bool>) {
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let mut out = vec![false; size * size];
    for (i, color) in colors.iter().enumerate() {
        let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
        out[y * size + x] = *color == Color::Dark;
    }
    (size, out)
}

/// Two rows per line with half blocks. With `colour` (a terminal, no `NO_COLOR`) it is drawn
/// black on an explicit white background so it scans on dark and light themes alike; without,
/// it is plain text (dark modules as blocks), fit for a pipe or a file.
pub(crate) fn terminal(text: &str, colour: bool) -> Result<String, Error> {
    let (size, dark) = modules(&encode(text)?);
    let mut out = String::new();
    for y in (0..size).step_by(2) {
        if colour {
            out.push_str("\x1b[30;107m");
        }
        for x in 0..size {
            let top = dark[y * size + x];
            let bottom = y + 1 < size && dark[(y + 1) * size + x];
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if colour {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Ok(out)
}

/// Writes the code as an 8-bit grey PNG, `scale` pixels per module.
pub(crate) fn png(text: &str, path: &Path, scale: usize) -> Result<(), Error> {
    let (size, dark) = modules(&encode(text)?);
    let pixels = size * scale;
    let mut image = Vec::with_capacity(pixels * pixels);
    for y in 0..pixels {
        for x in 0..pixels {
            image.push(if dark[(y / scale) * size + x / scale] {
                0
            } else {
                255
            });
        }
    }
    // At most 177 modules (version 40) plus the quiet zone, times a small scale: fits easily.
    let side = u32::try_from(pixels).unwrap_or(u32::MAX);
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&image))
        .map_err(|source| Error::Png {
            path: path.to_path_buf(),
            source,
        })?;
    write_whole(path, &bytes)
}

/// The QR code holds the secret: written readable by this user only (0600), through a temporary
/// file created exclusively beside it and a rename, so nobody reads half an image and no planted
/// symbolic link is ever followed (see [`write_private`]).
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_private(path, bytes).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

/// A QR file written for a pairing code, removed when dropped: once the code is over (paired,
/// expired, failed or interrupted) the image is only a secret lying around. `keep` leaves it.
#[derive(Debug)]
pub(crate) struct QrFile {
    path: PathBuf,
    keep: bool,
    /// Device, inode and change time of the file written, so a file someone else put there
    /// since is left alone (the change time tells a new file that reused the inode number).
    #[cfg(unix)]
    written: Option<(u64, u64, i64, i64)>,
}

impl QrFile {
    /// The file just written at `path`.
    pub(crate) fn new(path: &Path, keep: bool) -> Self {
        Self {
            path: path.to_path_buf(),
            keep,
            #[cfg(unix)]
            written: identity(path),
        }
    }
}

#[cfg(unix)]
fn identity(path: &Path) -> Option<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some((meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()))
}

impl Drop for QrFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        #[cfg(unix)]
        if self.written.is_none() || identity(&self.path) != self.written {
            return;
        }
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "removing the QR code file");
        }
    }
}

/// Writes the code as SVG.
pub(crate) fn svg(text: &str, path: &Path) -> Result<(), Error> {
    let image = encode(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(256, 256)
        .build();
    write_whole(path, image.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "LP:AEAAXDUFD4BG2ADIIZ5CHIEUX7WQZ4PJ3DPFEJ6QCZKXVKJTLBJ2VVHTW6ZFYBHLLTJPYGUQQLWMMAQECAFAE2DGNWK";

    #[test]
    fn targets_parse() {
        assert_eq!("terminal".parse::<QrTarget>(), Ok(QrTarget::Terminal));
        assert_eq!(
            "png:/tmp/a.png".parse::<QrTarget>(),
            Ok(QrTarget::Png("/tmp/a.png".into()))
        );
        assert!("png:".parse::<QrTarget>().is_err());
        assert!("jpeg:x".parse::<QrTarget>().is_err());
    }

    #[test]
    fn alphanumeric_code_fits_a_small_symbol() {
        let code = encode(CODE).unwrap();
        // Version 4 (33 modules) holds 90 alphanumeric characters at level M; version 5 (37)
        // holds 122: a two-address code is about 110.
        assert!(code.width() <= 37, "{}", code.width());
        let text = terminal(CODE, true).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), (code.width() + 2 * QUIET_ZONE).div_ceil(2));
        assert!(text.contains("\x1b["));
    }

    #[test]
    fn a_qr_for_a_pipe_or_with_no_color_is_plain_text() {
        let coloured = terminal(CODE, true).unwrap();
        let plain = terminal(CODE, false).unwrap();
        assert!(!plain.contains('\x1b'), "escapes in {plain:?}");
        assert_eq!(plain.lines().count(), coloured.lines().count());
        // The same modules, only the escapes are gone.
        let stripped = coloured.replace("\x1b[30;107m", "").replace("\x1b[0m", "");
        assert_eq!(plain, stripped);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_never_follow_a_link_and_go_when_the_code_ends() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("lp-qr-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.join("c.png");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        png(CODE, &path, 4).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(
            meta.is_file(),
            "the planted link was replaced, not followed"
        );
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");

        drop(QrFile::new(&path, true));
        assert!(path.is_file(), "kept");
        drop(QrFile::new(&path, false));
        assert!(!path.exists(), "removed");

        // A file put there by someone else after ours is not removed.
        svg(CODE, &path).unwrap();
        let ours = QrFile::new(&path, false);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        drop(ours);
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_are_written() {
        let dir = std::env::temp_dir().join(format!("lp-qr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        png(CODE, &dir.join("c.png"), 4).unwrap();
        svg(CODE, &dir.join("c.svg")).unwrap();
        let png_bytes = std::fs::read(dir.join("c.png")).unwrap();
        assert_eq!(&png_bytes[1..4], b"PNG");
        assert!(
            std::fs::read_to_string(dir.join("c.svg"))
                .unwrap()
                .contains("<svg")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
