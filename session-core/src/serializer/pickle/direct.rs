//! The common pickle, read in one pass: each value is built as its opcodes come, straight into
//! the container that holds it.
//!
//! The general reader ([`Reader`](super::Reader)) builds a graph of nodes first and the value
//! from it afterwards, so that any shared reference Python can write comes out right. That costs
//! each value two homes and several moves, and made reading a 2 KB session pickle 2.6 times
//! slower than reading the same session as JSON. But the pickles Django's cache writes share
//! only strings: Python memoizes every string and container, and refers back (`BINGET`) to a
//! string it has written before, such as a dict key repeated from one cart line to the next.
//! Here a repeated string is read again from its own opcode, which gives the copy the general
//! reader makes, charged to the same budget.
//!
//! Anything rarer returns `None`: a reference to a container (shared, or containing itself),
//! `DUP`, `POP`, `POP_MARK`, the protocol 0 and 1 text opcodes, a memo index other than the
//! next one or an existing one, and every error. The caller then reads the pickle with the
//! general reader, whose value or error is the answer. So this path only ever answers what that
//! one would, and what it refuses costs one extra pass.

use num_bigint::BigInt;

use super::{budget_for, latin1, op, scalar_cost};
use crate::serializer::{fill, push_default, with_reused};
use crate::value::{Dict, Int, MAX_DEPTH, Str, Value};

/// Reads `input`, or returns `None` for the general reader to decide (see the module docs).
pub(super) fn read(input: &[u8]) -> Option<Value> {
    let run = |buffers: &mut Buffers| {
        let mut reader = Direct {
            input,
            pos: 0,
            stack: std::mem::take(&mut buffers.stack),
            marks: std::mem::take(&mut buffers.marks),
            memo: std::mem::take(&mut buffers.memo),
            budget: budget_for(input.len()),
        };
        let value = reader.run();
        // A refused pickle leaves values behind; they go before the room is kept.
        reader.stack.clear();
        reader.marks.clear();
        reader.memo.clear();
        if reader.stack.capacity() <= KEPT && reader.memo.capacity() <= KEPT * 4 {
            buffers.stack = reader.stack;
            buffers.marks = reader.marks;
            buffers.memo = reader.memo;
        }
        value
    };
    with_reused(&BUFFERS, run)
}

/// The reader's stacks, kept from one pickle to the next on each thread: growing them anew
/// for every session was a third of reading a 100 B one.
#[derive(Default)]
struct Buffers {
    stack: Vec<Slot>,
    marks: Vec<usize>,
    memo: Vec<Memo>,
}

/// Stacks larger than this (in slots) are given back after a pickle rather than kept.
const KEPT: usize = 4096;

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
}

/// One value on the unpickling stack.
#[derive(Default)]
struct Slot {
    value: Value,
    /// Where the value came from: what a memo entry for it records.
    source: Source,
    /// How deeply the value nests, as [`Value::depth`] counts (0 for a scalar).
    depth: usize,
}

#[derive(Clone, Copy)]
enum Source {
    /// A scalar, made by the opcode at this offset (read again for each reference to it).
    Scalar(usize),
    /// A list or dict (`tuple`: made by a tuple opcode, so nothing may be appended to it).
    Container { tuple: bool },
}

impl Default for Source {
    fn default() -> Self {
        Source::Scalar(0)
    }
}

#[derive(Clone, Copy)]
enum Memo {
    Scalar(usize),
    /// A reference to it would share a container: left to the general reader.
    Container,
}

struct Direct<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Slot>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    /// Entries by index; `MEMOIZE` sets the next one (Python's `len(memo)`).
    memo: Vec<Memo>,
    /// Units left, counted as the general reader counts them.
    budget: usize,
}

/// Writes the scalar made by the opcode at `at` into `out`, a slot that [`push_default`] just
/// made (see [`fill`]), and returns the offset after it; `None` if the opcode is not one of the
/// scalars read here or its argument is bad.
///
/// Written in place, as the JSON parser writes its values ([`push_default`]): returned through
/// memory and pushed, each value was copied in pieces wider than the stores that had just made
/// it, and every such copy waited for them (a fifth of reading a 2 KB session).
#[inline(always)]
fn scalar_into(input: &[u8], at: usize, out: &mut Value) -> Option<usize> {
    let code = *input.get(at)?;
    let mut pos = at + 1;
    let mut take = |n: usize| -> Option<&[u8]> {
        let end = pos.checked_add(n).filter(|&end| end <= input.len())?;
        let bytes = &input[pos..end];
        pos = end;
        Some(bytes)
    };
    let value = match code {
        op::NONE => Value::Null,
        op::NEWTRUE => Value::Bool(true),
        op::NEWFALSE => Value::Bool(false),
        op::BININT1 => Value::from(i64::from(take(1)?[0])),
        op::BININT2 => Value::from(i64::from(u16::from_le_bytes(take(2)?.try_into().ok()?))),
        op::BININT => Value::from(i64::from(i32::from_le_bytes(take(4)?.try_into().ok()?))),
        op::LONG1 => {
            let len = take(1)?[0];
            Value::Int(Int::from(BigInt::from_signed_bytes_le(take(usize::from(
                len,
            ))?)))
        }
        op::LONG4 => {
            let len = usize::try_from(i32::from_le_bytes(take(4)?.try_into().ok()?)).ok()?;
            Value::Int(Int::from(BigInt::from_signed_bytes_le(take(len)?)))
        }
        op::BINFLOAT => Value::Float(f64::from_be_bytes(take(8)?.try_into().ok()?)),
        op::SHORT_BINUNICODE => {
            let len = take(1)?[0];
            Value::Str(Str::from(
                std::str::from_utf8(take(usize::from(len))?).ok()?,
            ))
        }
        op::BINUNICODE => {
            let len = usize::try_from(u32::from_le_bytes(take(4)?.try_into().ok()?)).ok()?;
            Value::Str(Str::from(std::str::from_utf8(take(len)?).ok()?))
        }
        op::BINUNICODE8 => {
            let len = usize::try_from(u64::from_le_bytes(take(8)?.try_into().ok()?)).ok()?;
            Value::Str(Str::from(std::str::from_utf8(take(len)?).ok()?))
        }
        op::SHORT_BINSTRING => {
            let len = take(1)?[0];
            Value::from(latin1(take(usize::from(len))?))
        }
        op::BINSTRING => {
            let len = usize::try_from(i32::from_le_bytes(take(4)?.try_into().ok()?)).ok()?;
            Value::from(latin1(take(len)?))
        }
        _ => return None,
    };
    fill(out, value);
    Some(pos)
}

impl Direct<'_> {
    fn run(&mut self) -> Option<Value> {
        loop {
            let at = self.pos;
            let code = *self.input.get(at)?;
            self.pos += 1;
            match code {
                op::PROTO => {
                    if *self.input.get(self.pos)? > 5 {
                        return None;
                    }
                    self.pos += 1;
                }
                op::FRAME => {
                    let end = self.pos.checked_add(8)?;
                    let len = u64::from_le_bytes(self.input.get(self.pos..end)?.try_into().ok()?);
                    self.pos = end;
                    // Frames only group opcodes; Python checks only that the frame is there.
                    if usize::try_from(len).ok()? > self.input.len() - self.pos {
                        return None;
                    }
                }
                op::STOP => return self.pop().map(|slot| slot.value),
                op::MARK => self.marks.push(self.stack.len()),
                op::EMPTY_LIST | op::EMPTY_TUPLE => {
                    self.container(Value::List(Vec::new()), code == op::EMPTY_TUPLE, 1)?;
                }
                op::EMPTY_DICT => self.container(Value::Dict(Dict::new()), false, 1)?,
                op::LIST | op::TUPLE => {
                    let first = self.marks.pop()?;
                    let (list, depth) = self.list_from(first);
                    self.container(list, code == op::TUPLE, depth)?;
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1) + 1;
                    let first = self.stack.len().checked_sub(n)?;
                    if first < self.fence() {
                        return None;
                    }
                    let (list, depth) = self.list_from(first);
                    self.container(list, true, depth)?;
                }
                op::APPEND => {
                    let first = self.stack.len().checked_sub(1)?;
                    self.append_from(first)?;
                }
                op::APPENDS => {
                    let first = self.marks.pop()?;
                    self.append_from(first)?;
                }
                op::DICT => {
                    let first = self.marks.pop()?;
                    self.container(Value::Dict(Dict::new()), false, 1)?;
                    // The new dict goes below the pairs it takes.
                    self.stack.get_mut(first..)?.rotate_right(1);
                    self.set_items_from(first + 1)?;
                }
                op::SETITEM => {
                    let first = self.stack.len().checked_sub(2)?;
                    self.set_items_from(first)?;
                }
                op::SETITEMS => {
                    let first = self.marks.pop()?;
                    self.set_items_from(first)?;
                }
                op::BINPUT => {
                    let index = *self.input.get(self.pos)?;
                    self.pos += 1;
                    self.memo_put(usize::from(index))?;
                }
                op::LONG_BINPUT => {
                    let index = self.u32_arg()?;
                    self.memo_put(usize::try_from(index).ok()?)?;
                }
                op::MEMOIZE => self.memo_put(self.memo.len())?,
                op::BINGET => {
                    let index = *self.input.get(self.pos)?;
                    self.pos += 1;
                    self.memo_get(usize::from(index))?;
                }
                op::LONG_BINGET => {
                    let index = self.u32_arg()?;
                    self.memo_get(usize::try_from(index).ok()?)?;
                }
                _ => self.pos = self.push_scalar(at)?,
            }
        }
    }

    fn u32_arg(&mut self) -> Option<u32> {
        let end = self.pos.checked_add(4)?;
        let bytes = self.input.get(self.pos..end)?;
        self.pos = end;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    /// Where the current mark's items start (0 with no mark open).
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Option<Slot> {
        if self.stack.len() <= self.fence() {
            return None;
        }
        self.stack.pop()
    }

    fn charge(&mut self, units: usize) -> Option<()> {
        self.budget = self.budget.checked_sub(units)?;
        Some(())
    }

    /// Pushes the scalar made by the opcode at `at`; returns the offset after that opcode.
    #[inline(always)]
    fn push_scalar(&mut self, at: usize) -> Option<usize> {
        let slot = push_default(&mut self.stack);
        let next = scalar_into(self.input, at, &mut slot.value)?;
        slot.source = Source::Scalar(at);
        let cost = scalar_cost(&slot.value);
        self.charge(cost)?;
        Some(next)
    }

    /// Pushes a list or dict nesting `depth` levels deep (1 when it holds no container).
    fn container(&mut self, value: Value, tuple: bool, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.charge(1)?;
        self.stack.push(Slot {
            value,
            source: Source::Container { tuple },
            depth,
        });
        Some(())
    }

    /// The items from `first` up as one list, and how deeply that list nests.
    fn list_from(&mut self, first: usize) -> (Value, usize) {
        let mut depth = 1;
        let items = self
            .stack
            .drain(first..)
            .map(|slot| {
                depth = depth.max(slot.depth + 1);
                slot.value
            })
            .collect();
        (Value::List(items), depth)
    }

    /// Appends the items from `first` up to the list just below them.
    fn append_from(&mut self, first: usize) -> Option<()> {
        let target = first.checked_sub(1)?;
        if target < self.fence() {
            return None;
        }
        let (items, rest) = self.stack.split_at_mut(first);
        let list = items.last_mut()?;
        let (Value::List(values), Source::Container { tuple: false }) =
            (&mut list.value, list.source)
        else {
            return None;
        };
        values.reserve(rest.len());
        let mut depth = list.depth;
        for slot in rest {
            depth = depth.max(slot.depth + 1);
            values.push(std::mem::take(&mut slot.value));
        }
        list.depth = depth;
        self.stack.truncate(first);
        (depth <= MAX_DEPTH).then_some(())
    }

    /// Sets the key/value pairs from `first` up in the dict just below them.
    fn set_items_from(&mut self, first: usize) -> Option<()> {
        let target = first.checked_sub(1)?;
        if target < self.fence() || !(self.stack.len() - first).is_multiple_of(2) {
            return None;
        }
        let (items, rest) = self.stack.split_at_mut(first);
        let dict_slot = items.last_mut()?;
        let Value::Dict(dict) = &mut dict_slot.value else {
            return None;
        };
        let mut depth = dict_slot.depth;
        let mut entries = Dict::parsed_entries_buffer(rest.len() / 2);
        for pair in rest.chunks_exact_mut(2) {
            let [key, value] = pair else { return None };
            let Value::Str(key) = std::mem::take(&mut key.value) else {
                return None;
            };
            depth = depth.max(value.depth + 1);
            let entry = push_default(&mut entries);
            fill(&mut entry.0, key);
            fill(&mut entry.1, std::mem::take(&mut value.value));
        }
        if dict.is_empty() {
            // Python's rule for a repeated key (the last value, at the first position), as the
            // general reader applies it.
            *dict = Dict::from_parsed(entries);
        } else {
            for (key, value) in entries {
                dict.insert(key, value);
            }
        }
        dict_slot.depth = depth;
        self.stack.truncate(first);
        (depth <= MAX_DEPTH).then_some(())
    }

    fn memo_put(&mut self, index: usize) -> Option<()> {
        let source = match self.stack.last() {
            Some(slot) if self.stack.len() > self.fence() => slot.source,
            _ => return None,
        };
        let entry = match source {
            Source::Scalar(at) => Memo::Scalar(at),
            Source::Container { .. } => Memo::Container,
        };
        // Python numbers memo entries from 0 up, each the next one; any other index is left to
        // the general reader, so the memo holds one entry per opcode that set it, at most.
        if index == self.memo.len() {
            self.memo.push(entry);
        } else {
            *self.memo.get_mut(index)? = entry;
        }
        Some(())
    }

    fn memo_get(&mut self, index: usize) -> Option<()> {
        let Memo::Scalar(at) = *self.memo.get(index)? else {
            return None;
        };
        self.push_scalar(at).map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::super::read_general;
    use super::*;

    /// Python 3.11's `pickle.dumps(session, 5)` of a session read by `json.loads`, whose repeated
    /// dict keys are one object each, so the second cart line names them with `BINGET`.
    const DJANGO_SESSION: &str = "80059547010000000000007d94288c0d5f617574685f757365725f696494\
        8c053138333432948c125f617574685f757365725f6261636b656e64948c29646a616e676f2e636f6e747269\
        622e617574682e6261636b656e64732e4d6f64656c4261636b656e64948c0f5f617574685f757365725f6861\
        7368948c40616261626162616261626162616261626162616261626162616261626162616261626162616261\
        62616261626162616261626162616261626162616261626162948c0463617274945d94287d94288c03736b75\
        948c0a534b552d303030303432948c046e616d65948c1057616c6e7574206465736b206c616d70948c037174\
        79944b028c057072696365948c0531392e393094757d9428680a8c0a534b552d30303030343394680c8c1057\
        616c6e7574206465736b206c616d7094680e4b01680f8c04352e30309475658c06766973697473944b03752e";

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The one rule: where this path answers, the general reader answers the same.
    fn agrees_with_the_general_reader(bytes: &[u8]) -> Result<bool, String> {
        match (read(bytes), read_general(bytes)) {
            (None, _) => Ok(false),
            (Some(fast), Ok(general)) if fast.is_identical(&general) => Ok(true),
            (Some(fast), general) => Err(format!(
                "{bytes:02x?}: one pass read {fast:?}, the general reader {general:?}"
            )),
        }
    }

    #[test]
    fn a_django_cache_session_is_read_in_one_pass_with_its_repeated_keys() {
        let bytes = unhex(DJANGO_SESSION);
        let value = read(&bytes).unwrap();
        assert!(value.is_identical(&read_general(&bytes).unwrap()));
        let cart = value.as_dict().unwrap()["cart"].clone();
        let Value::List(lines) = cart else {
            panic!("cart is not a list")
        };
        let second = lines[1].as_dict().unwrap();
        let keys: Vec<&str> = second.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["sku", "name", "qty", "price"]);
        assert_eq!(second["sku"].as_str(), Some("SKU-000043"));
        assert_eq!(second["qty"].as_i64(), Some(1));
    }

    #[test]
    fn pythons_pickles_read_the_same_on_both_paths_and_protocols_2_to_5_take_this_one() {
        let table = include_str!("../../../tests/serializers_data/pickle_loads.txt");
        let (mut rows, mut fast) = (0, 0);
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let fields: Vec<&str> = line.split('\t').collect();
            let bytes = unhex(fields[2]);
            let took = agrees_with_the_general_reader(&bytes).unwrap();
            if fields[0] >= "2" {
                rows += 1;
                fast += usize::from(took);
            }
        }
        // Only pickles that share a container (a list holding one list twice, say) are left to
        // the general reader.
        assert!(rows > 100 && fast * 10 >= rows * 9, "{fast} of {rows} rows");
    }

    #[test]
    fn what_python_refuses_is_left_to_the_general_reader() {
        let table = include_str!("../../../tests/serializers_data/pickle_refused.txt");
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let hex = line.split('\t').next_back().unwrap();
            let bytes = unhex(hex);
            assert!(read_general(&bytes).is_err(), "{line}");
            assert!(read(&bytes).is_none(), "{line}");
        }
    }

    #[test]
    fn shared_containers_stack_opcodes_and_errors_go_to_the_general_reader() {
        for bytes in [
            // [l, l] with l = []: the second is a reference to the first.
            &b"\x80\x04]\x94(]\x94h\x01e."[..],
            // A list that contains itself.
            b"\x80\x04]\x94h\x00a.",
            // DUP, POP and POP_MARK.
            b"\x80\x04K\x012\x86.",
            b"\x80\x04NK\x010.",
            b"\x80\x04K\x01(NN1.",
            // Memo indices that skip ahead (Python's count up from 0): far, and by one.
            b"\x80\x04K\x01r\xff\xff\xff\x00j\xff\xff\xff\x00\x86.",
            b"\x80\x04K\x01q\x01h\x01\x86.",
            // Errors: appending to a tuple, setting items in a list, a key that is not a str, an
            // odd number of items, a memo entry never set, an empty stack at STOP.
            b"\x80\x04)K\x01a.",
            b"\x80\x04K\x01\x85(K\x02e.",
            b"\x80\x04](\x8c\x01kK\x01u.",
            b"\x80\x04}K\x01K\x02s.",
            b"\x80\x04}(\x8c\x01kK\x01K\x02u.",
            b"\x80\x04h\x03.",
            b"\x80\x04(.",
            b"\x80\x04.",
        ] {
            assert!(read(bytes).is_none(), "{bytes:02x?}");
            assert!(agrees_with_the_general_reader(bytes).is_ok());
        }
    }

    /// Pickle-shaped sequences, weighted toward ones that load: containers, marks, the memo
    /// (`MEMOIZE`, `BINPUT`, `BINGET`), repeated short strings and every scalar opcode read here.
    fn opcodes() -> impl Strategy<Value = Vec<u8>> {
        let op = prop_oneof![
            3 => Just(vec![b'(']),
            1 => Just(vec![b'0']),
            1 => Just(vec![b'1']),
            1 => Just(vec![b'2']),
            1 => Just(vec![b'N']),
            1 => Just(vec![0x88]),
            1 => Just(vec![0x89]),
            2 => Just(vec![b']']),
            2 => Just(vec![b'}']),
            1 => Just(vec![b')']),
            2 => Just(vec![b'a']),
            2 => Just(vec![b'e']),
            2 => Just(vec![b's']),
            2 => Just(vec![b'u']),
            1 => Just(vec![b'l']),
            1 => Just(vec![b'd']),
            1 => Just(vec![b't']),
            1 => Just(vec![0x85]),
            1 => Just(vec![0x86]),
            1 => Just(vec![0x87]),
            3 => Just(vec![0x94]),
            1 => any::<u8>().prop_map(|i| vec![b'K', i]),
            1 => any::<i32>().prop_map(|i| [&[b'J'][..], &i.to_le_bytes()].concat()),
            1 => any::<u64>().prop_map(|f| [&[b'G'][..], &f.to_be_bytes()].concat()),
            1 => (0u8..3).prop_map(|n| [&[0x8a, n][..], &[0x80, 0xff][..usize::from(n).min(2)]].concat()),
            1 => (0u8..6).prop_map(|i| vec![b'q', i]),
            3 => (0u8..6).prop_map(|i| vec![b'h', i]),
            1 => (0u32..6).prop_map(|i| [&[b'j'][..], &i.to_le_bytes()].concat()),
            4 => "[a-c]{0,3}".prop_map(|s| {
                let mut v = vec![0x8c, u8::try_from(s.len()).unwrap()];
                v.extend_from_slice(s.as_bytes());
                v
            }),
            1 => "[a-c\u{e9}]{0,3}".prop_map(|s| {
                let mut v = vec![b'X'];
                v.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
                v.extend_from_slice(s.as_bytes());
                v
            }),
            1 => (0u8..3).prop_map(|n| [&[b'U', n][..], &b"\xe9x"[..usize::from(n).min(2)]].concat()),
        ];
        proptest::collection::vec(op, 0..80).prop_map(|ops| {
            let mut bytes = vec![0x80, 5];
            bytes.extend(ops.into_iter().flatten());
            bytes.push(b'.');
            bytes
        })
    }

    /// A session-shaped value: strings from a few letters (so that they repeat), numbers of
    /// every opcode width, and nested lists and dicts whose keys may repeat.
    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (0i64..70_000).prop_map(Value::from),
            any::<f64>().prop_map(Value::Float),
            "[ab\u{e9}]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
                proptest::collection::vec(("[ab]{1,2}", inner), 0..6).prop_map(|pairs| {
                    let mut dict = Dict::new();
                    for (key, value) in pairs {
                        dict.insert(key, value);
                    }
                    Value::Dict(dict)
                }),
            ]
        })
    }

    /// Pickles `value` as Python's protocol 5 does: every string and container memoized, and
    /// a string written before referred to with `BINGET` (as one object repeated would be),
    /// dict entries in batches of `batch` (with a repeated key when `repeat`).
    fn python_like(value: &Value, batch: usize, repeat: bool) -> Vec<u8> {
        fn write(out: &mut Vec<u8>, memo: &mut Vec<String>, v: &Value, batch: usize, repeat: bool) {
            let memoize = |out: &mut Vec<u8>| out.push(0x94);
            match v {
                Value::Null => out.push(b'N'),
                Value::Bool(b) => out.push(if *b { 0x88 } else { 0x89 }),
                Value::Int(i) => match i.as_i64() {
                    Some(n @ 0..=255) => out.extend_from_slice(&[b'K', n as u8]),
                    Some(n @ 256..=65_535) => {
                        out.push(b'M');
                        out.extend_from_slice(&(n as u16).to_le_bytes());
                    }
                    Some(n) if i32::try_from(n).is_ok() => {
                        out.push(b'J');
                        out.extend_from_slice(&(n as i32).to_le_bytes());
                    }
                    _ => {
                        let bytes = i.as_big().map_or_else(
                            || BigInt::from(i.as_i64().unwrap()).to_signed_bytes_le(),
                            BigInt::to_signed_bytes_le,
                        );
                        out.extend_from_slice(&[0x8a, bytes.len() as u8]);
                        out.extend_from_slice(&bytes);
                    }
                },
                Value::Float(f) => {
                    out.push(b'G');
                    out.extend_from_slice(&f.to_be_bytes());
                }
                Value::Str(s) => {
                    if let Some(index) = memo.iter().position(|m| m == s.as_str()) {
                        out.extend_from_slice(&[b'h', index as u8]);
                    } else {
                        out.extend_from_slice(&[0x8c, s.len() as u8]);
                        out.extend_from_slice(s.as_bytes());
                        memoize(out);
                        memo.push(s.as_str().to_owned());
                    }
                }
                Value::List(items) => {
                    out.push(b']');
                    memoize(out);
                    memo.push(String::from("\0list"));
                    for chunk in items.chunks(batch) {
                        out.push(b'(');
                        for item in chunk {
                            write(out, memo, item, batch, repeat);
                        }
                        out.push(b'e');
                    }
                }
                Value::Dict(dict) => {
                    out.push(b'}');
                    memoize(out);
                    memo.push(String::from("\0dict"));
                    let entries: Vec<_> = dict.iter().collect();
                    for chunk in entries.chunks(batch) {
                        out.push(b'(');
                        for (key, item) in chunk {
                            write(out, memo, &Value::Str((*key).clone()), batch, repeat);
                            write(out, memo, item, batch, repeat);
                        }
                        out.push(b'u');
                    }
                    if repeat {
                        // The first key again, with another value (see `repeated_first_keys`).
                        if let Some((key, _)) = entries.first() {
                            write(out, memo, &Value::Str((*key).clone()), batch, repeat);
                            write(out, memo, &Value::from("again"), batch, repeat);
                            out.push(b's');
                        }
                    }
                }
            }
        }
        let mut out = vec![0x80, 5];
        write(&mut out, &mut Vec::new(), value, batch.max(1), repeat);
        out.push(b'.');
        out
    }

    /// `value` as Python loads [`python_like`]'s pickle of it with `repeat`: each dict's first
    /// key keeps its position and takes the value set last.
    fn repeated_first_keys(value: &Value) -> Value {
        match value {
            Value::List(items) => Value::List(items.iter().map(repeated_first_keys).collect()),
            Value::Dict(dict) => {
                let mut out = Dict::new();
                for (key, item) in dict {
                    out.insert(key.clone(), repeated_first_keys(item));
                }
                if let Some(first) = out.keys().next().cloned() {
                    out.insert(first, Value::from("again"));
                }
                Value::Dict(out)
            }
            other => other.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn where_this_path_answers_the_general_reader_answers_the_same(bytes in opcodes()) {
            prop_assert_eq!(agrees_with_the_general_reader(&bytes).map(|_| ()), Ok(()));
        }

        #[test]
        fn pickles_shaped_like_pythons_are_read_in_one_pass_exactly(
            value in values(),
            batch in 1usize..4,
            repeat in any::<bool>(),
        ) {
            let bytes = python_like(&Value::List(vec![value.clone()]), batch, repeat);
            let read = read(&bytes);
            prop_assert!(read.is_some(), "left to the general reader: {:02x?}", bytes);
            let read = read.unwrap();
            prop_assert!(read.is_identical(&read_general(&bytes).unwrap()));
            let expected = if repeat { repeated_first_keys(&value) } else { value };
            prop_assert!(read.is_identical(&Value::List(vec![expected])));
        }

        #[test]
        fn our_own_pickles_are_read_in_one_pass(value in values(), protocol in 2u8..=5) {
            // The cache stores read back what they wrote: that must never take the long way.
            let bytes = super::super::to_vec(&value, protocol).unwrap();
            let read = read(&bytes);
            prop_assert!(read.is_some(), "left to the general reader: {:02x?}", bytes);
            prop_assert!(read.unwrap().is_identical(&value));
        }
    }
}
