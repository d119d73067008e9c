//! A reader for Python pickles (protocols 0 to 5) that builds a plain value tree and runs no code.
//!
//! It reads what this project meets: `torch.save` archives (`data.pkl` with persistent ids for
//! tensor storages and `torch._utils._rebuild_tensor_v2` calls), numpy array pickles
//! (`_reconstruct` plus a BUILD state) and the python-format CIFAR batches (Python 2 pickles whose
//! strings are read as bytes, as `pickle.load(f, encoding="bytes")` reads them). Calls are not
//! executed: they stay in the tree as [`Value::Reduce`] for the caller to interpret. Two pure
//! calls are folded while reading because later opcodes depend on their result:
//! `collections.OrderedDict()` becomes a [`Value::Dict`], and `_codecs.encode(text, "latin1")`
//! (how protocol 2 writes `bytes` in Python 3) becomes [`Value::Bytes`].

use std::collections::HashMap;

/// One value of the unpickled tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Keys and values in insertion order (a `dict` or an `OrderedDict`).
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    /// A reference to `module.name` (a class or a function).
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`, also how `cls.__new__(cls, *args)` (NEWOBJ) is kept.
    Reduce {
        callable: Box<Value>,
        args: Box<Value>,
    },
    /// `obj.__setstate__(state)` (or `obj.__dict__.update(state)`).
    Build {
        obj: Box<Value>,
        state: Box<Value>,
    },
    /// An object the pickler stored out of band (torch: a tensor storage descriptor).
    PersistentId(Box<Value>),
}

impl Value {
    /// The value under `key` of a dict (also through a BUILD, as an `OrderedDict` with attributes
    /// is pickled); `str` and `bytes` keys both match.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.dict_items()?.iter().find_map(|(k, v)| match k {
            Value::Str(s) if s == key => Some(v),
            Value::Bytes(b) if b == key.as_bytes() => Some(v),
            _ => None,
        })
    }

    /// The items of a dict, looking through a BUILD that set its attributes.
    pub fn dict_items(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            Value::Build { obj, .. } => obj.dict_items(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Text of a `str`, or of `bytes` that are valid UTF-8 (Python 2 strings read as bytes).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// A float, or an int read as one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }

    /// `(module, name)` of a global.
    pub fn as_global(&self) -> Option<(&str, &str)> {
        match self {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    /// A short description for error messages ("dict", "tuple of 3", "torch._utils._rebuild...").
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(v) => format!("tuple of {}", v.len()),
            Value::List(v) => format!("list of {}", v.len()),
            Value::Dict(v) => format!("dict of {}", v.len()),
            Value::Set(v) => format!("set of {}", v.len()),
            Value::Global { module, name } => format!("{module}.{name}"),
            Value::Reduce { callable, .. } => format!("call of {}", callable.describe()),
            Value::Build { obj, .. } => obj.describe(),
            Value::PersistentId(_) => "persistent id".into(),
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PickleError {
    #[error(
        "pickle ends at byte {offset} in the middle of opcode {opcode:#04x} (file truncated?)"
    )]
    Truncated { offset: usize, opcode: u8 },
    #[error("pickle ends at byte {offset} without a STOP opcode (file truncated?)")]
    NoStop { offset: usize },
    #[error("not a pickle, or an unsupported one: unknown opcode {opcode:#04x} at byte {offset}")]
    UnknownOpcode { offset: usize, opcode: u8 },
    #[error("malformed pickle at byte {offset}: {what}")]
    Malformed { offset: usize, what: String },
    #[error("unsupported pickle feature at byte {offset}: {what}")]
    Unsupported { offset: usize, what: String },
    #[error(
        "not a pickle but a zip archive (torch.save writes its pickle inside one as data.pkl)"
    )]
    ZipArchive,
    #[error("pickle nests deeper than {0} levels (or refers to itself)")]
    TooDeep(usize),
}

/// Reads one pickle from the start of `bytes`.
pub fn from_slice(bytes: &[u8]) -> Result<Value, PickleError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(PickleError::ZipArchive);
    }
    Machine::new(bytes).run()
}

/// Deepest tree a pickle may build; deeper (or self-referencing) pickles are rejected.
const MAX_DEPTH: usize = 256;

type Id = usize;

/// A node of the object arena. Objects live here so that shared references (the memo) see later
/// mutations (APPEND, SETITEMS, BUILD) as Python does.
#[derive(Debug, Clone)]
enum Node {
    Leaf(Value),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    Reduce(Id, Id),
    Build(Id, Id),
    PersistentId(Id),
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Mark,
    Obj(Id),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset and opcode being executed, for error messages.
    op_at: usize,
    op: u8,
    arena: Vec<Node>,
    stack: Vec<Slot>,
    memo: HashMap<u64, Id>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Machine<'a> {
        Machine {
            data,
            pos: 0,
            op_at: 0,
            op: 0,
            arena: Vec::new(),
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn malformed(&self, what: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            offset: self.op_at,
            what: what.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(PickleError::Truncated {
                offset: self.data.len(),
                opcode: self.op,
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| self.malformed(format!("length {n} too large")))
    }

    /// The bytes of a line without its `\n` (protocol 0 arguments).
    fn line_bytes(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated {
                offset: self.data.len(),
                opcode: self.op,
            })?;
        Ok(&self.take(n + 1)?[..n])
    }

    /// A text line without its `\n` (protocol 0 arguments).
    fn line(&mut self) -> Result<&'a str, PickleError> {
        let line = self.line_bytes()?;
        std::str::from_utf8(line).map_err(|_| self.malformed("text argument is not UTF-8"))
    }

    fn alloc(&mut self, node: Node) -> Id {
        self.arena.push(node);
        self.arena.len() - 1
    }

    fn push(&mut self, node: Node) {
        let id = self.alloc(node);
        self.stack.push(Slot::Obj(id));
    }

    fn push_value(&mut self, v: Value) {
        self.push(Node::Leaf(v));
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        match self.stack.pop() {
            Some(Slot::Obj(id)) => Ok(id),
            Some(Slot::Mark) => Err(self.malformed("found a MARK where an object was expected")),
            None => Err(self.malformed("stack underflow")),
        }
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(Slot::Obj(id)) => Ok(*id),
            _ => Err(self.malformed("no object on the stack")),
        }
    }

    /// Pops everything down to the topmost MARK (and the mark itself).
    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or_else(|| self.malformed("no MARK on the stack"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|s| match s {
                Slot::Obj(id) => id,
                Slot::Mark => unreachable!("the topmost mark is at `at`"),
            })
            .collect())
    }

    fn leaf(&self, id: Id) -> Option<&Value> {
        match &self.arena[id] {
            Node::Leaf(v) => Some(v),
            _ => None,
        }
    }

    fn text_of(&self, id: Id) -> Result<String, PickleError> {
        match self.leaf(id) {
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(Value::Bytes(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            _ => Err(self.malformed("expected a string for STACK_GLOBAL")),
        }
    }

    /// The container a mutation (APPEND, SETITEMS, ...) applies to, looking through BUILD.
    fn target(&self, mut id: Id) -> Id {
        while let Node::Build(obj, _) = self.arena[id] {
            id = obj;
        }
        id
    }

    fn append(&mut self, list: Id, items: Vec<Id>) -> Result<(), PickleError> {
        let list = self.target(list);
        match &mut self.arena[list] {
            Node::List(v) | Node::Set(v) => {
                v.extend(items);
                Ok(())
            }
            _ => Err(self.malformed("APPEND to an object that is not a list")),
        }
    }

    fn set_items(&mut self, dict: Id, items: &[Id]) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.malformed("SETITEMS with an odd number of items"));
        }
        let dict = self.target(dict);
        match &mut self.arena[dict] {
            Node::Dict(v) => {
                v.extend(items.chunks(2).map(|c| (c[0], c[1])));
                Ok(())
            }
            _ => Err(self.malformed("SETITEM on an object that is not a dict")),
        }
    }

    /// REDUCE, with the two pure calls whose results later opcodes depend on folded in.
    fn reduce(&mut self, callable: Id, args: Id) -> Node {
        let global = match self.leaf(callable) {
            Some(Value::Global { module, name }) => Some((module.as_str(), name.as_str())),
            _ => None,
        };
        let arg_ids = match &self.arena[args] {
            Node::Tuple(v) => v.clone(),
            _ => Vec::new(),
        };
        match global {
            Some(("collections", "OrderedDict")) if arg_ids.is_empty() => Node::Dict(Vec::new()),
            Some(("_codecs", "encode")) if arg_ids.len() == 2 => {
                match (self.leaf(arg_ids[0]), self.leaf(arg_ids[1])) {
                    (Some(Value::Str(s)), Some(Value::Str(enc))) if enc == "latin1" => {
                        // Protocol 2 writes bytes as the latin-1 text of their values.
                        match s.chars().map(|c| u8::try_from(c as u32)).collect() {
                            Ok(bytes) => Node::Leaf(Value::Bytes(bytes)),
                            Err(_) => Node::Reduce(callable, args),
                        }
                    }
                    _ => Node::Reduce(callable, args),
                }
            }
            _ => Node::Reduce(callable, args),
        }
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| self.malformed(format!("memo key {key} was never stored")))?;
        self.stack.push(Slot::Obj(id));
        Ok(())
    }

    /// Executes opcodes until STOP, then builds the value on top of the stack.
    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            let Some(&op) = self.data.get(self.pos) else {
                return Err(PickleError::NoStop { offset: self.pos });
            };
            self.op = op;
            self.pos += 1;
            if op == b'.' {
                let root = self.pop()?;
                return self.materialise(root, 0);
            }
            self.execute(op)?;
        }
    }

    /// One opcode other than STOP, by family.
    fn execute(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            0x80 | 0x95 | b'(' | b'0' | b'1' | b'2' => self.frame_and_stack(op),
            b'N' | 0x88 | 0x89 | b'I' | b'J' | b'K' | b'M' | b'L' | 0x8a | 0x8b | b'F' | b'G' => {
                self.scalar(op)
            }
            b'S' | b'T' | b'U' | b'V' | b'X' | 0x8c | 0x8d | b'B' | b'C' | 0x8e | 0x96 => {
                self.text_or_bytes(op)
            }
            b')'
            | b't'
            | 0x85..=0x87
            | b']'
            | b'l'
            | b'a'
            | b'e'
            | b'}'
            | b'd'
            | b's'
            | b'u'
            | 0x8f
            | 0x90
            | 0x91 => self.container(op),
            b'c' | 0x93 | b'R' | 0x81 | 0x92 | b'o' | b'i' | b'b' | b'P' | b'Q' => self.object(op),
            b'p' | b'q' | b'r' | 0x94 | b'g' | b'h' | b'j' => self.memo(op),
            0x82..=0x84 => Err(PickleError::Unsupported {
                offset: self.op_at,
                what: "extension registry codes (EXT1/EXT2/EXT4)".into(),
            }),
            0x97 | 0x98 => Err(PickleError::Unsupported {
                offset: self.op_at,
                what: "out-of-band buffers (protocol 5 NEXT_BUFFER)".into(),
            }),
            opcode => Err(self.unknown(opcode)),
        }
    }

    fn unknown(&self, opcode: u8) -> PickleError {
        PickleError::UnknownOpcode {
            offset: self.op_at,
            opcode,
        }
    }

    /// PROTO, FRAME, and the stack itself: MARK, POP, POP_MARK, DUP.
    fn frame_and_stack(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            // PROTO
            0x80 => {
                let v = self.u8()?;
                if v > 5 {
                    return Err(PickleError::Unsupported {
                        offset: self.op_at,
                        what: format!("protocol {v} (this reader knows 0 to 5)"),
                    });
                }
            }
            // FRAME: framing is a hint for buffered readers; the data is all here.
            0x95 => {
                self.u64()?;
            }
            b'(' => self.stack.push(Slot::Mark),
            b'0' => {
                self.stack
                    .pop()
                    .ok_or_else(|| self.malformed("POP on an empty stack"))?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let id = self.top()?;
                self.stack.push(Slot::Obj(id));
            }
            opcode => return Err(self.unknown(opcode)),
        }
        Ok(())
    }

    /// None, booleans, integers and floats.
    fn scalar(&mut self, op: u8) -> Result<(), PickleError> {
        let v = match op {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'I' => match self.line()? {
                "01" => Value::Bool(true),
                "00" => Value::Bool(false),
                s => Value::Int(
                    s.parse()
                        .map_err(|_| self.malformed(format!("bad INT `{s}`")))?,
                ),
            },
            b'J' => Value::Int(i64::from(self.u32()? as i32)),
            b'K' => Value::Int(i64::from(self.u8()?)),
            b'M' => Value::Int(i64::from(self.u16()?)),
            b'L' => {
                let line = self.line()?;
                let s = line.strip_suffix('L').unwrap_or(line);
                Value::Int(s.parse().map_err(|_| PickleError::Unsupported {
                    offset: self.op_at,
                    what: format!("integer `{s}` does not fit in 64 bits"),
                })?)
            }
            0x8a => {
                let n = self.u8()? as usize;
                Value::Int(self.long(n)?)
            }
            0x8b => {
                let n = self.u32()? as i32;
                let n = usize::try_from(n).map_err(|_| self.malformed("negative LONG4 length"))?;
                Value::Int(self.long(n)?)
            }
            b'F' => {
                let line = self.line()?;
                Value::Float(
                    line.parse()
                        .map_err(|_| self.malformed(format!("bad FLOAT `{line}`")))?,
                )
            }
            b'G' => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_be_bytes(a))
            }
            opcode => return Err(self.unknown(opcode)),
        };
        self.push_value(v);
        Ok(())
    }

    /// Strings (text) and bytes, of every protocol.
    fn text_or_bytes(&mut self, op: u8) -> Result<(), PickleError> {
        let bytes = match op {
            // Python 2 strings: kept as bytes (what `encoding="bytes"` gives).
            b'S' => {
                let line = self.line()?;
                unquote_py2(line)
                    .ok_or_else(|| self.malformed(format!("bad STRING argument `{line}`")))?
            }
            b'T' | b'B' => {
                let n = self.u32()? as usize;
                self.take(n)?.to_vec()
            }
            b'U' | b'C' => {
                let n = self.u8()? as usize;
                self.take(n)?.to_vec()
            }
            0x8e | 0x96 => {
                let n = self.len_u64()?;
                self.take(n)?.to_vec()
            }
            b'V' => {
                // raw-unicode-escape: latin-1 bytes with \uXXXX escapes for the rest.
                let line: String = self.line_bytes()?.iter().map(|&b| b as char).collect();
                self.push_value(Value::Str(unescape_raw_unicode(&line)));
                return Ok(());
            }
            b'X' => {
                let n = self.u32()? as usize;
                return self.push_str(n);
            }
            0x8c => {
                let n = self.u8()? as usize;
                return self.push_str(n);
            }
            0x8d => {
                let n = self.len_u64()?;
                return self.push_str(n);
            }
            opcode => return Err(self.unknown(opcode)),
        };
        self.push_value(Value::Bytes(bytes));
        Ok(())
    }

    /// Tuples, lists, dicts and sets: building them and adding to them.
    fn container(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            b')' => self.push(Node::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Node::Tuple(items));
            }
            b']' => self.push(Node::List(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items));
            }
            b'a' => {
                let item = self.pop()?;
                let list = self.top()?;
                self.append(list, vec![item])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                let target = self.top()?;
                self.append(target, items)?;
            }
            b'}' => self.push(Node::Dict(Vec::new())),
            b'd' => {
                let items = self.pop_mark()?;
                if !items.len().is_multiple_of(2) {
                    return Err(self.malformed("DICT with an odd number of items"));
                }
                self.push(Node::Dict(items.chunks(2).map(|c| (c[0], c[1])).collect()));
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                let dict = self.top()?;
                self.set_items(dict, &[k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                let dict = self.top()?;
                self.set_items(dict, &items)?;
            }
            0x8f => self.push(Node::Set(Vec::new())),
            0x91 => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items));
            }
            opcode => return Err(self.unknown(opcode)),
        }
        Ok(())
    }

    /// Globals, calls (REDUCE, NEWOBJ, OBJ, INST), BUILD, and persistent ids.
    fn object(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            b'c' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.push_value(Value::Global { module, name });
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (module, name) = (self.text_of(module)?, self.text_of(name)?);
                self.push_value(Value::Global { module, name });
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let node = self.reduce(callable, args);
                self.push(node);
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                self.push(Node::Reduce(cls, args));
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                if !matches!(&self.arena[kwargs], Node::Dict(v) if v.is_empty()) {
                    return Err(PickleError::Unsupported {
                        offset: self.op_at,
                        what: "NEWOBJ_EX with keyword arguments".into(),
                    });
                }
                self.push(Node::Reduce(cls, args));
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(self.malformed("OBJ without a class"));
                }
                let cls = items.remove(0);
                let args = self.alloc(Node::Tuple(items));
                self.push(Node::Reduce(cls, args));
            }
            b'i' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                let items = self.pop_mark()?;
                let cls = self.alloc(Node::Leaf(Value::Global { module, name }));
                let args = self.alloc(Node::Tuple(items));
                self.push(Node::Reduce(cls, args));
            }
            b'b' => {
                let state = self.pop()?;
                let obj = self.top()?;
                // Replace the object in place so every reference to it sees the new state.
                let inner = std::mem::replace(&mut self.arena[obj], Node::Leaf(Value::None));
                let inner = self.alloc(inner);
                self.arena[obj] = Node::Build(inner, state);
            }
            b'P' => {
                let id = self.line()?.to_string();
                let inner = self.alloc(Node::Leaf(Value::Str(id)));
                self.push(Node::PersistentId(inner));
            }
            b'Q' => {
                let pid = self.pop()?;
                self.push(Node::PersistentId(pid));
            }
            opcode => return Err(self.unknown(opcode)),
        }
        Ok(())
    }

    /// The memo: PUT (text, 1-byte, 4-byte keys, MEMOIZE) and GET.
    fn memo(&mut self, op: u8) -> Result<(), PickleError> {
        match op {
            b'p' | b'g' => {
                let line = self.line()?;
                let key = line.parse().map_err(|_| {
                    let what = if op == b'p' { "PUT" } else { "GET" };
                    self.malformed(format!("bad {what} key `{line}`"))
                })?;
                if op == b'p' {
                    self.memo_put(key)
                } else {
                    self.memo_get(key)
                }
            }
            b'q' => {
                let key = u64::from(self.u8()?);
                self.memo_put(key)
            }
            b'r' => {
                let key = u64::from(self.u32()?);
                self.memo_put(key)
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key)
            }
            b'h' => {
                let key = u64::from(self.u8()?);
                self.memo_get(key)
            }
            b'j' => {
                let key = u64::from(self.u32()?);
                self.memo_get(key)
            }
            opcode => Err(self.unknown(opcode)),
        }
    }

    fn push_str(&mut self, n: usize) -> Result<(), PickleError> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| self.malformed("string is not UTF-8"))?;
        self.push_value(Value::Str(s.to_string()));
        Ok(())
    }

    /// A little-endian two's complement integer of `n` bytes (LONG1, LONG4).
    fn long(&mut self, n: usize) -> Result<i64, PickleError> {
        let b = self.take(n)?;
        if n == 0 {
            return Ok(0);
        }
        let negative = b[n - 1] & 0x80 != 0;
        let fill = if negative { 0xff } else { 0 };
        if n > 8 && b[8..].iter().any(|&x| x != fill) {
            return Err(PickleError::Unsupported {
                offset: self.op_at,
                what: format!("an integer of {n} bytes does not fit in 64 bits"),
            });
        }
        let mut a = [fill; 8];
        let k = n.min(8);
        a[..k].copy_from_slice(&b[..k]);
        let v = i64::from_le_bytes(a);
        if n > 8 && (v < 0) != negative {
            return Err(PickleError::Unsupported {
                offset: self.op_at,
                what: format!("an integer of {n} bytes does not fit in 64 bits"),
            });
        }
        Ok(v)
    }

    fn materialise(&self, id: Id, depth: usize) -> Result<Value, PickleError> {
        if depth > MAX_DEPTH {
            return Err(PickleError::TooDeep(MAX_DEPTH));
        }
        let m = |id: Id| self.materialise(id, depth + 1);
        let all = |ids: &[Id]| ids.iter().map(|&i| m(i)).collect::<Result<Vec<_>, _>>();
        Ok(match &self.arena[id] {
            Node::Leaf(v) => v.clone(),
            Node::Tuple(v) => Value::Tuple(all(v)?),
            Node::List(v) => Value::List(all(v)?),
            Node::Set(v) => Value::Set(all(v)?),
            Node::Dict(v) => Value::Dict(
                v.iter()
                    .map(|&(k, x)| Ok((m(k)?, m(x)?)))
                    .collect::<Result<_, PickleError>>()?,
            ),
            Node::Reduce(c, a) => Value::Reduce {
                callable: Box::new(m(*c)?),
                args: Box::new(m(*a)?),
            },
            Node::Build(o, s) => Value::Build {
                obj: Box::new(m(*o)?),
                state: Box::new(m(*s)?),
            },
            Node::PersistentId(p) => Value::PersistentId(Box::new(m(*p)?)),
        })
    }
}

/// The bytes of a protocol 0 `STRING` argument: a quoted Python 2 string literal.
fn unquote_py2(s: &str) -> Option<Vec<u8>> {
    let q = s.chars().next()?;
    if !(q == '\'' || q == '"') || s.len() < 2 || !s.ends_with(q) {
        return None;
    }
    let inner = &s.as_bytes()[1..s.len() - 1];
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *inner.get(i + 1)?;
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'\\' | b'\'' | b'"' => out.push(e),
            b'x' => {
                let h = std::str::from_utf8(inner.get(i..i + 2)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < inner.len() && (b'0'..=b'7').contains(&inner[i]) {
                    v = v * 8 + u32::from(inner[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(v as u8);
            }
            _ => {
                out.push(b'\\');
                out.push(e);
            }
        }
    }
    Some(out)
}

/// The text of a protocol 0 `UNICODE` argument (raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`).
fn unescape_raw_unicode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let width = match chars.peek() {
                Some('u') => 4,
                Some('U') => 8,
                _ => 0,
            };
            if width > 0 {
                let mut probe = chars.clone();
                probe.next();
                let hex: String = probe.by_ref().take(width).collect();
                if hex.len() == width {
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(ch);
                        chars = probe;
                        continue;
                    }
                }
            }
        }
        out.push(c);
    }
    out
}

/// A numpy array read from its pickle (`numpy.core.multiarray._reconstruct` plus BUILD state).
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// numpy's type string with byte order, e.g. `<f4`, `|u1`, `<i8`.
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Stored column-major (`order="F"`).
    pub fortran_order: bool,
    /// The raw element bytes, `shape.product() * itemsize` of them.
    pub data: Vec<u8>,
}

impl NdArray {
    /// Size of one element in bytes, from the dtype string (`<f4` -> 4).
    pub fn item_size(&self) -> usize {
        self.dtype[2..].parse().unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads a numpy array out of its pickled form; `None` when `v` is not one.
pub fn numpy_array(v: &Value) -> Option<NdArray> {
    let Value::Build { obj, state } = v else {
        return None;
    };
    let Value::Reduce { callable, .. } = obj.as_ref() else {
        return None;
    };
    let (module, name) = callable.as_global()?;
    if !(module.starts_with("numpy") && name == "_reconstruct") {
        return None;
    }
    // state = (version, shape, dtype, is_fortran, rawdata)
    let st = state.as_seq()?;
    let (shape, dtype, fortran, raw) = match st.len() {
        5 => (&st[1], &st[2], &st[3], &st[4]),
        4 => (&st[0], &st[1], &st[2], &st[3]),
        _ => return None,
    };
    let shape = shape
        .as_seq()?
        .iter()
        .map(|d| d.as_int().and_then(|x| usize::try_from(x).ok()))
        .collect::<Option<Vec<_>>>()?;
    let dtype = numpy_dtype(dtype)?;
    let data = match raw {
        Value::Bytes(b) => b.clone(),
        // Protocol 0/1 in Python 3 store the raw buffer as latin-1 text.
        Value::Str(s) => s
            .chars()
            .map(|c| u8::try_from(c as u32).ok())
            .collect::<Option<_>>()?,
        _ => return None,
    };
    let arr = NdArray {
        dtype,
        shape,
        fortran_order: fortran.as_int()? != 0,
        data,
    };
    (arr.data.len() == arr.len() * arr.item_size()).then_some(arr)
}

/// `numpy.dtype("f4", False, True)` plus its BUILD state `(3, "<", ...)` as `<f4`.
fn numpy_dtype(v: &Value) -> Option<String> {
    let (reduce, state) = match v {
        Value::Build { obj, state } => (obj.as_ref(), Some(state.as_ref())),
        other => (other, None),
    };
    let Value::Reduce { callable, args } = reduce else {
        return None;
    };
    let (module, name) = callable.as_global()?;
    if !(module.starts_with("numpy") && name == "dtype") {
        return None;
    }
    let code = args.as_seq()?.first()?.as_text()?.to_string();
    let order = state
        .and_then(|s| s.as_seq())
        .and_then(|s| s.get(1))
        .and_then(|o| o.as_text())
        .unwrap_or("|")
        .to_string();
    let (kind, size) = code.split_at(1);
    size.parse::<usize>().ok()?;
    let order = if order == "=" {
        if cfg!(target_endian = "little") {
            "<".to_string()
        } else {
            ">".to_string()
        }
    } else {
        order
    };
    Some(format!("{order}{kind}{size}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pickle")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    /// The structure `scripts/make_pickle_fixtures.py` pickles as `basic_p{2,3,4,5}.pkl`.
    fn basic_expected() -> Value {
        let shared = Value::List(vec![Value::Int(1), Value::Int(2)]);
        Value::Dict(vec![
            (s("none"), Value::None),
            (
                s("flags"),
                Value::Tuple(vec![Value::Bool(true), Value::Bool(false)]),
            ),
            (
                s("ints"),
                Value::List(vec![
                    Value::Int(0),
                    Value::Int(255),
                    Value::Int(65535),
                    Value::Int(-1),
                    Value::Int(2_147_483_647),
                    Value::Int(-2_147_483_648),
                    Value::Int(1 << 40),
                    Value::Int(-(1 << 62)),
                ]),
            ),
            (s("float"), Value::Float(-2.5e-3)),
            (s("text"), s("héllo ∑")),
            (s("bytes"), Value::Bytes(vec![0, 1, 2, 255])),
            (s("empty"), Value::Tuple(vec![])),
            (s("nested"), Value::Dict(vec![(Value::Int(3), s("three"))])),
            (s("shared"), Value::Tuple(vec![shared.clone(), shared])),
            (
                s("ordered"),
                Value::Dict(vec![(s("b"), Value::Int(1)), (s("a"), Value::Int(2))]),
            ),
        ])
    }

    #[test]
    fn reads_every_protocol_from_fixtures() {
        for proto in 2..=5 {
            let v = from_slice(&fixture(&format!("basic_p{proto}.pkl"))).unwrap();
            assert_eq!(v, basic_expected(), "protocol {proto}");
        }
    }

    #[test]
    fn reads_protocol_0_text_opcodes() {
        // pickle.dumps({"a": [1, 2.5, None], "b": (True, "x\u00e9")}, protocol=0)
        let v = from_slice(&fixture("basic_p0.pkl")).unwrap();
        assert_eq!(
            v,
            Value::Dict(vec![
                (
                    s("a"),
                    Value::List(vec![Value::Int(1), Value::Float(2.5), Value::None])
                ),
                (s("b"), Value::Tuple(vec![Value::Bool(true), s("xé")])),
            ])
        );
    }

    #[test]
    fn reads_numpy_arrays() {
        for proto in [2, 4] {
            let v = from_slice(&fixture(&format!("numpy_p{proto}.pkl"))).unwrap();
            let a = numpy_array(&v).expect("a numpy array");
            assert_eq!(a.dtype, "<f4");
            assert_eq!(a.shape, [2, 3]);
            assert!(!a.fortran_order);
            let vals: Vec<f32> = a
                .data
                .chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(vals, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5], "protocol {proto}");
        }
    }

    #[test]
    fn reads_python2_cifar_style_batches() {
        // A Python 2 protocol 2 pickle as the CIFAR python batches are: str keys as bytes, and a
        // uint8 array whose data is a Python 2 str.
        let v = from_slice(&fixture("cifar_style_py2.pkl")).unwrap();
        let labels = v.get("labels").and_then(Value::as_seq).unwrap();
        assert_eq!(labels, [Value::Int(6), Value::Int(9)]);
        let data = numpy_array(v.get("data").unwrap()).unwrap();
        assert_eq!(data.dtype, "|u1");
        assert_eq!(data.shape, [2, 4]);
        assert_eq!(data.data, [0, 1, 2, 3, 250, 251, 252, 253]);
        assert_eq!(
            v.get("batch_label").and_then(Value::as_text),
            Some("training batch 1 of 5")
        );
    }

    #[test]
    fn reads_torch_data_pkl() {
        // archive/data.pkl of torch.save({"w": torch.zeros(2, 3)}).
        let v = from_slice(&fixture("torch_data.pkl")).unwrap();
        let w = v.get("w").unwrap();
        let Value::Reduce { callable, args } = w else {
            panic!("expected a rebuild call, got {w:?}");
        };
        assert_eq!(
            callable.as_global(),
            Some(("torch._utils", "_rebuild_tensor_v2"))
        );
        let args = args.as_seq().unwrap();
        let Value::PersistentId(pid) = &args[0] else {
            panic!("expected a storage, got {:?}", args[0]);
        };
        let pid = pid.as_seq().unwrap();
        assert_eq!(pid[0], s("storage"));
        assert_eq!(pid[1].as_global(), Some(("torch", "FloatStorage")));
        assert_eq!(pid[2], s("0"));
        assert_eq!(pid[3], s("cpu"));
        assert_eq!(pid[4], Value::Int(6));
        assert_eq!(args[1], Value::Int(0));
        assert_eq!(args[2], Value::Tuple(vec![Value::Int(2), Value::Int(3)]));
        assert_eq!(args[3], Value::Tuple(vec![Value::Int(3), Value::Int(1)]));
    }

    #[test]
    fn memo_references_see_later_mutations() {
        // proto 2: l = []; (l, l) with l appended to after being memoised.
        let bytes = b"\x80\x02]q\x00h\x00\x86q\x01K\x07a.";
        // Stack after `]q0 h0 \x86`: tuple(l, l); then K7 a appends to the tuple -> malformed.
        assert!(from_slice(bytes).is_err());
        let bytes = b"\x80\x02]q\x00(h\x00K\x07e.";
        // l.extend([l, 7]) -> a list that holds itself: rejected as too deep, not a stack overflow.
        assert_eq!(from_slice(bytes), Err(PickleError::TooDeep(MAX_DEPTH)));
        let bytes = b"\x80\x02]q\x00K\x01ah\x00\x86.";
        let one = Value::List(vec![Value::Int(1)]);
        assert_eq!(
            from_slice(bytes).unwrap(),
            Value::Tuple(vec![one.clone(), one])
        );
    }

    #[test]
    fn truncated_and_foreign_input_give_clear_errors() {
        let full = fixture("basic_p4.pkl");
        let err = from_slice(&full[..full.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert_eq!(
            from_slice(b"PK\x03\x04 this is a zip"),
            Err(PickleError::ZipArchive)
        );
        assert_eq!(
            from_slice(b"\x00\x01").unwrap_err().to_string(),
            "not a pickle, or an unsupported one: unknown opcode 0x00 at byte 0"
        );
        assert_eq!(
            from_slice(b"\x80\x06."),
            Err(PickleError::Unsupported {
                offset: 0,
                what: "protocol 6 (this reader knows 0 to 5)".into()
            })
        );
        assert_eq!(from_slice(b""), Err(PickleError::NoStop { offset: 0 }));
    }

    /// Pickles written now by the venv's Python read back as the fixtures do; guards against the
    /// committed fixtures drifting from what Python writes.
    #[test]
    fn pickles_written_by_python_now_read_back() {
        let py = match crate::testing::venv_python(&[]) {
            Ok(py) => py,
            Err(why) => {
                eprintln!("skipped: {why} (set CDW_VENV); the committed fixtures were read");
                return;
            }
        };
        let script = r#"
import pickle, sys, collections
shared = [1, 2]
obj = {"none": None, "flags": (True, False),
       "ints": [0, 255, 65535, -1, 2**31 - 1, -2**31, 2**40, -2**62],
       "float": -2.5e-3, "text": "h\u00e9llo \u2211", "bytes": bytes([0, 1, 2, 255]),
       "empty": (), "nested": {3: "three"}, "shared": (shared, shared),
       "ordered": collections.OrderedDict([("b", 1), ("a", 2)])}
sys.stdout.buffer.write(pickle.dumps(obj, protocol=int(sys.argv[1])))
"#;
        for proto in 2..=5 {
            let out = crate::testing::run_python(&py, script, &[&proto.to_string()]);
            assert_eq!(
                from_slice(&out).unwrap(),
                basic_expected(),
                "protocol {proto}"
            );
        }
    }
}
