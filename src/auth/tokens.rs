//! Tokens: etcd's simple tokens (random, kept in memory, each use renewing its TTL) and
//! JWTs (signed, carrying the user and the auth revision they were issued at).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use super::jwt::JwtTokens;
use super::AuthInfo;
use crate::error::{Error, Result};
use crate::lease::later;

/// The letters a simple token is made of, and how many it has (etcd's).
const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SIMPLE_TOKEN_LENGTH: usize = 16;

/// How tokens are issued and read back.
pub(crate) enum Tokens {
    Simple(SimpleTokens),
    Jwt(Box<JwtTokens>),
}

impl Tokens {
    /// A token for `user`, issued at auth revision `revision`.
    pub(crate) fn assign(&self, user: &str, revision: u64, now: Instant) -> Result<String> {
        match self {
            Tokens::Simple(simple) => simple.assign(user, now),
            Tokens::Jwt(jwt) => Ok(jwt.assign(user, revision, SystemTime::now())?),
        }
    }

    /// Who `token` stands for, or `None` for a token that is unknown, expired or forged. A
    /// simple token stands for its user at the `current` auth revision (etcd checks only a
    /// JWT's own revision).
    pub(crate) fn info(&self, token: &str, current: u64, now: Instant) -> Option<AuthInfo> {
        match self {
            Tokens::Simple(simple) => {
                simple.user_of(token, now).map(|user| AuthInfo { user, revision: current })
            }
            Tokens::Jwt(jwt) => jwt.info(token, SystemTime::now()),
        }
    }

    /// Auth was enabled.
    pub(crate) fn enable(&self) {
        if let Tokens::Simple(simple) = self {
            simple.inner.lock().enabled = true;
        }
    }

    /// Auth was disabled: every simple token is forgotten (a JWT stays good until it expires,
    /// as in etcd).
    pub(crate) fn disable(&self) {
        if let Tokens::Simple(simple) = self {
            let mut inner = simple.inner.lock();
            inner.enabled = false;
            inner.tokens.clear();
        }
    }

    /// `user` was deleted or changed their password: their simple tokens are forgotten.
    pub(crate) fn invalidate_user(&self, user: &str) {
        if let Tokens::Simple(simple) = self {
            simple.inner.lock().tokens.retain(|_, t| t.user != user);
        }
    }
}

/// etcd's simple tokens: `<16 random letters>.<index>`, valid for a TTL renewed by each use,
/// forgotten when auth is disabled, their user deleted or their password changed.
pub(crate) struct SimpleTokens {
    ttl: Duration,
    inner: Mutex<SimpleInner>,
}

struct SimpleInner {
    enabled: bool,
    tokens: HashMap<String, SimpleToken>,
    /// The index part of the next token (etcd uses the raft index of the authenticate).
    next_index: u64,
}

struct SimpleToken {
    user: String,
    expires: Instant,
}

impl SimpleTokens {
    /// Tokens valid for `ttl` after their last use.
    pub(crate) fn new(ttl: Duration) -> SimpleTokens {
        SimpleTokens {
            ttl,
            inner: Mutex::new(SimpleInner { enabled: false, tokens: HashMap::new(), next_index: 1 }),
        }
    }

    fn assign(&self, user: &str, now: Instant) -> Result<String> {
        let prefix = random_letters()?;
        let mut inner = self.inner.lock();
        // Expired tokens go when new ones come, so the map stays as large as the live ones.
        inner.tokens.retain(|_, t| t.expires > now);
        let token = format!("{prefix}.{}", inner.next_index);
        inner.next_index += 1;
        if inner.enabled {
            inner
                .tokens
                .insert(token.clone(), SimpleToken { user: user.to_owned(), expires: later(now, self.ttl) });
        }
        Ok(token)
    }

    fn user_of(&self, token: &str, now: Instant) -> Option<String> {
        let (prefix, index) = token.split_once('.')?;
        if prefix.contains('.') || index.contains('.') || index.parse::<u64>().is_err() {
            return None;
        }
        let mut inner = self.inner.lock();
        let found = inner.tokens.get_mut(token)?;
        if found.expires <= now {
            inner.tokens.remove(token);
            return None;
        }
        found.expires = later(now, self.ttl);
        Some(found.user.clone())
    }
}

/// 16 letters from the operating system's random source, each letter equally likely.
fn random_letters() -> Result<String> {
    let mut out = String::with_capacity(SIMPLE_TOKEN_LENGTH);
    let mut buf = [0u8; 32];
    while out.len() < SIMPLE_TOKEN_LENGTH {
        getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("random source: {e}")))?;
        // 208 = 4 x 52: bytes above it are dropped so that no letter is likelier.
        for b in buf.iter().filter(|&&b| b < 208) {
            if out.len() == SIMPLE_TOKEN_LENGTH {
                break;
            }
            out.push(LETTERS[usize::from(*b) % LETTERS.len()] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let tokens = Tokens::Simple(SimpleTokens::new(Duration::from_secs(300)));
        tokens.enable();
        tokens
    }

    #[test]
    fn simple_tokens_have_etcds_form_and_name_their_user() {
        let t = tokens();
        let now = Instant::now();
        let token = t.assign("alice", 7, now).unwrap();
        let (letters, index) = token.split_once('.').unwrap();
        assert_eq!(letters.len(), 16);
        assert!(letters.bytes().all(|b| b.is_ascii_alphabetic()));
        assert_eq!(index, "1");
        assert_eq!(t.info(&token, 9, now), Some(AuthInfo { user: "alice".into(), revision: 9 }));
        assert_ne!(t.assign("alice", 7, now).unwrap(), token);
    }

    #[test]
    fn a_simple_token_expires_after_its_ttl_unless_used() {
        let t = tokens();
        let start = Instant::now();
        let token = t.assign("alice", 1, start).unwrap();
        let used = start + Duration::from_secs(299);
        assert!(t.info(&token, 1, used).is_some());
        assert!(t.info(&token, 1, used + Duration::from_secs(299)).is_some());
        assert!(t.info(&token, 1, used + Duration::from_secs(299 + 300)).is_none());
        assert!(t.info(&token, 1, start).is_none(), "an expired token is gone");
    }

    #[test]
    fn disable_and_invalidation_forget_tokens() {
        let t = tokens();
        let now = Instant::now();
        let alice = t.assign("alice", 1, now).unwrap();
        let bob = t.assign("bob", 1, now).unwrap();
        t.invalidate_user("alice");
        assert!(t.info(&alice, 1, now).is_none());
        assert!(t.info(&bob, 1, now).is_some());
        t.disable();
        assert!(t.info(&bob, 1, now).is_none());
        let token = t.assign("bob", 1, now).unwrap();
        assert!(t.info(&token, 1, now).is_none(), "no token is kept while auth is off");
    }

    #[test]
    fn malformed_tokens_are_unknown() {
        let t = tokens();
        let now = Instant::now();
        for bad in ["", ".", "abc", "abc.", "abc.x", "a.b.1", "abc.1.2", &"x".repeat(1 << 16)] {
            assert!(t.info(bad, 1, now).is_none(), "{bad:.20}");
        }
    }
}
