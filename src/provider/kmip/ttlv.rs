//! KMIP's Tag-Type-Length-Value encoding (KMIP 1.x/2.0 specification, section 9.1 "TTLV
//! Encoding"): a 3-byte tag, a 1-byte type, a 4-byte big-endian length and the value padded with
//! zeros to a multiple of 8 bytes. Structures nest items. The decoder takes untrusted bytes from a
//! server: it bounds depth, item count and lengths, and never panics (a fuzz target checks it).

use zeroize::Zeroizing;

/// Deepest nesting of structures accepted from a server (KMIP messages nest about 6 deep).
pub const MAX_DEPTH: usize = 16;
/// Most items accepted in one message (the largest response Cellar asks for has a few dozen).
pub const MAX_ITEMS: usize = 4096;

/// Item types (KMIP section 9.1.1.2).
#[allow(missing_docs)]
pub mod ty {
    pub const STRUCTURE: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const LONG_INTEGER: u8 = 0x03;
    pub const BIG_INTEGER: u8 = 0x04;
    pub const ENUMERATION: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x06;
    pub const TEXT_STRING: u8 = 0x07;
    pub const BYTE_STRING: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const INTERVAL: u8 = 0x0A;
}

/// One value. Byte strings may hold key material: they are wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// An ordered list of items.
    Structure(Vec<Ttlv>),
    /// A signed 32-bit integer.
    Integer(i32),
    /// A signed 64-bit integer.
    LongInteger(i64),
    /// A two's complement big-endian integer, a multiple of 8 bytes long.
    BigInteger(Vec<u8>),
    /// A 32-bit enumeration value.
    Enumeration(u32),
    /// A boolean (8 bytes on the wire).
    Boolean(bool),
    /// UTF-8 text.
    TextString(String),
    /// Bytes (wiped on drop).
    ByteString(Zeroizing<Vec<u8>>),
    /// Seconds since the Unix epoch, signed 64-bit.
    DateTime(i64),
    /// An unsigned 32-bit count of seconds.
    Interval(u32),
}

// Never prints byte strings: they may be keys.
impl core::fmt::Debug for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(v) => write!(f, "Integer({v})"),
            Value::LongInteger(v) => write!(f, "LongInteger({v})"),
            Value::BigInteger(v) => write!(f, "BigInteger({} bytes)", v.len()),
            Value::Enumeration(v) => write!(f, "Enumeration({v:#x})"),
            Value::Boolean(v) => write!(f, "Boolean({v})"),
            Value::TextString(v) => write!(f, "TextString({v:?})"),
            Value::ByteString(v) => write!(f, "ByteString({} bytes)", v.len()),
            Value::DateTime(v) => write!(f, "DateTime({v})"),
            Value::Interval(v) => write!(f, "Interval({v})"),
        }
    }
}

/// A tagged item.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ttlv {
    /// The 24-bit tag (0x42xxxx for the standard tags).
    pub tag: u32,
    /// The value.
    pub value: Value,
}

/// Why bytes are not a TTLV item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than a header or a length says.
    Truncated,
    /// A type byte that is not one of the ten KMIP types.
    UnknownType(u8),
    /// A fixed-size type with the wrong length, or a big integer not a multiple of 8.
    BadLength,
    /// Text that is not UTF-8.
    BadText,
    /// A boolean other than 0 or 1.
    BadBoolean,
    /// Deeper than [`MAX_DEPTH`] or more than [`MAX_ITEMS`] items.
    TooComplex,
    /// Bytes left after the top-level item.
    TrailingBytes,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            DecodeError::Truncated => "truncated TTLV",
            DecodeError::UnknownType(_) => "unknown TTLV item type",
            DecodeError::BadLength => "TTLV item with an invalid length for its type",
            DecodeError::BadText => "TTLV text string that is not UTF-8",
            DecodeError::BadBoolean => "TTLV boolean other than 0 or 1",
            DecodeError::TooComplex => "TTLV nested too deep or with too many items",
            DecodeError::TrailingBytes => "bytes after the TTLV message",
        };
        f.write_str(s)
    }
}

fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

impl Ttlv {
    /// A structure item.
    pub fn structure(tag: u32, items: Vec<Ttlv>) -> Self {
        Ttlv { tag, value: Value::Structure(items) }
    }
    /// An integer item.
    pub fn int(tag: u32, v: i32) -> Self {
        Ttlv { tag, value: Value::Integer(v) }
    }
    /// An enumeration item.
    pub fn enumeration(tag: u32, v: u32) -> Self {
        Ttlv { tag, value: Value::Enumeration(v) }
    }
    /// A boolean item.
    pub fn boolean(tag: u32, v: bool) -> Self {
        Ttlv { tag, value: Value::Boolean(v) }
    }
    /// A text item.
    pub fn text(tag: u32, v: &str) -> Self {
        Ttlv { tag, value: Value::TextString(v.to_owned()) }
    }
    /// A byte string item.
    pub fn bytes(tag: u32, v: &[u8]) -> Self {
        Ttlv { tag, value: Value::ByteString(Zeroizing::new(v.to_vec())) }
    }

    /// Appends the encoding of this item to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let t = self.tag.to_be_bytes();
        out.extend_from_slice(&t[1..4]);
        let (ty, start) = (self.type_byte(), out.len());
        out.push(ty);
        out.extend_from_slice(&[0; 4]);
        let body = out.len();
        match &self.value {
            Value::Structure(items) => items.iter().for_each(|i| i.encode(out)),
            Value::Integer(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::LongInteger(v) | Value::DateTime(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::BigInteger(v) => out.extend_from_slice(v),
            Value::Enumeration(v) | Value::Interval(v) => out.extend_from_slice(&v.to_be_bytes()),
            Value::Boolean(v) => out.extend_from_slice(&u64::from(*v).to_be_bytes()),
            Value::TextString(v) => out.extend_from_slice(v.as_bytes()),
            Value::ByteString(v) => out.extend_from_slice(v),
        }
        let len = out.len() - body;
        out[start + 1..start + 5].copy_from_slice(&(len as u32).to_be_bytes());
        out.resize(body + padded(len), 0);
    }

    /// The encoding of this item.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    fn type_byte(&self) -> u8 {
        match self.value {
            Value::Structure(_) => ty::STRUCTURE,
            Value::Integer(_) => ty::INTEGER,
            Value::LongInteger(_) => ty::LONG_INTEGER,
            Value::BigInteger(_) => ty::BIG_INTEGER,
            Value::Enumeration(_) => ty::ENUMERATION,
            Value::Boolean(_) => ty::BOOLEAN,
            Value::TextString(_) => ty::TEXT_STRING,
            Value::ByteString(_) => ty::BYTE_STRING,
            Value::DateTime(_) => ty::DATE_TIME,
            Value::Interval(_) => ty::INTERVAL,
        }
    }

    /// Decodes exactly one item that fills `buf`.
    pub fn decode(buf: &[u8]) -> Result<Ttlv, DecodeError> {
        let mut items = 0usize;
        let (item, used) = decode_item(buf, 0, &mut items)?;
        if used != buf.len() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(item)
    }

    /// The first child with `tag` (for a structure).
    pub fn find(&self, tag: u32) -> Option<&Ttlv> {
        match &self.value {
            Value::Structure(items) => items.iter().find(|i| i.tag == tag),
            _ => None,
        }
    }

    /// Every child with `tag` (for a structure).
    pub fn find_all(&self, tag: u32) -> impl Iterator<Item = &Ttlv> {
        let items: &[Ttlv] = match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        };
        items.iter().filter(move |i| i.tag == tag)
    }

    /// The value as text.
    pub fn as_text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(s) => Some(s),
            _ => None,
        }
    }
    /// The value as bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        }
    }
    /// The value as an enumeration.
    pub fn as_enum(&self) -> Option<u32> {
        match self.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        }
    }
    /// The value as an integer.
    pub fn as_int(&self) -> Option<i32> {
        match self.value {
            Value::Integer(v) => Some(v),
            _ => None,
        }
    }
}

/// Reads the 8-byte header of an item: (tag, type, length). For framing a message off a stream.
pub fn header(b: &[u8; 8]) -> (u32, u8, u32) {
    (
        u32::from_be_bytes([0, b[0], b[1], b[2]]),
        b[3],
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    )
}

fn decode_item(buf: &[u8], depth: usize, items: &mut usize) -> Result<(Ttlv, usize), DecodeError> {
    *items += 1;
    if depth > MAX_DEPTH || *items > MAX_ITEMS {
        return Err(DecodeError::TooComplex);
    }
    let h: &[u8; 8] = buf.get(..8).and_then(|h| h.try_into().ok()).ok_or(DecodeError::Truncated)?;
    let (tag, ty, len) = header(h);
    let len = len as usize;
    let body = buf.get(8..).ok_or(DecodeError::Truncated)?;
    // Structures carry their exact length (items are already padded); other types are padded.
    let span = if ty == ty::STRUCTURE { len } else { padded(len) };
    if body.len() < span {
        return Err(DecodeError::Truncated);
    }
    let v = &body[..len];
    let fixed = |n: usize| if len == n { Ok(()) } else { Err(DecodeError::BadLength) };
    let value = match ty {
        ty::STRUCTURE => {
            let mut children = Vec::new();
            let mut p = 0;
            while p < len {
                let (child, used) = decode_item(&v[p..], depth + 1, items)?;
                children.push(child);
                p += used;
            }
            Value::Structure(children)
        }
        ty::INTEGER => {
            fixed(4)?;
            Value::Integer(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
        }
        ty::ENUMERATION => {
            fixed(4)?;
            Value::Enumeration(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
        }
        ty::INTERVAL => {
            fixed(4)?;
            Value::Interval(u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
        }
        ty::LONG_INTEGER | ty::DATE_TIME | ty::BOOLEAN => {
            fixed(8)?;
            let x = i64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]);
            match ty {
                ty::LONG_INTEGER => Value::LongInteger(x),
                ty::DATE_TIME => Value::DateTime(x),
                _ => match x {
                    0 => Value::Boolean(false),
                    1 => Value::Boolean(true),
                    _ => return Err(DecodeError::BadBoolean),
                },
            }
        }
        ty::BIG_INTEGER => {
            if len % 8 != 0 {
                return Err(DecodeError::BadLength);
            }
            Value::BigInteger(v.to_vec())
        }
        ty::TEXT_STRING => Value::TextString(String::from_utf8(v.to_vec()).map_err(|_| DecodeError::BadText)?),
        ty::BYTE_STRING => Value::ByteString(Zeroizing::new(v.to_vec())),
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok((Ttlv { tag, value }, 8 + span))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace() && *c != '|').collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // The encoding examples of the KMIP 1.4 specification, section 9.1.2 ("Examples"), each
    // shown there as tag | type | length | value.
    #[test]
    fn kmip_spec_examples() {
        let cases: Vec<(Ttlv, &str)> = vec![
            (Ttlv::int(0x420020, 8), "420020 | 02 | 00000004 | 00000008 00000000"),
            (
                Ttlv { tag: 0x420020, value: Value::LongInteger(123456789000000000) },
                "420020 | 03 | 00000008 | 01B69B4BA5749200",
            ),
            (
                Ttlv { tag: 0x420020, value: Value::BigInteger(hex("0000000003FD35EB6BC2DF4618080000")) },
                "420020 | 04 | 00000010 | 0000000003FD35EB 6BC2DF4618080000",
            ),
            (Ttlv::enumeration(0x420020, 255), "420020 | 05 | 00000004 | 000000FF 00000000"),
            (Ttlv::boolean(0x420020, true), "420020 | 06 | 00000008 | 0000000000000001"),
            (
                Ttlv::text(0x420020, "Hello World"),
                "420020 | 07 | 0000000B | 48656C6C6F20576F 726C640000000000",
            ),
            (Ttlv::bytes(0x420020, &[1, 2, 3]), "420020 | 08 | 00000003 | 0102030000000000"),
            (
                Ttlv { tag: 0x420020, value: Value::DateTime(0x47DA67F8) },
                "420020 | 09 | 00000008 | 0000000047DA67F8",
            ),
            (
                Ttlv { tag: 0x420020, value: Value::Interval(864000) },
                "420020 | 0A | 00000004 | 000D2F00 00000000",
            ),
            (
                Ttlv::structure(0x420020, vec![Ttlv::enumeration(0x420004, 254), Ttlv::int(0x420005, 255)]),
                "420020 | 01 | 00000020 | 420004 | 05 | 00000004 | 000000FE 00000000 | \
                 420005 | 02 | 00000004 | 000000FF 00000000",
            ),
        ];
        for (item, wire) in cases {
            let wire = hex(wire);
            assert_eq!(item.to_bytes(), wire, "{item:?}");
            assert_eq!(Ttlv::decode(&wire).unwrap(), item);
        }
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(Ttlv::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(Ttlv::decode(&hex("420020 02 00000004 00000008")), Err(DecodeError::Truncated));
        assert_eq!(Ttlv::decode(&hex("420020 02 00000005 0000000800000000")), Err(DecodeError::BadLength));
        assert_eq!(Ttlv::decode(&hex("420020 0B 00000000")), Err(DecodeError::UnknownType(0x0B)));
        assert_eq!(Ttlv::decode(&hex("420020 06 00000008 0000000000000002")), Err(DecodeError::BadBoolean));
        assert_eq!(Ttlv::decode(&hex("420020 07 00000002 FFFE000000000000")), Err(DecodeError::BadText));
        assert_eq!(
            Ttlv::decode(&hex("420020 02 00000004 0000000800000000 00")),
            Err(DecodeError::TrailingBytes)
        );
        // A structure whose length runs past the buffer, and one whose child overruns it.
        assert_eq!(Ttlv::decode(&hex("420020 01 00000018 420004 05 00000004 000000FE00000000")), Err(DecodeError::Truncated));
        assert_eq!(Ttlv::decode(&hex("420020 01 00000008 420004 05 00000004")), Err(DecodeError::Truncated));
        // Nesting past MAX_DEPTH.
        let mut deep = Ttlv::int(0x420005, 1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = Ttlv::structure(0x420020, vec![deep]);
        }
        assert_eq!(Ttlv::decode(&deep.to_bytes()), Err(DecodeError::TooComplex));
        // Huge declared lengths do not allocate or panic.
        assert_eq!(Ttlv::decode(&hex("420020 08 FFFFFFFF 00")), Err(DecodeError::Truncated));
        assert_eq!(Ttlv::decode(&hex("420020 01 FFFFFFF8")), Err(DecodeError::Truncated));
    }

    #[test]
    fn byte_strings_are_not_printed() {
        let s = format!("{:?}", Ttlv::bytes(0x420043, &[0xAB; 32]));
        assert!(s.contains("32 bytes") && !s.contains("ab") && !s.contains("171"));
    }
}

#[cfg(test)]
mod oasis_tests {
    //! Whole request messages from the OASIS KMIP 1.0 Use Cases document (which, unlike later
    //! versions, gives each request in binary TTLV hex), rebuilt item by item with this codec.
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn header(major: i32, minor: i32, extra: Vec<Ttlv>) -> Ttlv {
        let mut items = vec![Ttlv::structure(
            0x420069,
            vec![Ttlv::int(0x42006A, major), Ttlv::int(0x42006B, minor)],
        )];
        items.extend(extra);
        items.push(Ttlv::int(0x42000D, 1));
        Ttlv::structure(0x420077, items)
    }

    fn request(header: Ttlv, operation: u32, payload: Vec<Ttlv>) -> Vec<u8> {
        Ttlv::structure(
            0x420078,
            vec![
                header,
                Ttlv::structure(
                    0x42000F,
                    vec![Ttlv::enumeration(0x42005C, operation), Ttlv::structure(0x420079, payload)],
                ),
            ],
        )
        .to_bytes()
    }

    #[test]
    fn query_with_maximum_response_size() {
        // Use case 3.1.4-2: Query (operations, objects) with Maximum Response Size 256.
        let expect = "42007801000000904200770100000048420069010000002042006A0200000004000000010000000042006B020000000400000000000000004200500200000004000001000000000042000D0200000004000000010000000042000F010000003842005C0500000004000000180000000042007901000000204200740500000004000000010000000042007405000000040000000200000000";
        let got = request(
            header(1, 0, vec![Ttlv::int(0x420050, 256)]),
            0x18,
            vec![Ttlv::enumeration(0x420074, 1), Ttlv::enumeration(0x420074, 2)],
        );
        assert_eq!(got, hex(expect));
        assert_eq!(Ttlv::decode(&got).unwrap().to_bytes(), got);
    }

    #[test]
    fn locate_by_object_type_and_link() {
        // Use case 3.1.x: Locate a public key linked to a private key.
        let expect = "42007801000000F04200770100000038420069010000002042006A0200000004000000010000000042006B020000000400000000000000004200\
0D0200000004000000010000000042000F01000000A842005C05000000040000000800000000420079010000009042000801000000284200\
0A070000000B4F626A6563742054797065000000000042000B05000000040000000300000000420008010000005842000A07000000044C69\
6E6B0000000042000B010000004042004B0500000004000001030000000042004C070000002461323432666361342D656266302D34333938\
2D616336352D38373962616234393032353900000000";
        let attr = |name: &str, value: Ttlv| {
            Ttlv::structure(0x420008, vec![Ttlv::text(0x42000A, name), Ttlv { tag: 0x42000B, value: value.value }])
        };
        let got = request(
            header(1, 0, vec![]),
            0x08,
            vec![
                attr("Object Type", Ttlv::enumeration(0, 3)),
                attr(
                    "Link",
                    Ttlv::structure(
                        0,
                        vec![
                            Ttlv::enumeration(0x42004B, 0x103),
                            Ttlv::text(0x42004C, "a242fca4-ebf0-4398-ac65-879bab490259"),
                        ],
                    ),
                ),
            ],
        );
        assert_eq!(got, hex(expect));
        assert_eq!(Ttlv::decode(&got).unwrap().to_bytes(), got);
    }
}
