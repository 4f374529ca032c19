//! etcd's JWT token provider: `--auth-token jwt,pub-key=PATH,priv-key=PATH,sign-method=ALG,ttl=DURATION`.
//!
//! [`JwtOptions::parse`] reads that option string, [`JwtTokens::new`] loads the keys it names,
//! [`JwtTokens::assign`] signs a token for a user and [`JwtTokens::info`] tells who a token is
//! from. It follows etcd 3.5 (`server/auth/jwt.go`, `options.go`, golang-jwt v4.5.2 under them):
//!
//! - A token is `base64url(header).base64url(claims).base64url(signature)`, the header
//!   `{"alg":"RS256","typ":"JWT"}`, the claims `{"exp":…,"revision":…,"username":…}`: keys in
//!   that order and strings escaped as Go's `encoding/json` does, so a token for the same user,
//!   revision and second is byte for byte etcd's with the deterministic methods (RS*, HS*,
//!   EdDSA).
//! - `exp` is `now + ttl` in whole Unix seconds (rounded down); a token is good while the
//!   current whole second is before `exp`. The TTL defaults to 5 minutes and is a Go duration
//!   (`5m`, `300s`, `1h30m`, `1.5h`; `0` and negative durations are accepted, as etcd does, and
//!   give tokens that are never good).
//! - `revision` is a JSON number. etcd reads it as a float64 and converts it to uint64, so a
//!   fractional revision is truncated; an integer is read exactly here (etcd loses precision
//!   past 2^53, which no auth revision reaches).
//! - A token is checked against the configured method only: its header's `alg` must be that
//!   method's name exactly, so `alg: none` and HS256 signed with a public key are refused.
//! - `iat` and `nbf` are checked as golang-jwt v4 does when present (not after now); a
//!   time claim of the wrong type makes the token invalid.
//! - Sign methods: HS256/384/512 (the secret is the priv-key file's bytes, as they are),
//!   RS256/384/512, PS256/384/512, ES256/384/512, and EdDSA (Ed25519). `none` is known to
//!   golang-jwt's registry, so etcd parses it and then refuses it as an unsupported method.
//! - With only `pub-key` (RSA, EC, Ed25519), the provider verifies but cannot sign.
//!
//! Where it differs from etcd 3.5, on purpose:
//! - EdDSA is accepted (etcd 3.6 added it; 3.5 fails with "unsupported signing method").
//! - A private key and a public key that do not belong together are refused with
//!   "auth: public and private keys don't match". etcd 3.5's check only fires when every
//!   component differs (RSA: modulus and exponent, so never with the usual exponent 65537),
//!   which 3.6 fixed; this is 3.6's check.
//! - `exp` is required. golang-jwt v4 accepts a token with no `exp` (or `exp: 0`) forever;
//!   etcd never issues one.
//! - An EC key of another curve than the method's (ES256 with a P-384 key) is refused when
//!   the keys are loaded; etcd loads it and then fails every sign and verify.
//! - RSA keys are at most 4096 bits (the `rsa` crate's limit for verifying); a larger one
//!   is refused when loaded.
//! - Public keys are read from SubjectPublicKeyInfo (`PUBLIC KEY`) and, for RSA, PKCS#1
//!   (`RSA PUBLIC KEY`) PEM; etcd also takes an X.509 certificate, this does not.
//! - Base64 and JSON are decoded strictly (no padding, no non-canonical trailing bits, no
//!   text after the JSON), where Go's decoders are lenient; etcd's own tokens are unaffected.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};

use super::AuthInfo;

/// etcd's `DefaultTTL`: how long a token is good for when the options give no `ttl`.
pub(crate) const DEFAULT_TTL_NANOS: i64 = 5 * 60 * 1_000_000_000;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// Why the options or the keys were refused, or a token could not be signed.
///
/// The messages are etcd's. etcd's `NewTokenProvider` reports every problem with the option
/// string itself (its syntax, the TTL, a missing or unknown sign method, a key file it cannot
/// read) as [`JwtError::InvalidAuthOpts`]; the problem is that error's
/// [`source`](std::error::Error::source), for logs.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwtError {
    /// etcd's `ErrInvalidAuthOpts`.
    #[error("auth: invalid auth options")]
    InvalidAuthOpts(#[source] Box<JwtError>),
    /// etcd's `ErrInvalidAuthMethod`: no `sign-method`, or one golang-jwt does not know.
    /// Reported as the source of [`JwtError::InvalidAuthOpts`], as etcd does.
    #[error("auth: invalid auth signature method")]
    InvalidAuthMethod,
    /// etcd's `ErrMissingKey`: no key file given for the method (HS* needs `priv-key`).
    #[error("auth: missing key data")]
    MissingKey,
    /// etcd's `ErrKeyMismatch`: `priv-key` is not the private half of `pub-key`.
    #[error("auth: public and private keys don't match")]
    KeyMismatch,
    /// etcd's `ErrVerifyOnly`: [`JwtTokens::assign`] with only a public key.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    /// An option that is not `key=value`, or the string does not start with `jwt`.
    /// Reported as the source of [`JwtError::InvalidAuthOpts`].
    #[error("invalid token option {0:?}")]
    BadOption(String),
    /// An option given twice. Reported as the source of [`JwtError::InvalidAuthOpts`].
    #[error("duplicate token option {0:?}")]
    DuplicateOption(String),
    /// A `ttl` that is not a Go duration (the message is Go's `time.ParseDuration`'s).
    /// Reported as the source of [`JwtError::InvalidAuthOpts`].
    #[error("{0}")]
    Duration(String),
    /// A key file that cannot be read. Reported as the source of [`JwtError::InvalidAuthOpts`].
    #[error("open {}: {source}", path.display())]
    ReadKey {
        /// The file named by `pub-key` or `priv-key`.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A sign method golang-jwt knows but etcd cannot use: `none` (the message is etcd's,
    /// with Go's type name).
    #[error("unsupported signing method: {0}")]
    UnsupportedSignMethod(&'static str),
    /// golang-jwt's `ErrKeyMustBePEMEncoded`: a key file with no PEM block.
    #[error("invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key")]
    KeyNotPem,
    /// golang-jwt's `ErrNotRSAPrivateKey` and its kin: the PEM block does not hold that kind
    /// of key (`"RSA private key"`, `"ECDSA public key"`, `"Ed25519 private key"`, …).
    #[error("key is not a valid {0}")]
    InvalidKey(&'static str),
    /// An EC key on another curve than the sign method's.
    #[error("key is invalid: {method} signs with {want} keys, this one is {got}")]
    WrongCurve {
        /// The configured sign method.
        method: &'static str,
        /// The curve it needs.
        want: Curve,
        /// The key's curve.
        got: Curve,
    },
    /// An RSA key larger than the crypto library verifies with (4096 bits); etcd takes them.
    #[error("key is invalid: RSA keys of {0} bits are not supported, at most 4096")]
    RsaKeyTooLarge(usize),
    /// Signing failed in the crypto library (not expected with a key that loaded).
    #[error("{0}")]
    Sign(String),
}

impl From<JwtError> for crate::Error {
    /// etcd's error for the JWT problems it has one for; the others keep their message.
    fn from(error: JwtError) -> Self {
        match error {
            JwtError::InvalidAuthOpts(cause) => {
                tracing::warn!(cause = %cause, "invalid --auth-token options");
                crate::Error::InvalidAuthOpts
            }
            JwtError::InvalidAuthMethod => crate::Error::InvalidAuthMethod,
            JwtError::MissingKey => crate::Error::MissingKey,
            JwtError::KeyMismatch => crate::Error::KeyMismatch,
            JwtError::VerifyOnly => crate::Error::VerifyOnly,
            other => crate::Error::Internal(format!("auth token: {other}")),
        }
    }
}

impl JwtError {
    fn options(cause: JwtError) -> JwtError {
        JwtError::InvalidAuthOpts(Box::new(cause))
    }
}

/// A sign method of golang-jwt's registry (`jwt.GetSigningMethod`), named as there.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignMethod {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// Ed25519.
    EdDSA,
    /// No signature: in the registry, refused by [`JwtTokens::new`] as etcd does.
    None,
}

/// The curve of an EC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec(Curve),
    Ed,
    None,
}

impl SignMethod {
    const ALL: [SignMethod; 14] = [
        SignMethod::HS256,
        SignMethod::HS384,
        SignMethod::HS512,
        SignMethod::RS256,
        SignMethod::RS384,
        SignMethod::RS512,
        SignMethod::PS256,
        SignMethod::PS384,
        SignMethod::PS512,
        SignMethod::ES256,
        SignMethod::ES384,
        SignMethod::ES512,
        SignMethod::EdDSA,
        SignMethod::None,
    ];

    /// The name in `sign-method=` and in a token header's `alg`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SignMethod::HS256 => "HS256",
            SignMethod::HS384 => "HS384",
            SignMethod::HS512 => "HS512",
            SignMethod::RS256 => "RS256",
            SignMethod::RS384 => "RS384",
            SignMethod::RS512 => "RS512",
            SignMethod::PS256 => "PS256",
            SignMethod::PS384 => "PS384",
            SignMethod::PS512 => "PS512",
            SignMethod::ES256 => "ES256",
            SignMethod::ES384 => "ES384",
            SignMethod::ES512 => "ES512",
            SignMethod::EdDSA => "EdDSA",
            SignMethod::None => "none",
        }
    }

    /// The method of that name; names are case-sensitive, as in golang-jwt.
    fn from_name(name: &str) -> Option<SignMethod> {
        SignMethod::ALL.into_iter().find(|m| m.name() == name)
    }

    fn family(self) -> Family {
        match self {
            SignMethod::HS256 | SignMethod::HS384 | SignMethod::HS512 => Family::Hmac,
            SignMethod::RS256
            | SignMethod::RS384
            | SignMethod::RS512
            | SignMethod::PS256
            | SignMethod::PS384
            | SignMethod::PS512 => Family::Rsa,
            SignMethod::ES256 => Family::Ec(Curve::P256),
            SignMethod::ES384 => Family::Ec(Curve::P384),
            SignMethod::ES512 => Family::Ec(Curve::P521),
            SignMethod::EdDSA => Family::Ed,
            SignMethod::None => Family::None,
        }
    }

    /// jsonwebtoken's name for it; `None` for ES512, which jsonwebtoken lacks, and `none`.
    fn algorithm(self) -> Option<Algorithm> {
        Some(match self {
            SignMethod::HS256 => Algorithm::HS256,
            SignMethod::HS384 => Algorithm::HS384,
            SignMethod::HS512 => Algorithm::HS512,
            SignMethod::RS256 => Algorithm::RS256,
            SignMethod::RS384 => Algorithm::RS384,
            SignMethod::RS512 => Algorithm::RS512,
            SignMethod::PS256 => Algorithm::PS256,
            SignMethod::PS384 => Algorithm::PS384,
            SignMethod::PS512 => Algorithm::PS512,
            SignMethod::ES256 => Algorithm::ES256,
            SignMethod::ES384 => Algorithm::ES384,
            SignMethod::EdDSA => Algorithm::EdDSA,
            SignMethod::ES512 | SignMethod::None => return None,
        })
    }
}

/// etcd's JWT token options, parsed from the `--auth-token` value
/// `jwt,pub-key=PATH,priv-key=PATH,sign-method=ALG,ttl=DURATION`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JwtOptions {
    /// `sign-method`, required.
    pub(crate) sign_method: SignMethod,
    /// `pub-key`: a PEM public key file (an empty value counts as not given).
    pub(crate) public_key: Option<PathBuf>,
    /// `priv-key`: a PEM private key file, or for HS* the secret (empty: not given).
    pub(crate) private_key: Option<PathBuf>,
    /// `ttl` as a Go `time.Duration` (nanoseconds; zero and negative are accepted, as in
    /// etcd); [`DEFAULT_TTL_NANOS`] when not given or empty.
    pub(crate) ttl_nanos: i64,
    /// Keys etcd does not know: it only logs them, and so does [`JwtTokens::new`].
    pub(crate) unknown_keys: Vec<String>,
}

impl JwtOptions {
    /// Parses a whole `--auth-token` value, which must be of type `jwt`. Every error is
    /// [`JwtError::InvalidAuthOpts`] (the problem is its source), as from etcd.
    ///
    /// Like etcd, the value is split at every `,`; each option after the type must be exactly
    /// one `key=value` (so a trailing comma or a path containing `,` or `=` is refused), and a
    /// key may be given once.
    pub(crate) fn parse(spec: &str) -> Result<JwtOptions, JwtError> {
        let mut parts = spec.split(',');
        let kind = parts.next().unwrap_or_default();
        let mut options: Vec<(&str, &str)> = Vec::new();
        for option in parts {
            let mut pair = option.split('=');
            let (Some(key), Some(value), None) = (pair.next(), pair.next(), pair.next()) else {
                return Err(JwtError::options(JwtError::BadOption(option.to_owned())));
            };
            if options.iter().any(|(k, _)| *k == key) {
                return Err(JwtError::options(JwtError::DuplicateOption(key.to_owned())));
            }
            options.push((key, value));
        }
        if kind != "jwt" {
            return Err(JwtError::options(JwtError::BadOption(kind.to_owned())));
        }
        let get = |key: &str| options.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap_or("");
        let path = |key: &str| Some(get(key)).filter(|v| !v.is_empty()).map(PathBuf::from);

        let ttl_nanos = match get("ttl") {
            "" => DEFAULT_TTL_NANOS,
            ttl => parse_go_duration(ttl).map_err(JwtError::options)?,
        };
        let sign_method = SignMethod::from_name(get("sign-method"))
            .ok_or_else(|| JwtError::options(JwtError::InvalidAuthMethod))?;
        let unknown_keys = options
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !["sign-method", "pub-key", "priv-key", "ttl"].contains(k))
            .map(str::to_owned)
            .collect();
        Ok(JwtOptions {
            sign_method,
            public_key: path("pub-key"),
            private_key: path("priv-key"),
            ttl_nanos,
            unknown_keys,
        })
    }
}

/// Parses a Go duration (`time.ParseDuration`): an optional sign, then one or more decimal
/// numbers (a fraction allowed) each with a unit of `ns`, `us` (or `µs`, `μs`), `ms`, `s`,
/// `m`, `h`, as in `1h30m` or `-1.5s`; `0` alone needs no unit. The result is in nanoseconds
/// and, as in Go, must fit an i64. The error messages are Go's.
fn parse_go_duration(text: &str) -> Result<i64, JwtError> {
    const LIMIT: u64 = 1 << 63;
    let invalid = || JwtError::Duration(format!("time: invalid duration {text:?}"));
    let mut s = text.as_bytes();
    let mut negative = false;
    if let Some(&sign @ (b'-' | b'+')) = s.first() {
        negative = sign == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The whole part: an overflow is an error.
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..digits] {
            if whole > LIMIT / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        // The fraction: digits past what fits are dropped.
        let (mut fraction, mut scale, mut fraction_digits) = (0u64, 1f64, 0);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            fraction_digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..fraction_digits] {
                if overflow || fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            s = &s[fraction_digits..];
        }
        if digits == 0 && fraction_digits == 0 {
            return Err(invalid());
        }
        let unit_len = s.iter().take_while(|&&c| !(c == b'.' || c.is_ascii_digit())).count();
        if unit_len == 0 {
            return Err(JwtError::Duration(format!("time: missing unit in duration {text:?}")));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit: u64 = match unit {
            b"ns" => 1,
            b"us" => 1_000,
            u if u == "µs".as_bytes() || u == "μs".as_bytes() => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                let unit = String::from_utf8_lossy(unit);
                return Err(JwtError::Duration(format!("time: unknown unit {unit:?} in duration {text:?}")));
            }
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        // Go adds in uint64 and checks after, so a sum past 2^64 wraps as it does there.
        total = total.wrapping_add(value);
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // total <= 2^63, so this is -total (2^63 becomes i64::MIN).
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// etcd's JWT token provider: signs tokens and reads them back.
pub(crate) struct JwtTokens {
    method: SignMethod,
    /// `None` when only a public key was given.
    signer: Option<Signer>,
    verifier: Verifier,
    ttl_nanos: i64,
    /// base64url of the header every token gets.
    header: String,
}

impl fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtTokens")
            .field("method", &self.method)
            .field("verify_only", &self.signer.is_none())
            .field("ttl_nanos", &self.ttl_nanos)
            .finish_non_exhaustive()
    }
}

impl JwtTokens {
    /// Reads the key files and checks them, as etcd's `newTokenProviderJWT`: a file that
    /// cannot be read is [`JwtError::InvalidAuthOpts`]; an empty file counts as not given;
    /// a key file that is not PEM or holds another kind of key is golang-jwt's error; no key
    /// for the method is [`JwtError::MissingKey`]; a private key that is not the public key's
    /// is [`JwtError::KeyMismatch`]. With only a public key the provider is verify-only.
    pub(crate) fn new(options: &JwtOptions) -> Result<JwtTokens, JwtError> {
        if !options.unknown_keys.is_empty() {
            tracing::warn!(keys = ?options.unknown_keys, "unknown JWT options");
        }
        let public = read_key_file(options.public_key.as_deref())?;
        let private = read_key_file(options.private_key.as_deref())?;
        let method = options.sign_method;
        let (signer, verifier) = load_keys(method, public.as_deref(), private.as_deref())?;
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{}","typ":"JWT"}}"#, method.name()));
        Ok(JwtTokens { method, signer, verifier, ttl_nanos: options.ttl_nanos, header })
    }

    /// The sign method tokens are signed and checked with.
    #[cfg(test)]
    pub(crate) fn sign_method(&self) -> SignMethod {
        self.method
    }

    /// Whether only a public key was given, so [`JwtTokens::assign`] fails.
    #[cfg(test)]
    pub(crate) fn verify_only(&self) -> bool {
        self.signer.is_none()
    }

    /// A signed token for `user` at auth revision `revision`, expiring `ttl` after `now`.
    pub(crate) fn assign(&self, user: &str, revision: u64, now: SystemTime) -> Result<String, JwtError> {
        let signer = self.signer.as_ref().ok_or(JwtError::VerifyOnly)?;
        let exp = (unix_nanos(now) + i128::from(self.ttl_nanos)).div_euclid(NANOS_PER_SEC);
        let claims = format!(r#"{{"exp":{exp},"revision":{revision},"username":{}}}"#, go_json_string(user));
        let message = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims));
        let signature = signer.sign(message.as_bytes())?;
        Ok(format!("{message}.{signature}"))
    }

    /// The identity a token carries, or `None` when it is not valid: not three base64url
    /// parts, a header or claims that are not JSON objects, another `alg` than the configured
    /// method (`none` included), a bad signature, expired at `now` (or `iat`/`nbf` after
    /// `now`), or `username`, `revision` or `exp` missing or of the wrong type.
    pub(crate) fn info(&self, token: &str, now: SystemTime) -> Option<AuthInfo> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header_json = json_object(header)?;
        if header_json.get("alg")?.as_str()? != self.method.name() {
            return None;
        }
        let message = &token[..header.len() + 1 + claims.len()];
        if !self.verifier.verify(message.as_bytes(), signature) {
            return None;
        }
        let claims = json_object(claims)?;
        // golang-jwt compares in whole seconds.
        let now = unix_nanos(now).div_euclid(NANOS_PER_SEC) as f64;
        let time_claim = |name: &str| match claims.get(name) {
            None => Some(None),
            Some(Value::Number(n)) => n.as_f64().map(Some),
            Some(_) => None,
        };
        // Good while now is before exp (JSON has no NaN, so >= is "not before").
        if now >= time_claim("exp")?? {
            return None;
        }
        // Not used before it was issued or before it is valid; 0 counts as absent.
        for name in ["iat", "nbf"] {
            if matches!(time_claim(name)?, Some(t) if t != 0.0 && now < t) {
                return None;
            }
        }
        let user = claims.get("username")?.as_str()?.to_owned();
        let revision = match claims.get("revision")? {
            Value::Number(n) => revision_from(n)?,
            _ => return None,
        };
        Some(AuthInfo { user, revision })
    }
}

/// etcd reads `revision` as a float64 and converts it to uint64: a fraction is truncated.
/// Integers are taken exactly; a negative revision is refused.
fn revision_from(n: &serde_json::Number) -> Option<u64> {
    if let Some(revision) = n.as_u64() {
        return Some(revision);
    }
    let f = n.as_f64()?;
    (0.0..18_446_744_073_709_551_616.0).contains(&f).then_some(f as u64)
}

/// Nanoseconds since the Unix epoch, negative before it.
fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// A base64url part that must decode to a JSON object.
fn json_object(part: &str) -> Option<Map<String, Value>> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// A JSON string as Go's `encoding/json` writes it: HTML characters and U+2028/U+2029 as
/// `\u` escapes, so the claims are etcd's byte for byte.
fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn read_key_file(path: Option<&Path>) -> Result<Option<Vec<u8>>, JwtError> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path)
        .map_err(|source| JwtError::options(JwtError::ReadKey { path: path.to_owned(), source }))?;
    Ok(Some(bytes).filter(|b| !b.is_empty()))
}

enum Signer {
    Jwt { key: EncodingKey, alg: Algorithm },
    Es512(p521::ecdsa::SigningKey),
}

impl Signer {
    /// The base64url signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<String, JwtError> {
        match self {
            Signer::Jwt { key, alg } => {
                jsonwebtoken::crypto::sign(message, key, *alg).map_err(|e| JwtError::Sign(e.to_string()))
            }
            Signer::Es512(key) => {
                use p521::ecdsa::signature::Signer as _;
                let signature: p521::ecdsa::Signature =
                    key.try_sign(message).map_err(|e| JwtError::Sign(e.to_string()))?;
                Ok(URL_SAFE_NO_PAD.encode(signature.to_bytes()))
            }
        }
    }
}

enum Verifier {
    Jwt { key: DecodingKey, alg: Algorithm },
    Es512(p521::ecdsa::VerifyingKey),
}

impl Verifier {
    /// Whether `signature` (base64url) is a signature of `message`.
    fn verify(&self, message: &[u8], signature: &str) -> bool {
        match self {
            Verifier::Jwt { key, alg } => {
                jsonwebtoken::crypto::verify(signature, message, key, *alg).unwrap_or(false)
            }
            Verifier::Es512(key) => {
                use p521::ecdsa::signature::Verifier as _;
                let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else { return false };
                let Ok(signature) = p521::ecdsa::Signature::from_slice(&bytes) else { return false };
                key.verify(message, &signature).is_ok()
            }
        }
    }
}

/// etcd's `jwtOptions.Key`: the keys for `method` from the files' contents (`None`: not
/// given or empty). Returns no signer when only the public key was given.
fn load_keys(
    method: SignMethod,
    public: Option<&[u8]>,
    private: Option<&[u8]>,
) -> Result<(Option<Signer>, Verifier), JwtError> {
    // Set for every method but `none` and ES512 (EC keys pick theirs by curve).
    let jwt_alg = || method.algorithm().ok_or(JwtError::UnsupportedSignMethod("*jwt.signingMethodNone"));
    match method.family() {
        Family::None => Err(JwtError::UnsupportedSignMethod("*jwt.signingMethodNone")),
        Family::Hmac => {
            // The file's bytes are the secret; etcd ignores pub-key here.
            let secret = private.ok_or(JwtError::MissingKey)?;
            let alg = jwt_alg()?;
            Ok((
                Some(Signer::Jwt { key: EncodingKey::from_secret(secret), alg }),
                Verifier::Jwt { key: DecodingKey::from_secret(secret), alg },
            ))
        }
        Family::Rsa => {
            let alg = jwt_alg()?;
            let private = private.map(rsa_private).transpose()?;
            let public = public.map(rsa_public).transpose()?;
            let public = match (&private, public) {
                (None, None) => return Err(JwtError::MissingKey),
                (Some(key), Some(public)) if key.to_public_key() != public => {
                    return Err(JwtError::KeyMismatch)
                }
                (_, Some(public)) => public,
                (Some(key), None) => key.to_public_key(),
            };
            let signer = match private {
                Some(key) => {
                    let der = key.to_pkcs1_der().map_err(|_| JwtError::InvalidKey("RSA private key"))?;
                    Some(Signer::Jwt { key: EncodingKey::from_rsa_der(der.as_bytes()), alg })
                }
                None => None,
            };
            let key =
                DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be());
            Ok((signer, Verifier::Jwt { key, alg }))
        }
        Family::Ec(want) => {
            let private = private.map(ec_private).transpose()?;
            let public = public.map(ec_public).transpose()?;
            let public = match (&private, public) {
                (None, None) => return Err(JwtError::MissingKey),
                (Some(key), Some(public)) if key.public() != public => return Err(JwtError::KeyMismatch),
                (_, Some(public)) => public,
                (Some(key), None) => key.public(),
            };
            let got = public.curve();
            if got != want {
                return Err(JwtError::WrongCurve { method: method.name(), want, got });
            }
            let signer = private.map(|key| key.signer()).transpose()?;
            Ok((signer, public.verifier()?))
        }
        Family::Ed => {
            let alg = jwt_alg()?;
            let private = private.map(ed_private).transpose()?;
            let public = public.map(ed_public).transpose()?;
            let public = match (&private, public) {
                (None, None) => return Err(JwtError::MissingKey),
                (Some((key, _)), Some(public)) if key.verifying_key() != public => {
                    return Err(JwtError::KeyMismatch)
                }
                (_, Some(public)) => public,
                (Some((key, _)), None) => key.verifying_key(),
            };
            let signer = private.map(|(_, pkcs8)| Signer::Jwt { key: EncodingKey::from_ed_der(&pkcs8), alg });
            Ok((signer, Verifier::Jwt { key: DecodingKey::from_ed_der(public.as_bytes()), alg }))
        }
    }
}

/// The DER of the first PEM block, whatever its label, as Go's `pem.Decode`.
fn pem_der(pem: &[u8]) -> Result<Vec<u8>, JwtError> {
    pem::parse(pem).map(pem::Pem::into_contents).map_err(|_| JwtError::KeyNotPem)
}

/// PKCS#1, then PKCS#8, as golang-jwt's `ParseRSAPrivateKeyFromPEM`.
fn rsa_private(pem: &[u8]) -> Result<rsa::RsaPrivateKey, JwtError> {
    use rsa::pkcs8::DecodePrivateKey as _;
    let der = pem_der(pem)?;
    let key = rsa::RsaPrivateKey::from_pkcs1_der(&der)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_der(&der))
        .map_err(|_| JwtError::InvalidKey("RSA private key"))?;
    match key.n().bits() {
        bits if bits > RSA_MAX_BITS => Err(JwtError::RsaKeyTooLarge(bits)),
        _ => Ok(key),
    }
}

/// The largest RSA modulus the `rsa` crate, and so jsonwebtoken, verifies with (Go takes
/// larger ones): a larger private key would sign tokens nothing can check.
const RSA_MAX_BITS: usize = 4096;

/// SubjectPublicKeyInfo (golang-jwt's `ParseRSAPublicKeyFromPEM`), or PKCS#1.
fn rsa_public(pem: &[u8]) -> Result<rsa::RsaPublicKey, JwtError> {
    use rsa::pkcs8::DecodePublicKey as _;
    let der = pem_der(pem)?;
    rsa::RsaPublicKey::from_public_key_der(&der).or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(&der)).map_err(
        |_| match rsa_modulus_bits(&der) {
            Some(bits) if bits > RSA_MAX_BITS => JwtError::RsaKeyTooLarge(bits),
            _ => JwtError::InvalidKey("RSA public key"),
        },
    )
}

/// The size of the modulus of an RSA public key (SubjectPublicKeyInfo or PKCS#1), read
/// without the size limit of [`rsa::RsaPublicKey`], to say why a key was refused.
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    use rsa::pkcs1::der::Decode as _;
    let pkcs1 = match rsa::pkcs8::spki::SubjectPublicKeyInfoRef::from_der(der) {
        Ok(spki) => spki.subject_public_key.as_bytes()?,
        Err(_) => der,
    };
    let key = rsa::pkcs1::RsaPublicKey::from_der(pkcs1).ok()?;
    let modulus = key.modulus.as_bytes();
    let first = modulus.iter().position(|&b| b != 0)?;
    Some((modulus.len() - first) * 8 - modulus[first].leading_zeros() as usize)
}

enum EcPrivate {
    P256(p256::SecretKey),
    P384(p384::SecretKey),
    P521(p521::SecretKey),
}

#[derive(PartialEq)]
enum EcPublic {
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
}

/// SEC1 (`EC PRIVATE KEY`), then PKCS#8, on any of the three curves, as golang-jwt's
/// `ParseECPrivateKeyFromPEM`.
fn ec_private(pem: &[u8]) -> Result<EcPrivate, JwtError> {
    use p256::pkcs8::DecodePrivateKey as _;
    let der = pem_der(pem)?;
    if let Ok(key) = p256::SecretKey::from_sec1_der(&der).or_else(|_| p256::SecretKey::from_pkcs8_der(&der)) {
        return Ok(EcPrivate::P256(key));
    }
    if let Ok(key) = p384::SecretKey::from_sec1_der(&der).or_else(|_| p384::SecretKey::from_pkcs8_der(&der)) {
        return Ok(EcPrivate::P384(key));
    }
    if let Ok(key) = p521::SecretKey::from_sec1_der(&der).or_else(|_| p521::SecretKey::from_pkcs8_der(&der)) {
        return Ok(EcPrivate::P521(key));
    }
    Err(JwtError::InvalidKey("ECDSA private key"))
}

/// SubjectPublicKeyInfo on any of the three curves.
fn ec_public(pem: &[u8]) -> Result<EcPublic, JwtError> {
    use p256::pkcs8::DecodePublicKey as _;
    let der = pem_der(pem)?;
    if let Ok(key) = p256::PublicKey::from_public_key_der(&der) {
        return Ok(EcPublic::P256(key));
    }
    if let Ok(key) = p384::PublicKey::from_public_key_der(&der) {
        return Ok(EcPublic::P384(key));
    }
    if let Ok(key) = p521::PublicKey::from_public_key_der(&der) {
        return Ok(EcPublic::P521(key));
    }
    Err(JwtError::InvalidKey("ECDSA public key"))
}

impl EcPrivate {
    fn public(&self) -> EcPublic {
        match self {
            EcPrivate::P256(key) => EcPublic::P256(key.public_key()),
            EcPrivate::P384(key) => EcPublic::P384(key.public_key()),
            EcPrivate::P521(key) => EcPublic::P521(key.public_key()),
        }
    }

    /// The signer for this key's curve (ES256, ES384 or ES512).
    fn signer(&self) -> Result<Signer, JwtError> {
        fn invalid<E>(_: E) -> JwtError {
            JwtError::InvalidKey("ECDSA private key")
        }
        Ok(match self {
            EcPrivate::P256(key) => Signer::Jwt {
                key: EncodingKey::from_ec_der(key.to_pkcs8_der().map_err(invalid)?.as_bytes()),
                alg: Algorithm::ES256,
            },
            EcPrivate::P384(key) => Signer::Jwt {
                key: EncodingKey::from_ec_der(key.to_pkcs8_der().map_err(invalid)?.as_bytes()),
                alg: Algorithm::ES384,
            },
            EcPrivate::P521(key) => {
                Signer::Es512(p521::ecdsa::SigningKey::from_bytes(&key.to_bytes()).map_err(invalid)?)
            }
        })
    }
}

impl EcPublic {
    fn curve(&self) -> Curve {
        match self {
            EcPublic::P256(_) => Curve::P256,
            EcPublic::P384(_) => Curve::P384,
            EcPublic::P521(_) => Curve::P521,
        }
    }

    /// The verifier for this key's curve (ES256, ES384 or ES512).
    fn verifier(&self) -> Result<Verifier, JwtError> {
        Ok(match self {
            EcPublic::P256(key) => Verifier::Jwt {
                key: DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
                alg: Algorithm::ES256,
            },
            EcPublic::P384(key) => Verifier::Jwt {
                key: DecodingKey::from_ec_der(key.to_encoded_point(false).as_bytes()),
                alg: Algorithm::ES384,
            },
            EcPublic::P521(key) => Verifier::Es512(
                p521::ecdsa::VerifyingKey::from_affine(*key.as_affine())
                    .map_err(|_| JwtError::InvalidKey("ECDSA public key"))?,
            ),
        })
    }
}

/// PKCS#8, as golang-jwt's `ParseEdPrivateKeyFromPEM`; with the PKCS#8 DER jsonwebtoken
/// signs with.
fn ed_private(pem: &[u8]) -> Result<(ed25519_dalek::SigningKey, Vec<u8>), JwtError> {
    let der = pem_der(pem)?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_der(&der)
        .map_err(|_| JwtError::InvalidKey("Ed25519 private key"))?;
    Ok((key, der))
}

/// SubjectPublicKeyInfo, as golang-jwt's `ParseEdPublicKeyFromPEM`.
fn ed_public(pem: &[u8]) -> Result<ed25519_dalek::VerifyingKey, JwtError> {
    let der = pem_der(pem)?;
    ed25519_dalek::VerifyingKey::from_public_key_der(&der)
        .map_err(|_| JwtError::InvalidKey("Ed25519 public key"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/jwt/");

    /// A fixed "now": 2023-11-14T22:13:20Z.
    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }
    const NOW: u64 = 1_700_000_000;

    fn file(name: &str) -> String {
        format!("{DIR}{name}")
    }

    fn spec(method: &str, public: Option<&str>, private: Option<&str>) -> String {
        let mut spec = format!("jwt,sign-method={method}");
        if let Some(public) = public {
            spec.push_str(&format!(",pub-key={}", file(public)));
        }
        if let Some(private) = private {
            spec.push_str(&format!(",priv-key={}", file(private)));
        }
        spec
    }

    fn tokens(method: &str, public: Option<&str>, private: Option<&str>) -> JwtTokens {
        let options = JwtOptions::parse(&spec(method, public, private)).unwrap();
        JwtTokens::new(&options).unwrap()
    }

    fn new_err(spec: &str) -> JwtError {
        JwtTokens::new(&JwtOptions::parse(spec).unwrap()).unwrap_err()
    }

    /// The key files for a method: (public, private).
    fn keys_for(method: &str) -> (&'static str, &'static str) {
        match method {
            m if m.starts_with("HS") => ("hmac.secret", "hmac.secret"),
            m if m.starts_with("RS") || m.starts_with("PS") => ("rsa.pub", "rsa.key"),
            "ES256" => ("ec256.pub", "ec256.key"),
            "ES384" => ("ec384.pub", "ec384.key"),
            "ES512" => ("ec521.pub", "ec521.key"),
            "EdDSA" => ("ed25519.pub", "ed25519.key"),
            m => panic!("no keys for {m}"),
        }
    }

    fn full(method: &str) -> JwtTokens {
        let (public, private) = keys_for(method);
        tokens(method, Some(public), Some(private))
    }

    const ALL: [&str; 13] = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
        "ES512", "EdDSA",
    ];

    fn info(user: &str, revision: u64) -> Option<AuthInfo> {
        Some(AuthInfo { user: user.to_owned(), revision })
    }

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// A token with this header and these claims, signed with `tokens`' own key.
    fn signed(tokens: &JwtTokens, header: &str, claims: &str) -> String {
        let message = format!("{}.{}", b64(header), b64(claims));
        let signature = tokens.signer.as_ref().unwrap().sign(message.as_bytes()).unwrap();
        format!("{message}.{signature}")
    }

    /// A token with `tokens`' header and these claims, signed with its key.
    fn with_claims(tokens: &JwtTokens, claims: &str) -> String {
        signed(tokens, &format!(r#"{{"alg":"{}","typ":"JWT"}}"#, tokens.method.name()), claims)
    }

    fn parts(token: &str) -> (Value, Value) {
        let mut parts = token.split('.');
        let header = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        let claims = URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        (serde_json::from_slice(&header).unwrap(), serde_json::from_slice(&claims).unwrap())
    }

    // ---- round trips ----

    #[test]
    fn every_method_round_trips() {
        for method in ALL {
            let tokens = full(method);
            assert_eq!(tokens.sign_method().name(), method);
            assert!(!tokens.verify_only());
            let token = tokens.assign("alice", 7, at(NOW)).unwrap();
            assert_eq!(tokens.info(&token, at(NOW)), info("alice", 7), "{method}");
            let (header, claims) = parts(&token);
            assert_eq!(header, serde_json::json!({"alg": method, "typ": "JWT"}));
            assert_eq!(claims, serde_json::json!({"exp": NOW + 300, "revision": 7, "username": "alice"}));
        }
    }

    #[test]
    fn private_key_formats() {
        // RSA: PKCS#8 and PKCS#1; EC: SEC1 and PKCS#8; each also alone, without pub-key.
        for (method, public, private) in [
            ("RS256", "rsa.pub", "rsa.key"),
            ("RS256", "rsa.pub", "rsa-pkcs1.key"),
            ("PS256", "rsa.pub", "rsa-pkcs1.key"),
            ("ES256", "ec256.pub", "ec256.key"),
            ("ES256", "ec256.pub", "ec256-pkcs8.key"),
        ] {
            let with_public = tokens(method, Some(public), Some(private));
            let alone = tokens(method, None, Some(private));
            let token = alone.assign("bob", 1, at(NOW)).unwrap();
            assert_eq!(with_public.info(&token, at(NOW)), info("bob", 1), "{method} {private}");
            let token = with_public.assign("bob", 2, at(NOW)).unwrap();
            assert_eq!(alone.info(&token, at(NOW)), info("bob", 2), "{method} {private}");
        }
    }

    #[test]
    fn pkcs1_rsa_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rsa_public(&std::fs::read(file("rsa.pub")).unwrap()).unwrap();
        let pem = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&key, rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(pem.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        let path = dir.path().join("rsa-pkcs1.pub");
        std::fs::write(&path, pem).unwrap();
        let options =
            JwtOptions::parse(&format!("jwt,sign-method=RS256,pub-key={}", path.display())).unwrap();
        let verify = JwtTokens::new(&options).unwrap();
        let token = full("RS256").assign("carol", 3, at(NOW)).unwrap();
        assert_eq!(verify.info(&token, at(NOW)), info("carol", 3));
    }

    #[test]
    fn pem_with_text_around_it() {
        // Go's pem.Decode takes the first block wherever it is, whatever its label.
        let dir = tempfile::tempdir().unwrap();
        let pem = std::fs::read_to_string(file("rsa.key")).unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, format!("a comment\n{pem}trailing\n")).unwrap();
        let options =
            JwtOptions::parse(&format!("jwt,sign-method=RS256,priv-key={}", path.display())).unwrap();
        let tokens = JwtTokens::new(&options).unwrap();
        let token = tokens.assign("dan", 4, at(NOW)).unwrap();
        assert_eq!(full("RS256").info(&token, at(NOW)), info("dan", 4));
    }

    // ---- etcd 3.5's library (golang-jwt v4.5.2) ----

    /// Tokens golang-jwt v4.5.2 made as etcd 3.5 does (claims username, revision 42,
    /// exp 2000000000) with the fixture keys: "METHOD USERNAME TOKEN" lines.
    fn golang_jwt_tokens() -> Vec<(String, String, String)> {
        std::fs::read_to_string(file("golang-jwt-v4.5.2.tokens"))
            .unwrap()
            .lines()
            .map(|line| {
                let mut fields = line.splitn(3, ' ');
                let mut next = || fields.next().unwrap().to_owned();
                (next(), next(), next())
            })
            .collect()
    }

    #[test]
    fn golang_jwt_tokens_are_accepted() {
        let tokens = golang_jwt_tokens();
        assert_eq!(tokens.len(), 26);
        for (method, user, token) in tokens {
            let ours = full(&method);
            assert_eq!(ours.info(&token, at(1_999_999_999)), info(&user, 42), "{method} {user}");
            assert_eq!(ours.info(&token, at(2_000_000_000)), None, "{method} {user}");
            let verify_only = tokens_verify_only(&method);
            assert_eq!(verify_only.info(&token, at(NOW)), info(&user, 42), "{method} {user}");
        }
    }

    fn tokens_verify_only(method: &str) -> JwtTokens {
        let (public, private) = keys_for(method);
        if method.starts_with("HS") {
            tokens(method, None, Some(private))
        } else {
            tokens(method, Some(public), None)
        }
    }

    #[test]
    fn tokens_are_golang_jwt_byte_for_byte() {
        // RSASSA-PKCS1-v1_5, HMAC and Ed25519 signatures are deterministic, so the same claims
        // give etcd's token exactly (PSS and ECDSA signatures are randomized).
        let now = at(2_000_000_000 - 300);
        let mut compared = 0;
        for (method, user, token) in golang_jwt_tokens() {
            if method.starts_with("PS") || method.starts_with("ES") {
                continue;
            }
            assert_eq!(full(&method).assign(&user, 42, now).unwrap(), token, "{method} {user}");
            compared += 1;
        }
        assert_eq!(compared, 14);
    }

    #[test]
    fn usernames_are_escaped_as_go_does() {
        assert_eq!(go_json_string("root"), r#""root""#);
        assert_eq!(go_json_string("a<b>&c"), r#""a\u003cb\u003e\u0026c""#);
        assert_eq!(
            go_json_string("q\"\\\n\r\t\u{8}\u{c}\u{1}\u{2028}\u{2029}é"),
            r#""q\"\\\n\r\t\b\f\u0001\u2028\u2029é""#
        );
        let tokens = full("RS256");
        for user in ["", "a<b>&c", "q\"\\\n\u{1}\u{2028}é", "ユーザー"] {
            let token = tokens.assign(user, 9, at(NOW)).unwrap();
            assert_eq!(tokens.info(&token, at(NOW)), info(user, 9), "{user:?}");
        }
    }

    // ---- expiry ----

    #[test]
    fn expiry_follows_now_and_ttl() {
        let tokens = full("ES256");
        let token = tokens.assign("eve", 5, at(NOW)).unwrap();
        assert_eq!(tokens.info(&token, at(NOW - 1_000)), info("eve", 5));
        assert_eq!(tokens.info(&token, at(NOW + 299)), info("eve", 5));
        assert_eq!(tokens.info(&token, at(NOW + 299) + Duration::from_millis(999)), info("eve", 5));
        assert_eq!(tokens.info(&token, at(NOW + 300)), None, "expired at exp");
        assert_eq!(tokens.info(&token, at(NOW + 10_000)), None);
        // exp is now + ttl rounded down to the second.
        let token = tokens.assign("eve", 5, at(NOW) + Duration::from_millis(999)).unwrap();
        assert_eq!(parts(&token).1["exp"], NOW + 300);
    }

    #[test]
    fn ttl_option() {
        let hour_and_half = format!("{},ttl=1h30m", spec("HS256", None, Some("hmac.secret")));
        let tokens = JwtTokens::new(&JwtOptions::parse(&hour_and_half).unwrap()).unwrap();
        let token = tokens.assign("f", 1, at(NOW)).unwrap();
        assert_eq!(parts(&token).1["exp"], NOW + 5_400);
        assert_eq!(tokens.info(&token, at(NOW + 5_399)), info("f", 1));
        assert_eq!(tokens.info(&token, at(NOW + 5_400)), None);

        // ttl=0 and negative TTLs are accepted, as by etcd, and give tokens never good.
        for ttl in ["0", "-1m"] {
            let spec = format!("{},ttl={ttl}", spec("HS256", None, Some("hmac.secret")));
            let tokens = JwtTokens::new(&JwtOptions::parse(&spec).unwrap()).unwrap();
            let token = tokens.assign("f", 1, at(NOW)).unwrap();
            assert_eq!(tokens.info(&token, at(NOW)), None, "ttl={ttl}");
        }
    }

    // ---- refused tokens ----

    #[test]
    fn token_signed_with_another_key_is_refused() {
        let other = tokens("RS256", Some("rsa-other.pub"), Some("rsa-other.key"));
        let token = other.assign("mallory", 1, at(NOW)).unwrap();
        assert_eq!(other.info(&token, at(NOW)), info("mallory", 1));
        assert_eq!(full("RS256").info(&token, at(NOW)), None);
        assert_eq!(tokens("RS256", Some("rsa.pub"), None).info(&token, at(NOW)), None);
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let tokens = full("EdDSA");
        let token = tokens.assign("alice", 1, at(NOW)).unwrap();
        let (header, _, signature) = {
            let mut p = token.split('.');
            (p.next().unwrap(), p.next().unwrap(), p.next().unwrap())
        };
        let root = b64(&format!(r#"{{"exp":{},"revision":1,"username":"root"}}"#, NOW + 300));
        assert_eq!(tokens.info(&format!("{header}.{root}.{signature}"), at(NOW)), None);
        let later = b64(&format!(r#"{{"exp":{},"revision":1,"username":"alice"}}"#, NOW + 99_999));
        assert_eq!(tokens.info(&format!("{header}.{later}.{signature}"), at(NOW)), None);
        // A flipped signature character.
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(tokens.info(std::str::from_utf8(&bad).unwrap(), at(NOW)), None);
        // No signature.
        assert_eq!(tokens.info(&token[..token.len() - signature.len()], at(NOW)), None);
    }

    #[test]
    fn alg_none_is_refused() {
        for method in ALL {
            let tokens = full(method);
            let claims = b64(&format!(r#"{{"exp":{},"revision":1,"username":"root"}}"#, NOW + 300));
            let real = tokens.assign("root", 1, at(NOW)).unwrap();
            let real_signature = real.rsplit('.').next().unwrap();
            for alg in ["none", "None", "NONE", "nOnE"] {
                for header in [format!(r#"{{"alg":"{alg}"}}"#), format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)] {
                    let unsigned = format!("{}.{claims}.", b64(&header));
                    assert_eq!(tokens.info(&unsigned, at(NOW)), None, "{method} {header}");
                    let resigned = format!("{}.{claims}.{real_signature}", b64(&header));
                    assert_eq!(tokens.info(&resigned, at(NOW)), None, "{method} {header}");
                }
            }
        }
    }

    #[test]
    fn hmac_with_the_public_key_is_refused() {
        // The classic confusion: sign HS256 with the public key's bytes as the HMAC secret.
        for (method, public) in [("RS256", "rsa.pub"), ("ES256", "ec256.pub"), ("EdDSA", "ed25519.pub")] {
            let pem = std::fs::read(file(public)).unwrap();
            let der = pem_der(&pem).unwrap();
            for secret in [pem.as_slice(), der.as_slice()] {
                for (hs, alg) in
                    [("HS256", Algorithm::HS256), ("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)]
                {
                    let header = b64(&format!(r#"{{"alg":"{hs}","typ":"JWT"}}"#));
                    let claims = b64(&format!(r#"{{"exp":{},"revision":1,"username":"root"}}"#, NOW + 300));
                    let message = format!("{header}.{claims}");
                    let signature = jsonwebtoken::crypto::sign(
                        message.as_bytes(),
                        &EncodingKey::from_secret(secret),
                        alg,
                    )
                    .unwrap();
                    let forged = format!("{message}.{signature}");
                    assert_eq!(full(method).info(&forged, at(NOW)), None, "{method} {hs}");
                    assert_eq!(
                        tokens(method, Some(public), None).info(&forged, at(NOW)),
                        None,
                        "{method} {hs}"
                    );
                }
            }
        }
    }

    #[test]
    fn another_method_of_the_same_key_is_refused() {
        for (signer, checker) in [
            ("RS256", "RS512"),
            ("RS512", "RS256"),
            ("RS256", "PS256"),
            ("PS256", "RS256"),
            ("PS256", "PS384"),
            ("HS256", "HS512"),
            ("HS512", "HS256"),
        ] {
            let token = full(signer).assign("x", 1, at(NOW)).unwrap();
            assert_eq!(full(checker).info(&token, at(NOW)), None, "{signer} token, {checker} provider");
        }
        // A header that names the provider's method over a signature made with another.
        let tokens = full("RS512");
        let rs256 = full("RS256").assign("x", 1, at(NOW)).unwrap();
        let mut p = rs256.split('.');
        let (_, claims, signature) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
        let relabelled = format!("{}.{claims}.{signature}", b64(r#"{"alg":"RS512","typ":"JWT"}"#));
        assert_eq!(tokens.info(&relabelled, at(NOW)), None);
        // And the other way: a correct signature under a header naming another method.
        let ours = tokens.assign("x", 1, at(NOW)).unwrap();
        assert_eq!(with_alg(&tokens, &ours, "RS256"), None);
        assert_eq!(with_alg(&tokens, &ours, "rs512"), None);
    }

    /// `token`'s claims under a header naming `alg`, signed again with `tokens`' key.
    fn with_alg(tokens: &JwtTokens, token: &str, alg: &str) -> Option<AuthInfo> {
        let claims = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
        let forged = signed(
            tokens,
            &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
            std::str::from_utf8(&claims).unwrap(),
        );
        tokens.info(&forged, at(NOW))
    }

    #[test]
    fn ec_token_for_another_curve_is_refused() {
        let token = full("ES384").assign("x", 1, at(NOW)).unwrap();
        assert_eq!(full("ES256").info(&token, at(NOW)), None);
        assert_eq!(full("ES512").info(&token, at(NOW)), None);
        let token = full("ES512").assign("x", 1, at(NOW)).unwrap();
        assert_eq!(full("ES384").info(&token, at(NOW)), None);
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let huge = "a".repeat(4 << 20);
        let huge_parts = format!("{huge}.{huge}.{huge}");
        let dots = ".".repeat(100_000);
        let valid = full("RS256").assign("x", 1, at(NOW)).unwrap();
        let valid_es512 = full("ES512").assign("x", 1, at(NOW)).unwrap();
        let inputs: Vec<String> = vec![
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            "a".into(),
            "a.b".into(),
            "a.b.c".into(),
            "a.b.c.d".into(),
            "!!!.@@@.###".into(),
            "é.ü.ß".into(),
            "\0.\0.\0".into(),
            "eyJ.eyJ.".into(),
            huge.clone(),
            huge_parts,
            dots,
            format!("{valid}."),
            format!("{valid}.x"),
            format!(".{valid}"),
            format!("{valid} "),
            format!(" {valid}"),
            format!("{valid}="),
            valid.replace('.', ".."),
            format!("{valid_es512}A"),
            valid_es512[..valid_es512.len() - 1].to_owned(),
            // Header or claims that are not JSON objects.
            format!("{}.{}.AAAA", b64("[]"), b64("{}")),
            format!("{}.{}.AAAA", b64("null"), b64("{}")),
            format!("{}.{}.AAAA", b64(r#"{"alg":"RS256""#), b64("{}")),
            format!("{}.{}.AAAA", b64(r#"{"alg":256}"#), b64("{}")),
            format!("{}.{}.AAAA", b64(r#"{"typ":"JWT"}"#), b64("{}")),
            format!("{}.{}.AAAA", b64(r#"{"alg":["RS256"]}"#), b64("{}")),
            // base64 with padding, or standard (not url) alphabet.
            format!("{}==.{}.AAAA", b64(r#"{"alg":"RS256"}"#), b64("{}")),
            "eyJhbGciOiJSUzI1NiJ9.e30.+/+/".into(),
        ];
        for method in ALL {
            let tokens = full(method);
            for input in &inputs {
                assert_eq!(tokens.info(input, at(NOW)), None, "{method} {:?}", &input[..input.len().min(60)]);
            }
        }
        // A correctly signed token whose claims are not a JSON object.
        let tokens = full("RS256");
        for claims in ["", "[]", "null", "1", "\"x\"", "{", "{}x", "{\"username\":\"x\",}"] {
            let token = with_claims(&tokens, claims);
            assert_eq!(tokens.info(&token, at(NOW)), None, "{claims:?}");
        }
    }

    #[test]
    fn claims_must_be_present_and_of_the_right_type() {
        let tokens = full("RS256");
        let exp = NOW + 300;
        let check = |claims: String| tokens.info(&with_claims(&tokens, &claims), at(NOW));
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":3,"username":"u"}}"#)), info("u", 3));
        // Other claims are ignored, key order does not matter, an empty name is a name.
        assert_eq!(
            check(format!(r#"{{"username":"u","sub":1,"aud":"x","revision":3,"exp":{exp}}}"#)),
            info("u", 3)
        );
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":3,"username":""}}"#)), info("", 3));

        // username: a string.
        for username in
            ["", r#","username":1"#, r#","username":null"#, r#","username":["u"]"#, r#","username":{}"#]
        {
            assert_eq!(check(format!(r#"{{"exp":{exp},"revision":3{username}}}"#)), None, "{username}");
        }
        // revision: a number; etcd converts a float64 to uint64, truncating.
        for revision in
            ["", r#","revision":"3""#, r#","revision":null"#, r#","revision":true"#, r#","revision":[3]"#]
        {
            assert_eq!(check(format!(r#"{{"exp":{exp},"username":"u"{revision}}}"#)), None, "{revision}");
        }
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":7.9,"username":"u"}}"#)), info("u", 7));
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":3e2,"username":"u"}}"#)), info("u", 300));
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":0,"username":"u"}}"#)), info("u", 0));
        assert_eq!(
            check(format!(r#"{{"exp":{exp},"revision":18446744073709551615,"username":"u"}}"#)),
            info("u", u64::MAX)
        );
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":-1,"username":"u"}}"#)), None);
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":-0.5,"username":"u"}}"#)), None);
        assert_eq!(check(format!(r#"{{"exp":{exp},"revision":1e30,"username":"u"}}"#)), None);

        // exp: a number after now (required here; golang-jwt v4 would take a token without one).
        for exp in ["", r#""exp":"9999999999","#, r#""exp":null,"#, r#""exp":true,"#, r#""exp":0,"#] {
            assert_eq!(check(format!(r#"{{{exp}"revision":3,"username":"u"}}"#)), None, "{exp}");
        }
        assert_eq!(check(format!(r#"{{"exp":{}.5,"revision":3,"username":"u"}}"#, NOW)), info("u", 3));
        assert_eq!(check(format!(r#"{{"exp":{NOW},"revision":3,"username":"u"}}"#)), None);

        // iat and nbf: checked when present, as golang-jwt v4 does; 0 counts as absent.
        for (claim, good) in [
            (format!(r#""iat":{NOW}"#), true),
            (format!(r#""iat":{}"#, NOW - 10), true),
            (format!(r#""iat":{}"#, NOW + 1), false),
            (r#""iat":0"#.to_owned(), true),
            (r#""iat":"0""#.to_owned(), false),
            (format!(r#""nbf":{NOW}"#), true),
            (format!(r#""nbf":{}"#, NOW + 1), false),
            (r#""nbf":null"#.to_owned(), false),
        ] {
            let result = check(format!(r#"{{{claim},"exp":{exp},"revision":3,"username":"u"}}"#));
            assert_eq!(result.is_some(), good, "{claim}");
        }
    }

    #[test]
    fn header_fields_other_than_alg_are_ignored() {
        let tokens = full("ES256");
        let claims = format!(r#"{{"exp":{},"revision":3,"username":"u"}}"#, NOW + 300);
        for header in [r#"{"alg":"ES256"}"#, r#"{"typ":"JOSE","alg":"ES256","kid":"k","crit":["x"]}"#] {
            assert_eq!(tokens.info(&signed(&tokens, header, &claims), at(NOW)), info("u", 3), "{header}");
        }
    }

    // ---- verify-only ----

    #[test]
    fn verify_only_with_a_public_key() {
        for method in
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
        {
            let verify = tokens_verify_only(method);
            assert!(verify.verify_only(), "{method}");
            let err = verify.assign("root", 1, at(NOW)).unwrap_err();
            assert!(matches!(err, JwtError::VerifyOnly), "{method}");
            assert_eq!(err.to_string(), "auth: token signing attempted with verify-only key");
            let token = full(method).assign("root", 1, at(NOW)).unwrap();
            assert_eq!(verify.info(&token, at(NOW)), info("root", 1), "{method}");
            assert_eq!(verify.info(&token, at(NOW + 300)), None, "{method}");
        }
    }

    #[test]
    fn hmac_needs_the_private_key_and_ignores_the_public_one() {
        assert!(matches!(new_err(&spec("HS256", Some("hmac.secret"), None)), JwtError::MissingKey));
        // pub-key is not used with HS* (but must be readable).
        let tokens = tokens("HS256", Some("rsa.pub"), Some("hmac.secret"));
        let token = tokens.assign("u", 1, at(NOW)).unwrap();
        assert_eq!(full("HS256").info(&token, at(NOW)), info("u", 1));
        let err = new_err(&format!("{},pub-key=/nonexistent/key", spec("HS256", None, Some("hmac.secret"))));
        assert!(matches!(err, JwtError::InvalidAuthOpts(_)), "{err:?}");
    }

    // ---- options ----

    #[test]
    fn options_parse() {
        let options =
            JwtOptions::parse("jwt,pub-key=/a.pub,priv-key=/a.key,sign-method=RS256,ttl=10m").unwrap();
        assert_eq!(
            options,
            JwtOptions {
                sign_method: SignMethod::RS256,
                public_key: Some("/a.pub".into()),
                private_key: Some("/a.key".into()),
                ttl_nanos: 600_000_000_000,
                unknown_keys: vec![],
            }
        );
        // Defaults: no ttl, or an empty one, is etcd's 5 minutes; empty paths are not given.
        for spec in ["jwt,sign-method=ES256", "jwt,sign-method=ES256,ttl=,pub-key=,priv-key="] {
            let options = JwtOptions::parse(spec).unwrap();
            assert_eq!(options.ttl_nanos, 300_000_000_000);
            assert_eq!(DEFAULT_TTL_NANOS, 300_000_000_000);
            assert_eq!((options.public_key, options.private_key), (None, None));
        }
        // Unknown keys are kept for a warning, as etcd only logs them.
        let options = JwtOptions::parse("jwt,sign-method=EdDSA,colour=blue,pub-key=/x").unwrap();
        assert_eq!(options.unknown_keys, ["colour"]);
        // Every sign method golang-jwt knows, `none` included; names are case-sensitive.
        for method in SignMethod::ALL {
            assert_eq!(
                JwtOptions::parse(&format!("jwt,sign-method={}", method.name())).unwrap().sign_method,
                method
            );
        }
    }

    #[test]
    fn option_errors_are_invalid_auth_options() {
        for (spec, cause) in [
            ("jwt", "auth: invalid auth signature method"),
            ("jwt,pub-key=/a.pub,priv-key=/a.key", "auth: invalid auth signature method"),
            ("jwt,sign-method=", "auth: invalid auth signature method"),
            ("jwt,sign-method=rs256", "auth: invalid auth signature method"),
            ("jwt,sign-method=Ed25519", "auth: invalid auth signature method"),
            ("jwt,sign-method=ES256K", "auth: invalid auth signature method"),
            ("jwt,sign-method=RS256,", r#"invalid token option """#),
            ("jwt,sign-method=RS256,ttl", r#"invalid token option "ttl""#),
            ("jwt,sign-method=RS256,priv-key=/a=b", r#"invalid token option "priv-key=/a=b""#),
            ("jwt,sign-method=RS256,sign-method=ES256", r#"duplicate token option "sign-method""#),
            ("jwt,sign-method=RS256,x=1,x=2", r#"duplicate token option "x""#),
            ("simple,sign-method=RS256", r#"invalid token option "simple""#),
            ("", r#"invalid token option """#),
            ("JWT,sign-method=RS256", r#"invalid token option "JWT""#),
            ("jwt,sign-method=RS256,ttl=5", r#"time: missing unit in duration "5""#),
            ("jwt,sign-method=RS256,ttl=5 m", r#"time: unknown unit " m" in duration "5 m""#),
            ("jwt,sign-method=RS256,ttl=forever", r#"time: invalid duration "forever""#),
        ] {
            let err = JwtOptions::parse(spec).unwrap_err();
            assert_eq!(err.to_string(), "auth: invalid auth options", "{spec}");
            let source = std::error::Error::source(&err).unwrap_or_else(|| panic!("{spec}: no source"));
            assert_eq!(source.to_string(), cause, "{spec}");
        }
    }

    #[test]
    fn go_durations() {
        const S: i64 = 1_000_000_000;
        for (text, nanos) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("0s", 0),
            ("5m", 300 * S),
            ("300s", 300 * S),
            ("1h30m", 5_400 * S),
            ("1h30m15s", 5_415 * S),
            ("1.5h", 5_400 * S),
            ("-1.5h", -5_400 * S),
            ("+5m", 300 * S),
            (".5s", S / 2),
            ("1.s", S),
            ("1.25m", 75 * S),
            ("100ms", S / 10),
            ("250us", 250_000),
            ("250µs", 250_000),
            ("250μs", 250_000),
            ("7ns", 7),
            ("1m1m", 120 * S),
            ("0.000000001s", 1),
            ("0.0000000001s", 0),
            ("1.0000000000000000000001s", S),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("2562047h47m16.854775807s", i64::MAX),
        ] {
            assert_eq!(parse_go_duration(text).ok(), Some(nanos), "{text}");
        }
        for text in [
            "",
            "+",
            "-",
            "5",
            "m",
            ".s",
            "-.s",
            ".",
            "1..5s",
            "1.5.5s",
            "1x",
            "1M",
            "1S",
            "1 s",
            " 1s",
            "1s ",
            "s1",
            "1d",
            "9223372036854775808ns",
            "2562048h",
            "99999999999999999999s",
            "-9223372036854775809ns",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?} should be refused");
        }
    }

    // ---- keys ----

    #[test]
    fn key_errors() {
        let cases: Vec<(String, &str)> = vec![
            // No key for the method.
            (spec("RS256", None, None), "auth: missing key data"),
            (spec("ES256", None, None), "auth: missing key data"),
            (spec("EdDSA", None, None), "auth: missing key data"),
            (spec("HS256", None, None), "auth: missing key data"),
            // `none` is in golang-jwt's registry; etcd parses it and then refuses it.
            (
                spec("none", Some("rsa.pub"), Some("rsa.key")),
                "unsupported signing method: *jwt.signingMethodNone",
            ),
            // Keys that are not each other's.
            (
                spec("RS256", Some("rsa-other.pub"), Some("rsa.key")),
                "auth: public and private keys don't match",
            ),
            (
                spec("PS512", Some("rsa.pub"), Some("rsa-other.key")),
                "auth: public and private keys don't match",
            ),
            (
                spec("ES256", Some("ec384.pub"), Some("ec256.key")),
                "auth: public and private keys don't match",
            ),
            (spec("EdDSA", Some("rsa.pub"), Some("ed25519.key")), "key is not a valid Ed25519 public key"),
            // Keys of another kind than the method's.
            (spec("RS256", Some("ec256.pub"), None), "key is not a valid RSA public key"),
            (spec("RS256", None, Some("ec256.key")), "key is not a valid RSA private key"),
            (spec("RS256", None, Some("ed25519.key")), "key is not a valid RSA private key"),
            (spec("RS256", None, Some("rsa.pub")), "key is not a valid RSA private key"),
            (spec("RS256", Some("rsa.key"), None), "key is not a valid RSA public key"),
            (spec("ES256", Some("rsa.pub"), None), "key is not a valid ECDSA public key"),
            (spec("ES256", None, Some("rsa.key")), "key is not a valid ECDSA private key"),
            (spec("ES256", None, Some("ed25519.key")), "key is not a valid ECDSA private key"),
            (spec("EdDSA", None, Some("ec256-pkcs8.key")), "key is not a valid Ed25519 private key"),
            (spec("EdDSA", Some("ec256.pub"), None), "key is not a valid Ed25519 public key"),
            // Not PEM at all.
            (
                spec("RS256", None, Some("hmac.secret")),
                "invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key",
            ),
            (
                spec("ES256", Some("hmac.secret"), None),
                "invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key",
            ),
            // RSA keys larger than the rsa crate verifies with.
            (
                spec("RS256", None, Some("rsa8192.key")),
                "key is invalid: RSA keys of 8192 bits are not supported, at most 4096",
            ),
            (
                spec("RS256", Some("rsa8192.pub"), None),
                "key is invalid: RSA keys of 8192 bits are not supported, at most 4096",
            ),
            (
                spec("RS256", Some("rsa8192.pub"), Some("rsa.key")),
                "key is invalid: RSA keys of 8192 bits are not supported, at most 4096",
            ),
            // An EC key of another curve than the method's.
            (
                spec("ES256", Some("ec384.pub"), Some("ec384.key")),
                "key is invalid: ES256 signs with P-256 keys, this one is P-384",
            ),
            (
                spec("ES384", None, Some("ec521.key")),
                "key is invalid: ES384 signs with P-384 keys, this one is P-521",
            ),
            (
                spec("ES512", Some("ec256.pub"), None),
                "key is invalid: ES512 signs with P-521 keys, this one is P-256",
            ),
        ];
        for (spec, message) in cases {
            let err = new_err(&spec);
            assert_eq!(err.to_string(), message, "{spec}");
        }
    }

    #[test]
    fn mismatched_ed25519_keys() {
        let dir = tempfile::tempdir().unwrap();
        let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let pem =
            ed25519_dalek::pkcs8::EncodePublicKey::to_public_key_pem(&other, Default::default()).unwrap();
        let path = dir.path().join("other.pub");
        std::fs::write(&path, pem).unwrap();
        let spec =
            format!("jwt,sign-method=EdDSA,pub-key={},priv-key={}", path.display(), file("ed25519.key"));
        assert!(matches!(new_err(&spec), JwtError::KeyMismatch));
    }

    #[test]
    fn key_files_that_cannot_be_read_are_invalid_options() {
        for spec in [
            "jwt,sign-method=RS256,priv-key=/nonexistent/key".to_owned(),
            "jwt,sign-method=RS256,pub-key=/nonexistent/key".to_owned(),
            format!("jwt,sign-method=RS256,pub-key={DIR}"),
            // etcd reads the files before it looks at the method.
            "jwt,sign-method=none,priv-key=/nonexistent/key".to_owned(),
        ] {
            let err = new_err(&spec);
            assert_eq!(err.to_string(), "auth: invalid auth options", "{spec}");
            let source = std::error::Error::source(&err).unwrap();
            assert!(source.to_string().starts_with("open /"), "{spec}: {source}");
        }
    }

    #[test]
    fn empty_key_files_count_as_not_given() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        // An empty private key with a public key: verify-only, as in etcd.
        let spec = format!("jwt,sign-method=RS256,pub-key={},priv-key={}", file("rsa.pub"), empty.display());
        let tokens = JwtTokens::new(&JwtOptions::parse(&spec).unwrap()).unwrap();
        assert!(tokens.verify_only());
        // An empty HMAC secret is no secret.
        let spec = format!("jwt,sign-method=HS256,priv-key={}", empty.display());
        assert!(matches!(new_err(&spec), JwtError::MissingKey));
    }

    #[test]
    fn etcd_error_messages() {
        for (err, message) in [
            (JwtError::options(JwtError::MissingKey), "auth: invalid auth options"),
            (JwtError::InvalidAuthMethod, "auth: invalid auth signature method"),
            (JwtError::MissingKey, "auth: missing key data"),
            (JwtError::KeyMismatch, "auth: public and private keys don't match"),
            (JwtError::VerifyOnly, "auth: token signing attempted with verify-only key"),
        ] {
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn tokens_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<JwtTokens>();
        let tokens = std::sync::Arc::new(full("ES256"));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let tokens = tokens.clone();
                std::thread::spawn(move || {
                    let token = tokens.assign(&format!("u{i}"), i, at(NOW)).unwrap();
                    tokens.info(&token, at(NOW))
                })
            })
            .collect();
        for (i, thread) in threads.into_iter().enumerate() {
            assert_eq!(thread.join().unwrap(), info(&format!("u{i}"), i as u64));
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let debug = format!("{:?}", full("HS256"));
        let secret = std::fs::read_to_string(file("hmac.secret")).unwrap();
        assert!(!debug.contains(secret.trim()), "{debug}");
        assert!(debug.contains("HS256"), "{debug}");
    }
}
