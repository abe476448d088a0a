"""Jute, ZooKeeper's binary record format, as plain functions over bytes.

Theory of operation
-------------------
Every jute record is a fixed sequence of fields: ``int`` (4 bytes), ``long`` (8),
``boolean`` (1), ``buffer`` and ``ustring`` (a 4-byte length, -1 meaning null, then the
bytes; any other negative length is an error, as jute's ``checkLength``), ``vector`` (a
4-byte count, -1 meaning null, then the elements) and nested records. All integers are
big-endian and signed.

Records are declared once, as annotated classes (see ``records.py``); :func:`record`
turns each into a slotted class whose first decode and first encode *compile* a
decoder and an encoder for it, merging runs of fixed-width fields into one precompiled
``struct``. The hot path then costs one ``unpack_from`` per run of fixed fields instead
of a call per field.

A decoder reads from ``(buf, pos)`` and returns ``(record, next_pos)``. Short input
surfaces as :class:`MarshallingError`; the connection layer turns that into "close this
one connection", as ZooKeeper does for a record it cannot deserialize.
"""

from __future__ import annotations

import inspect
import struct
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Self, TypeVar, cast, dataclass_transform

__all__ = [
    "Bool",
    "Buffer",
    "Int",
    "Long",
    "MarshallingError",
    "Record",
    "UString",
    "Vector",
    "decode_frames",
    "frame",
    "record",
]


class MarshallingError(ValueError):
    """The bytes do not form the record they claim to be (the peer's fault)."""


class _Kind:
    """Marker placed in ``Annotated[...]`` to tell the compiler a field's wire type."""

    __slots__ = ("code", "elem")

    def __init__(self, code: str, elem: Any = None) -> None:
        self.code = code  # struct code for fixed fields, or "buf"/"str"/"vec"/"rec"
        self.elem = elem  # element kind (vectors) or record class (nested records)


I32 = _Kind("i")
I64 = _Kind("q")
BOOL = _Kind("?")
BUF = _Kind("buf")
STR = _Kind("str")

Int = Annotated[int, I32]
Long = Annotated[int, I64]
Bool = Annotated[bool, BOOL]
Buffer = Annotated[bytes | None, BUF]  # None is jute's null buffer (length -1)
UString = Annotated[str, STR]  # a null string decodes as ""


def Vector(elem: Any) -> _Kind:
    """A jute vector of ``elem`` (``STR`` or a record class); null decodes as []."""
    return _Kind("vec", elem)


_INT = struct.Struct(">i")
_LEN = _INT.unpack_from
_PACK_INT = _INT.pack


class Record:
    """Base of every jute record. ``__init__``, ``__eq__``, ``decode`` and ``encode`` are
    compiled per class on first use; equality and repr are a dataclass's."""

    __slots__ = ()
    _jute_fields: ClassVar[tuple[tuple[str, _Kind], ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        init = _compile_init(cls)
        cls.__init__ = init  # type: ignore[method-assign]
        init(self, *args, **kwargs)

    def __eq__(self, other: object) -> bool:
        cls = type(self)
        eq = _compile_eq(cls)
        cls.__eq__ = eq  # type: ignore[method-assign]
        return eq(self, other)  # type: ignore[no-any-return]

    __hash__ = None  # type: ignore[assignment]  # mutable in principle, as a dataclass

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _names(type(self)))
        return f"{type(self).__qualname__}({shown})"

    @classmethod
    def decode(cls, buf: bytes | memoryview, pos: int = 0) -> tuple[Self, int]:
        raise NotImplementedError  # replaced by @record

    def encode(self) -> bytes:
        raise NotImplementedError  # replaced by @record

    @classmethod
    def from_bytes(cls, buf: bytes | memoryview) -> Self:
        """Decode a whole buffer as one record; trailing bytes are tolerated (as jute does)."""
        try:
            return cls.decode(buf, 0)[0]
        except (struct.error, IndexError) as e:
            raise MarshallingError(f"truncated {cls.__name__}") from e


R = TypeVar("R", bound=type[Record])


@dataclass_transform()
def record(cls: R) -> R:
    """Make ``cls`` a slotted record of its annotated fields, codecs compiled on first use.

    What ``dataclass(slots=True)`` would make, less the import-time cost: it generated
    three methods per class, each with an ``exec``, and rendered a signature for every
    docstring-less class, ~20 ms of every start-up for the ~40 records. Here the class
    is re-created with its ``__slots__``; ``__init__`` and ``__eq__`` are generated on
    first use.
    Not frozen: a frozen ``__init__`` costs an ``object.__setattr__`` per field, and
    records are decoded on the hot path. They are still never mutated.
    """
    hints = inspect.get_annotations(cls, eval_str=True)  # Annotated kept, as written
    names = tuple(cls.__annotations__)
    fields = [(n, kind) for n in names if (kind := _kind_of(hints[n])) is not None]
    namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    namespace["__slots__"] = names
    new = cast(type[Record], type(cls.__name__, cls.__bases__, namespace))
    new.__qualname__ = cls.__qualname__
    new._jute_fields = tuple(fields)
    new.decode = classmethod(_decode_compiling)  # type: ignore[assignment]
    new.encode = _encode_compiling  # type: ignore[method-assign]
    return new  # type: ignore[return-value]


def _names(cls: type[Record]) -> tuple[str, ...]:
    """The record's fields, in order (its ``__slots__``, as :func:`record` set them)."""
    names: tuple[str, ...] = cls.__slots__
    return names


def _compile_init(cls: type[Record]) -> Callable[..., Any]:
    """``__init__(self, <every field>)``, assigning each: a dataclass's, generated."""
    names = _names(cls)
    g = _Gen()
    g.lines.append(f"def __init__(self, {', '.join(names)}):")
    g.lines += [f"    self.{n} = {n}" for n in names] or ["    pass"]
    return _exec(g, "__init__", cls)


def _compile_eq(cls: type[Record]) -> Callable[..., Any]:
    """``__eq__``: the same record type with equal fields, compared as tuples."""
    names = _names(cls)
    g = _Gen()
    mine = "".join(f"self.{n}, " for n in names)
    theirs = "".join(f"other.{n}, " for n in names)
    g.lines += [
        "def __eq__(self, other):",
        "    if other.__class__ is not self.__class__:",
        "        return NotImplemented",
        f"    return ({mine}) == ({theirs})",
    ]
    return _exec(g, "__eq__", cls)


# The codecs are compiled on first use, not at import: a server uses a few of the ~40
# records for most of its life, and compiling all of them took ~15 ms of every start-up.


def _decode_compiling(cls: type[Record], buf: bytes | memoryview, pos: int = 0) -> Any:
    return _compiled_decoder(cls)(cls, buf, pos)


def _encode_compiling(self: Record) -> bytes:
    cls = type(self)
    encode = _compile_encoder(cls, list(cls._jute_fields))
    cls.encode = encode  # type: ignore[method-assign]
    return encode(self)


def _compiled_decoder(cls: type[Record]) -> Callable[..., Any]:
    """The class's compiled decoder (compiling it if it is not yet)."""
    decode = cls.__dict__["decode"].__func__
    if decode is _decode_compiling:
        decode = _compile_decoder(cls, list(cls._jute_fields))
        cls.decode = classmethod(decode)  # type: ignore[assignment]
    return decode  # type: ignore[no-any-return]


def _kind_of(hint: Any) -> _Kind | None:
    if typing.get_origin(hint) is Annotated:
        for meta in hint.__metadata__:
            if isinstance(meta, _Kind):
                return meta
        return None
    if isinstance(hint, type) and issubclass(hint, Record):
        return _Kind("rec", hint)
    return None


class _Gen:
    """Accumulates generated source lines and the globals they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "_LEN": _LEN,
            "_PACK_INT": _PACK_INT,
            "MarshallingError": MarshallingError,
        }
        self.n = 0

    def name(self, prefix: str, value: Any) -> str:
        self.n += 1
        key = f"{prefix}{self.n}"
        self.env[key] = value
        return key


def _fixed_runs(fields: list[tuple[str, _Kind]]) -> list[list[tuple[str, _Kind]]]:
    """Group consecutive fixed-width fields so each run becomes one struct."""
    runs: list[list[tuple[str, _Kind]]] = []
    for f in fields:
        fixed = len(f[1].code) == 1
        if fixed and runs and len(runs[-1][0][1].code) == 1:
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs


def _compile_decoder(cls: type, fields: list[tuple[str, _Kind]]) -> Callable[..., Any]:
    g = _Gen()
    g.lines.append("def decode(cls, buf, pos=0):")
    for run in _fixed_runs(fields):
        kind = run[0][1]
        if len(kind.code) == 1:
            st = struct.Struct(">" + "".join(k.code for _, k in run))
            s = g.name("_S", st.unpack_from)
            names = ", ".join(f"v_{n}" for n, _ in run)
            g.lines.append(f"    ({names},) = {s}(buf, pos); pos += {st.size}")
        elif kind.code == "vec" and not isinstance(kind.elem, _Kind):
            _decode_record_vector(g, f"v_{run[0][0]}", kind)
        else:
            _decode_var(g, f"v_{run[0][0]}", kind, indent="    ")
    args = ", ".join(f"v_{n}" for n, _ in fields)
    g.lines.append(f"    return cls({args}), pos")
    return _exec(g, "decode", cls)


# Vectors of records up to this size are remembered by their bytes (see below).
MEMO_MAX = 256


def _decode_record_vector(g: _Gen, target: str, kind: _Kind) -> None:
    """Emit a vector-of-records decode that reuses the last result for the same bytes.

    Almost every create carries the same ACL (world:anyone, all permissions), and
    decoding it builds three objects each time. Jute's encoding is self-delimiting, so
    if the bytes at ``pos`` start with exactly the bytes of the last vector decoded
    here, decoding them again would give the same records and end at the same place:
    the decoder copies the remembered list instead. Records are never mutated, so the
    copies can share them.
    """
    m = g.name("_M", [(b"", ())])  # [(bytes of the last small vector, its records)]
    g.lines += [
        f"    raw, known = {m}[0]",
        "    if raw and buf[pos:pos + len(raw)] == raw:",
        f"        {target} = list(known); pos += len(raw)",
        "    else:",
        "        start = pos",
    ]
    _decode_var(g, target, kind, indent="        ")
    g.lines += [
        f"        if pos - start <= {MEMO_MAX}:",
        f"            {m}[0] = (bytes(buf[start:pos]), tuple({target}))",
    ]


def _decode_var(g: _Gen, target: str, kind: _Kind, indent: str) -> None:
    """Emit code decoding one variable-width field into ``target``."""
    i = indent
    if kind.code in ("buf", "str"):
        g.lines += [
            f"{i}(n,) = _LEN(buf, pos); pos += 4",
            f"{i}if n < 0:",
            # -1 is null; any other negative length fails jute's checkLength.
            f"{i}    if n != -1: raise MarshallingError('negative length')",
            f"{i}    {target} = {'None' if kind.code == 'buf' else repr('')}",
            f"{i}else:",
            f"{i}    end = pos + n",
            f"{i}    if end > len(buf): raise MarshallingError('length past end of record')",
        ]
        conv = (
            "bytes(buf[pos:end])" if kind.code == "buf" else "str(buf[pos:end], 'utf-8', 'replace')"
        )
        g.lines += [f"{i}    {target} = {conv}", f"{i}    pos = end"]
    elif kind.code == "rec":
        d = g.name("_D", _compiled_decoder(kind.elem))
        c = g.name("_C", kind.elem)
        g.lines.append(f"{i}{target}, pos = {d}({c}, buf, pos)")
    elif kind.code == "vec":
        g.lines += [
            f"{i}(cnt,) = _LEN(buf, pos); pos += 4",
            # Every element takes at least 4 bytes, so a count the bytes cannot hold is a
            # lie: fail now rather than loop on it.
            f"{i}if cnt * 4 > len(buf) - pos: raise MarshallingError('vector count past end')",
            f"{i}{target} = []",
            f"{i}for _ in range(max(cnt, 0)):",
        ]
        _decode_var(
            g,
            "el",
            kind.elem if isinstance(kind.elem, _Kind) else _Kind("rec", kind.elem),
            indent=i + "    ",
        )
        g.lines.append(f"{i}    {target}.append(el)")
    else:  # a lone fixed field inside a vector
        st = struct.Struct(">" + kind.code)
        s = g.name("_S", st.unpack_from)
        g.lines.append(f"{i}({target},) = {s}(buf, pos); pos += {st.size}")


def _compile_encoder(cls: type, fields: list[tuple[str, _Kind]]) -> Callable[..., bytes]:
    g = _Gen()
    g.lines += ["def encode(self):", "    out = []", "    w = out.append"]
    for run in _fixed_runs(fields):
        kind = run[0][1]
        if len(kind.code) == 1:
            st = struct.Struct(">" + "".join(k.code for _, k in run))
            p = g.name("_P", st.pack)
            args = ", ".join(f"self.{n}" for n, _ in run)
            g.lines.append(f"    w({p}({args}))")
        else:
            _encode_var(g, f"self.{run[0][0]}", kind, indent="    ")
    g.lines.append("    return b''.join(out)")
    return _exec(g, "encode", cls)


def _encode_var(g: _Gen, src: str, kind: _Kind, indent: str) -> None:
    i = indent
    if kind.code == "buf":
        g.lines += [
            f"{i}if {src} is None: w(b'\\xff\\xff\\xff\\xff')",
            f"{i}else: w(_PACK_INT(len({src}))); w({src})",
        ]
    elif kind.code == "str":
        g.lines += [f"{i}b = {src}.encode('utf-8')", f"{i}w(_PACK_INT(len(b))); w(b)"]
    elif kind.code == "rec":
        g.lines.append(f"{i}w({src}.encode())")
    elif kind.code == "vec":
        g.lines += [f"{i}w(_PACK_INT(len({src})))", f"{i}for el in {src}:"]
        _encode_var(
            g,
            "el",
            kind.elem if isinstance(kind.elem, _Kind) else _Kind("rec", kind.elem),
            indent=i + "    ",
        )
    else:
        p = g.name("_P", struct.Struct(">" + kind.code).pack)
        g.lines.append(f"{i}w({p}({src}))")


def _exec(g: _Gen, fname: str, cls: type) -> Callable[..., Any]:
    src = "\n".join(g.lines)
    code = compile(src, f"<jute {cls.__name__}.{fname}>", "exec")
    exec(code, g.env)
    fn: Callable[..., Any] = g.env[fname]
    fn.__qualname__ = f"{cls.__name__}.{fname}"
    return fn


# ---------------------------------------------------------------------------------------
# Framing: every message on the client port is a 4-byte big-endian length, then the body.


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length."""
    return _PACK_INT(len(body)) + body


def decode_frames(buf: bytearray, max_len: int) -> tuple[list[bytes], int]:
    """Split every complete frame off the front of ``buf``.

    Returns the frame bodies and the number of bytes consumed. "Need more bytes" is not
    an error: an incomplete tail is left for the next call. A length that is negative or
    over ``max_len`` raises :class:`MarshallingError` (ZooKeeper: "Len error").
    """
    frames: list[bytes] = []
    pos = 0
    end = len(buf)
    while end - pos >= 4:
        (n,) = _LEN(buf, pos)
        if n < 0 or n > max_len:
            raise MarshallingError(f"Len error {n}")
        if end - pos - 4 < n:
            break
        frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return frames, pos
