//! Every length a DICOM file declares, checked against the bytes that are left, before dicom-rs reads the file.
//!
//! dicom-rs allocates and zero-fills a value's declared length before it reads the value (dicom-parser's
//! `StatefulDecoder::read_value*`, dicom-object's file meta reader): an element header claiming 0xFFFFFFF0 bytes costs
//! 4 GiB and seconds before the read fails, so one crafted or damaged file could stall a folder scan and fuzzing ran
//! at about one execution a second. A bounded reader does not help, because the allocation happens before the first
//! read. So the element structure is walked here first, skipping values (a seek), and the file is refused at the
//! first length that runs past its end, naming the element. The walk follows dicom-parser's `DataSetReader` token by
//! token (the same header decoders from dicom-encoding, so VRs and what counts as a sequence are decided exactly as the
//! parser will decide them, including implicit VR through the dictionary); wherever the parser would stop with an
//! error, the walk stops too and leaves the error to the parser. Deflated data sets are inflated twice with dicom-rs'
//! own adapter: once to count the inflated bytes (no memory kept), once to walk them.
//!
//! Patching dicom-rs (`[patch.crates-io]` with a vendored copy) would cover every caller too, but means carrying a
//! fork of three crates until a release; the walk is one pass over the headers, with values skipped, and keeps
//! guidesmith on the released crates.

use std::io::{self, BufRead, BufReader, Cursor, Read, Seek};
use std::path::Path;

use dicom_core::dictionary::DataDictionary;
use dicom_core::header::{HasLength, Header, Length, SequenceItemHeader};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::decode::{Decode, DecodeFrom};
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::TransferSyntaxIndex;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// How much of a file to walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extent {
    /// Up to and including the header of the top-level pixel data (what the header pass reads).
    Header,
    /// The whole file, pixel data fragments included.
    Whole,
}

/// A length that runs past the end of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LengthError {
    /// The element (or item, `(FFFE,E000)`) whose header declares the length.
    pub tag: Tag,
    /// Byte offset of that header, in the file (or in the inflated data set, for a deflated file).
    pub offset: u64,
    /// The declared length in bytes.
    pub claimed: u64,
    /// The bytes left after the header.
    pub remaining: u64,
    /// Whether the offsets count bytes of the inflated data set (deflated transfer syntax).
    pub inflated: bool,
}

impl std::fmt::Display for LengthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.tag {
            ITEM => Some("Item"),
            tag => StandardDataDictionary.by_tag(tag).map(|e| e.alias),
        };
        write!(
            f,
            "element ({:04X},{:04X}){} at byte {}{} claims {} bytes but only {} are left in the {}: the file is \
             truncated or damaged",
            self.tag.0,
            self.tag.1,
            name.map(|n| format!(" {n}")).unwrap_or_default(),
            self.offset,
            if self.inflated { " of the inflated data set" } else { "" },
            self.claimed,
            self.remaining,
            if self.inflated { "inflated data set" } else { "file" },
        )
    }
}

/// Item tag (FFFE,E000).
const ITEM: Tag = Tag(0xFFFE, 0xE000);
/// Item delimitation tag (FFFE,E00D).
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
/// Pixel data tag (7FE0,0010).
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
/// Transfer syntax UID in the file meta group.
const TRANSFER_SYNTAX: Tag = Tag(0x0002, 0x0010);
/// Largest inflated data set walked (4 GiB, more than any CT file holds); a deflated stream that inflates to more is
/// refused like a length past the end.
const MAX_INFLATED_BYTES: u64 = 1 << 32;

/// Check a Part 10 file (preamble and `DICM`, or `DICM` alone, then the file meta group and the data set).
///
/// Returns `Ok` when every length fits, and also when the file is not a Part 10 file, has no usable transfer syntax or
/// breaks off in a way dicom-rs reports itself: those are left to the parser.
pub(crate) fn check_file(path: &Path, extent: Extent) -> Result<(), LengthError> {
    let Ok(file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let Ok(file_len) = file.metadata().map(|m| m.len()) else {
        return Ok(());
    };
    let mut reader = BufReader::new(file);
    // Preamble detection as dicom-object does it.
    let start = match reader.fill_buf() {
        Ok(buf) if buf.len() >= 132 && &buf[128..132] == b"DICM" => 132,
        Ok(buf) if buf.len() >= 4 && &buf[0..4] == b"DICM" => 4,
        _ => return Ok(()),
    };
    if reader.seek_relative(start as i64).is_err() {
        return Ok(());
    }
    let Some((ts_uid, data_start)) = walk_meta(&mut reader, start, file_len)? else {
        return Ok(());
    };
    let Some(ts) = TransferSyntaxRegistry.get(&ts_uid) else {
        return Ok(());
    };
    match ts.codec() {
        Codec::Dataset(Some(adapter)) => {
            // Deflated: count the inflated bytes, then walk them.
            let inflated_len = {
                let mut stream = adapter.adapt_reader(Box::new(reader.by_ref().take(u64::MAX)));
                count_bytes(&mut stream)
            };
            if inflated_len > MAX_INFLATED_BYTES {
                return Err(LengthError {
                    tag: Tag(0x0002, 0x0010),
                    offset: data_start,
                    claimed: inflated_len,
                    remaining: MAX_INFLATED_BYTES,
                    inflated: true,
                });
            }
            if reader.seek(io::SeekFrom::Start(data_start)).is_err() {
                return Ok(());
            }
            let mut stream = Skipping(adapter.adapt_reader(Box::new(reader)));
            let Some(decoder) = ts.decoder_for::<Skipping<Box<dyn Read>>>() else {
                return Ok(());
            };
            walk_data_set(&mut stream, &*decoder, 0, inflated_len, extent, true)
        }
        Codec::Dataset(None) => Ok(()),
        Codec::None | Codec::EncapsulatedPixelData(..) => {
            let Some(decoder) = ts.decoder_for::<BufReader<std::fs::File>>() else {
                return Ok(());
            };
            walk_data_set(&mut reader, &*decoder, data_start, file_len, extent, false)
        }
    }
}

/// Check a bare data set (no preamble, no meta group) held in memory, encoded with `ts_uid`.
pub(crate) fn check_data_set(bytes: &[u8], ts_uid: &str, extent: Extent) -> Result<(), LengthError> {
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return Ok(());
    };
    if !matches!(ts.codec(), Codec::None | Codec::EncapsulatedPixelData(..)) {
        return Ok(());
    }
    let Some(decoder) = ts.decoder_for::<Cursor<&[u8]>>() else {
        return Ok(());
    };
    let mut cursor = Cursor::new(bytes);
    walk_data_set(&mut cursor, &*decoder, 0, bytes.len() as u64, extent, false)
}

/// A byte source that can skip a value without reading it into memory.
trait Source: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

impl Source for BufReader<std::fs::File> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.seek_relative(n)
    }
}

impl Source for Cursor<&[u8]> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.set_position(self.position().saturating_add(n));
        Ok(())
    }
}

/// A stream (an inflated data set) skipped by reading and discarding.
struct Skipping<R>(R);

impl<R: Read> Read for Skipping<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Read> Source for Skipping<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut self.0.by_ref().take(n), &mut io::sink())?;
        if copied == n {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        }
    }
}

/// Bytes a stream yields before it ends or fails (a failure is where the parser will stop too).
fn count_bytes(stream: &mut dyn Read) -> u64 {
    let mut buf = [0u8; 1 << 14];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return total,
            Ok(n) => {
                total += n as u64;
                if total > MAX_INFLATED_BYTES {
                    return total;
                }
            }
        }
    }
}

fn length_error(tag: Tag, header_at: u64, claimed: u32, pos: u64, end: u64, inflated: bool) -> LengthError {
    LengthError {
        tag,
        offset: header_at,
        claimed: u64::from(claimed),
        remaining: end.saturating_sub(pos),
        inflated,
    }
}

/// Walk the file meta group as dicom-object reads it (group length first, then elements while fewer bytes than the
/// group length were read). Returns the transfer syntax and where the data set starts, or `None` where dicom-object
/// would fail on its own.
fn walk_meta(
    reader: &mut BufReader<std::fs::File>,
    start: u64,
    file_len: u64,
) -> Result<Option<(String, u64)>, LengthError> {
    let decoder = dicom_encoding::decode::file_header_decoder();
    let mut pos = start;
    let Ok((first, read)) = Decode::decode_header(&decoder, reader) else {
        return Ok(None);
    };
    pos += read as u64;
    if first.tag() != Tag(0x0002, 0x0000) || first.length() != Length(4) {
        return Ok(None);
    }
    let mut word = [0u8; 4];
    if reader.read_exact(&mut word).is_err() {
        return Ok(None);
    }
    pos += 4;
    let group_length = u32::from_le_bytes(word);
    let mut total: u32 = 0;
    let mut ts_uid = None;
    while total < group_length {
        let header_at = pos;
        let Ok((header, read)) = Decode::decode_header(&decoder, reader) else {
            return Ok(None);
        };
        pos += read as u64;
        let Some(len) = header.length().get() else {
            return Ok(None);
        };
        if u64::from(len) > file_len.saturating_sub(pos) {
            return Err(length_error(header.tag(), header_at, len, pos, file_len, false));
        }
        if header.tag() == TRANSFER_SYNTAX {
            // Any length the file holds (checked above): writers pad the UID, e.g. with NULs.
            let mut value = vec![0u8; len as usize];
            if reader.read_exact(&mut value).is_err() {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&value);
            ts_uid = Some(
                text.trim_end_matches(|c: char| c.is_whitespace() || c == '\0')
                    .to_string(),
            );
        } else if reader.skip(u64::from(len)).is_err() {
            return Ok(None);
        }
        pos += u64::from(len);
        total = total.saturating_add(read as u32).saturating_add(len);
    }
    Ok(ts_uid.map(|ts| (ts, pos)))
}

/// What an open sequence or item is, as dicom-parser's `DataSetReader` tracks it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Sequence,
    Item,
}

#[derive(Clone, Copy)]
struct Open {
    token: Token,
    pixel_data: bool,
    len: Length,
    /// The parser's position after the header, where the length counts from.
    base: u64,
    /// Where the header is in the source (for messages).
    header_at: u64,
}

/// Bytes dicom-parser reads for a primitive value of `len` bytes: numeric VRs read whole numbers only (an odd length
/// leaves a byte unread, and the parser then reads the next header from there), everything else reads `len`.
fn consumed(vr: VR, len: u32) -> u32 {
    match vr {
        VR::US | VR::OW | VR::SS => len & !1,
        VR::AT | VR::FL | VR::OF | VR::SL | VR::UL | VR::OL => len & !3,
        VR::FD | VR::OD | VR::SV | VR::OV | VR::UV => len & !7,
        _ => len,
    }
}

/// Walk a data set from `start` (the source is there) to `end`, checking each defined length against the bytes left.
///
/// Two offsets are kept, as the parser keeps them: `at`, where the source really is, and `pos`, the parser's position
/// counter, which adds a value's declared length even where fewer bytes were read (`consumed`) and decides where
/// sequences and items of defined length end.
fn walk_data_set<S: Source>(
    src: &mut S,
    decoder: &dyn DecodeFrom<S>,
    start: u64,
    end: u64,
    extent: Extent,
    inflated: bool,
) -> Result<(), LengthError> {
    let fits = |tag: Tag, header_at: u64, len: Length, at: u64| -> Result<(), LengthError> {
        match len.get() {
            Some(n) if u64::from(n) > end.saturating_sub(at) => Err(length_error(tag, header_at, n, at, end, inflated)),
            _ => Ok(()),
        }
    };
    let (mut at, mut pos) = (start, start);
    let mut open: Vec<Open> = Vec::new();
    let mut in_sequence = false;
    let mut check_delimiters = false;
    // After an encapsulated pixel data header: its first item comes next (the offset table if not empty).
    let mut pixel_start = false;
    let mut offset_table_next = false;
    loop {
        // Sequences and items of defined length end where their length says.
        if check_delimiters {
            if let Some(top) = open.last() {
                if let Some(len) = top.len.get() {
                    let top_end = top.base + u64::from(len);
                    if top_end == pos {
                        in_sequence = top.token == Token::Item;
                        open.pop();
                        continue;
                    }
                    if top_end < pos {
                        return Ok(()); // the parser reports an inconsistent sequence end here
                    }
                }
            }
            check_delimiters = false;
        }
        if in_sequence || pixel_start {
            let header_at = at;
            let Ok(header) = decoder.decode_item_header(src) else {
                return Ok(());
            };
            at += 8;
            pos += 8;
            let first_pixel_item = std::mem::take(&mut pixel_start);
            match header {
                SequenceItemHeader::Item { len } => {
                    fits(ITEM, header_at, len, at)?;
                    in_sequence = false;
                    let Some(parent) = open.last() else {
                        return Ok(());
                    };
                    let pixel_data = parent.pixel_data;
                    open.push(Open {
                        token: Token::Item,
                        pixel_data,
                        len,
                        base: pos,
                        header_at,
                    });
                    if len == Length(0) {
                        check_delimiters = true;
                    } else if first_pixel_item {
                        offset_table_next = true;
                    }
                }
                SequenceItemHeader::ItemDelimiter if first_pixel_item => return Ok(()),
                SequenceItemHeader::ItemDelimiter => {
                    open.pop();
                    in_sequence = true;
                    check_delimiters = true;
                }
                SequenceItemHeader::SequenceDelimiter => {
                    open.pop();
                    in_sequence = false;
                    check_delimiters = !first_pixel_item;
                }
            }
        } else if let Some(&Open {
            token: Token::Item,
            pixel_data: true,
            len,
            header_at,
            ..
        }) = open.last()
        {
            // A pixel data fragment, or the offset table (read as whole 32-bit words).
            let Some(n) = len.get() else {
                return Ok(());
            };
            fits(ITEM, header_at, len, at)?;
            let read = if std::mem::take(&mut offset_table_next) {
                n & !3
            } else {
                n
            };
            if src.skip(u64::from(read)).is_err() {
                return Ok(());
            }
            at += u64::from(read);
            pos += u64::from(read);
            check_delimiters = true;
        } else {
            let header_at = at;
            let Ok((header, read)) = decoder.decode_header(src) else {
                return Ok(());
            };
            at += read as u64;
            pos += read as u64;
            let tag = header.tag();
            let len = header.length();
            if tag == ITEM_DELIMITER && header.vr() != VR::SQ {
                // Closes an item; outside any, the parser ignores it. Its length field is not used.
                if !open.is_empty() {
                    in_sequence = true;
                    open.pop();
                    check_delimiters = true;
                }
                continue;
            }
            fits(tag, header_at, len, at)?;
            if open.is_empty() && extent == Extent::Header && tag >= PIXEL_DATA {
                return Ok(()); // the header pass stops here (dicom-object's `read_until`)
            }
            if tag == PIXEL_DATA && len.is_undefined() && header.vr() != VR::SQ {
                // Encapsulated pixel data: a sequence of fragments, the first being the offset table.
                open.push(Open {
                    token: Token::Sequence,
                    pixel_data: true,
                    len: Length::UNDEFINED,
                    base: pos,
                    header_at,
                });
                pixel_start = true;
            } else if header.vr() == VR::SQ || len.is_undefined() {
                // A sequence; the parser reads any other element of undefined length as one too.
                in_sequence = true;
                open.push(Open {
                    token: Token::Sequence,
                    pixel_data: false,
                    len,
                    base: pos,
                    header_at,
                });
                if len == Length(0) {
                    check_delimiters = true;
                }
            } else {
                let read = consumed(header.vr(), len.0);
                if src.skip(u64::from(read)).is_err() {
                    return Ok(());
                }
                at += u64::from(read);
                pos += u64::from(len.0);
                check_delimiters = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit VR little endian element header with a 4-byte length.
    fn long_header(group: u16, element: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&group.to_le_bytes());
        h.extend_from_slice(&element.to_le_bytes());
        h.extend_from_slice(vr);
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&len.to_le_bytes());
        h
    }

    fn item(len: u32) -> Vec<u8> {
        let mut h = vec![0xFE, 0xFF, 0x00, 0xE0];
        h.extend_from_slice(&len.to_le_bytes());
        h
    }

    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

    #[test]
    fn a_value_longer_than_the_rest_is_refused_with_its_tag() {
        let mut bytes = long_header(0x0019, 0x1001, b"OB", 0xFFFF_FFF0);
        bytes.extend_from_slice(&[0; 10]);
        let err = check_data_set(&bytes, EXPLICIT_LE, Extent::Whole).expect_err("too long");
        assert_eq!(err.tag, Tag(0x0019, 0x1001));
        assert_eq!((err.offset, err.claimed, err.remaining), (0, 0xFFFF_FFF0, 10));
        let text = err.to_string();
        assert!(
            text.contains("(0019,1001)") && text.contains("only 10 are left"),
            "{text}"
        );
    }

    #[test]
    fn items_and_nested_values_are_checked() {
        // SQ of undefined length, an item of undefined length, a UT inside claiming too much.
        let mut bytes = long_header(0x0008, 0x1140, b"SQ", 0xFFFF_FFFF);
        bytes.extend(item(0xFFFF_FFFF));
        bytes.extend(long_header(0x0008, 0x1155, b"UT", 1000));
        bytes.extend_from_slice(&[b'1'; 20]);
        let err = check_data_set(&bytes, EXPLICIT_LE, Extent::Whole).expect_err("nested");
        assert_eq!((err.tag, err.claimed, err.remaining), (Tag(0x0008, 0x1155), 1000, 20));
        // An item claiming more than is left.
        let mut bytes = long_header(0x0008, 0x1140, b"SQ", 0xFFFF_FFFF);
        bytes.extend(item(5000));
        bytes.extend_from_slice(&[0; 16]);
        let err = check_data_set(&bytes, EXPLICIT_LE, Extent::Whole).expect_err("item");
        assert_eq!((err.tag, err.claimed, err.remaining), (ITEM, 5000, 16));
        assert!(err.to_string().contains("(FFFE,E000) Item"), "{err}");
    }

    #[test]
    fn pixel_data_fragments_are_checked_in_a_whole_walk_only() {
        let mut bytes = long_header(0x7FE0, 0x0010, b"OB", 0xFFFF_FFFF);
        bytes.extend(item(0)); // empty offset table
        bytes.extend(item(0x7FFF_0000));
        bytes.extend_from_slice(&[0; 64]);
        let err = check_data_set(&bytes, EXPLICIT_LE, Extent::Whole).expect_err("fragment");
        assert_eq!((err.tag, err.claimed), (ITEM, 0x7FFF_0000));
        assert_eq!(check_data_set(&bytes, EXPLICIT_LE, Extent::Header), Ok(()));
    }

    #[test]
    fn well_formed_data_sets_pass() {
        // A defined-length sequence with one defined-length item holding a short string, then native pixel data.
        let mut inner = vec![0x08, 0x00, 0x50, 0x11, b'U', b'I', 4, 0];
        inner.extend_from_slice(b"1.2\0");
        let mut bytes = long_header(0x0008, 0x1140, b"SQ", (inner.len() + 8) as u32);
        bytes.extend(item(inner.len() as u32));
        bytes.extend(inner);
        bytes.extend(long_header(0x7FE0, 0x0010, b"OW", 8));
        bytes.extend_from_slice(&[1; 8]);
        assert_eq!(check_data_set(&bytes, EXPLICIT_LE, Extent::Whole), Ok(()));
        // The same pixel data cut short is refused by the header walk already.
        let cut = &bytes[..bytes.len() - 3];
        let err = check_data_set(cut, EXPLICIT_LE, Extent::Header).expect_err("cut");
        assert_eq!((err.tag, err.claimed, err.remaining), (PIXEL_DATA, 8, 5));
    }

    #[test]
    fn odd_numeric_lengths_are_followed_as_the_parser_reads_them() {
        // An AT value of odd length 5: the parser reads one tag (4 bytes) and takes the next header from the fifth
        // byte, where an OB header claiming 0xFFFFFFF0 starts (found by fuzzing, in a deflated file).
        let mut bytes = vec![0x20, 0x00, 0x65, 0x91, b'A', b'T', 5, 0, 0x08, 0x00, 0x16, 0x00];
        bytes.extend(long_header(0x0019, 0x1001, b"OB", 0xFFFF_FFF0));
        bytes.extend_from_slice(&[0; 30]);
        let err = check_data_set(&bytes, EXPLICIT_LE, Extent::Whole).expect_err("desynchronised header");
        assert_eq!(
            (err.tag, err.offset, err.claimed),
            (Tag(0x0019, 0x1001), 12, 0xFFFF_FFF0)
        );
    }

    #[test]
    fn implicit_vr_sequences_are_found_through_the_dictionary() {
        // (0008,1140) ReferencedImageSequence, implicit VR, defined length 16: one item of 8 bytes whose element
        // (0008,1150) claims 4000 bytes.
        let mut bytes = vec![0x08, 0x00, 0x40, 0x11];
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend(item(8));
        bytes.extend_from_slice(&[0x08, 0x00, 0x50, 0x11]);
        bytes.extend_from_slice(&4000u32.to_le_bytes());
        let err = check_data_set(&bytes, "1.2.840.10008.1.2", Extent::Whole).expect_err("implicit");
        assert_eq!((err.tag, err.claimed, err.remaining), (Tag(0x0008, 0x1150), 4000, 0));
    }
}
