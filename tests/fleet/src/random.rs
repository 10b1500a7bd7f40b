//! Random identifiers in AWS's formats, from the kernel's generator.

use std::io::Read;

pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        // Never expected on Linux; fall back to the clock so ids stay distinct.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
    buf
}

pub fn hex(n: usize) -> String {
    let raw = bytes::<32>();
    let mut s = String::with_capacity(n);
    for b in raw.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s.truncate(n);
    s
}

/// `i-0123456789abcdef0`: `i-` and 17 hex digits.
pub fn instance_id() -> String {
    format!("i-0{}", hex(16))
}

/// A command id is a UUID.
pub fn uuid() -> String {
    let mut b = bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Upper-case letters and digits, as in access key ids.
pub fn alnum_upper(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    bytes::<64>()
        .iter()
        .take(n)
        .map(|b| SET[(*b as usize) % SET.len()] as char)
        .collect()
}

/// Letters and digits, for secrets and passwords.
pub fn token(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes::<128>()
        .iter()
        .take(n)
        .map(|b| SET[(*b as usize) % SET.len()] as char)
        .collect()
}
