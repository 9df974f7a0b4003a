/// The Python side of a Kapsel session, run once in the embedded interpreter: one entry
/// point, `_kapsel_dispatch(request_json) -> response_json`, so Swift needs only a handful
/// of C API functions.
///
/// Values cross as JSON: plain data as itself; any other object stays in `_objects` and
/// crosses as `{"$object": id, "$type": name}`; a float with an integral value as `{"$float": value}`
/// (JSON would read it back as an integer). Every exception is caught and answered as
/// `{"error": {type, message, traceback}}`.
enum PythonHelper {
    static let source = #"""
import builtins, importlib, json, threading, traceback, ctypes

_objects = {}
_bridge = {}

def _configure(request):
    _bridge["allocate"] = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(request["allocate"])
    _bridge["address"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(request["address"])
    _bridge["release"] = ctypes.CFUNCTYPE(None, ctypes.c_int64)(request["release"])
    _bridge["structs"] = ctypes.CFUNCTYPE(ctypes.c_int64)(request["structs"])
    _bridge["array_at"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(request["array_at"])
    _bridge["schema_at"] = ctypes.CFUNCTYPE(ctypes.c_ssize_t, ctypes.c_int64)(request["schema_at"])
    _bridge["free_structs"] = ctypes.CFUNCTYPE(None, ctypes.c_int64)(request["free_structs"])

def _import_table(spec):
    import pyarrow
    token = spec["token"]
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
    return {"$table": {"token": token}}

def _view(spec):
    import numpy, weakref
    raw = (ctypes.c_char * max(spec["bytes"], 1)).from_address(spec["address"])
    weakref.finalize(raw, _bridge["release"], spec["token"])
    dtype = numpy.dtype(spec["dtype"])
    array = numpy.ndarray(tuple(spec["shape"]), dtype=dtype, buffer=raw,
                          strides=tuple(stride * dtype.itemsize for stride in spec["strides"]))
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
    return {"$array": {"token": token, "dtype": array.dtype.str, "shape": list(array.shape),
                       "strides": [stride // array.dtype.itemsize for stride in target.strides]}}
_next_object = [1]
_namespaces = {}
_running = [None]

def _namespace(session):
    space = _namespaces.get(session)
    if space is None:
        space = {"__builtins__": builtins, "__name__": "__main__"}
        _namespaces[session] = space
    return space

def _keep(value):
    oid = _next_object[0]
    _next_object[0] += 1
    _objects[oid] = value
    kind = type(value)
    return {"$object": oid, "$type": kind.__module__ + "." + kind.__qualname__}

def _encode(value):
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -2**63 <= value < 2**63 else _keep(value)
    if kind is float:
        if value != value or value in (float("inf"), float("-inf")):
            return _keep(value)
        # JSON has no integral floats: 7.0 would read back as the integer 7.
        return {"$float": value} if value.is_integer() else value
    if kind is list or kind is tuple:
        return [_encode(item) for item in value]
    if kind is dict and all(type(key) is str for key in value) and "$object" not in value:
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
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        if "$object" in value:
            return _objects[value["$object"]]
        if "$array" in value:
            return _view(value["$array"])
        if "$float" in value:
            return float(value["$float"])
        if "$table" in value:
            return _import_table(value["$table"])
        return {key: _decode(item) for key, item in value.items()}
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

def _handle(request):
    op = request["op"]
    if op == "exec":
        exec(compile(request["code"], "<kapsel>", "exec"), _namespace(request["session"]))
        return None
    if op == "eval":
        return eval(compile(request["expression"], "<kapsel>", "eval"), _namespace(request["session"]))
    if op == "import":
        module = importlib.import_module(request["module"])
        alias = request.get("alias")
        if alias:
            _namespace(request["session"])[alias] = module
        else:
            top = request["module"].split(".")[0]
            _namespace(request["session"])[top] = importlib.import_module(top)
        return None
    if op == "call":
        function = _resolve(request["session"], request["function"])
        return function(*_decode(request["args"]), **_decode(request["kwargs"]))
    if op == "method":
        method = getattr(_objects[request["object"]], request["name"])
        return method(*_decode(request["args"]), **_decode(request["kwargs"]))
    if op == "attribute":
        return getattr(_objects[request["object"]], request["name"])
    if op == "repr":
        return repr(_objects[request["object"]])
    if op == "release":
        _objects.pop(request["object"], None)
        return None
    if op == "count":
        return len(_objects)
    if op == "configure":
        _configure(request)
        return None
    if op == "close":
        _namespaces.pop(request["session"], None)
        return None
    raise ValueError("unknown request " + op)

def _kapsel_dispatch(text):
    request = json.loads(text)
    if request["op"] == "interrupt":
        running = _running[0]
        if running is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(running), ctypes.py_object(TimeoutError))
        return json.dumps({"ok": running is not None})
    _running[0] = threading.get_ident()
    try:
        return json.dumps({"ok": _encode(_handle(request))})
    except BaseException as error:
        kind = type(error)
        name = kind.__qualname__ if kind.__module__ == "builtins" else kind.__module__ + "." + kind.__qualname__
        return json.dumps({"error": {"type": name, "message": str(error), "traceback": traceback.format_exc()}})
    finally:
        _running[0] = None
"""#
}
