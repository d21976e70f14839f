//! Generated passwords: 20 characters from the operating system's CSPRNG, with at least
//! one upper-case letter, lower-case letter, digit and symbol, which satisfies Entra's
//! complexity rule (8–256 characters, three of the four kinds). Look-alike characters
//! (`0 O o 1 l I`) are left out so a password read aloud or typed from a screen works.

use secrecy::SecretString;

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
/// Symbols Entra accepts (graph-facts §6.2) that survive shells, URLs and chat.
const SYMBOLS: &[u8] = b"!#$%*+-=?@^_";
const LENGTH: usize = 20;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct NoRandomness;

/// A uniformly chosen byte of `alphabet` (rejection sampling, so no symbol is favoured).
fn pick(alphabet: &[u8]) -> Result<u8, NoRandomness> {
    let len = alphabet.len();
    let limit = 256 - (256 % len);
    loop {
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).map_err(|_| NoRandomness)?;
        if usize::from(byte[0]) < limit {
            return Ok(alphabet[usize::from(byte[0]) % len]);
        }
    }
}

/// A uniformly chosen index below `n`.
fn below(n: usize) -> Result<usize, NoRandomness> {
    let mut bytes = [0u8; 8];
    let n64 = n as u64;
    let limit = u64::MAX - (u64::MAX % n64);
    loop {
        getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
        let value = u64::from_le_bytes(bytes);
        if value < limit {
            return Ok(usize::try_from(value % n64).unwrap_or(0));
        }
    }
}

pub fn generate() -> Result<SecretString, NoRandomness> {
    let all: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
    let mut chars = vec![pick(UPPER)?, pick(LOWER)?, pick(DIGITS)?, pick(SYMBOLS)?];
    while chars.len() < LENGTH {
        chars.push(pick(&all)?);
    }
    // Fisher–Yates, so the guaranteed kinds are not always in front.
    for i in (1..chars.len()).rev() {
        chars.swap(i, below(i + 1)?);
    }
    Ok(SecretString::from(
        chars.into_iter().map(char::from).collect::<String>(),
    ))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn passwords_have_every_kind_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let password = generate().expect("randomness");
            let p = password.expose_secret();
            assert_eq!(p.len(), LENGTH);
            assert!(p.bytes().any(|b| UPPER.contains(&b)));
            assert!(p.bytes().any(|b| LOWER.contains(&b)));
            assert!(p.bytes().any(|b| DIGITS.contains(&b)));
            assert!(p.bytes().any(|b| SYMBOLS.contains(&b)));
            assert!(!p.contains(['0', 'O', 'o', '1', 'l', 'I']));
            assert!(seen.insert(p.to_owned()), "a repeated password");
        }
    }
}
