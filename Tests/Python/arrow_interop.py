"""Checks Kapsel's Arrow C Data Interface against PyArrow, the reference consumer.

Run by Tests/KapselTests (ArrowInteropTests) as:
    python3 Tests/Python/arrow_interop.py path/to/libKapselArrowInterop.so
Prints "ok" and exits 0 when every check holds.
"""
import ctypes
import gc
import json
import sys

import pyarrow as pa


class ArrowSchema(ctypes.Structure):
    pass


ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p), ("name", ctypes.c_char_p), ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowSchema))), ("dictionary", ctypes.POINTER(ArrowSchema)),
    ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
]


class ArrowArray(ctypes.Structure):
    pass


ArrowArray._fields_ = [
    ("length", ctypes.c_int64), ("null_count", ctypes.c_int64), ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64), ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)), ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))),
    ("dictionary", ctypes.POINTER(ArrowArray)), ("release", ctypes.c_void_p), ("private_data", ctypes.c_void_p),
]

ARROW_TYPES = {
    "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
    "float32": pa.float32(), "float64": pa.float64(), "bool": pa.bool_(), "utf8": pa.utf8(),
}


def fail(message):
    print("FAIL:", message)
    sys.exit(1)


def main():
    lib = ctypes.CDLL(sys.argv[1])
    lib.kapsel_test_reference_json.restype = ctypes.c_char_p
    lib.kapsel_test_last_message.restype = ctypes.c_char_p
    lib.kapsel_test_outstanding_exports.restype = ctypes.c_ssize_t
    lib.kapsel_test_shared_column_address.restype = ctypes.c_ssize_t
    lib.kapsel_test_imported_values_address.restype = ctypes.c_ssize_t
    reference = json.loads(lib.kapsel_test_reference_json().decode())

    # Swift exports, PyArrow imports.
    array, schema = ArrowArray(), ArrowSchema()
    if lib.kapsel_test_export_table(ctypes.byref(array), ctypes.byref(schema)) != 0:
        fail("export: " + lib.kapsel_test_last_message().decode())
    if lib.kapsel_test_outstanding_exports() == 0:
        fail("nothing outstanding after an export")
    batch = pa.RecordBatch._import_from_c(ctypes.addressof(array), ctypes.addressof(schema))
    if array.release is not None or schema.release is not None:
        fail("PyArrow did not move the structs (release still set on the originals)")
    for column in reference:
        got = batch.column(column["name"])
        if got.type != ARROW_TYPES[column["type"]]:
            fail(f"{column['name']}: type {got.type}, expected {column['type']}")
        if got.to_pylist() != column["values"]:
            fail(f"{column['name']}: {got.to_pylist()} != {column['values']}")
    if batch.column("shared").buffers()[1].address != lib.kapsel_test_shared_column_address():
        fail("PyArrow reads the shared column from another address: it was copied")
    del batch, got
    gc.collect()
    if lib.kapsel_test_outstanding_exports() != 0:
        fail(f"{lib.kapsel_test_outstanding_exports()} exported structs not released after PyArrow dropped them")

    # PyArrow exports, Swift imports.
    arrays = [pa.array(column["values"], type=ARROW_TYPES[column["type"]]) for column in reference]
    source = pa.RecordBatch.from_arrays(arrays, names=[column["name"] for column in reference])
    array, schema = ArrowArray(), ArrowSchema()
    source._export_to_c(ctypes.addressof(array), ctypes.addressof(schema))
    mismatches = lib.kapsel_test_check_import(ctypes.byref(array), ctypes.byref(schema))
    if mismatches != 0:
        fail("Swift import: " + lib.kapsel_test_last_message().decode())
    if array.release is not None:
        fail("Swift did not move the struct it imported")

    values = pa.array([1.5, 2.5, 3.5], type=pa.float64())
    array, schema = ArrowArray(), ArrowSchema()
    values._export_to_c(ctypes.addressof(array), ctypes.addressof(schema))
    address = lib.kapsel_test_imported_values_address(ctypes.byref(array), ctypes.byref(schema))
    if address != values.buffers()[1].address:
        fail("Swift read the values from another address: it copied them")
    if array.release is not None:
        fail("Swift did not move the struct it imported")
    print("ok")


main()
