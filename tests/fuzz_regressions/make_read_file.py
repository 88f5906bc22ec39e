"""Tiny synthetic DICOM files whose element headers claim far more bytes than the file holds.

The regression inputs of tests/fuzz_regressions.rs (target read_file): python3 make_read_file.py read_file
"""
import struct, sys, os
out = sys.argv[1]
def el(group, elem, vr, value):
    if len(value) % 2: value += b'\0' if vr in (b'UI', b'OB') else b' '
    if vr in (b'OB', b'OW', b'OF', b'SQ', b'UT', b'UN'):
        return struct.pack('<HH', group, elem) + vr + b'\0\0' + struct.pack('<I', len(value)) + value
    return struct.pack('<HH', group, elem) + vr + struct.pack('<H', len(value)) + value
def long_header(group, elem, vr, length):
    return struct.pack('<HH', group, elem) + vr + b'\0\0' + struct.pack('<I', length)
def item(length):
    return struct.pack('<HHI', 0xFFFE, 0xE000, length)
CT = b'1.2.840.10008.5.1.4.1.1.2'
def part10(dataset, ts=b'1.2.840.10008.1.2.1'):
    meta = el(2, 1, b'OB', b'\0\1') + el(2, 2, b'UI', CT) + el(2, 3, b'UI', b'2.25.1') + el(2, 0x10, b'UI', ts)
    return b'\0' * 128 + b'DICM' + el(2, 0, b'UL', struct.pack('<I', len(meta))) + meta + dataset
def ct_header():
    return (el(8, 0x16, b'UI', CT) + el(8, 0x18, b'UI', b'2.25.1') + el(8, 0x60, b'CS', b'CT')
            + el(0x20, 0x0D, b'UI', b'2.25.2') + el(0x20, 0x0E, b'UI', b'2.25.3')
            + el(0x20, 0x32, b'DS', b'0\\0\\0') + el(0x20, 0x37, b'DS', b'1\\0\\0\\0\\1\\0')
            + el(0x28, 0x02, b'US', struct.pack('<H', 1)) + el(0x28, 0x04, b'CS', b'MONOCHROME2')
            + el(0x28, 0x10, b'US', struct.pack('<H', 4)) + el(0x28, 0x11, b'US', struct.pack('<H', 4))
            + el(0x28, 0x30, b'DS', b'1\\1') + el(0x28, 0x100, b'US', struct.pack('<H', 16))
            + el(0x28, 0x101, b'US', struct.pack('<H', 16)) + el(0x28, 0x103, b'US', struct.pack('<H', 1)))
pixels = long_header(0x7FE0, 0x10, b'OW', 32) + bytes(32)
files = {
    # a private OB element before the pixel data claiming 0xFFFFFFF0 bytes
    'private_ob_4gib.dcm': part10(ct_header() + long_header(0x0019, 0x1001, b'OB', 0xFFFFFFF0) + pixels),
    # the pixel data claims 0xFFFFFFF0 bytes (the header pass reads the header, decoding would read the value)
    'pixel_data_4gib.dcm': part10(ct_header() + long_header(0x7FE0, 0x10, b'OW', 0xFFFFFFF0) + bytes(32)),
    # a UT inside an item of an undefined-length sequence claims 0xFFFFFFF0 bytes
    'nested_ut_4gib.dcm': part10(ct_header() + long_header(0x0008, 0x1140, b'SQ', 0xFFFFFFFF) + item(0xFFFFFFFF)
                                 + long_header(0x0008, 0x1155, b'UT', 0xFFFFFFF0) + pixels),
    # a meta group element (transfer syntax UID) claims 0xFFF0 bytes (2-byte length) - and the source AE title a
    # 4-byte one through an OB
    'meta_ob_4gib.dcm': b'\0' * 128 + b'DICM' + el(2, 0, b'UL', struct.pack('<I', 200))
        + long_header(2, 1, b'OB', 0xFFFFFFF0) + bytes(16),
    # encapsulated (RLE) pixel data whose fragment claims 0x7FFFFFF0 bytes
    'fragment_2gib.dcm': part10(ct_header() + long_header(0x7FE0, 0x10, b'OB', 0xFFFFFFFF) + item(0)
                                + item(0x7FFFFFF0) + bytes(64), ts=b'1.2.840.10008.1.2.5'),
}
os.makedirs(out, exist_ok=True)
for name, data in files.items():
    open(os.path.join(out, name), 'wb').write(data)
    print(name, len(data))
import zlib
# found by fuzzing: an AT value of odd length in a deflated data set; the parser reads whole tags and takes the
# next header one byte early, where an OB header claims 0xFFFFFFF0 bytes
odd = (el(8, 0x16, b'UI', CT) + el(8, 0x60, b'CS', b'CT')
       + struct.pack('<HH', 0x0020, 0x9165) + b'AT' + struct.pack('<H', 5) + bytes([0x08, 0, 0x16, 0])
       + long_header(0x0019, 0x1001, b'OB', 0xFFFFFFF0) + bytes(40))
comp = zlib.compressobj(6, zlib.DEFLATED, -15)
deflated = comp.compress(odd) + comp.flush()
files2 = {
    'odd_at_length_deflated_4gib.dcm': part10(deflated, ts=b'1.2.840.10008.1.2.1.99'),
    'odd_at_length_4gib.dcm': part10(odd),
}
for name, data in files2.items():
    open(os.path.join(out, name), 'wb').write(data)
    print(name, len(data))
# found by fuzzing: the transfer syntax UID padded with NULs to 84 bytes (more than a UID's 64 characters) - the
# parser reads it, so the check must too
meta = el(2, 1, b'OB', b'\0\1') + el(2, 2, b'UI', CT) + el(2, 3, b'UI', b'2.25.1') \
    + el(2, 0x10, b'UI', b'1.2.840.10008.1.2.1'.ljust(84, b'\0'))
padded = b'\0' * 128 + b'DICM' + el(2, 0, b'UL', struct.pack('<I', len(meta))) + meta \
    + ct_header() + long_header(0x0019, 0x1001, b'OB', 0xFFFFFFF0) + pixels
open(os.path.join(out, 'padded_ts_uid_4gib.dcm'), 'wb').write(padded)
print('padded_ts_uid_4gib.dcm', len(padded))
