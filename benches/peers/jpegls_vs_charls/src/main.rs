//! Peer measurement: the pure-Rust `pure_jpegls` decoder against CharLS (the C++ codec behind dicom-pixeldata's
//! `charls` feature) on every JPEG-LS file of `$GUIDESMITH_DATA/dicom/syntaxes`.
//!
//! For each JPEG-LS frame: decode it with CharLS through dicom-pixeldata (`decode_pixel_data_frame`), with CharLS
//! called directly on the frame's bytes (`charls::CharLS::decode`, what the dicom-pixeldata adapter calls), and with
//! `jpegls::decode` on the frame's bytes from `frame_pixel_data`, as guidesmith's `decode_jpeg_ls` does. Samples
//! (low BitsStored bits, sign-extended when PixelRepresentation is 1) are compared between the decoders and against
//! the uncompressed reference: `CT2_UNC` for CT2, the explicit VR little endian file of mr-slice for the MR files.
//!
//! Timing covers the decode call only (each file is parsed once beforehand), on one thread, the three decoders
//! interleaved in rotating order, best and median of REPS repetitions after WARMUP unmeasured ones. Both wall time
//! and the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) are taken: on a shared machine a decode longer than the
//! scheduler's time slice is preempted more often than a short one, which inflates wall time of the slower decoder;
//! thread CPU time is not inflated that way, so the ratio is taken from it.
//!
//! Usage (Linux): `cargo run --release -- [DATA_DIR] [REPS]` (defaults: $GUIDESMITH_DATA, else /work/shared/data; 50).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use dicom_encoding::adapters::PixelDataObject;
use dicom_object::{open_file, DefaultDicomObject, Tag};
use dicom_pixeldata::PixelDecoder;

const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
const JPEG_LS_NEAR_LOSSLESS: &str = "1.2.840.10008.1.2.4.81";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const WARMUP: usize = 3;
const DECODERS: [&str; 3] = ["CharLS via dicom-pixeldata", "CharLS direct", "pure_jpegls"];

/// How one file's samples are stored.
#[derive(Clone, Copy)]
struct Format {
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
}

/// Best and median of wall and thread-CPU times, ms.
struct Times {
    wall: (f64, f64),
    cpu: (f64, f64),
}

struct Row {
    name: String,
    ts: String,
    file_bytes: u64,
    frame_bytes: usize,
    precision_near: String,
    times: Vec<Option<Times>>,
    charls_vs_ref: String,
    pure_vs_ref: String,
    pure_vs_charls: String,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("GUIDESMITH_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/work/shared/data"));
    let reps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50).max(1);
    let syntaxes = data.join("dicom/syntaxes");

    let mut mr_files: Vec<PathBuf> = std::fs::read_dir(syntaxes.join("mr-slice"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    mr_files.sort();
    let mut cases = vec![
        (syntaxes.join("CT2_JLSL"), syntaxes.join("CT2_UNC")),
        (syntaxes.join("CT2_JLSN"), syntaxes.join("CT2_UNC")),
    ];
    let mut mr_reference = None;
    let mut mr_cases = Vec::new();
    for p in &mr_files {
        let ts = transfer_syntax(p)?;
        println!("{}: {ts}", short_name(p));
        if ts == EXPLICIT_LE && mr_reference.is_none() {
            mr_reference = Some(p.clone());
        } else if ts == JPEG_LS_LOSSLESS || ts == JPEG_LS_NEAR_LOSSLESS {
            mr_cases.push(p.clone());
        }
    }
    let mr_reference = mr_reference.ok_or_else(|| anyhow!("no explicit VR little endian file in mr-slice"))?;
    cases.extend(mr_cases.into_iter().map(|p| (p, mr_reference.clone())));

    let mut rows = Vec::new();
    for (file, reference) in &cases {
        match run_case(file, reference, reps) {
            Ok(row) => rows.push(row),
            Err(e) => println!("{}: error: {e:#}", short_name(file)),
        }
    }

    println!("\nreps {reps} (+{WARMUP} warm-up), decoders interleaved, one thread; ms as best / median");
    println!("| file | transfer syntax | file size | frame bytes | P / NEAR | CharLS via dicom-pixeldata, CPU | CharLS direct, CPU | pure_jpegls, CPU | ratio pure / CharLS-pixeldata (CPU median) | CharLS-pixeldata wall | pure_jpegls wall |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let cell = |t: &Option<Times>, cpu: bool| match t {
            Some(t) => {
                let (b, m) = if cpu { t.cpu } else { t.wall };
                format!("{b:.2} / {m:.2}")
            }
            None => "-".into(),
        };
        let ratio = match (&r.times[0], &r.times[2]) {
            (Some(c), Some(p)) => format!("{:.2}", p.cpu.1 / c.cpu.1),
            _ => "-".into(),
        };
        println!(
            "| {} | {} | {} B | {} B | {} | {} | {} | {} | {ratio} | {} | {} |",
            r.name,
            r.ts,
            r.file_bytes,
            r.frame_bytes,
            r.precision_near,
            cell(&r.times[0], true),
            cell(&r.times[1], true),
            cell(&r.times[2], true),
            cell(&r.times[0], false),
            cell(&r.times[2], false),
        );
    }
    println!("\n| file | reference | CharLS vs reference | pure_jpegls vs reference | pure_jpegls vs CharLS |");
    println!("|---|---|---|---|---|");
    for ((_, reference), r) in cases.iter().zip(&rows) {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            short_name(reference),
            r.charls_vs_ref,
            r.pure_vs_ref,
            r.pure_vs_charls
        );
    }
    Ok(())
}

fn run_case(file: &Path, reference: &Path, reps: usize) -> Result<Row> {
    let obj = open_file(file).with_context(|| format!("cannot open {}", file.display()))?;
    let ts = obj.meta().transfer_syntax().trim_end_matches('\0').to_string();
    let cols = u32::from(obj.cols().context("no Columns")?);
    let rows = u32::from(obj.rows().context("no Rows")?);
    let format = file_format(&obj)?;
    let frame = obj.frame_pixel_data(0).context("no frame 0")?.into_owned();

    // Correctness: one decode each.
    let via_pixeldata = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| anyhow!("CharLS via dicom-pixeldata: {e}"))?;
    let charls_samples = samples(via_pixeldata.data(), format);
    let direct = charls::CharLS::default()
        .decode(&frame)
        .map_err(|e| anyhow!("CharLS direct: {e}"))?;
    anyhow::ensure!(
        samples(&direct, format) == charls_samples,
        "CharLS direct differs from dicom-pixeldata"
    );
    let reference_obj = open_file(reference)?;
    let reference_samples = samples(
        reference_obj
            .decode_pixel_data()
            .map_err(|e| anyhow!("reference: {e}"))?
            .data(),
        file_format(&reference_obj)?,
    );
    let (pure_vs_ref, pure_vs_charls, pure_ok) = match jpegls::decode(&frame, cols, rows) {
        Ok((words, w, h)) if (w, h) == (cols, rows) => {
            let s: Vec<i32> = words.iter().map(|&v| normalise(u32::from(v), format)).collect();
            (compare(&s, &reference_samples), compare(&s, &charls_samples), true)
        }
        Ok((_, w, h)) => (format!("wrong size {w}x{h}"), "-".into(), false),
        Err(e) => (format!("refused: {e}"), "-".into(), false),
    };

    // Timing: decode call only, interleaved in rotating order.
    let mut wall = [Vec::new(), Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new(), Vec::new()];
    for rep in 0..WARMUP + reps {
        for k in 0..DECODERS.len() {
            let which = (rep + k) % DECODERS.len();
            if which == 2 && !pure_ok {
                continue;
            }
            let (start_wall, start_cpu) = (Instant::now(), thread_cpu_s());
            match which {
                0 => drop(black_box(obj.decode_pixel_data_frame(0).map_err(|e| anyhow!("{e}"))?)),
                1 => drop(black_box(
                    charls::CharLS::default()
                        .decode(black_box(&frame))
                        .map_err(|e| anyhow!("{e}"))?,
                )),
                _ => {
                    let stream = obj.frame_pixel_data(0).context("no frame 0")?;
                    drop(black_box(jpegls::decode(black_box(&stream), cols, rows)?));
                }
            }
            let (cpu_ms, wall_ms) = (
                (thread_cpu_s() - start_cpu) * 1e3,
                start_wall.elapsed().as_secs_f64() * 1e3,
            );
            if rep >= WARMUP {
                wall[which].push(wall_ms);
                cpu[which].push(cpu_ms);
            }
        }
    }
    let times = (0..DECODERS.len())
        .map(|i| {
            (!wall[i].is_empty()).then(|| Times {
                wall: best_median(&mut wall[i]),
                cpu: best_median(&mut cpu[i]),
            })
        })
        .collect();
    let (precision, near) = jpegls_header(&frame);
    Ok(Row {
        name: short_name(file),
        ts,
        file_bytes: std::fs::metadata(file)?.len(),
        frame_bytes: frame.len(),
        precision_near: format!("{precision} / {near}"),
        times,
        charls_vs_ref: compare(&charls_samples, &reference_samples),
        pure_vs_ref,
        pure_vs_charls,
    })
}

/// CPU time consumed by the calling thread, seconds.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is supported on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn transfer_syntax(path: &Path) -> Result<String> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_until(Tag(0x0008, 0x0000))
        .open_file(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(obj.meta().transfer_syntax().trim_end_matches('\0').to_string())
}

fn file_format(obj: &DefaultDicomObject) -> Result<Format> {
    Ok(Format {
        bits_allocated: obj.bits_allocated().context("no BitsAllocated")?,
        bits_stored: obj.bits_stored().context("no BitsStored")?,
        signed: obj.element(Tag(0x0028, 0x0103))?.to_int::<u16>()? == 1,
    })
}

/// Samples as stored values: low `bits_stored` bits, sign-extended when signed.
fn samples(bytes: &[u8], f: Format) -> Vec<i32> {
    if f.bits_allocated == 8 {
        bytes.iter().map(|&b| normalise(u32::from(b), f)).collect()
    } else {
        bytes
            .chunks_exact(2)
            .map(|c| normalise(u32::from(u16::from_ne_bytes([c[0], c[1]])), f))
            .collect()
    }
}

fn normalise(raw: u32, f: Format) -> i32 {
    let bits = u32::from(f.bits_stored);
    let v = raw & ((1u32 << bits) - 1);
    if f.signed && v >> (bits - 1) == 1 {
        v as i32 - (1i32 << bits)
    } else {
        v as i32
    }
}

fn compare(a: &[i32], b: &[i32]) -> String {
    if a.len() != b.len() {
        return format!("length {} vs {}", a.len(), b.len());
    }
    let (mut max, mut count) = (0u32, 0usize);
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        count += usize::from(d != 0);
    }
    if count == 0 {
        "exact".into()
    } else {
        format!("max {max}, {count} of {} differ", a.len())
    }
}

/// Sample precision (SOF55) and NEAR (first SOS) of a JPEG-LS stream, for the table.
fn jpegls_header(s: &[u8]) -> (String, String) {
    let (mut precision, mut near) = ("?".to_string(), "?".to_string());
    let mut i = 2;
    while i + 4 <= s.len() && s[i] == 0xFF {
        let marker = s[i + 1];
        let len = usize::from(u16::from_be_bytes([s[i + 2], s[i + 3]]));
        match marker {
            0xF7 if i + 4 < s.len() => precision = s[i + 4].to_string(),
            0xDA => {
                let ns = usize::from(*s.get(i + 4).unwrap_or(&0));
                near = s.get(i + 5 + 2 * ns).map_or("?".into(), |n| n.to_string());
                break;
            }
            _ => {}
        }
        i += 2 + len;
    }
    (precision, near)
}

fn best_median(t: &mut [f64]) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    (t[0], t[t.len() / 2])
}

fn short_name(p: &Path) -> String {
    let parent = p
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match parent.as_deref() {
        Some("mr-slice") => format!("mr-slice/{name}"),
        _ => name,
    }
}
