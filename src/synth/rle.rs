//! DICOM RLE Lossless encoding (PS3.5 Annex G), because dicom-rs decodes RLE but has no encoder.
//!
//! Why RLE at all: it is a transfer syntax that real archives hand out (Philips and older PACS exports), the
//! loader must decode it, and only a writer of our own lets tests cover it.
//!
//! The format: each 16-bit sample is split into byte planes ("Byte Segments"), most significant byte first
//! (G.2); each plane is PackBits-compressed row by row, never across a row boundary (G.3.1); segments are padded to
//! an even length and preceded by a 64-byte header of sixteen little-endian `u32`: the segment count, then the
//! byte offset of each segment from the start of the header, unused offsets 0 (G.5). One frame is one fragment.
//!
//! PackBits runs (G.3.1): a replicate run of `n` equal bytes (2..=128) is `[1 - n as i8, byte]`; a literal run of
//! `n` bytes (1..=128) is `[n - 1, bytes...]`; -128 is never emitted. Three or more equal bytes are always a
//! replicate run, as required; two equal bytes are folded into the surrounding literal when they sit between
//! literals (the recommended choice) and are otherwise a replicate run.

/// PackBits-encodes one row of bytes, appending to `out`.
pub fn packbits_encode_row(row: &[u8], out: &mut Vec<u8>) {
    let n = row.len();
    let run_at = |i: usize| -> usize {
        let b = row[i];
        row[i..n.min(i + 128)].iter().take_while(|&&x| x == b).count()
    };
    let flush_literal = |out: &mut Vec<u8>, literal: &[u8]| {
        for chunk in literal.chunks(128) {
            out.push((chunk.len() - 1) as u8);
            out.extend_from_slice(chunk);
        }
    };
    let mut literal_start = 0;
    let mut i = 0;
    while i < n {
        let run = run_at(i);
        let preceded_by_literal = i > literal_start;
        let followed_by_literal = i + run < n && run_at(i + run) == 1;
        let replicate = run >= 3 || (run == 2 && !(preceded_by_literal && followed_by_literal));
        if replicate {
            flush_literal(out, &row[literal_start..i]);
            out.push((1i16 - run as i16) as i8 as u8);
            out.push(row[i]);
            i += run;
            literal_start = i;
        } else {
            i += run;
        }
    }
    flush_literal(out, &row[literal_start..n]);
}

/// Encodes one frame of 16-bit words (`columns * rows`, row-major) as an RLE Lossless fragment: two segments,
/// high bytes then low bytes.
pub fn encode_rle_frame(words: &[u16], columns: usize) -> Vec<u8> {
    const HEADER_LEN: usize = 64;
    let columns = columns.max(1);
    let mut out = vec![0u8; HEADER_LEN];
    let mut offsets = [0u32; 15];
    let mut plane = Vec::with_capacity(columns);
    for (segment, shift) in [8u32, 0].into_iter().enumerate() {
        offsets[segment] = out.len() as u32;
        for row in words.chunks(columns) {
            plane.clear();
            plane.extend(row.iter().map(|w| (w >> shift) as u8));
            packbits_encode_row(&plane, &mut out);
        }
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    out[0..4].copy_from_slice(&2u32.to_le_bytes());
    for (k, offset) in offsets.iter().enumerate() {
        out[4 + 4 * k..8 + 4 * k].copy_from_slice(&offset.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference PackBits decoder, strict: rejects -128 and truncated runs.
    fn unpack(mut data: &[u8], expected_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < expected_len {
            let (&header, rest) = data.split_first().expect("truncated segment");
            let header = header as i8;
            assert_ne!(header, -128, "-128 must not be emitted");
            if header >= 0 {
                let n = header as usize + 1;
                out.extend_from_slice(&rest[..n]);
                data = &rest[n..];
            } else {
                let n = (1 - header as isize) as usize;
                out.extend(std::iter::repeat_n(rest[0], n));
                data = &rest[1..];
            }
        }
        assert_eq!(out.len(), expected_len, "a run crossed the expected end");
        out
    }

    fn round_trip_row(row: &[u8]) -> Vec<u8> {
        let mut encoded = Vec::new();
        packbits_encode_row(row, &mut encoded);
        assert_eq!(unpack(&encoded, row.len()), row);
        encoded
    }

    #[test]
    fn packbits_round_trips_edge_cases() {
        round_trip_row(&[]);
        round_trip_row(&[7]);
        round_trip_row(&[7, 7]);
        round_trip_row(&[1, 2, 2, 3]);
        round_trip_row(&[5; 128]);
        round_trip_row(&[5; 129]);
        round_trip_row(&[5; 300]);
        let ramp: Vec<u8> = (0..=255).chain(0..=255).collect();
        round_trip_row(&ramp);
        let mixed: Vec<u8> = (0..1000u32)
            .map(|i| if (i / 37) % 2 == 0 { 9 } else { (i * 31 % 251) as u8 })
            .collect();
        round_trip_row(&mixed);
    }

    #[test]
    fn packbits_uses_replicate_runs_for_three_or_more() {
        // [1, 2, 2, 2, 3]: literal 1, replicate 2x3, literal 3.
        assert_eq!(round_trip_row(&[1, 2, 2, 2, 3]), vec![0, 1, (-2i8) as u8, 2, 0, 3]);
        // A 2-run between literals is merged into one literal.
        assert_eq!(round_trip_row(&[1, 2, 2, 3]), vec![3, 1, 2, 2, 3]);
        // A 2-run at the start is a replicate run.
        assert_eq!(round_trip_row(&[4, 4, 3]), vec![(-1i8) as u8, 4, 0, 3]);
        // 128 equal bytes: one replicate run of -127.
        assert_eq!(round_trip_row(&[5; 128]), vec![(-127i8) as u8, 5]);
    }

    #[test]
    fn frame_layout_follows_annex_g() {
        let columns = 5;
        let words: Vec<u16> = (0..20u16).map(|i| i.wrapping_mul(4099) ^ 0xFC18).collect();
        let frame = encode_rle_frame(&words, columns);
        assert_eq!(frame.len() % 2, 0);
        let header: Vec<u32> = frame[..64]
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(header[0], 2);
        assert_eq!(header[1], 64);
        assert!(header[3..].iter().all(|&o| o == 0));
        let (start_hi, start_lo) = (header[1] as usize, header[2] as usize);
        assert_eq!(start_hi % 2, 0);
        assert_eq!(start_lo % 2, 0);
        // Decode row by row: no run may cross a row boundary, so each row decodes on its own.
        let decode_plane = |mut data: &[u8]| {
            let mut plane = Vec::new();
            for _ in 0..words.len() / columns {
                let mut encoded_row = Vec::new();
                let row = unpack(data, columns);
                packbits_encode_row(&row, &mut encoded_row);
                data = &data[encoded_row.len()..];
                plane.extend(row);
            }
            plane
        };
        let hi = decode_plane(&frame[start_hi..start_lo]);
        let lo = decode_plane(&frame[start_lo..]);
        let decoded: Vec<u16> = hi
            .iter()
            .zip(&lo)
            .map(|(&h, &l)| u16::from(h) << 8 | u16::from(l))
            .collect();
        assert_eq!(decoded, words);
    }
}
