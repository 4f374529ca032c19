//! JSON read as Go's `encoding/json` reads it, so that the gateway answers a request body
//! with the very messages etcd's gateway gives (grpc-gateway v1 reads bodies with a
//! `json.Decoder` and golang/protobuf's jsonpb, which hands each field to `json.Unmarshal`).
//!
//! * [`Scanner`]: Go's JSON syntax state machine, byte by byte and resumable, with Go's
//!   error texts (`invalid character 'b' looking for beginning of object key string`);
//! * [`Values`]: a body split into its JSON values as a `json.Decoder` splits it (each byte
//!   scanned once however the body arrives);
//! * [`check_valid`], [`members`], [`elements`]: what `json.Unmarshal` checks, and walking
//!   a value it accepted;
//! * [`to_bool`], [`to_int`], [`to_string`], [`to_bytes`], ...: a value decoded into a Go
//!   type, with `json.Unmarshal`'s type errors and Go's base64 (`illegal base64 data at
//!   input byte 4`);
//! * [`quote`]: Go's `%q`, which error messages use.
//!
//! Go's version is etcd 3.5.1's, go1.16 (which writes DEL as `\u007f` in `%q`).

/// Go's limit on nested objects and arrays (`exceeded max depth` past it).
const MAX_DEPTH: usize = 10_000;

/// Where Go's scanner is inside a value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    BeginValue,
    /// After `[`.
    BeginValueOrEmpty,
    /// After `{`.
    BeginStringOrEmpty,
    /// After `{"key": value,`.
    BeginString,
    EndValue,
    /// After the top-level value: only spaces may follow.
    EndTop,
    InString,
    InStringEscape,
    /// Inside `\u`, after this many hex digits.
    InStringEscapeU(u8),
    /// After `-`.
    Negative,
    /// In the integer part, after a non-zero first digit.
    Digits,
    /// After a leading `0` (or the whole integer part).
    Zero,
    Dot,
    Fraction,
    Exponent,
    ExponentSign,
    ExponentDigits,
    /// In `true`, `false` or `null`, expecting the byte at this index of the word.
    Literal(&'static str, usize),
    Error,
}

/// What is open around the scanner.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Frame {
    ObjectKey,
    ObjectValue,
    ArrayValue,
}

/// What one byte did.
#[derive(Debug, PartialEq)]
enum Op {
    Continue,
    /// The top-level value ended before this byte (a number or literal has no end mark).
    End,
    /// This byte closed an object or array.
    Closed,
    Error,
}

/// Go's JSON scanner: checks syntax one byte at a time, as `encoding/json` does, with its
/// error texts. It holds no input, so a value arriving in pieces is scanned once.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    stack: Vec<Frame>,
    /// The top-level value is complete.
    ended: bool,
    error: Option<String>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner { state: State::BeginValue, stack: Vec::new(), ended: false, error: None }
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

impl Scanner {
    /// The error met, if any.
    fn message(&self) -> String {
        self.error.clone().unwrap_or_else(|| "unexpected end of JSON input".to_owned())
    }

    fn fail(&mut self, c: u8, context: &str) -> Op {
        self.state = State::Error;
        self.error = Some(format!("invalid character {} {context}", quote_char(c)));
        Op::Error
    }

    fn step(&mut self, c: u8) -> Op {
        match self.state {
            State::BeginValue => self.begin_value(c),
            State::BeginValueOrEmpty if is_space(c) => Op::Continue,
            State::BeginValueOrEmpty if c == b']' => self.end_value(c),
            State::BeginValueOrEmpty => self.begin_value(c),
            State::BeginStringOrEmpty if is_space(c) => Op::Continue,
            State::BeginStringOrEmpty if c == b'}' => {
                if let Some(top) = self.stack.last_mut() {
                    *top = Frame::ObjectValue;
                }
                self.end_value(c)
            }
            State::BeginStringOrEmpty | State::BeginString => self.begin_string(c),
            State::EndValue => self.end_value(c),
            State::EndTop => self.end_top(c),
            State::InString => match c {
                b'"' => self.then(State::EndValue),
                b'\\' => self.then(State::InStringEscape),
                c if c < 0x20 => self.fail(c, "in string literal"),
                _ => Op::Continue,
            },
            State::InStringEscape => match c {
                b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => self.then(State::InString),
                b'u' => self.then(State::InStringEscapeU(0)),
                _ => self.fail(c, "in string escape code"),
            },
            State::InStringEscapeU(n) if is_hex(c) => {
                self.then(if n == 3 { State::InString } else { State::InStringEscapeU(n + 1) })
            }
            State::InStringEscapeU(_) => self.fail(c, "in \\u hexadecimal character escape"),
            State::Negative => match c {
                b'0' => self.then(State::Zero),
                b'1'..=b'9' => self.then(State::Digits),
                _ => self.fail(c, "in numeric literal"),
            },
            State::Digits if c.is_ascii_digit() => Op::Continue,
            State::Digits | State::Zero => match c {
                b'.' => self.then(State::Dot),
                b'e' | b'E' => self.then(State::Exponent),
                _ => self.end_value(c),
            },
            State::Dot if c.is_ascii_digit() => self.then(State::Fraction),
            State::Dot => self.fail(c, "after decimal point in numeric literal"),
            State::Fraction => match c {
                b'0'..=b'9' => Op::Continue,
                b'e' | b'E' => self.then(State::Exponent),
                _ => self.end_value(c),
            },
            State::Exponent if c == b'+' || c == b'-' => self.then(State::ExponentSign),
            State::Exponent | State::ExponentSign if c.is_ascii_digit() => self.then(State::ExponentDigits),
            State::Exponent | State::ExponentSign => self.fail(c, "in exponent of numeric literal"),
            State::ExponentDigits if c.is_ascii_digit() => Op::Continue,
            State::ExponentDigits => self.end_value(c),
            State::Literal(word, at) => {
                let expected = word.as_bytes()[at];
                if c != expected {
                    let context = format!("in literal {word} (expecting {})", quote_char(expected));
                    return self.fail(c, &context);
                }
                self.then(if at + 1 == word.len() { State::EndValue } else { State::Literal(word, at + 1) })
            }
            State::Error => Op::Error,
        }
    }

    fn then(&mut self, state: State) -> Op {
        self.state = state;
        Op::Continue
    }

    fn begin_value(&mut self, c: u8) -> Op {
        match c {
            c if is_space(c) => Op::Continue,
            b'{' => {
                self.state = State::BeginStringOrEmpty;
                self.push(Frame::ObjectKey, c)
            }
            b'[' => {
                self.state = State::BeginValueOrEmpty;
                self.push(Frame::ArrayValue, c)
            }
            b'"' => self.then(State::InString),
            b'-' => self.then(State::Negative),
            b'0' => self.then(State::Zero),
            b'1'..=b'9' => self.then(State::Digits),
            b't' => self.then(State::Literal("true", 1)),
            b'f' => self.then(State::Literal("false", 1)),
            b'n' => self.then(State::Literal("null", 1)),
            _ => self.fail(c, "looking for beginning of value"),
        }
    }

    fn begin_string(&mut self, c: u8) -> Op {
        match c {
            c if is_space(c) => Op::Continue,
            b'"' => self.then(State::InString),
            _ => self.fail(c, "looking for beginning of object key string"),
        }
    }

    fn push(&mut self, frame: Frame, c: u8) -> Op {
        self.stack.push(frame);
        if self.stack.len() > MAX_DEPTH {
            return self.fail(c, "exceeded max depth");
        }
        Op::Continue
    }

    fn end_value(&mut self, c: u8) -> Op {
        let Some(top) = self.stack.last_mut() else {
            self.state = State::EndTop;
            self.ended = true;
            return self.end_top(c);
        };
        if is_space(c) {
            self.state = State::EndValue;
            return Op::Continue;
        }
        match (*top, c) {
            (Frame::ObjectKey, b':') => {
                *top = Frame::ObjectValue;
                self.then(State::BeginValue)
            }
            (Frame::ObjectKey, _) => self.fail(c, "after object key"),
            (Frame::ObjectValue, b',') => {
                *top = Frame::ObjectKey;
                self.then(State::BeginString)
            }
            (Frame::ObjectValue, b'}') | (Frame::ArrayValue, b']') => {
                self.stack.pop();
                self.state = if self.stack.is_empty() { State::EndTop } else { State::EndValue };
                self.ended = self.stack.is_empty();
                Op::Closed
            }
            (Frame::ObjectValue, _) => self.fail(c, "after object key:value pair"),
            (Frame::ArrayValue, b',') => self.then(State::BeginValue),
            (Frame::ArrayValue, _) => self.fail(c, "after array element"),
        }
    }

    /// After the top-level value: Go reports a byte other than a space on the next step,
    /// and ends the value here.
    fn end_top(&mut self, c: u8) -> Op {
        if !is_space(c) {
            self.fail(c, "after top-level value");
        }
        Op::End
    }

    /// The end of the input, as `json.Unmarshal` meets it.
    fn eof(&mut self) -> Result<(), String> {
        if self.error.is_some() {
            return Err(self.message());
        }
        if self.ended {
            return Ok(());
        }
        self.step(b' ');
        if self.ended {
            return Ok(());
        }
        Err(self.message())
    }
}

/// Go's `quoteChar`: a byte as a character literal in a syntax error (`'b'`, `'\x01'`;
/// a byte from 0x80 up stands for the character of that number, `'ï'` for 0xEF).
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_owned(),
        b'"' => "'\"'".to_owned(),
        _ => {
            let quoted = quote(char::from(c).to_string().as_bytes());
            format!("'{}'", &quoted[1..quoted.len() - 1])
        }
    }
}

/// `json.Unmarshal`'s syntax check of a whole input: nothing but one value and spaces.
pub fn check_valid(data: &[u8]) -> Result<(), String> {
    let mut scanner = Scanner::default();
    for &c in data {
        if scanner.step(c) == Op::Error {
            return Err(scanner.message());
        }
    }
    scanner.eof()
}

/// The next value of a body, as Go's `json.Decoder` reads one.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// A value ends this many bytes into the data (spaces before it included).
    Value(usize),
    /// The data so far holds no complete value.
    More,
    /// The body ended with nothing but spaces: no more values (`io.EOF`).
    End,
    /// Not JSON (`unexpected EOF` for a body ending inside a value).
    Error(String),
}

/// Splits a body into its JSON values as a `json.Decoder` does: a value is complete at its
/// closing bracket, or at the first byte after a number or literal (which it leaves); a
/// body ending in the middle of a value is `unexpected EOF`. Feed it the unread data each
/// time more arrives: what it scanned already is not scanned again.
#[derive(Debug, Default)]
pub struct Values {
    scanner: Scanner,
    /// How far into the unread data the scanner has been.
    scanned: usize,
}

impl Values {
    /// The next value in `data` (the unread data, from where the last value ended);
    /// `ended` when the body has no more. After [`Next::Value`] the caller drops that many
    /// bytes; after [`Next::Error`] it stops.
    pub fn next(&mut self, data: &[u8], ended: bool) -> Next {
        while self.scanned < data.len() {
            let i = self.scanned;
            self.scanned += 1;
            match self.scanner.step(data[i]) {
                Op::End => return self.found(i),
                Op::Closed if self.scanner.stack.is_empty() => return self.found(i + 1),
                Op::Error => return Next::Error(self.scanner.message()),
                Op::Continue | Op::Closed => {}
            }
        }
        if !ended {
            return Next::More;
        }
        if self.scanner.step(b' ') == Op::End {
            return self.found(data.len());
        }
        if data.iter().any(|&b| !is_space(b)) {
            return Next::Error("unexpected EOF".to_owned());
        }
        Next::End
    }

    fn found(&mut self, end: usize) -> Next {
        *self = Values::default();
        Next::Value(end)
    }
}

/// `data` without the spaces around it.
pub fn trim(data: &[u8]) -> &[u8] {
    let start = data.iter().position(|&b| !is_space(b)).unwrap_or(data.len());
    let end = data.iter().rposition(|&b| !is_space(b)).map_or(start, |e| e + 1);
    &data[start..end.max(start)]
}

// ---------------------------------------------------------------------------------------
// Walking a value that passed the syntax check.

/// What a value is, by its first byte (`json.UnmarshalTypeError` names these).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// The kind of `value` (a checked value, spaces trimmed).
    pub fn of(value: &[u8]) -> Kind {
        match value.first() {
            Some(b'n') | None => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            Some(_) => Kind::Number,
        }
    }

    /// The word Go's type error uses.
    fn word(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// `json.UnmarshalTypeError`'s text: `what` (`number`, `number 1.5`, `string`, ...) does
/// not go into Go type `go_type`.
pub fn type_error(what: &str, go_type: &str) -> String {
    format!("json: cannot unmarshal {what} into Go value of type {go_type}")
}

/// The type error of a checked `value` that does not go into Go type `go_type`.
pub fn mismatch(value: &[u8], go_type: &str) -> String {
    type_error(Kind::of(value).word(), go_type)
}

/// The length of the value at the start of `data` (a checked value).
fn value_len(data: &[u8]) -> usize {
    match data.first() {
        Some(b'"') => string_len(data),
        Some(b'{' | b'[') => {
            let (mut depth, mut i) = (0usize, 0);
            while i < data.len() {
                match data[i] {
                    b'"' => {
                        i += string_len(&data[i..]);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            data.len()
        }
        _ => data.iter().position(|&b| matches!(b, b',' | b'}' | b']') || is_space(b)).unwrap_or(data.len()),
    }
}

/// The length of the string literal at the start of `data`, its quotes included.
fn string_len(data: &[u8]) -> usize {
    let mut i = 1;
    while i < data.len() {
        match data[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    data.len()
}

fn skip_space(data: &[u8], mut i: usize) -> usize {
    while i < data.len() && is_space(data[i]) {
        i += 1;
    }
    i
}

/// The items of the object or array `value` (a checked value): each key (as Go unquotes
/// it) with its value, or each element with no key.
fn items(value: &[u8], keyed: bool) -> Vec<(Option<String>, &[u8])> {
    let mut out = Vec::new();
    let mut i = skip_space(value, 1);
    while i < value.len() && !matches!(value[i], b'}' | b']') {
        let key = if keyed {
            let len = string_len(&value[i..]);
            let key = String::from_utf8(unquote(&value[i..i + len])).unwrap_or_default();
            // Past the key, its colon and the spaces around it.
            i = skip_space(value, skip_space(value, i + len) + 1);
            Some(key)
        } else {
            None
        };
        let len = value_len(&value[i..]);
        out.push((key, &value[i..i + len]));
        i = skip_space(value, i + len);
        if value.get(i) == Some(&b',') {
            i = skip_space(value, i + 1);
        }
    }
    out
}

/// The members of object `value` (checked), keys unquoted, in their order.
pub fn members(value: &[u8]) -> Vec<(String, &[u8])> {
    items(value, true).into_iter().map(|(key, value)| (key.unwrap_or_default(), value)).collect()
}

/// The elements of array `value` (checked).
pub fn elements(value: &[u8]) -> Vec<&[u8]> {
    items(value, false).into_iter().map(|(_, value)| value).collect()
}

/// The 4 hex digits of a `\uXXXX` escape at the start of `data`.
fn escape_u(data: &[u8]) -> Option<u32> {
    match data {
        [b'\\', b'u', digits @ ..] if digits.len() >= 4 => {
            u32::from_str_radix(std::str::from_utf8(&digits[..4]).ok()?, 16).ok()
        }
        _ => None,
    }
}

/// A string literal's text as Go decodes it: escapes resolved, a surrogate escape not
/// paired and every byte that is not UTF-8 replaced by U+FFFD. Always UTF-8.
pub fn unquote(literal: &[u8]) -> Vec<u8> {
    let inner = literal.get(1..literal.len().saturating_sub(1)).unwrap_or_default();
    let mut out = Vec::with_capacity(inner.len());
    let mut buf = [0u8; 4];
    let mut push = |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    let mut r = 0;
    while r < inner.len() {
        let c = inner[r];
        if c == b'\\' {
            let simple = match inner.get(r + 1) {
                Some(b'b') => Some('\u{8}'),
                Some(b'f') => Some('\u{c}'),
                Some(b'n') => Some('\n'),
                Some(b'r') => Some('\r'),
                Some(b't') => Some('\t'),
                Some(&other) if other != b'u' => Some(char::from(other)),
                _ => None,
            };
            if let Some(simple) = simple {
                push(&mut out, simple);
                r += 2;
                continue;
            }
            let unit = escape_u(&inner[r..]).unwrap_or(0xFFFD);
            r += 6;
            if (0xD800..0xE000).contains(&unit) {
                let low = escape_u(&inner[r..]);
                if let Some(low) = low.filter(|l| (0xDC00..0xE000).contains(l) && unit < 0xDC00) {
                    let pair = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    push(&mut out, char::from_u32(pair).unwrap_or('\u{FFFD}'));
                    r += 6;
                } else {
                    push(&mut out, '\u{FFFD}');
                }
                continue;
            }
            push(&mut out, char::from_u32(unit).unwrap_or('\u{FFFD}'));
            continue;
        }
        if c < 0x80 {
            out.push(c);
            r += 1;
            continue;
        }
        match utf8_char(&inner[r..]) {
            Some(len) => {
                out.extend_from_slice(&inner[r..r + len]);
                r += len;
            }
            None => {
                push(&mut out, '\u{FFFD}');
                r += 1;
            }
        }
    }
    out
}

/// The length of the UTF-8 character at the start of `data`, if one is there.
fn utf8_char(data: &[u8]) -> Option<usize> {
    let len = match data.first()? {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    std::str::from_utf8(data.get(..len)?).ok().map(|_| len)
}

// ---------------------------------------------------------------------------------------
// Values into Go types, as `json.Unmarshal` decodes them. `None` is a JSON null, which
// leaves the Go value as it is (zero).

/// `value` into a Go `bool`.
pub fn to_bool(value: &[u8]) -> Result<Option<bool>, String> {
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::Bool => Ok(Some(value.first() == Some(&b't'))),
        kind => Err(type_error(kind.word(), "bool")),
    }
}

/// `value` into a Go signed integer of `bits` bits, `go_type` naming it in errors.
pub fn to_int(value: &[u8], bits: u32, go_type: &str) -> Result<Option<i64>, String> {
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::Number => {
            let text = String::from_utf8_lossy(value);
            let limit = 1i128 << (bits - 1);
            match text.parse::<i64>() {
                Ok(n) if (-limit..limit).contains(&i128::from(n)) => Ok(Some(n)),
                _ => Err(type_error(&format!("number {text}"), go_type)),
            }
        }
        kind => Err(type_error(kind.word(), go_type)),
    }
}

/// `value` into a Go unsigned integer of `bits` bits.
pub fn to_uint(value: &[u8], bits: u32, go_type: &str) -> Result<Option<u64>, String> {
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::Number => {
            let text = String::from_utf8_lossy(value);
            match text.parse::<u64>() {
                Ok(n) if bits == 64 || n < (1u64 << bits) => Ok(Some(n)),
                _ => Err(type_error(&format!("number {text}"), go_type)),
            }
        }
        kind => Err(type_error(kind.word(), go_type)),
    }
}

/// `value` into a Go `string`.
pub fn to_string(value: &[u8]) -> Result<Option<String>, String> {
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::String => Ok(Some(String::from_utf8(unquote(value)).unwrap_or_default())),
        kind => Err(type_error(kind.word(), "string")),
    }
}

/// `value` into a Go `[]byte`: a string in standard base64 (Go's), or an array of
/// numbers, one per byte.
pub fn to_bytes(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::String => base64_decode(&unquote(value), true)
            .map(Some)
            .map_err(|at| format!("illegal base64 data at input byte {at}")),
        Kind::Array => {
            let mut out = Vec::new();
            for element in elements(value) {
                let byte = to_uint(element, 8, "uint8")?;
                out.push(u8::try_from(byte.unwrap_or(0)).unwrap_or_default());
            }
            Ok(Some(out))
        }
        kind => Err(type_error(kind.word(), "[]uint8")),
    }
}

/// Go's `base64.StdEncoding` decoding (`padded`: padding required) or `RawStdEncoding`
/// (none allowed), `\r` and `\n` skipped anywhere; an error is the offset Go reports
/// (`CorruptInputError`).
pub fn base64_decode(src: &[u8], padded: bool) -> Result<Vec<u8>, usize> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let skip_newlines = |mut si: usize| {
        while si < src.len() && matches!(src[si], b'\n' | b'\r') {
            si += 1;
        }
        si
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        // One quantum: four characters, the last one or two of them possibly padding.
        let (mut quantum, mut j, mut len) = ([0u8; 4], 0, 4);
        let mut trailing = None;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                if j == 1 || padded {
                    return Err(si - j);
                }
                len = j;
                break;
            }
            let c = src[si];
            si += 1;
            if let Some(bits) = sextet(c) {
                quantum[j] = bits;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' || !padded || j < 2 {
                return Err(si - 1);
            }
            if j == 2 {
                // A second `=` must follow the first.
                si = skip_newlines(si);
                if si == src.len() {
                    return Err(src.len());
                }
                if src[si] != b'=' {
                    return Err(si - 1);
                }
                si += 1;
            }
            si = skip_newlines(si);
            if si < src.len() {
                trailing = Some(si);
            }
            len = j;
            break;
        }
        let bits = quantum.iter().fold(0u32, |acc, &b| acc << 6 | u32::from(b));
        out.extend_from_slice(&bits.to_be_bytes()[1..len]);
        if let Some(at) = trailing {
            return Err(at);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Go's `%q`.

/// Go 1.16's `strconv.Quote` of `data`: a double-quoted Go string, `"` and `\` escaped,
/// characters Go does not print escaped (`\n`, `\x01`, `\u00a0`, `\u2028`), a byte that is
/// not UTF-8 as `\xff`.
pub fn quote(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < data.len() {
        let Some(len) = utf8_char(&data[i..]) else {
            out.push_str(&format!("\\x{:02x}", data[i]));
            i += 1;
            continue;
        };
        let c =
            std::str::from_utf8(&data[i..i + len]).ok().and_then(|s| s.chars().next()).unwrap_or('\u{FFFD}');
        i += len;
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c < ' ' => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: exact up to U+00FF; above it, every character but separators,
/// format characters and private use is taken as printable (Go also escapes unassigned
/// code points, which this does not know).
fn is_print(c: char) -> bool {
    let n = u32::from(c);
    if n <= 0xFF {
        return (0x20..=0x7E).contains(&n) || ((0xA1..=0xFF).contains(&n) && n != 0xAD);
    }
    let format_or_private = matches!(n,
        0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x08E2 | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xFFFE | 0xFFFF | 0x110BD | 0x110CD | 0x13430..=0x13438 | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F | 0xE000..=0xF8FF
        | 0xF0000..=0x10FFFF);
    !c.is_whitespace() && !c.is_control() && !format_or_private
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first value of `body` as a `json.Decoder` reads it, fed in chunks of `size`.
    fn first(body: &[u8], size: usize) -> Next {
        let mut values = Values::default();
        let mut seen = 0;
        loop {
            seen = (seen + size).min(body.len());
            let next = values.next(&body[..seen], seen == body.len());
            if next != Next::More {
                return next;
            }
        }
    }

    fn error(body: &str) -> String {
        match first(body.as_bytes(), body.len().max(1)) {
            Next::Error(e) => e,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_have_gos_texts() {
        for (body, expected) in [
            ("{bad", "invalid character 'b' looking for beginning of object key string"),
            (r#"{"key":"Zm9v",}"#, "invalid character '}' looking for beginning of object key string"),
            (r#"{"key" 1}"#, "invalid character '1' after object key"),
            (r#"{"a":1 "b"}"#, "invalid character '\"' after object key:value pair"),
            ("[1 2]", "invalid character '2' after array element"),
            (r#"{"a":01}"#, "invalid character '1' after object key:value pair"),
            (r#"{"a":-}"#, "invalid character '}' in numeric literal"),
            (r#"{"a":1.}"#, "invalid character '}' after decimal point in numeric literal"),
            (r#"{"a":1e}"#, "invalid character '}' in exponent of numeric literal"),
            (r#"{"a":tru}"#, "invalid character '}' in literal true (expecting 'e')"),
            (r#"{"a":nul}"#, "invalid character '}' in literal null (expecting 'l')"),
            (r#"{"a":fx}"#, "invalid character 'x' in literal false (expecting 'a')"),
            (r#"{"a":"\x"}"#, "invalid character 'x' in string escape code"),
            (r#"{"a":"\u12g4"}"#, r"invalid character 'g' in \u hexadecimal character escape"),
            ("{\"a\":\"\u{1}\"}", r"invalid character '\x01' in string literal"),
            ("{\"a\":\"\t\"}", r"invalid character '\t' in string literal"),
            ("\u{feff}{}", "invalid character 'ï' looking for beginning of value"),
            ("\x00", r"invalid character '\x00' looking for beginning of value"),
            ("'", r"invalid character '\'' looking for beginning of value"),
            ("\x7f", r"invalid character '\u007f' looking for beginning of value"),
            (r#"{"key":"Zm9v""#, "unexpected EOF"),
            ("tru", "unexpected EOF"),
        ] {
            assert_eq!(error(body), expected, "{body}");
        }
        let deep = |n: usize| format!("{{\"x\":{}{}}}", "[".repeat(n), "]".repeat(n));
        assert_eq!(error(&deep(10_000)), "invalid character '[' exceeded max depth");
        assert!(matches!(first(deep(9_999).as_bytes(), 4096), Next::Value(_)));
    }

    #[test]
    fn values_end_where_a_json_decoder_ends_them() {
        for size in [1, 2, 3, 100] {
            assert_eq!(first(br#" {"a":"}"} x"#, size), Next::Value(10));
            assert_eq!(first(b" [1,[2]]", size), Next::Value(8));
            // A number ends at the next byte, whatever it is (Go complains about it only
            // when asked for another value).
            assert_eq!(first(b"5x", size), Next::Value(1));
            assert_eq!(first(b"5", size), Next::Value(1));
            assert_eq!(first(b" null ", size), Next::Value(5));
            assert_eq!(first(b"  \n", size), Next::End);
            assert_eq!(first(b"", size), Next::End);
        }
        // Values one after another, however the body is cut.
        let body = br#"{"a":1} {"b":"x}"}[3]7 "s""#;
        for size in 1..body.len() {
            let (mut values, mut data, mut fed, mut got) = (Values::default(), Vec::new(), 0, Vec::new());
            loop {
                match values.next(&data, fed == body.len()) {
                    Next::Value(n) => got.push(trim(&data.drain(..n).collect::<Vec<_>>()).to_vec()),
                    Next::More => {
                        let more = (fed + size).min(body.len());
                        data.extend_from_slice(&body[fed..more]);
                        fed = more;
                    }
                    Next::End => break,
                    Next::Error(e) => panic!("{e}"),
                }
            }
            let expected: Vec<&[u8]> = vec![br#"{"a":1}"#, br#"{"b":"x}"}"#, b"[3]", b"7", br#""s""#];
            assert_eq!(got, expected, "chunks of {size}");
        }
    }

    #[test]
    fn whole_inputs_are_checked_as_json_unmarshal_checks_them() {
        assert_eq!(check_valid(b" 5 "), Ok(()));
        assert_eq!(check_valid(b""), Err("unexpected end of JSON input".into()));
        assert_eq!(check_valid(b"-"), Err("invalid character ' ' in numeric literal".into()));
        assert_eq!(check_valid(b"1 2"), Err("invalid character '2' after top-level value".into()));
        assert_eq!(check_valid(b"abc"), Err("invalid character 'a' looking for beginning of value".into()));
        assert_eq!(
            check_valid(br#"\"5\""#),
            Err(r"invalid character '\\' looking for beginning of value".into())
        );
    }

    #[test]
    fn objects_and_arrays_are_walked_with_keys_unquoted() {
        let object = br#"{ "k\u0065y" : "v" , "n":[1, {"x":"]"}] ,"e":{}}"#;
        let got = members(object);
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["key", "n", "e"]);
        assert_eq!(got[1].1, br#"[1, {"x":"]"}]"#);
        assert_eq!(elements(got[1].1), [&b"1"[..], br#"{"x":"]"}"#]);
        assert!(members(b"{}").is_empty() && elements(b"[ ]").is_empty());
    }

    #[test]
    fn strings_are_unquoted_as_go_unquotes_them() {
        let text = |literal: &[u8]| String::from_utf8(unquote(literal)).unwrap();
        assert_eq!(text(br#""a\"\\\/\b\f\n\r\t\u00e9""#), "a\"\\/\u{8}\u{c}\n\r\té");
        assert_eq!(text(br#""\ud83d\ude00""#), "😀");
        assert_eq!(text(br#""\ud800x""#), "\u{FFFD}x");
        assert_eq!(text(br#""\udc00\ud800\ud800\udc00""#), "\u{FFFD}\u{FFFD}\u{10000}");
        // Each byte that is not UTF-8 is one U+FFFD (Go's DecodeRune), unlike Rust's lossy.
        assert_eq!(text(b"\"\xf0\x9f\x98\""), "\u{FFFD}\u{FFFD}\u{FFFD}");
        assert_eq!(text(b"\"\xed\xa0\x80\""), "\u{FFFD}\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn values_go_into_go_types_with_gos_type_errors() {
        assert_eq!(to_int(b"-12", 64, "int64"), Ok(Some(-12)));
        assert_eq!(to_int(b"null", 64, "int64"), Ok(None));
        assert_eq!(
            to_int(b"1.5", 64, "int64"),
            Err("json: cannot unmarshal number 1.5 into Go value of type int64".into())
        );
        assert_eq!(
            to_int(b"9223372036854775808", 64, "int64"),
            Err("json: cannot unmarshal number 9223372036854775808 into Go value of type int64".into())
        );
        assert_eq!(to_int(b"-2147483648", 32, "int32"), Ok(Some(-2147483648)));
        assert_eq!(
            to_int(b"2147483648", 32, "protoreflect.EnumNumber"),
            Err("json: cannot unmarshal number 2147483648 into Go value of type protoreflect.EnumNumber"
                .into())
        );
        assert_eq!(
            to_int(b"true", 64, "int64"),
            Err("json: cannot unmarshal bool into Go value of type int64".into())
        );
        assert_eq!(to_uint(b"18446744073709551615", 64, "uint64"), Ok(Some(u64::MAX)));
        assert_eq!(
            to_uint(b"-1", 64, "uint64"),
            Err("json: cannot unmarshal number -1 into Go value of type uint64".into())
        );
        assert_eq!(
            to_bool(b"\"true\""),
            Err("json: cannot unmarshal string into Go value of type bool".into())
        );
        assert_eq!(
            to_string(b"[1]"),
            Err("json: cannot unmarshal array into Go value of type string".into())
        );
        assert_eq!(to_bytes(b"[102,111,111]"), Ok(Some(b"foo".to_vec())));
        assert_eq!(to_bytes(b"[1,null,2]"), Ok(Some(vec![1, 0, 2])));
        assert_eq!(
            to_bytes(b"[256]"),
            Err("json: cannot unmarshal number 256 into Go value of type uint8".into())
        );
        assert_eq!(
            to_bytes(b"[\"a\"]"),
            Err("json: cannot unmarshal string into Go value of type uint8".into())
        );
        assert_eq!(
            to_bytes(b"{}"),
            Err("json: cannot unmarshal object into Go value of type []uint8".into())
        );
        assert_eq!(to_bytes(b"5"), Err("json: cannot unmarshal number into Go value of type []uint8".into()));
    }

    #[test]
    fn base64_is_gos_standard_encoding() {
        let decode = |s: &str| base64_decode(s.as_bytes(), true);
        assert_eq!(decode("Zm9v"), Ok(b"foo".to_vec()));
        assert_eq!(decode("Zg=="), Ok(b"f".to_vec()));
        assert_eq!(decode("Zm8="), Ok(b"fo".to_vec()));
        assert_eq!(decode(""), Ok(Vec::new()));
        assert_eq!(decode("Zg==\n"), Ok(b"f".to_vec()));
        assert_eq!(decode("Zg\r\n=\n="), Ok(b"f".to_vec()));
        assert_eq!(decode("Zm\n9v\n"), Ok(b"foo".to_vec()));
        // The offsets etcd 3.5.1's gateway reports for these.
        for (input, at) in [
            ("!!!", 0),
            ("Zm9v==", 4),
            ("Zm9v====", 4),
            ("Zm9", 0),
            ("Zm-_", 2),
            ("Zg=", 3),
            ("Zg=x", 2),
            ("Zg==x", 4),
            ("Zm9vYmFyYmF6!", 12),
            ("Zm9vYmFy YmF6", 8),
            ("=Zm9v", 0),
            ("Z===", 1),
            ("Zm9vY", 4),
        ] {
            assert_eq!(decode(input), Err(at), "{input}");
        }
        // Unpadded (RawStdEncoding): a last quantum of two or three characters is whole; a
        // padding character is not one of its characters.
        let raw = |s: &str| base64_decode(s.as_bytes(), false);
        assert_eq!(raw("Zm9vYg"), Ok(b"foob".to_vec()));
        assert_eq!(raw("Zm8"), Ok(b"fo".to_vec()));
        assert_eq!(raw("Zm9vY"), Err(4));
        assert_eq!(raw("Zg=="), Err(2));
    }

    #[test]
    fn quoting_is_gos_percent_q() {
        assert_eq!(quote(br#""NOPE""#), r#""\"NOPE\"""#);
        assert_eq!(quote("\"é<\\u0000\"".as_bytes()), r#""\"é<\\u0000\"""#);
        assert_eq!(quote(b"\"\xff\""), r#""\"\xff\"""#);
        assert_eq!(quote("\u{2028}\u{7f}\u{a0}\n\u{1}".as_bytes()), r#""\u2028\u007f\u00a0\n\x01""#);
        assert_eq!(quote("😀\u{e000}".as_bytes()), "\"😀\\ue000\"");
    }
}
