use super::*;
use proptest::prelude::*;

fn fp(seed: u8) -> Fingerprint {
    Fingerprint::from_bytes([seed; 32])
}

fn owned(entries: &[(&str, &str)]) -> Vec<(String, Option<Vec<u8>>)> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), Some(v.as_bytes().to_vec())))
        .collect()
}

fn parse_owned(entries: &[(String, Option<Vec<u8>>)]) -> Result<Txt, Error> {
    Txt::parse(entries.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
}

fn valid() -> Vec<(String, Option<Vec<u8>>)> {
    let txt = Txt::new(
        fp(0xab),
        "Kitchen laptop",
        Advert::pairing(4242, Some([7; 8])),
    );
    txt.entries()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Some(v.into_bytes())))
        .collect()
}

#[test]
fn an_offer_round_trips_and_a_bad_one_is_named() {
    let offer = Offer::new(19_537, localpair_core::OfferTo::Session([0xcd; 8]));
    let advert = Advert::default().with_offer(Some(offer));
    let txt = Txt::new(Fingerprint::from_bytes([5; 32]), "desk", advert);
    let entries = txt.entries();
    assert!(entries.contains(&("of", format!("session:{}@19537", "cd".repeat(8)))));
    let raw: Vec<(String, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some(v.as_bytes().to_vec())))
        .collect();
    let back = Txt::parse(raw.iter().map(|(k, v)| (k.as_str(), v.as_deref()))).unwrap();
    assert_eq!(back.into_peer(Vec::new()).offer, Some(offer));
    let mut bad = raw;
    bad.retain(|(k, _)| k != "of");
    bad.push(("of".to_owned(), Some(b"session:zz@1".to_vec())));
    let error = Txt::parse(bad.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
        .unwrap_err()
        .to_string();
    assert!(error.contains("of"), "{error}");
}

#[test]
fn the_short_channel_round_trips_and_a_bad_one_is_named() {
    let advert = Advert::pairing(19_537, Some([1; 8])).with_short_channel(Some(47));
    let txt = Txt::new(Fingerprint::from_bytes([3; 32]), "desk", advert);
    let entries = txt.entries();
    assert!(entries.contains(&("sc", "47".to_owned())));
    let owned: Vec<(String, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some(v.clone().into_bytes())))
        .collect();
    assert_eq!(
        parse_owned(&owned)
            .unwrap()
            .into_peer(Vec::new())
            .short_channel,
        Some(47)
    );
    for wrong in [&b"9"[..], b"100", b"07", b"4x", b""] {
        let mut bad = owned.clone();
        bad.retain(|(k, _)| k != "sc");
        bad.push(("sc".to_owned(), Some(wrong.to_vec())));
        let error = parse_owned(&bad).unwrap_err().to_string();
        assert!(error.contains("sc"), "{error}");
    }
}

#[test]
fn the_link_port_round_trips_and_a_bad_one_is_named() {
    let advert = Advert::default().with_link_port(Some(47_123));
    let txt = Txt::new(Fingerprint::from_bytes([3; 32]), "desk", advert);
    let entries = txt.entries();
    assert!(entries.contains(&("lp", "47123".to_owned())));
    let owned: Vec<(String, Option<Vec<u8>>)> = entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some(v.clone().into_bytes())))
        .collect();
    let back = parse_owned(&owned).unwrap();
    assert_eq!(back.link_port, Some(47_123));
    assert_eq!(back.into_peer(Vec::new()).link_port, Some(47_123));
    let mut bad = owned;
    bad.retain(|(k, _)| k != "lp");
    bad.push(("lp".to_owned(), Some(b"0".to_vec())));
    let error = parse_owned(&bad).unwrap_err().to_string();
    assert!(error.contains("lp"), "{error}");
}

#[test]
fn round_trip() {
    let txt = Txt::new(
        fp(0xab),
        "Kitchen laptop",
        Advert::pairing(4242, Some([7; 8])),
    );
    assert_eq!(parse_owned(&valid()).unwrap(), txt);
    let plain = Txt::new(fp(1), "x", Advert::default());
    let entries: Vec<_> = plain.entries();
    assert_eq!(entries.len(), 4);
    let parsed = Txt::parse(entries.iter().map(|(k, v)| (*k, Some(v.as_bytes())))).unwrap();
    assert_eq!(parsed, plain);
}

#[test]
fn entries_are_what_the_table_documents() {
    let txt = Txt::new(fp(0xab), "a", Advert::pairing(4242, Some([0x0f; 8])));
    let e = txt.entries();
    assert_eq!(e[0], ("v", "1".to_owned()));
    assert_eq!(e[1], ("id", "abababababababab".to_owned()));
    assert_eq!(e[2], ("fp", "ab".repeat(32)));
    assert_eq!(e[3], ("name", "a".to_owned()));
    assert_eq!(e[4], ("pp", "4242".to_owned()));
    assert_eq!(e[5], ("tag", "0f0f0f0f0f0f0f0f".to_owned()));
}

#[test]
fn id_must_match_fingerprint() {
    let mut e = valid();
    e[1].1 = Some(b"0000000000000000".to_vec());
    assert!(matches!(parse_owned(&e), Err(Error::IdMismatch { .. })));
}

#[test]
fn required_keys_and_values() {
    for missing in ["v", "id", "fp"] {
        let e: Vec<_> = valid().into_iter().filter(|(k, _)| k != missing).collect();
        let err = parse_owned(&e).unwrap_err();
        assert!(err.to_string().contains("is missing"), "{missing}: {err}");
    }
    let mut e = valid();
    e[2].1 = None;
    assert!(
        parse_owned(&e)
            .unwrap_err()
            .to_string()
            .contains("no value")
    );
    // A name is optional.
    let e: Vec<_> = valid().into_iter().filter(|(k, _)| k != "name").collect();
    assert_eq!(parse_owned(&e).unwrap().name, "");
}

#[test]
fn other_versions_are_named() {
    let mut e = valid();
    e[0].1 = Some(b"2".to_vec());
    let err = parse_owned(&e).unwrap_err();
    assert!(matches!(err, Error::UnsupportedVersion { ref version } if version == "2"));
}

#[test]
fn strict_numbers() {
    for bad in ["0", "65536", "+80", " 80", "8o", "", "123456"] {
        let mut e = valid();
        e[4].1 = Some(bad.as_bytes().to_vec());
        assert!(parse_owned(&e).is_err(), "pp={bad:?}");
    }
    for bad in ["+f0f0f0f0f0f0f0f", "0f0f0f0f0f0f0f0", "0f0f0f0f0f0f0f0fz"] {
        let mut e = valid();
        e[5].1 = Some(bad.as_bytes().to_vec());
        assert!(parse_owned(&e).is_err(), "tag={bad:?}");
    }
    let mut e = valid();
    e[4].1 = Some(b"65535".to_vec());
    assert_eq!(parse_owned(&e).unwrap().pairing_port, Some(65535));
}

#[test]
fn first_key_wins_case_insensitively() {
    let mut e = valid();
    e.insert(0, ("NAME".to_owned(), Some(b"first".to_vec())));
    e.push(("pp".to_owned(), Some(b"not a port".to_vec())));
    let txt = parse_owned(&e).unwrap();
    assert_eq!(txt.name, "first");
    assert_eq!(txt.pairing_port, Some(4242));
    let upper = owned(&[
        ("V", "1"),
        ("ID", &"AB".repeat(8)),
        ("FP", &"AB".repeat(32)),
    ]);
    assert_eq!(parse_owned(&upper).unwrap().fingerprint, fp(0xab));
}

#[test]
fn names_are_made_safe() {
    assert_eq!(
        clean_name("  a\u{1b}[31m\nb\n ", 63),
        "a\u{FFFD}[31m\u{FFFD}b"
    );
    assert_eq!(clean_name(&"é".repeat(40), 63).len(), 62);
    assert_eq!(
        clean_name("\u{2067}mal\u{202E}lory\u{200B} ", 63),
        "mallory"
    );
    let mut e = valid();
    e[3].1 = Some(vec![0xff, 0xfe]);
    assert!(parse_owned(&e).unwrap_err().to_string().contains("UTF-8"));
}

#[test]
fn caps() {
    let mut e = valid();
    e.extend((0..MAX_ENTRIES).map(|i| (format!("x{i}"), None)));
    assert!(matches!(parse_owned(&e), Err(Error::TxtTooLarge { .. })));
    let mut e = valid();
    e.push(("big".to_owned(), Some(vec![b'x'; MAX_BYTES])));
    assert!(matches!(parse_owned(&e), Err(Error::TxtTooLarge { .. })));
}

fn entry() -> impl Strategy<Value = (String, Option<Vec<u8>>)> {
    let k = prop_oneof![
        Just("v".to_owned()),
        Just("id".to_owned()),
        Just("fp".to_owned()),
        Just("name".to_owned()),
        Just("pp".to_owned()),
        Just("tag".to_owned()),
        "[ -~]{0,12}",
    ];
    let v = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80));
    (k, v)
}

proptest! {
    #[test]
    fn arbitrary_records_never_panic(entries in proptest::collection::vec(entry(), 0..40)) {
        if let Ok(txt) = parse_owned(&entries) {
            // Whatever parses keeps the invariants the rest of the crate relies on.
            prop_assert!(txt.name.len() <= NAME_MAX);
            prop_assert!(!txt.name.chars().any(char::is_control));
            prop_assert_ne!(txt.pairing_port, Some(0));
        }
    }

    #[test]
    fn announced_records_parse_back(
        seed in any::<[u8; 32]>(),
        name in "\\PC{0,80}",
        pp in proptest::option::of(1u16..),
        tag in proptest::option::of(any::<[u8; 8]>()),
    ) {
        let advert = match pp {
            Some(p) => Advert::pairing(p, tag),
            None => Advert::default(),
        };
        let txt = Txt::new(Fingerprint::from_bytes(seed), &name, advert);
        let entries = txt.entries();
        let parsed = Txt::parse(entries.iter().map(|(k, v)| (*k, Some(v.as_bytes()))));
        prop_assert_eq!(parsed.unwrap(), txt);
    }

    #[test]
    fn one_corrupted_byte_is_caught_or_harmless(i in 0usize..200, byte in any::<u8>()) {
        let mut flat = valid();
        let lens: Vec<usize> = flat.iter().map(|(_, v)| v.as_ref().map_or(0, Vec::len)).collect();
        let total: usize = lens.iter().sum();
        let mut at = i % total;
        for (n, len) in lens.iter().enumerate() {
            if at < *len {
                if let Some(v) = flat[n].1.as_mut() { v[at] = byte; }
                break;
            }
            at -= len;
        }
        // A flipped byte in id/fp is caught by the id check or the hex check; the fingerprint
        // of anything that still parses is consistent with its id.
        if let Ok(txt) = parse_owned(&flat) {
            let id = flat.iter().find(|(k, _)| k == "id").and_then(|(_, v)| v.clone()).unwrap();
            let announced = String::from_utf8_lossy(&id).to_ascii_lowercase();
            prop_assert_eq!(txt.device_id().to_string(), announced);
        }
    }
}
