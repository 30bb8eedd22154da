//! Pairing by a short code a person reads aloud and types, for devices without a camera:
//! `47-392-8150`. The first two digits (the channel) are public and announced, so a joiner tries
//! only the hosts on its channel; the other seven are the secret, the password of a SPAKE2
//! exchange inside TLS. Nothing announced or sent is a function of the secret that a recording
//! could test offline: guessing takes one exchange per guess, and the host ends the code after
//! [`MAX_WRONG_CODES`] failed ones.
//!
//! [`Device::host_short`](crate::Device::host_short) and
//! [`Device::join_short`](crate::Device::join_short) are the library calls;
//! [`ShortHost`] and [`dial_short`] the pieces underneath.

mod code;
mod host;
mod join;
mod pake;

pub use code::{CHANNELS, MAX_TEXT, SECRET_DIGITS, SECRET_SPACE, ShortCode, ShortSecret};
pub use host::{MAX_WRONG_CODES, ShortHost, ShortHostOptions};
pub use join::{dial_short, join_short};
pub use pake::{ALPN, EXPORTER_LABEL, verification_code};

#[cfg(test)]
mod tests;
