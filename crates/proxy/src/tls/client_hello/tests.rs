//! Tests of the ClientHello parser: captured and hand-built ClientHellos,
//! every truncation, single-byte corruption and random input.

use super::*;
use NotTlsReason::*;

/// Captured from `openssl s_client -servername Web.Example.COM -alpn
/// h2,http/1.1` (OpenSSL 3.0): TLS 1.3 with 1.2 fallback, 11 extensions,
/// SNI first, in one record.
const OPENSSL_CLIENT_HELLO: &str = "160301014e0100014a0303de2d3d6e7cd4a04674264bb98498308a5b28574b9fb4cd8fb4c19d2357528e1220f2723d0bae20caa365eca912498ecbeabc66e5c853d39dbfe93e89b7083741d9003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000c300000014001200000f5765622e4578616d706c652e434f4d000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d002027ad91f49dd53dbe708ffe1e0332a62d8ec90aeb77f58a1c5438ebfc86b4a512";
/// Captured from `curl --tlsv1.2 https://api.example.test/`: padded to
/// 512 bytes with the padding extension (21).
const CURL_CLIENT_HELLO: &str = "1603010200010001fc0303439c40ea8c467c1d5035519d442f22c5f76816d66de65c413d71f41c02f89b352037a1b3e803bc9014d9ec94fb44d01973b1062ee645b6cb47654b43f240013d62003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010001750000001500130000106170692e6578616d706c652e74657374000b000403000102000a00160014001d0017001e00190018010001010102010301040010000e000c02683208687474702f312e31001600000017000000310000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d00204ef307be5bee494bffce1c4a80aa94d73eb6e87bb83edffcfd349024022b6920001500b1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000";
/// Captured from `openssl s_client -noservername`: no SNI extension.
const OPENSSL_NO_SNI_CLIENT_HELLO: &str = "1603010124010001200303f1b986a3f282455245f06244a1d8974acd628e0565d5abce38d832e0445be6b120eaff4f4145223423666b76645dcb12261f83ecc5a46d512838fef4db6215114a003e130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000099000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303020301002d00020101003300260024001d0020e0a1a3440a3740aea87a32e976202c62389030dcddbfb1f9faf39979e02ce75f";

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&hex[index..index + 2], 16).expect("hex"))
        .collect()
}

fn u16_length(bytes: &[u8]) -> [u8; 2] {
    u16::try_from(bytes.len()).expect("short").to_be_bytes()
}

fn u16_prefixed(bytes: &[u8]) -> Vec<u8> {
    [&u16_length(bytes)[..], bytes].concat()
}

/// One extension: type, then its data with a u16 length.
fn extension(extension_type: u16, data: &[u8]) -> Vec<u8> {
    [&extension_type.to_be_bytes()[..], &u16_prefixed(data)].concat()
}

/// A `server_name` extension listing one host name.
fn server_name_extension(name: &[u8]) -> Vec<u8> {
    let entry = [&[NAME_TYPE_HOST_NAME][..], &u16_prefixed(name)].concat();
    extension(EXTENSION_SERVER_NAME, &u16_prefixed(&entry))
}

/// Extensions a TLS 1.3 client sends besides SNI: supported_versions,
/// supported_groups, ALPN, key_share (X25519).
fn ordinary_extensions() -> Vec<u8> {
    let key_share = [&[0x00, 0x24, 0x00, 0x1d, 0x00, 0x20][..], &[0x42; 32]].concat();
    [
        extension(43, &[0x04, 0x03, 0x04, 0x03, 0x03]),
        extension(10, &[0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]),
        extension(16, b"\x00\x03\x02h2"),
        extension(51, &key_share),
    ]
    .concat()
}

/// A ClientHello body with the given extensions block (`None`: no block).
fn client_hello_body(extensions: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0xab; 32]); // random
    body.push(32);
    body.extend([0x5a; 32]); // session_id
    body.extend([0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03]); // cipher_suites
    body.extend([0x01, 0x00]); // compression_methods: null
    if let Some(extensions) = extensions {
        body.extend(u16_prefixed(extensions));
    }
    body
}

/// A handshake message: type 1, u24 length, body.
fn handshake(body: &[u8]) -> Vec<u8> {
    let length = u32::try_from(body.len()).expect("short").to_be_bytes();
    [&[HANDSHAKE_TYPE_CLIENT_HELLO][..], &length[1..], body].concat()
}

/// `message` cut into handshake records of at most `fragment` bytes.
fn records(message: &[u8], fragment: usize) -> Vec<u8> {
    message
        .chunks(fragment)
        .flat_map(|chunk| {
            [
                &[CONTENT_TYPE_HANDSHAKE, 0x03, 0x01][..],
                &u16_prefixed(chunk),
            ]
            .concat()
        })
        .collect()
}

fn hello_with_extensions(extensions: &[u8]) -> Vec<u8> {
    records(
        &handshake(&client_hello_body(Some(extensions))),
        MAX_RECORD_LENGTH,
    )
}

fn hello_for(name: &[u8]) -> Vec<u8> {
    hello_with_extensions(&[server_name_extension(name), ordinary_extensions()].concat())
}

fn named(name: &str) -> ClientHello {
    ClientHello::ServerName(Some(name.to_string()))
}

/// Well-formed inputs and the name each yields: the corpus for the
/// truncation and corruption tests.
fn valid_cases() -> Vec<(&'static str, Vec<u8>, ClientHello)> {
    let sni_last = [
        ordinary_extensions(),
        server_name_extension(b"last.example"),
    ]
    .concat();
    let long_body = client_hello_body(Some(
        &[
            extension(21, &[0; 20_000]), // padding
            server_name_extension(b"big.example"),
        ]
        .concat(),
    ));
    vec![
        (
            "openssl",
            from_hex(OPENSSL_CLIENT_HELLO),
            named("web.example.com"),
        ),
        (
            "curl, padded",
            from_hex(CURL_CLIENT_HELLO),
            named("api.example.test"),
        ),
        (
            "openssl without SNI",
            from_hex(OPENSSL_NO_SNI_CLIENT_HELLO),
            ClientHello::ServerName(None),
        ),
        (
            "built, SNI first",
            hello_for(b"web.emojivoto.svc"),
            named("web.emojivoto.svc"),
        ),
        (
            "built, SNI after others",
            hello_with_extensions(&sni_last),
            named("last.example"),
        ),
        (
            "built, no SNI",
            hello_with_extensions(&ordinary_extensions()),
            ClientHello::ServerName(None),
        ),
        (
            "built, empty extensions",
            hello_with_extensions(&[]),
            ClientHello::ServerName(None),
        ),
        (
            "built, no extensions block",
            records(&handshake(&client_hello_body(None)), MAX_RECORD_LENGTH),
            ClientHello::ServerName(None),
        ),
        (
            "split across two records",
            {
                let message = handshake(&client_hello_body(Some(&server_name_extension(
                    b"two.example",
                ))));
                records(&message, message.len() / 2 + 1)
            },
            named("two.example"),
        ),
        (
            "one record per byte",
            records(
                &handshake(&client_hello_body(Some(&server_name_extension(
                    b"tiny.example",
                )))),
                1,
            ),
            named("tiny.example"),
        ),
        (
            "longer than one record",
            records(&handshake(&long_body), MAX_RECORD_LENGTH),
            named("big.example"),
        ),
        (
            "followed by change_cipher_spec and application data",
            [
                hello_for(b"web.example"),
                b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x02hi".to_vec(),
            ]
            .concat(),
            named("web.example"),
        ),
    ]
}

#[test]
fn server_names_of_complete_client_hellos() {
    for (case, bytes, expected) in valid_cases() {
        assert_eq!(server_name(&bytes), expected, "{case}");
    }
}

#[test]
fn host_names_are_lowercased_or_refused() {
    let table: &[(&[u8], Option<&str>)] = &[
        (b"Web.Example.COM", Some("web.example.com")),
        (b"a", Some("a")),
        (b"_service.x-y.example", Some("_service.x-y.example")),
        (b"xn--bcher-kva.example", Some("xn--bcher-kva.example")),
        (b"web.example.", None),
        (b".web.example", None),
        (b"web..example", None),
        (b"-web.example", None),
        (b"web-.example", None),
        (b"web example", None),
        (b"web.example:443", None),
        (b"10.1.2.3", None),
        (b"[::1]", None),
        (b"::1", None),
        ("bücher.example".as_bytes(), None),
        (b"web\0.example", None),
    ];
    for (name, expected) in table {
        let expected = ClientHello::ServerName(expected.map(str::to_string));
        assert_eq!(
            server_name(&hello_for(name)),
            expected,
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
    let label = "a".repeat(63);
    let longest = [&label[..], &label, &label, &"b".repeat(61)].join(".");
    assert_eq!(longest.len(), 253);
    assert_eq!(server_name(&hello_for(longest.as_bytes())), named(&longest));
    let too_long = format!("{longest}b");
    assert_eq!(
        server_name(&hello_for(too_long.as_bytes())),
        ClientHello::ServerName(None)
    );
    let long_label = format!("{}.example", "a".repeat(64));
    assert_eq!(
        server_name(&hello_for(long_label.as_bytes())),
        ClientHello::ServerName(None)
    );
}

#[test]
fn other_protocols_and_malformed_client_hellos_are_not_tls() {
    let valid_body = client_hello_body(Some(&server_name_extension(b"web.example")));
    let with_body = |body: &[u8]| records(&handshake(body), MAX_RECORD_LENGTH);
    let mut bad_session_id = valid_body.clone();
    bad_session_id[34] = 33;
    let mut odd_cipher_suites = client_hello_body(None);
    odd_cipher_suites[68] = 5;
    let no_compression = [&valid_body[..75], &[0x00], &valid_body[77..]].concat();
    let sni_twice = client_hello_body(Some(
        &[
            server_name_extension(b"a.example"),
            server_name_extension(b"b.example"),
        ]
        .concat(),
    ));
    let two_host_names = {
        let entries = [
            &[0][..],
            &u16_prefixed(b"a.example"),
            &[0],
            &u16_prefixed(b"b.example"),
        ]
        .concat();
        client_hello_body(Some(&extension(0, &u16_prefixed(&entries))))
    };
    let empty_name_list = client_hello_body(Some(&extension(0, &[0, 0])));
    let empty_extension = client_hello_body(Some(&extension(0, &[])));
    let list_shorter = client_hello_body(Some(&extension(0, &[0, 4, 0, 0, 1, b'a', 0xff])));
    let extension_overruns = client_hello_body(Some(&[0x00, 0x10, 0x00, 0x09, 0x00]));
    let trailing = [valid_body.clone(), vec![0]].concat();
    let mut old_version = valid_body.clone();
    old_version[1] = 0x00;
    let mut record_version_1_2 = with_body(&valid_body);
    record_version_1_2[2] = 0x03;
    let mut record_ssl3 = with_body(&valid_body);
    record_ssl3[2] = 0x00;
    let mut record_major_2 = with_body(&valid_body);
    record_major_2[1] = 0x02;
    let mut server_hello = with_body(&valid_body);
    server_hello[5] = 2;

    let second_record_not_handshake = [
        &records(&handshake(&valid_body), 40)[..45],
        b"\x17\x03\x03\x00\x05hello",
    ]
    .concat();

    let table: &[(&str, &[u8], NotTlsReason)] = &[
        (
            "HTTP/1.1",
            b"GET / HTTP/1.1\r\n\r\n",
            NotHandshakeRecord(b'G'),
        ),
        (
            "HTTP/2",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            NotHandshakeRecord(b'P'),
        ),
        ("one byte of HTTP", b"G", NotHandshakeRecord(b'G')),
        (
            "alert",
            b"\x15\x03\x03\x00\x02\x02\x28",
            NotHandshakeRecord(0x15),
        ),
        (
            "SSL 2 hello",
            b"\x80\x2e\x01\x00\x02",
            NotHandshakeRecord(0x80),
        ),
        ("record 3.0", &record_ssl3, RecordVersion(0x0300)),
        ("record 2.x, early", b"\x16\x02", RecordVersion(0x0200)),
        ("record 2.1", &record_major_2, RecordVersion(0x0201)),
        ("record 3.5, early", b"\x16\x03\x05", RecordVersion(0x0305)),
        ("empty record", b"\x16\x03\x01\x00\x00\x01", RecordLength(0)),
        (
            "record over 2^14",
            b"\x16\x03\x01\x40\x01\x01",
            RecordLength(16385),
        ),
        ("ServerHello", &server_hello, NotClientHello(2)),
        (
            "type 0, early",
            b"\x16\x03\x01\x00\x30\x00",
            NotClientHello(0),
        ),
        (
            "1 MiB",
            b"\x16\x03\x01\x00\x30\x01\x10\x00\x00",
            TooLong(1 << 20),
        ),
        (
            "app data mid-hello",
            &second_record_not_handshake,
            NotHandshakeRecord(0x17),
        ),
        (
            "legacy_version 3.0",
            &with_body(&old_version),
            Malformed("legacy_version"),
        ),
        (
            "session_id of 33",
            &with_body(&bad_session_id),
            Malformed("session_id"),
        ),
        (
            "odd suites",
            &with_body(&odd_cipher_suites),
            Malformed("cipher_suites"),
        ),
        (
            "no compression",
            &with_body(&no_compression),
            Malformed("compression_methods"),
        ),
        ("empty body", &with_body(&[]), Malformed("legacy_version")),
        (
            "cut after random",
            &with_body(&valid_body[..34]),
            Malformed("session_id"),
        ),
        (
            "after extensions",
            &with_body(&trailing),
            Malformed("extensions (trailing bytes)"),
        ),
        (
            "extension overruns",
            &with_body(&extension_overruns),
            Malformed("extension length"),
        ),
        (
            "SNI twice",
            &with_body(&sni_twice),
            Malformed("server_name (duplicate extension)"),
        ),
        (
            "two host names",
            &with_body(&two_host_names),
            Malformed("server_name_list (two host names)"),
        ),
        (
            "empty list",
            &with_body(&empty_name_list),
            Malformed("server_name_list"),
        ),
        (
            "empty extension",
            &with_body(&empty_extension),
            Malformed("server_name_list"),
        ),
        (
            "list < extension",
            &with_body(&list_shorter),
            Malformed("server_name_list"),
        ),
    ];
    for (case, bytes, reason) in table {
        assert_eq!(server_name(bytes), ClientHello::NotTls(*reason), "{case}");
    }
    assert_eq!(server_name(&record_version_1_2), named("web.example"));
}

#[test]
fn unknown_name_types_are_skipped() {
    let entries = [
        &[7][..],
        &u16_prefixed(b"\x01\x02\x03"),
        &[0],
        &u16_prefixed(b"web.example"),
    ]
    .concat();
    let hello = hello_with_extensions(&extension(0, &u16_prefixed(&entries)));
    assert_eq!(server_name(&hello), named("web.example"));
    let only_unknown = [&[7][..], &u16_prefixed(b"web.example")].concat();
    let hello = hello_with_extensions(&extension(0, &u16_prefixed(&only_unknown)));
    assert_eq!(server_name(&hello), ClientHello::ServerName(None));
}

/// Every prefix of a well-formed input asks for more, with a `needed`
/// that grows past the prefix without overshooting the full input; the
/// first prefix answered is the full answer.
#[test]
fn every_truncation_is_incomplete() {
    for (case, bytes, expected) in valid_cases() {
        let mut answered_at = None;
        for length in 0..=bytes.len() {
            match server_name(&bytes[..length]) {
                ClientHello::Incomplete { needed } => {
                    assert!(
                        answered_at.is_none(),
                        "{case}: incomplete at {length} after an answer"
                    );
                    assert!(needed > length, "{case}: needed {needed} at {length}");
                    assert!(
                        needed <= bytes.len(),
                        "{case}: needed {needed} > {}",
                        bytes.len()
                    );
                }
                answer => {
                    assert_eq!(answer, expected, "{case}: prefix of {length}");
                    answered_at.get_or_insert(length);
                }
            }
        }
        assert!(answered_at.is_some(), "{case}");
    }
}

/// Following `needed` from an empty buffer reaches the answer without
/// ever asking for more than the input holds.
#[test]
fn needed_leads_to_the_answer() {
    for (case, bytes, expected) in valid_cases() {
        let mut length = 0;
        let mut reads = 0;
        let answer = loop {
            match server_name(&bytes[..length]) {
                ClientHello::Incomplete { needed } => length = needed,
                answer => break answer,
            }
            reads += 1;
            assert!(reads <= bytes.len(), "{case}: no progress");
        };
        assert_eq!(answer, expected, "{case}");
    }
}

/// Overwriting any single byte never panics and never yields a name other
/// than the real one unless the byte is inside the name.
#[test]
fn corrupted_bytes_never_yield_a_wrong_name() {
    for (case, bytes, expected) in valid_cases().into_iter().take(6) {
        let ClientHello::ServerName(expected_name) = expected else {
            unreachable!()
        };
        let name_range = expected_name.as_ref().map(|name| {
            let lowered = bytes.to_ascii_lowercase();
            let start = lowered
                .windows(name.len())
                .position(|window| window == name.as_bytes())
                .expect("name in input");
            start..start + name.len()
        });
        for position in 0..bytes.len() {
            for value in [0x00, 0x01, 0x03, 0x16, 0x2e, 0x61, 0x7f, 0x80, 0xff] {
                let mut corrupted = bytes.clone();
                corrupted[position] = value;
                let in_name = name_range
                    .as_ref()
                    .is_some_and(|range| range.contains(&position));
                if let ClientHello::ServerName(Some(name)) = server_name(&corrupted) {
                    assert!(
                        in_name || Some(&name) == expected_name.as_ref(),
                        "{case}: byte {position} = {value:#04x} gave {name}"
                    );
                }
            }
        }
    }
}

/// Pseudo-random bytes behind a plausible record header never panic.
#[test]
fn random_input_never_panics() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2_000 {
        let length = usize::try_from(next() % 600).expect("small");
        let mut bytes: Vec<u8> = (0..length).map(|_| next().to_le_bytes()[0]).collect();
        if next() % 2 == 0 && bytes.len() >= 6 {
            bytes[..6].copy_from_slice(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01]);
        }
        let _ = server_name(&bytes);
    }
}
