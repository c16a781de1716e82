//! A short, fixed-length name for text of any length and any characters (object keys, FIFO
//! de-duplication ids): the hex MD5 of its bytes. Not for security.

use md5::{Digest, Md5};

pub fn hex_md5(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_the_md5_in_hex() {
        assert_eq!(super::hex_md5(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
