//! NumPy `.npy` output of a volume (int16, C order, shape (k, j, i) = (slices, rows, columns)).
//!
//! Researchers and the peer benchmark harness read volumes with NumPy; `.npy` is the simplest lossless exchange
//! format that carries shape and type. Geometry is not part of `.npy`; `guidesmith info --json` gives it.

use std::io::Write;

use crate::volume::Volume;

/// Write the HU samples of `volume` as a version 1.0 `.npy` array.
pub fn write_npy(volume: &Volume, out: &mut dyn Write) -> std::io::Result<()> {
    let [nx, ny, nz] = volume.geometry.dims;
    let dict = format!("{{'descr': '<i2', 'fortran_order': False, 'shape': ({nz}, {ny}, {nx}), }}");
    // magic (6) + version (2) + header length (2) + dict + padding + '\n', total a multiple of 64
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + pad + 1;
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&(header_len as u16).to_le_bytes())?;
    out.write_all(dict.as_bytes())?;
    out.write_all(&vec![b' '; pad])?;
    out.write_all(b"\n")?;
    let mut buf = Vec::with_capacity(1 << 16);
    for chunk in volume.hu.chunks(1 << 15) {
        buf.clear();
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        out.write_all(&buf)?;
    }
    Ok(())
}
