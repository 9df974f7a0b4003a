/// The Python side of a Kapsel session, run once in the embedded interpreter: one entry
/// point, `_kapsel_call(op, fields)`, which runs request `op` with the tuple `fields` and
/// answers `(True, value)` or, for any exception, `(False, (type, message, traceback))`.
///
/// Values cross as Python objects Swift builds and reads through the C API, with no text
/// format between: plain data as itself (`None`, `bool`, `int` within 64 bits, finite
/// `float`, `str`, `list`, `dict` with `str` keys); what is not plain data as a `_Ref`, a
/// tuple whose first element says what it refers to — `("object", id, type)` for an object
/// kept in `_objects`, `("array", token, dtype, shape, strides[, address, bytes])` for
/// shared memory numpy views, `("table", token)` for an Arrow export. Expressions and
/// statements are compiled once each (`_compiled`), so a session that evaluates the same
/// code again runs it at once.
enum PythonHelper {
    static let source = #"""
import builtins, importlib, traceback, ctypes

_objects = {}
_bridge = {}
_next_object = [1]
_namespaces = {}
_code = {"eval": {}, "exec": {}}

class _Ref(tuple):
    __slots__ = ()

def _configure(allocate, address, release, structs, array_at, schema_at, free_structs):
    _bridge["allocate"] = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(allocate)
    _bridge["address"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(address)
    _bridge["release"] = ctypes.CFUNCTYPE(None, ctypes.c_int64)(release)
    _bridge["structs"] = ctypes.CFUNCTYPE(ctypes.c_int64)(structs)
    _bridge["array_at"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(array_at)
    _bridge["schema_at"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(schema_at)
    _bridge["free_structs"] = ctypes.CFUNCTYPE(None, ctypes.c_int64)(free_structs)

def _import_table(token):
    import pyarrow
    try:
        return pyarrow.RecordBatch._import_from_c(_bridge["array_at"](token), _bridge["schema_at"](token))
    finally:
        _bridge["free_structs"](token)

def _export_table(value):
    import pyarrow
    if isinstance(value, pyarrow.Table):
        value = value.combine_chunks().to_batches()[0] if value.num_rows else pyarrow.RecordBatch.from_pylist([], schema=value.schema)
    token = _bridge["structs"]()
    value._export_to_c(_bridge["array_at"](token), _bridge["schema_at"](token))
    return _Ref(("table", token))

def _view(ref):
    import numpy, weakref
    _, token, dtype, shape, strides, address, size = ref
    raw = (ctypes.c_char * max(size, 1)).from_address(address)
    weakref.finalize(raw, _bridge["release"], token)
    dtype = numpy.dtype(dtype)
    array = numpy.ndarray(tuple(shape), dtype=dtype, buffer=raw, strides=tuple(stride * dtype.itemsize for stride in strides))
    array.flags.writeable = False
    return array

_SHARED_KINDS = "biuf"

def _shared(array):
    import numpy
    if array.dtype.kind not in _SHARED_KINDS or array.dtype.byteorder == ">" or array.dtype.hasobject:
        return None
    token = _bridge["allocate"](array.nbytes)
    if token == 0:
        raise MemoryError("cannot allocate %d bytes of shared memory" % array.nbytes)
    target = numpy.ndarray(array.shape, dtype=array.dtype, buffer=(ctypes.c_char * max(array.nbytes, 1)).from_address(_bridge["address"](token)))
    target[...] = array
    return _Ref(("array", token, array.dtype.str, list(array.shape), [stride // array.dtype.itemsize for stride in target.strides]))

def _namespace(session):
    space = _namespaces.get(session)
    if space is None:
        space = {"__builtins__": builtins, "__name__": "__main__"}
        _namespaces[session] = space
    return space

def _compiled(source, mode):
    cache = _code[mode]
    code = cache.get(source)
    if code is None:
        if len(cache) >= 512:
            cache.clear()
        code = compile(source, "<kapsel>", mode)
        cache[source] = code
    return code

def _keep(value):
    oid = _next_object[0]
    _next_object[0] += 1
    _objects[oid] = value
    kind = type(value)
    return _Ref(("object", oid, kind.__module__ + "." + kind.__qualname__))

def _encode(value):
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -2**63 <= value < 2**63 else _keep(value)
    if kind is float:
        return value if value == value and value not in (float("inf"), float("-inf")) else _keep(value)
    if kind is list or kind is tuple:
        return [_encode(item) for item in value]
    if kind is dict and all(type(key) is str for key in value):
        return {key: _encode(item) for key, item in value.items()}
    if kind.__module__.startswith("pyarrow") and kind.__name__ in ("RecordBatch", "Table"):
        return _export_table(value)
    if kind.__module__ == "numpy":
        import numpy
        if isinstance(value, numpy.generic) and value.dtype.kind in "biuf":
            return _encode(value.item())
        if kind is numpy.ndarray:
            shared = _shared(value)
            if shared is not None:
                return shared
    return _keep(value)

def _decode(value):
    kind = type(value)
    if kind is list:
        return [_decode(item) for item in value]
    if kind is dict:
        return {key: _decode(item) for key, item in value.items()}
    if kind is _Ref:
        tag = value[0]
        if tag == "object":
            return _objects[value[1]]
        if tag == "array":
            return _view(value)
        if tag == "table":
            return _import_table(value[1])
    return value

def _resolve(session, name):
    space = _namespace(session)
    parts = name.split(".")
    if parts[0] in space:
        target = space[parts[0]]
        rest = parts[1:]
    elif hasattr(builtins, parts[0]):
        target = getattr(builtins, parts[0])
        rest = parts[1:]
    else:
        target, rest = None, parts
        for split in range(len(parts), 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:split]))
                rest = parts[split:]
                break
            except ImportError:
                continue
        if target is None:
            raise NameError("name '%s' is not defined and is no importable module" % name)
    for part in rest:
        target = getattr(target, part)
    return target

def _exec(session, code):
    exec(_compiled(code, "exec"), _namespace(session))

def _eval(session, expression):
    return eval(_compiled(expression, "eval"), _namespace(session))

def _import(session, module, alias):
    imported = importlib.import_module(module)
    if alias:
        _namespace(session)[alias] = imported
    else:
        top = module.split(".")[0]
        _namespace(session)[top] = importlib.import_module(top)

def _call(session, function, args, kwargs):
    return _resolve(session, function)(*_decode(args), **_decode(kwargs))

def _method(oid, name, args, kwargs):
    return getattr(_objects[oid], name)(*_decode(args), **_decode(kwargs))

def _release(oid):
    _objects.pop(oid, None)

def _close(session):
    _namespaces.pop(session, None)

_ops = {
    "exec": _exec, "eval": _eval, "import": _import, "call": _call, "method": _method,
    "attribute": lambda oid, name: getattr(_objects[oid], name),
    "repr": lambda oid: repr(_objects[oid]),
    "release": _release, "count": lambda: len(_objects), "close": _close,
}

def _kapsel_call(op, fields):
    try:
        return (True, _encode(_ops[op](*fields)))
    except BaseException as error:
        kind = type(error)
        name = kind.__qualname__ if kind.__module__ == "builtins" else kind.__module__ + "." + kind.__qualname__
        return (False, (name, str(error), traceback.format_exc()))
"""#
}
