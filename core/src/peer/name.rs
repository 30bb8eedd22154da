//! Peer names are chosen by whoever sends the packet, and they end up on a terminal: cleaning
//! them is done here, once, for every place that parses one (multicast, mDNS TXT, pairing).

/// The replacement for a control character: visible, so a person sees that the name carried
/// something that is not text (a terminal escape, a newline).
pub const REPLACEMENT: char = '\u{FFFD}';

/// A name fit to print: every control character (C0, DEL, C1, and the line and paragraph
/// separators U+2028/U+2029) becomes U+FFFD; every invisible formatting character (bidi
/// embeddings, overrides, isolates and marks, zero-width spaces and joiners, the byte-order
/// mark, soft hyphen, tag characters, variation selectors, fillers: see [`is_invisible`]) is
/// removed; and the result is cut to at most `max_bytes` bytes on a character boundary.
///
/// Why two treatments: a control character is damage a person should see (a replacement mark
/// where the escape was), while an invisible character never drew a glyph, so dropping it leaves
/// exactly the text the sender meant to show — minus any trick it played on the order or the
/// look of that text. Nothing else changes: whitespace is kept (callers trim if they want).
///
/// ```
/// use localpair_core::peer::clean_name;
/// assert_eq!(clean_name("desk\u{1b}[2J", 64), "desk\u{FFFD}[2J");
/// assert_eq!(clean_name("ab\u{202E}cd\u{200B}", 64), "abcd");
/// assert_eq!(clean_name("ééé", 5), "éé");
/// ```
pub fn clean_name(raw: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_bytes));
    for c in raw.chars() {
        let c = if is_control(c) {
            REPLACEMENT
        } else if is_invisible(c) {
            continue;
        } else {
            c
        };
        if out.len() + c.len_utf8() > max_bytes {
            break;
        }
        out.push(c);
    }
    out
}

/// Whether `raw` is already what [`clean_name`] makes of it within `max_bytes` (for wire
/// formats that reject a name instead of repairing it).
pub fn is_clean(raw: &str, max_bytes: usize) -> bool {
    raw.len() <= max_bytes && !raw.chars().any(|c| is_control(c) || is_invisible(c))
}

/// Control characters, which a terminal acts on: Unicode's `Cc` plus the line and paragraph
/// separators (which break lines in some terminals and every log viewer).
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Characters that draw nothing but change how the text around them is shown: every format
/// character (`Cf`: bidi controls U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069;
/// zero-width U+200B–U+200D, U+2060, U+FEFF; soft hyphen; invisible operators; tags; and the
/// rest of the category), plus the blank fillers and selectors that are letters or marks in
/// Unicode's eyes but render as nothing (Hangul fillers, combining grapheme joiner, Khmer and
/// Mongolian invisible vowels and selectors, variation selectors).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The characters the issue names, written out independently of `is_invisible`.
    const NAMED: &[char] = &[
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}', '\u{200B}', '\u{200C}',
        '\u{200D}', '\u{2060}', '\u{FEFF}',
    ];

    #[test]
    fn controls_are_marked_and_invisibles_dropped() {
        assert_eq!(clean_name("a\u{1b}[31mb\n", 64), "a\u{FFFD}[31mb\u{FFFD}");
        assert_eq!(clean_name("\u{7f}\u{85}\u{2028}", 64), "\u{FFFD}".repeat(3));
        // "evil\u{202E}txt.exe" would print as "evilexe.txt".
        assert_eq!(clean_name("evil\u{202E}txt.exe", 64), "eviltxt.exe");
        for c in NAMED {
            assert_eq!(clean_name(&format!("x{c}y"), 64), "xy", "{c:?}");
        }
        // Emoji sequences lose their joiners and selectors, not their pictures.
        assert_eq!(clean_name("\u{2764}\u{FE0F}", 64), "\u{2764}");
        assert_eq!(clean_name("  plain name  ", 64), "  plain name  ");
    }

    #[test]
    fn the_cap_cuts_on_a_character_boundary() {
        assert_eq!(clean_name("\u{1b}\u{1b}", 5), "\u{FFFD}");
        assert_eq!(clean_name("ab", 0), "");
        assert!(is_clean("ab", 2) && !is_clean("abc", 2) && !is_clean("a\u{200B}", 8));
    }

    proptest! {
        #[test]
        fn output_is_clean_capped_and_idempotent(raw in any::<String>(), cap in 0usize..80) {
            let out = clean_name(&raw, cap);
            prop_assert!(out.len() <= cap);
            prop_assert!(!out.chars().any(char::is_control));
            prop_assert!(!out.chars().any(|c| NAMED.contains(&c)));
            prop_assert!(is_clean(&out, cap));
            prop_assert_eq!(clean_name(&out, cap), out);
        }

        #[test]
        fn hostile_mixes_never_panic(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just('\u{202E}'), Just('\u{200D}'), Just('\u{1b}'), Just('\u{FEFF}'),
                    Just('é'), Just('a'), Just('\u{10FFFF}'), any::<char>(),
                ],
                0..200,
            ),
            cap in 0usize..300,
        ) {
            let raw: String = parts.into_iter().collect();
            let out = clean_name(&raw, cap);
            prop_assert!(out.len() <= cap && is_clean(&out, cap));
        }
    }
}
