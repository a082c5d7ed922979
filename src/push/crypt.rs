//! Safe mode (安全模式) of the message push: AES-256-CBC with the key from the
//! EncodingAESKey, the IV its first 16 bytes, PKCS#7 padding to 32-byte
//! blocks, and the frame random(16) + length(4, big-endian) + message + appid.
//! As WeChat's "消息加解密" sample code and its peers (wechatpy's
//! `PrpCrypto`, EasyWeChat's `Encryptor`) do.

use std::fmt;

use aes::Aes256;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

use crate::error::{Error, Result};

/// WeChat pads to 32-byte blocks, twice AES's block.
const PAD_BLOCK: usize = 32;

/// WeChat generates the EncodingAESKey from 62 characters, so its last
/// character often carries non-zero bits past the key's 256: the key decodes
/// leniently there, as PHP's and Python's base64 do.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The 32-byte AES key of safe mode; prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey([u8; 32]);

impl AesKey {
    /// The key of a 43-character EncodingAESKey (base64 of it plus `=`).
    pub fn from_encoding_aes_key(text: &str) -> Result<AesKey> {
        if text.len() != 43 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid(format!(
                "push.encoding_aes_key must be 43 characters, letters and digits (as the mini program admin generates it), got {} bytes",
                text.len()
            )));
        }
        let bytes = LENIENT
            .decode(format!("{text}="))
            .map_err(|_| Error::invalid("push.encoding_aes_key is not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::invalid("push.encoding_aes_key does not make a 32-byte key"))?;
        Ok(AesKey(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The base64 ciphertext of `msg` from `appid`, framed after `random`.
pub fn encrypt(key: &AesKey, random: &[u8; 16], msg: &str, appid: &str) -> String {
    let mut plain = Vec::with_capacity(20 + msg.len() + appid.len() + PAD_BLOCK);
    plain.extend_from_slice(random);
    plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    plain.extend_from_slice(msg.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.resize(plain.len() + pad, pad as u8);
    let cipher = cbc::Encryptor::<Aes256>::new(&key.0.into(), &key.iv().into());
    let sealed = cipher.encrypt_padded_vec_mut::<NoPadding>(&plain);
    STANDARD.encode(sealed)
}

/// The message and the appid inside a base64 ciphertext. Refused: not
/// base64, not whole blocks, a padding or frame WeChat would not write.
pub fn decrypt(key: &AesKey, encrypted: &str) -> Result<(String, String)> {
    let sealed = STANDARD
        .decode(encrypted.trim())
        .map_err(|_| Error::invalid("Encrypt is not valid base64"))?;
    if sealed.is_empty() || sealed.len() % 16 != 0 {
        return Err(Error::invalid(format!(
            "Encrypt is {} bytes, not whole AES blocks",
            sealed.len()
        )));
    }
    let cipher = cbc::Decryptor::<Aes256>::new(&key.0.into(), &key.iv().into());
    let plain = cipher
        .decrypt_padded_vec_mut::<NoPadding>(&sealed)
        .map_err(|_| Error::invalid("Encrypt does not decrypt"))?;
    let undecryptable = || {
        Error::invalid(
            "Encrypt does not decrypt with this app's encoding_aes_key (wrong key, or not from WeChat)",
        )
    };
    let pad = usize::from(*plain.last().ok_or_else(undecryptable)?);
    if pad == 0 || pad > PAD_BLOCK || pad > plain.len() {
        return Err(undecryptable());
    }
    let (framed, padding) = plain.split_at(plain.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) || framed.len() < 20 {
        return Err(undecryptable());
    }
    let len = u32::from_be_bytes([framed[16], framed[17], framed[18], framed[19]]) as usize;
    let rest = &framed[20..];
    if len > rest.len() {
        return Err(undecryptable());
    }
    let (msg, appid) = rest.split_at(len);
    let msg = std::str::from_utf8(msg)
        .map_err(|_| Error::invalid("the decrypted message is not valid UTF-8"))?;
    let appid = std::str::from_utf8(appid)
        .map_err(|_| Error::invalid("the appid inside the decrypted message is not valid UTF-8"))?;
    Ok((msg.to_string(), appid.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // WeChat's sample EncodingAESKey from its "消息加解密" documentation.
    const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const RANDOM: &[u8; 16] = b"0123456789abcdef";
    const APPID: &str = "wxb11529c136998cb6";
    // Computed independently at test-writing time with Python's `cryptography`
    // (AES-256-CBC, key = b64decode(SAMPLE_KEY + "="), IV = key[:16], the frame
    // RANDOM + pack(">I", 5) + b"hello" + APPID, PKCS#7 to 32 bytes: 21 bytes
    // of 0x15), then base64.
    const HELLO_SEALED: &str =
        "Q3stYC6hdFzMh9T8HCvyDOKstB5xrxAIe3ABnTlqIfch0pOelLaGC9FFOV02z8xB2OmfiXCKX3IHv8LVNpiHFg==";

    fn key() -> AesKey {
        AesKey::from_encoding_aes_key(SAMPLE_KEY).unwrap()
    }

    #[test]
    fn key_from_encoding_aes_key() {
        // python3 -c 'import base64; print(base64.b64decode(SAMPLE_KEY + "=").hex())'
        let expected = "69b71d79f8218a39259a7a29aabb2dbafc31cb3d35db7e39ebbf3d0010831051";
        let hex: String = key().0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(format!("{:?}", key()), "***");
        // Trailing bits past the 256 are ignored (the last 'H' and 'G' differ only there).
        let other = AesKey::from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFH");
        assert_eq!(other.unwrap(), key());
        assert!(AesKey::from_encoding_aes_key(&SAMPLE_KEY[..42]).is_err());
        assert!(AesKey::from_encoding_aes_key(&format!("{}+", &SAMPLE_KEY[..42])).is_err());
    }

    #[test]
    fn known_answer_both_ways() {
        assert_eq!(encrypt(&key(), RANDOM, "hello", APPID), HELLO_SEALED);
        let (msg, appid) = decrypt(&key(), HELLO_SEALED).unwrap();
        assert_eq!((msg.as_str(), appid.as_str()), ("hello", APPID));
    }

    #[test]
    fn round_trips_block_edges() {
        for n in 0..70 {
            let msg = "m".repeat(n);
            let sealed = encrypt(&key(), RANDOM, &msg, "wx1");
            assert_eq!(decrypt(&key(), &sealed).unwrap(), (msg, "wx1".to_string()));
        }
    }

    #[test]
    fn refuses_what_wechat_would_not_send() {
        let wrong =
            AesKey::from_encoding_aes_key("bbcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
        let msg = |k: &AesKey, s: &str| decrypt(k, s).unwrap_err().to_string();
        assert!(msg(&wrong, HELLO_SEALED).contains("does not decrypt"));
        assert!(msg(&key(), "***").contains("not valid base64"));
        assert!(msg(&key(), "").contains("not whole AES blocks"));
        assert!(msg(&key(), "AAAA").contains("not whole AES blocks"));
        // A frame whose length field runs past its end.
        let mut plain = RANDOM.to_vec();
        plain.extend_from_slice(&1000u32.to_be_bytes());
        plain.extend_from_slice(&[b'x'; 12]);
        let sealed = cbc::Encryptor::<Aes256>::new(&key().0.into(), &key().iv().into())
            .encrypt_padded_vec_mut::<NoPadding>(&{
                let mut p = plain;
                p.extend_from_slice(&[0x20; 32]);
                p
            });
        assert!(msg(&key(), &STANDARD.encode(sealed)).contains("does not decrypt"));
    }
}
