use super::*;
use proptest::prelude::*;

fn sample() -> Packet {
    let mut p = Packet::new(
        Kind::Announce,
        Fingerprint::from_bytes([7; 32]),
        40_123,
        "kitchen-pc",
    );
    p.starting = true;
    p.pairing_port = Some(5000);
    p.session_tag = Some([1, 2, 3, 4, 5, 6, 7, 8]);
    p
}

#[test]
fn layout_is_as_documented() {
    let bytes = sample().encode();
    assert_eq!(&bytes[..4], b"LPmc");
    assert_eq!(bytes[4], 1);
    assert_eq!(bytes[5], 1);
    assert_eq!(bytes[6], 0b111);
    assert_eq!(&bytes[7..39], &[7; 32]);
    assert_eq!(&bytes[39..41], &40_123u16.to_be_bytes());
    assert_eq!(&bytes[41..43], &5000u16.to_be_bytes());
    assert_eq!(&bytes[43..51], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(bytes[51], 10);
    assert_eq!(&bytes[52..], b"kitchen-pc");
    assert_eq!(parse(&bytes).unwrap(), sample());
}

#[test]
fn largest_packet_is_130_bytes() {
    let mut p = sample();
    p.name = "x".repeat(MAX_NAME);
    assert_eq!(p.encode().len(), 116);
    p.link_port = Some(47_000);
    assert_eq!(p.encode().len(), 118);
    // With an offer, the largest there is.
    p.offer = Some(Offer::new(19_537, OfferTo::Session([9; 8])));
    assert_eq!(p.encode().len(), 129);
    p.short_channel = Some(99);
    assert_eq!(p.encode().len(), 130);
    assert_eq!(parse(&p.encode()).unwrap(), p);
}

#[test]
fn short_channel_follows_the_offer_and_is_range_checked() {
    let mut p = Packet::new(Kind::Announce, Fingerprint::from_bytes([7; 32]), 1, "");
    p.short_channel = Some(47);
    let bytes = p.encode();
    assert_eq!(bytes[6], 0b10_0000);
    assert_eq!(bytes[41], 47);
    assert_eq!(bytes[42], 0);
    assert_eq!(parse(&bytes).unwrap(), p);
    let mut bad = bytes;
    bad[41] = 9;
    assert!(parse(&bad).is_err());
    // A channel outside the range is left out rather than sent wrong.
    p.short_channel = Some(100);
    assert_eq!(parse(&p.encode()).unwrap().short_channel, None);
}

#[test]
fn offers_are_laid_out_after_the_link_port() {
    let mut p = Packet::new(Kind::Announce, Fingerprint::from_bytes([7; 32]), 1, "");
    p.offer = Some(Offer::new(
        19_539,
        OfferTo::Device(DeviceId::from_bytes([3; 8])),
    ));
    let bytes = p.encode();
    assert_eq!(bytes[6], 0b1_0000);
    assert_eq!(&bytes[41..43], &19_539u16.to_be_bytes());
    assert_eq!(bytes[43], 2);
    assert_eq!(&bytes[44..52], &[3; 8]);
    assert_eq!(parse(&bytes).unwrap(), p);
    let mut bad_kind = bytes.clone();
    bad_kind[43] = 7;
    assert!(parse(&bad_kind).is_err());
    let mut zero_port = bytes;
    zero_port[41..43].copy_from_slice(&[0, 0]);
    assert!(parse(&zero_port).is_err());
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = sample().encode();
    for len in 0..bytes.len() {
        assert!(
            matches!(parse(&bytes[..len]), Err(Error::Malformed { .. })),
            "{len}"
        );
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = sample().encode();
    bytes.push(0);
    assert!(
        matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("trailing"))
    );
}

#[test]
fn oversized_is_rejected_before_reading() {
    let mut bytes = vec![0; MAX_DATAGRAM + 1];
    bytes[..4].copy_from_slice(&MAGIC);
    assert!(matches!(parse(&bytes), Err(Error::Oversized { len: 1201 })));
}

#[test]
fn bad_fields_are_named() {
    let good = sample().encode();
    let cases: [(usize, u8, &str); 5] = [
        (0, b'X', "magic"),
        (4, 2, "version"),
        (5, 9, "kind"),
        (6, 0b1010_0111, "reserved"),
        (51, 65, "longer than 64"),
    ];
    for (at, value, why) in cases {
        let mut bytes = good.clone();
        bytes[at] = value;
        match parse(&bytes) {
            Err(Error::Malformed { reason }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("byte {at} = {value}: {other:?}"),
        }
    }
    let mut zero_port = good;
    zero_port[41..43].copy_from_slice(&[0, 0]);
    assert!(parse(&zero_port).is_err());
}

#[test]
fn names_must_be_clean_utf8() {
    let mut p = sample();
    p.name = "ab".into();
    let mut bytes = p.encode();
    let at = bytes.len() - 2;
    bytes[at] = 0xff;
    assert!(matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("UTF-8")));
    bytes[at] = 0x1b; // ESC: would let a name drive the terminal that prints it
    assert!(
        matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("control"))
    );
}

#[test]
fn names_that_print_as_something_else_are_rejected() {
    let mut p = sample();
    p.name = "ab".into();
    let mut bytes = p.encode();
    let len_at = bytes.len() - 3;
    bytes.truncate(len_at);
    let rlo = "a\u{202E}b".as_bytes();
    bytes.push(rlo.len() as u8);
    bytes.extend_from_slice(rlo);
    assert!(
        matches!(parse(&bytes), Err(Error::Malformed { reason }) if reason.contains("invisible"))
    );
    p.name = "a\u{200B}\u{202E}b\u{2066}".into();
    assert_eq!(parse(&p.encode()).unwrap().name, "ab");
}

#[test]
fn names_are_cleaned_on_the_way_out() {
    assert_eq!(clean_name("a\u{1b}[2Jb"), "a [2Jb");
    let long = "é".repeat(40); // 80 bytes
    let cut = clean_name(&long);
    assert_eq!(cut.len(), 64);
    assert!(cut.chars().all(|c| c == 'é'));
    let mut p = sample();
    p.name = "\u{7}".repeat(100);
    assert_eq!(parse(&p.encode()).unwrap().name, " ".repeat(64));
}

fn packets() -> impl Strategy<Value = Packet> {
    (
        prop_oneof![Just(Kind::Announce), Just(Kind::Answer), Just(Kind::Probe)],
        any::<bool>(),
        any::<[u8; 32]>(),
        any::<u16>(),
        proptest::option::of(1u16..=u16::MAX),
        proptest::option::of(any::<[u8; 8]>()),
        "\\PC{0,30}",
        proptest::option::of((1u16..=u16::MAX, any::<bool>(), any::<[u8; 8]>())),
        proptest::option::of(10u8..=99),
    )
        .prop_map(
            |(kind, starting, fp, confirm_port, pairing_port, tag, name, offer, short)| {
                let mut p = Packet::new(kind, Fingerprint::from_bytes(fp), confirm_port, &name);
                p.starting = starting;
                p.pairing_port = pairing_port;
                p.session_tag = tag;
                p.short_channel = short;
                p.offer = offer.map(|(port, session, to)| {
                    let to = if session {
                        OfferTo::Session(to)
                    } else {
                        OfferTo::Device(DeviceId::from_bytes(to))
                    };
                    Offer::new(port, to)
                });
                p
            },
        )
}

proptest! {
    #[test]
    fn round_trip(p in packets()) {
        let bytes = p.encode();
        prop_assert!(bytes.len() <= 130);
        prop_assert_eq!(parse(&bytes).unwrap(), p);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn valid_prefix_with_noise_never_panics(
        p in packets(),
        cut in 0usize..120,
        noise in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut bytes = p.encode();
        bytes.truncate(cut.min(bytes.len()));
        bytes.extend_from_slice(&noise);
        if let Ok(parsed) = parse(&bytes) {
            // Whatever parses re-encodes to the same bytes: there is one encoding per packet.
            prop_assert_eq!(parsed.encode(), bytes);
        }
    }

    #[test]
    fn every_strict_prefix_fails(p in packets()) {
        let bytes = p.encode();
        for len in 0..bytes.len() {
            prop_assert!(parse(&bytes[..len]).is_err());
        }
    }
}
