//! A safe pickle reader and writer for plain data.
//!
//! Django's cache backends store the session dict as a Python pickle (protocol 5 on current
//! CPython), and its old `PickleSerializer` signed pickles. This module reads protocols 0–5 and
//! writes protocol 2–5 pickles that Python loads, for values made of `None`, bools, ints, floats,
//! strs, lists, tuples (read as lists) and dicts with str keys.
//!
//! **Nothing is ever executed or instantiated.** Every opcode that would look up a global, call it
//! or build an object (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`,
//! `NEWOBJ_EX`, `PERSID`, `BINPERSID`, `EXT1/2/4`) is refused with
//! [`SerializerError::Unsupported`] naming it, and so are the opcodes for values a session cannot
//! hold (`bytes`, `bytearray`, sets, out-of-band buffers). A pickled `datetime` therefore fails to
//! load: Django's JSON-era sessions store expiry as an ISO string.
//!
//! Decisions, where Python gives us a choice:
//! - Python 2 `str` (`STRING`, `BINSTRING`, `SHORT_BINSTRING`) is decoded as **latin-1**, like
//!   `pickle.loads(data, encoding="latin1")`: identical to Python 3's default for ASCII, and it
//!   never fails on other bytes.
//! - Dict keys must be `str`; any other key type is `Unsupported` (a Python session dict
//!   serialized as JSON can only have str keys anyway).
//! - Shared references (the memo: `PUT`/`GET`) are honoured, because Python writes them for any
//!   object that appears twice (often repeated dict keys). Since a [`Value`] is a tree, each
//!   reference becomes a copy, so the size of the built value is capped: at most
//!   `64 × input length + 65536` units (one per value, plus one per string byte), beyond which
//!   loading fails with [`SerializerError::TooLarge`]. A pickle without shared references never
//!   gets near the cap; a 1 KB pickle cannot expand into gigabytes. A container that contains
//!   itself is `Unsupported`.
//! - `\uXXXX` text escapes and UTF-8 strings that encode lone surrogates (Python accepts both)
//!   are [`Malformed`](SerializerError::Malformed): a Rust `String` cannot hold them.
//! - Protocol-0 text integers are read in the decimal form Python writes; forms CPython's loader
//!   would read through C `strtol` base 0 (`I010` as octal 8, hex) are refused.
//! - Bytes after `STOP` are ignored, as `pickle.loads` does.
//!
//! Every length field is checked against the remaining input before anything is allocated, the
//! nesting of the built value is limited to [`MAX_DEPTH`], and no input makes the reader panic.
//!
//! The pickles Django's cache writes (plain data whose only shared objects are strings, such as
//! repeated dict keys) are read in one pass, each value built in place. Any other pickle, and
//! every refusal, goes through the general reader, which builds a graph of the pickle's objects
//! first and so honours every shared reference; the one-pass reader only ever answers what the
//! general one would. Reading a session pickle takes about as long as reading the same session
//! as JSON (`benches/serializers.rs`).

mod direct;

use std::collections::HashMap;

use num_bigint::BigInt;

use super::{Serializer, SerializerError};
use crate::value::{Dict, Int, MAX_DEPTH, MAX_STR_DIGITS, Str, Value};

const FORMAT: &str = "pickle";

/// The protocol [`PickleSerializer::default`] writes: 4, which every Python since 3.4 reads and
/// which has the compact `SHORT_BINUNICODE` string form.
pub const DEFAULT_PROTOCOL: u8 = 4;

/// How many list items / dict entries Python puts between one `MARK` and its `APPENDS` /
/// `SETITEMS`.
const BATCH_SIZE: usize = 1000;

/// Python pickle serializer (plain data only; see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickleSerializer {
    protocol: u8,
}

impl Default for PickleSerializer {
    fn default() -> Self {
        PickleSerializer {
            protocol: DEFAULT_PROTOCOL,
        }
    }
}

impl PickleSerializer {
    /// A serializer writing the given protocol (2 to 5). Reading accepts every protocol.
    ///
    /// # Errors
    /// [`SerializerError::Unsupported`] for protocols 0, 1 and above 5.
    pub fn with_protocol(protocol: u8) -> Result<Self, SerializerError> {
        if (2..=5).contains(&protocol) {
            Ok(PickleSerializer { protocol })
        } else {
            Err(SerializerError::Unsupported {
                format: FORMAT,
                reason: format!("writing protocol {protocol}; choose 2, 3, 4 or 5"),
            })
        }
    }

    /// The protocol this serializer writes.
    pub fn protocol(&self) -> u8 {
        self.protocol
    }
}

impl Serializer for PickleSerializer {
    fn name(&self) -> &str {
        "pickle"
    }

    fn dumps_dict(&self, dict: &Dict) -> Result<Vec<u8>, SerializerError> {
        let mut writer = Writer::new(self.protocol);
        writer.write_dict(dict, 0)?;
        Ok(writer.finish())
    }

    fn dumps(&self, value: &Value) -> Result<Vec<u8>, SerializerError> {
        to_vec(value, self.protocol)
    }

    fn loads_stored_bytes(&self, bytes: &[u8]) -> Result<Value, SerializerError> {
        from_slice(bytes)
    }
}

/// Pickles a value with the given protocol (2 to 5).
///
/// # Errors
/// [`SerializerError::TooDeep`] past [`MAX_DEPTH`]; [`SerializerError::Unsupported`] for a
/// protocol outside 2..=5.
///
/// # Example
/// ```
/// use session_core::serializer::pickle;
/// use session_core::value::Value;
///
/// let bytes = pickle::to_vec(&Value::from("hi"), 4).unwrap();
/// assert_eq!(bytes, b"\x80\x04\x8c\x02hi.");
/// assert_eq!(pickle::from_slice(&bytes).unwrap(), Value::from("hi"));
/// ```
pub fn to_vec(value: &Value, protocol: u8) -> Result<Vec<u8>, SerializerError> {
    let protocol = PickleSerializer::with_protocol(protocol)?.protocol;
    let mut writer = Writer::new(protocol);
    writer.write_value(value, 0)?;
    Ok(writer.finish())
}

mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const FLOAT: u8 = b'F';
    pub const INT: u8 = b'I';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const LONG: u8 = b'L';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const PERSID: u8 = b'P';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const STRING: u8 = b'S';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const UNICODE: u8 = b'V';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const INST: u8 = b'i';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const OBJ: u8 = b'o';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const BINFLOAT: u8 = b'G';
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const LONG4: u8 = 0x8b;
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

/// Opcodes we refuse, with their pickletools names and why.
fn refused_opcode(code: u8) -> Option<(&'static str, &'static str)> {
    const OBJECT: &str = "it loads or builds Python objects, which is never done here";
    const BYTES: &str = "it makes bytes, which a session value cannot hold";
    const SET: &str = "it makes a set, which a session value cannot hold";
    Some(match code {
        op::GLOBAL => ("GLOBAL", OBJECT),
        op::STACK_GLOBAL => ("STACK_GLOBAL", OBJECT),
        op::REDUCE => ("REDUCE", OBJECT),
        op::BUILD => ("BUILD", OBJECT),
        op::INST => ("INST", OBJECT),
        op::OBJ => ("OBJ", OBJECT),
        op::NEWOBJ => ("NEWOBJ", OBJECT),
        op::NEWOBJ_EX => ("NEWOBJ_EX", OBJECT),
        op::PERSID => ("PERSID", OBJECT),
        op::BINPERSID => ("BINPERSID", OBJECT),
        op::EXT1 => ("EXT1", OBJECT),
        op::EXT2 => ("EXT2", OBJECT),
        op::EXT4 => ("EXT4", OBJECT),
        op::BINBYTES => ("BINBYTES", BYTES),
        op::SHORT_BINBYTES => ("SHORT_BINBYTES", BYTES),
        op::BINBYTES8 => ("BINBYTES8", BYTES),
        op::BYTEARRAY8 => ("BYTEARRAY8", BYTES),
        op::NEXT_BUFFER => ("NEXT_BUFFER", BYTES),
        op::READONLY_BUFFER => ("READONLY_BUFFER", BYTES),
        op::EMPTY_SET => ("EMPTY_SET", SET),
        op::ADDITEMS => ("ADDITEMS", SET),
        op::FROZENSET => ("FROZENSET", SET),
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Writer

struct Writer {
    out: Vec<u8>,
    protocol: u8,
}

impl Writer {
    fn new(protocol: u8) -> Self {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&[op::PROTO, protocol]);
        Writer { out, protocol }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(op::STOP);
        self.out
    }

    fn write_value(&mut self, value: &Value, depth: usize) -> Result<(), SerializerError> {
        match value {
            Value::Null => self.out.push(op::NONE),
            Value::Bool(true) => self.out.push(op::NEWTRUE),
            Value::Bool(false) => self.out.push(op::NEWFALSE),
            Value::Int(i) => self.write_int(i),
            Value::Float(f) => {
                self.out.push(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.write_str(s),
            Value::List(items) => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(SerializerError::TooDeep { limit: MAX_DEPTH });
                }
                self.out.push(op::EMPTY_LIST);
                for batch in items.chunks(BATCH_SIZE) {
                    if let [only] = batch {
                        self.write_value(only, depth)?;
                        self.out.push(op::APPEND);
                    } else {
                        self.out.push(op::MARK);
                        for item in batch {
                            self.write_value(item, depth)?;
                        }
                        self.out.push(op::APPENDS);
                    }
                }
            }
            Value::Dict(dict) => self.write_dict(dict, depth)?,
        }
        Ok(())
    }

    fn write_dict(&mut self, dict: &Dict, depth: usize) -> Result<(), SerializerError> {
        let depth = depth + 1;
        if depth > MAX_DEPTH {
            return Err(SerializerError::TooDeep { limit: MAX_DEPTH });
        }
        self.out.push(op::EMPTY_DICT);
        let entries: Vec<(&Str, &Value)> = dict.iter().collect();
        for batch in entries.chunks(BATCH_SIZE) {
            if let [(key, value)] = batch {
                self.write_str(key);
                self.write_value(value, depth)?;
                self.out.push(op::SETITEM);
            } else {
                self.out.push(op::MARK);
                for (key, value) in batch {
                    self.write_str(key);
                    self.write_value(value, depth)?;
                }
                self.out.push(op::SETITEMS);
            }
        }
        Ok(())
    }

    fn write_int(&mut self, i: &Int) {
        match i.as_i64() {
            Some(v @ 0..=0xff) => {
                self.out.push(op::BININT1);
                self.out.push(v.to_le_bytes()[0]);
            }
            Some(v @ 0x100..=0xffff) => {
                self.out.push(op::BININT2);
                self.out.extend_from_slice(&v.to_le_bytes()[..2]);
            }
            Some(v) if i32::try_from(v).is_ok() => {
                self.out.push(op::BININT);
                self.out.extend_from_slice(&v.to_le_bytes()[..4]);
            }
            _ => {
                let bytes = i.to_bigint().to_signed_bytes_le();
                if let Ok(len) = u8::try_from(bytes.len()) {
                    self.out.push(op::LONG1);
                    self.out.push(len);
                } else {
                    // Python's LONG4 length is a signed 32-bit int; no in-memory int reaches it.
                    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                    self.out.push(op::LONG4);
                    self.out.extend_from_slice(&len.to_le_bytes());
                }
                self.out.extend_from_slice(&bytes);
            }
        }
    }

    fn write_str(&mut self, s: &str) {
        let len = s.len();
        if self.protocol >= 4 && len < 256 {
            self.out.push(op::SHORT_BINUNICODE);
            self.out.push(u8::try_from(len).unwrap_or(u8::MAX));
        } else if let Ok(len32) = u32::try_from(len) {
            self.out.push(op::BINUNICODE);
            self.out.extend_from_slice(&len32.to_le_bytes());
        } else {
            self.out.push(op::BINUNICODE8);
            self.out.extend_from_slice(&(len as u64).to_le_bytes());
        }
        self.out.extend_from_slice(s.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

/// Parses a pickle (protocols 0 to 5) of plain data into a value.
///
/// # Errors
/// [`SerializerError::Unsupported`] for any opcode that builds or loads Python objects (naming it)
/// or makes values a session cannot hold, non-str dict keys and self-containing containers;
/// [`SerializerError::TooLarge`] when shared references would expand past the size cap;
/// [`SerializerError::TooDeep`] past [`MAX_DEPTH`]; [`SerializerError::Malformed`] for anything
/// else Python would also reject.
///
/// # Example
/// ```
/// use session_core::serializer::{pickle, SerializerError};
///
/// // pickle.dumps(os.system) in protocol 0: a GLOBAL, refused before anything is looked up.
/// let err = pickle::from_slice(b"cposix\nsystem\np0\n.").unwrap_err();
/// assert!(matches!(err, SerializerError::Unsupported { .. }));
/// assert!(err.to_string().contains("GLOBAL"));
/// ```
pub fn from_slice(bytes: &[u8]) -> Result<Value, SerializerError> {
    // The pickles Django's cache writes are read in one pass; the rest (and every error) by the
    // general reader, which answers for them.
    if let Some(value) = direct::read(bytes) {
        return Ok(value);
    }
    read_general(bytes)
}

/// Reads any pickle this module accepts, through a graph of its objects (see [`Reader`]).
fn read_general(bytes: &[u8]) -> Result<Value, SerializerError> {
    let mut reader = Reader {
        input: bytes,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        budget: budget_for(bytes.len()),
        budget_limit: budget_for(bytes.len()),
    };
    let root = reader.run()?;
    reader.materialize(root, 0, false)
}

/// The units a pickle of `len` bytes may build (see the module docs on shared references).
fn budget_for(len: usize) -> usize {
    len.saturating_mul(64).saturating_add(65_536)
}

/// What building a scalar costs: one unit, plus one per byte of a string or of a big integer.
fn scalar_cost(value: &Value) -> usize {
    1 + match value {
        Value::Str(s) => s.len(),
        Value::Int(i) => i.as_big().map_or(0, |b| (b.bits() / 8) as usize),
        _ => 0,
    }
}

type NodeId = usize;

enum Node {
    Scalar(Value),
    List {
        items: Vec<NodeId>,
        tuple: bool,
    },
    /// Key/value node pairs in insertion order; keys are checked to be str when set, and
    /// duplicates resolve when the dict is built (last value, first position, as in Python).
    Dict(Vec<(NodeId, NodeId)>),
    /// A node whose content has been moved into the result (only unshared nodes).
    Taken,
}

struct Slot {
    node: Node,
    /// Referenced more than once (through the memo or `DUP`): copy instead of moving.
    shared: bool,
    /// Being materialized right now (to detect containers that contain themselves).
    in_progress: bool,
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    nodes: Vec<Slot>,
    stack: Vec<NodeId>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
    /// Units left for building the value (one per value, one per string byte).
    budget: usize,
    budget_limit: usize,
}

fn opcode_name(code: u8) -> String {
    match code {
        0x20..=0x7e => format!("{:?} (0x{code:02x})", char::from(code)),
        _ => format!("0x{code:02x}"),
    }
}

impl<'a> Reader<'a> {
    fn malformed_at(&self, offset: usize, reason: impl Into<String>) -> SerializerError {
        SerializerError::Malformed {
            format: FORMAT,
            offset,
            reason: reason.into(),
        }
    }

    fn truncated(&self) -> SerializerError {
        self.malformed_at(self.pos, "pickle data was truncated")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], SerializerError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| self.truncated())?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], SerializerError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }

    /// A length field, checked against the remaining input before anyone allocates for it.
    fn checked_len(&self, len: u64, at: usize) -> Result<usize, SerializerError> {
        let remaining = self.input.len() - self.pos;
        match usize::try_from(len) {
            Ok(len) if len <= remaining => Ok(len),
            _ => Err(self.malformed_at(
                at,
                format!("length {len} is longer than the {remaining} bytes left"),
            )),
        }
    }

    /// A text argument up to (not including) the next newline.
    fn line(&mut self) -> Result<&'a [u8], SerializerError> {
        let rest = &self.input[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.truncated())?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn push_node(&mut self, node: Node) {
        let id = self.nodes.len();
        self.nodes.push(Slot {
            node,
            shared: false,
            in_progress: false,
        });
        self.stack.push(id);
    }

    fn push(&mut self, value: Value) {
        self.push_node(Node::Scalar(value));
    }

    /// Where the current mark's items start (0 with no mark open).
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self, at: usize) -> Result<NodeId, SerializerError> {
        if self.stack.len() <= self.fence() {
            return Err(self.malformed_at(at, "unpickling stack underflow"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed_at(at, "unpickling stack underflow"))
    }

    fn top(&self, at: usize) -> Result<NodeId, SerializerError> {
        if self.stack.len() <= self.fence() {
            return Err(self.malformed_at(at, "unpickling stack underflow"));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| self.malformed_at(at, "unpickling stack underflow"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<NodeId>, SerializerError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.malformed_at(at, "could not find MARK"))?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, index: u64, at: usize) -> Result<(), SerializerError> {
        let id = *self.memo.get(&index).ok_or_else(|| {
            self.malformed_at(at, format!("memo value not found at index {index}"))
        })?;
        self.nodes[id].shared = true;
        self.stack.push(id);
        Ok(())
    }

    fn memo_put(&mut self, index: u64, at: usize) -> Result<(), SerializerError> {
        let id = self.top(at)?;
        self.memo.insert(index, id);
        Ok(())
    }

    fn text_index(&mut self, at: usize) -> Result<u64, SerializerError> {
        let line = self.line()?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| self.malformed_at(at, "memo index must be a non-negative integer"))
    }

    fn charge(&mut self, units: usize) -> Result<(), SerializerError> {
        match self.budget.checked_sub(units) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(SerializerError::TooLarge {
                format: FORMAT,
                limit: self.budget_limit,
            }),
        }
    }

    fn append(
        &mut self,
        list: NodeId,
        items: Vec<NodeId>,
        at: usize,
    ) -> Result<(), SerializerError> {
        match &mut self.nodes[list].node {
            Node::List {
                items: target,
                tuple: false,
            } => {
                target.extend(items);
                Ok(())
            }
            _ => Err(self.malformed_at(at, "APPEND(S) target is not a list")),
        }
    }

    fn set_items(
        &mut self,
        dict: NodeId,
        pairs: &[NodeId],
        at: usize,
    ) -> Result<(), SerializerError> {
        if !matches!(self.nodes[dict].node, Node::Dict(_)) {
            return Err(self.malformed_at(at, "SETITEM(S) target is not a dict"));
        }
        for pair in pairs.chunks_exact(2) {
            let (key, value) = (pair[0], pair[1]);
            match &self.nodes[key].node {
                Node::Scalar(Value::Str(_)) => {}
                Node::Scalar(v) => return Err(bad_key(v.type_name(), at)),
                Node::List { tuple: true, .. } => return Err(bad_key("tuple", at)),
                Node::List { .. } => return Err(bad_key("list", at)),
                Node::Dict(_) => return Err(bad_key("dict", at)),
                Node::Taken => return Err(self.malformed_at(at, "internal: node reused")),
            }
            if let Node::Dict(entries) = &mut self.nodes[dict].node {
                entries.push((key, value));
            }
        }
        Ok(())
    }

    /// Runs the opcodes up to `STOP` and returns the result node.
    fn run(&mut self) -> Result<NodeId, SerializerError> {
        loop {
            let at = self.pos;
            let Some(&code) = self.input.get(self.pos) else {
                return Err(self.truncated());
            };
            self.pos += 1;
            match code {
                op::PROTO => {
                    let [protocol] = self.le::<1>()?;
                    if protocol > 5 {
                        return Err(self
                            .malformed_at(at, format!("unsupported pickle protocol: {protocol}")));
                    }
                }
                op::FRAME => {
                    let len = u64::from_le_bytes(self.le()?);
                    // Frames only group opcodes; all Python checks is that the frame is there.
                    self.checked_len(len, at)?;
                }
                op::STOP => return self.pop(at),
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    if self.marks.last() == Some(&self.stack.len()) {
                        self.marks.pop();
                    } else {
                        self.pop(at)?;
                    }
                }
                op::POP_MARK => {
                    self.pop_mark(at)?;
                }
                op::DUP => {
                    let id = self.top(at)?;
                    self.nodes[id].shared = true;
                    self.stack.push(id);
                }
                op::NONE => self.push(Value::Null),
                op::NEWTRUE => self.push(Value::Bool(true)),
                op::NEWFALSE => self.push(Value::Bool(false)),
                op::INT => {
                    let line = self.line()?;
                    let value = match line {
                        b"00" => Value::Bool(false),
                        b"01" => Value::Bool(true),
                        digits => Value::Int(self.text_int(digits, at)?),
                    };
                    self.push(value);
                }
                op::LONG => {
                    let line = self.line()?;
                    let digits = line.strip_suffix(b"L").unwrap_or(line);
                    let value = self.text_int(digits, at)?;
                    self.push(Value::Int(value));
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::from(i64::from(v)));
                }
                op::BININT1 => {
                    let [v] = self.le::<1>()?;
                    self.push(Value::from(i64::from(v)));
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::from(i64::from(v)));
                }
                op::LONG1 => {
                    let [len] = self.le::<1>()?;
                    let bytes = self.take(usize::from(len))?;
                    self.push(Value::Int(Int::from(BigInt::from_signed_bytes_le(bytes))));
                }
                op::LONG4 => {
                    let len = i32::from_le_bytes(self.le()?);
                    let len = u64::try_from(len).map_err(|_| {
                        self.malformed_at(at, "LONG pickle has negative byte count")
                    })?;
                    let len = self.checked_len(len, at)?;
                    let bytes = self.take(len)?;
                    self.push(Value::Int(Int::from(BigInt::from_signed_bytes_le(bytes))));
                }
                op::FLOAT => {
                    let line = self.line()?;
                    let f = self.text_float(line, at)?;
                    self.push(Value::Float(f));
                }
                op::BINFLOAT => {
                    let f = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(f));
                }
                op::STRING => {
                    let line = self.line()?;
                    let text = self.py2_string_literal(line, at)?;
                    self.push(Value::from(text));
                }
                op::BINSTRING => {
                    let len = i32::from_le_bytes(self.le()?);
                    let len = u64::try_from(len).map_err(|_| {
                        self.malformed_at(at, "BINSTRING pickle has negative byte count")
                    })?;
                    let len = self.checked_len(len, at)?;
                    let bytes = self.take(len)?;
                    self.push(Value::from(latin1(bytes)));
                }
                op::SHORT_BINSTRING => {
                    let [len] = self.le::<1>()?;
                    let bytes = self.take(usize::from(len))?;
                    self.push(Value::from(latin1(bytes)));
                }
                op::UNICODE => {
                    let line = self.line()?;
                    let text = self.raw_unicode_escape(line, at)?;
                    self.push(Value::from(text));
                }
                op::BINUNICODE => {
                    let len = u32::from_le_bytes(self.le()?);
                    let len = self.checked_len(u64::from(len), at)?;
                    self.utf8_string(len, at)?;
                }
                op::SHORT_BINUNICODE => {
                    let [len] = self.le::<1>()?;
                    self.utf8_string(usize::from(len), at)?;
                }
                op::BINUNICODE8 => {
                    let len = u64::from_le_bytes(self.le()?);
                    let len = self.checked_len(len, at)?;
                    self.utf8_string(len, at)?;
                }
                op::EMPTY_LIST => self.push_node(Node::List {
                    items: Vec::new(),
                    tuple: false,
                }),
                op::LIST => {
                    let items = self.pop_mark(at)?;
                    self.push_node(Node::List {
                        items,
                        tuple: false,
                    });
                }
                op::APPEND => {
                    let item = self.pop(at)?;
                    let list = self.top(at)?;
                    self.append(list, vec![item], at)?;
                }
                op::APPENDS => {
                    let items = self.pop_mark(at)?;
                    let list = self.top(at)?;
                    self.append(list, items, at)?;
                }
                op::EMPTY_TUPLE => self.push_node(Node::List {
                    items: Vec::new(),
                    tuple: true,
                }),
                op::TUPLE => {
                    let items = self.pop_mark(at)?;
                    self.push_node(Node::List { items, tuple: true });
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1) + 1;
                    let mut items = vec![0; n];
                    for slot in items.iter_mut().rev() {
                        *slot = self.pop(at)?;
                    }
                    self.push_node(Node::List { items, tuple: true });
                }
                op::EMPTY_DICT => self.push_node(Node::Dict(Vec::new())),
                op::DICT => {
                    let items = self.pop_mark(at)?;
                    if !items.len().is_multiple_of(2) {
                        return Err(self.malformed_at(at, "odd number of items for DICT"));
                    }
                    self.push_node(Node::Dict(Vec::new()));
                    let dict = self.top(at)?;
                    self.set_items(dict, &items, at)?;
                }
                op::SETITEM => {
                    let value = self.pop(at)?;
                    let key = self.pop(at)?;
                    let dict = self.top(at)?;
                    self.set_items(dict, &[key, value], at)?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark(at)?;
                    if !items.len().is_multiple_of(2) {
                        return Err(self.malformed_at(at, "odd number of items for SETITEMS"));
                    }
                    let dict = self.top(at)?;
                    self.set_items(dict, &items, at)?;
                }
                op::PUT => {
                    let index = self.text_index(at)?;
                    self.memo_put(index, at)?;
                }
                op::BINPUT => {
                    let [index] = self.le::<1>()?;
                    self.memo_put(u64::from(index), at)?;
                }
                op::LONG_BINPUT => {
                    let index = u32::from_le_bytes(self.le()?);
                    self.memo_put(u64::from(index), at)?;
                }
                op::MEMOIZE => {
                    let index = self.memo.len() as u64;
                    self.memo_put(index, at)?;
                }
                op::GET => {
                    let index = self.text_index(at)?;
                    self.memo_get(index, at)?;
                }
                op::BINGET => {
                    let [index] = self.le::<1>()?;
                    self.memo_get(u64::from(index), at)?;
                }
                op::LONG_BINGET => {
                    let index = u32::from_le_bytes(self.le()?);
                    self.memo_get(u64::from(index), at)?;
                }
                other => {
                    return Err(match refused_opcode(other) {
                        Some((name, why)) => SerializerError::Unsupported {
                            format: FORMAT,
                            reason: format!(
                                "opcode {name} at byte {at}: {why}; only plain data (None, bool, \
                                 int, float, str, list, tuple, dict) can be loaded"
                            ),
                        },
                        None => self
                            .malformed_at(at, format!("invalid load key {}", opcode_name(other))),
                    });
                }
            }
        }
    }

    fn utf8_string(&mut self, len: usize, at: usize) -> Result<(), SerializerError> {
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| {
            self.malformed_at(
                at,
                "string is not valid UTF-8 (Python allows encoded lone surrogates here; session \
                 strings cannot hold them)",
            )
        })?;
        self.push(Value::from(text));
        Ok(())
    }

    /// A protocol-0 decimal integer (`INT`/`LONG` argument).
    fn text_int(&self, text: &[u8], at: usize) -> Result<Int, SerializerError> {
        let digits = match text.first() {
            Some(b'-' | b'+') => &text[1..],
            _ => text,
        };
        let valid = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.iter().all(|&d| d == b'0'));
        if !valid {
            return Err(self.malformed_at(at, "could not convert string to int"));
        }
        if digits.len() > MAX_STR_DIGITS {
            return Err(self.malformed_at(
                at,
                format!("integer has more than {MAX_STR_DIGITS} digits (Python's limit)"),
            ));
        }
        let text = std::str::from_utf8(text)
            .map_err(|_| self.malformed_at(at, "could not convert string to int"))?;
        text.strip_prefix('+')
            .unwrap_or(text)
            .parse::<Int>()
            .map_err(|_| self.malformed_at(at, "could not convert string to int"))
    }

    /// A protocol-0 float (`FLOAT` argument), as Python's `float()` reads it.
    fn text_float(&self, text: &[u8], at: usize) -> Result<f64, SerializerError> {
        let parsed = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<f64>().ok().map(|f| (s, f)));
        match parsed {
            Some((s, f)) => {
                let literal_inf = s
                    .trim_start_matches(['+', '-'])
                    .to_ascii_lowercase()
                    .starts_with("inf");
                if f.is_infinite() && !literal_inf {
                    Err(self.malformed_at(at, "value too large to convert to float"))
                } else {
                    Ok(f)
                }
            }
            None => Err(self.malformed_at(at, "could not convert string to float")),
        }
    }

    /// A protocol-0 `STRING` argument: a quoted Python 2 `str` literal, decoded as latin-1.
    fn py2_string_literal(&self, line: &[u8], at: usize) -> Result<String, SerializerError> {
        let body = match line {
            [q, body @ .., last] if q == last && (*q == b'"' || *q == b'\'') => body,
            _ => {
                return Err(self.malformed_at(at, "the STRING opcode argument must be quoted"));
            }
        };
        let mut bytes = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            i += 1;
            if b != b'\\' {
                bytes.push(b);
                continue;
            }
            let Some(&c) = body.get(i) else {
                return Err(self.malformed_at(at, "Trailing \\ in string"));
            };
            i += 1;
            match c {
                b'\n' => {}
                b'\\' | b'\'' | b'"' => bytes.push(c),
                b'a' => bytes.push(0x07),
                b'b' => bytes.push(0x08),
                b'f' => bytes.push(0x0c),
                b't' => bytes.push(b'\t'),
                b'n' => bytes.push(b'\n'),
                b'r' => bytes.push(b'\r'),
                b'v' => bytes.push(0x0b),
                b'0'..=b'7' => {
                    let mut v = u32::from(c - b'0');
                    for _ in 0..2 {
                        match body.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    // Python keeps the low byte of an octal escape above \377.
                    bytes.push(v.to_le_bytes()[0]);
                }
                b'x' => {
                    let hex = body
                        .get(i..i + 2)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .ok_or_else(|| self.malformed_at(at, "invalid \\x escape"))?;
                    bytes.push(hex);
                    i += 2;
                }
                other => {
                    bytes.push(b'\\');
                    bytes.push(other);
                }
            }
        }
        Ok(latin1(&bytes))
    }

    /// A protocol-0 `UNICODE` argument, decoded like Python's `raw-unicode-escape` codec: bytes are
    /// latin-1 characters, except `\uXXXX` and `\UXXXXXXXX` after an odd number of backslashes.
    fn raw_unicode_escape(&self, line: &[u8], at: usize) -> Result<String, SerializerError> {
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            let b = line[i];
            if b != b'\\' {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            let run_start = i;
            while line.get(i) == Some(&b'\\') {
                i += 1;
            }
            let run = i - run_start;
            let width = match line.get(i) {
                Some(b'u') if run % 2 == 1 => 4,
                Some(b'U') if run % 2 == 1 => 8,
                _ => {
                    out.extend(std::iter::repeat_n('\\', run));
                    continue;
                }
            };
            out.extend(std::iter::repeat_n('\\', run - 1));
            let hex = line
                .get(i + 1..i + 1 + width)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|d| d.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    self.malformed_at(at, format!("truncated \\{} escape", char::from(line[i])))
                })?;
            let ch = char::from_u32(hex).ok_or_else(|| {
                if hex > 0x10_ffff {
                    self.malformed_at(at, "\\Uxxxxxxxx out of range")
                } else {
                    self.malformed_at(
                        at,
                        format!(
                            "lone surrogate \\u{hex:04x}: Python keeps it, but session strings \
                             must be valid Unicode"
                        ),
                    )
                }
            })?;
            out.push(ch);
            i += 1 + width;
        }
        Ok(out)
    }

    /// Builds the value of `id`, moving content that is referenced once and copying content that
    /// is shared (`copy`: some container around this one is shared, so this one is too).
    fn materialize(
        &mut self,
        id: NodeId,
        depth: usize,
        copy: bool,
    ) -> Result<Value, SerializerError> {
        let slot = &mut self.nodes[id];
        if slot.in_progress {
            return Err(SerializerError::Unsupported {
                format: FORMAT,
                reason: "a list or dict that contains itself cannot be a session value".to_owned(),
            });
        }
        let copy = copy || slot.shared;
        let node = if copy {
            match &slot.node {
                Node::Scalar(v) => Node::Scalar(v.clone()),
                Node::List { items, tuple } => Node::List {
                    items: items.clone(),
                    tuple: *tuple,
                },
                Node::Dict(map) => Node::Dict(map.clone()),
                Node::Taken => Node::Taken,
            }
        } else {
            std::mem::replace(&mut slot.node, Node::Taken)
        };
        // Shared nodes are rebuilt for every reference, each copy charged to the budget.
        let value = match node {
            Node::Scalar(value) => {
                self.charge(scalar_cost(&value))?;
                value
            }
            Node::List { items, .. } => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(SerializerError::TooDeep { limit: MAX_DEPTH });
                }
                self.charge(1)?;
                self.nodes[id].in_progress = true;
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    list.push(self.materialize(item, depth, copy)?);
                }
                self.nodes[id].in_progress = false;
                Value::List(list)
            }
            Node::Dict(map) => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(SerializerError::TooDeep { limit: MAX_DEPTH });
                }
                self.charge(1)?;
                self.nodes[id].in_progress = true;
                let mut entries = Dict::parsed_entries_buffer(map.len());
                for (key, item) in map {
                    let Value::Str(key) = self.materialize(key, depth, copy)? else {
                        return Err(bad_key("non-str", 0));
                    };
                    let value = self.materialize(item, depth, copy)?;
                    entries.push((key, value));
                }
                self.nodes[id].in_progress = false;
                // Python's rule for a repeated key: the last value wins, at the first position.
                Value::Dict(Dict::from_parsed(entries))
            }
            Node::Taken => {
                return Err(SerializerError::Malformed {
                    format: FORMAT,
                    offset: 0,
                    reason: "internal: a pickle node was used twice".to_owned(),
                });
            }
        };
        Ok(value)
    }
}

fn bad_key(type_name: &str, at: usize) -> SerializerError {
    SerializerError::Unsupported {
        format: FORMAT,
        reason: format!(
            "dict key of type {type_name} (set at byte {at}); session dict keys must be str"
        ),
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}
