"""ctypes access to libtinyemo's C ABI (native/include/tinyemo.h), for Python
harnesses on machines without Node.js. Standard library only."""
import ctypes
import os

TE_MAX_DIMS = 8
DTYPES = {"f32": 0, "f16": 1, "bf16": 2, "i32": 3, "i64": 4}


class Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("dtype", ctypes.c_int32),
        ("device", ctypes.c_int32),
        ("device_index", ctypes.c_int32),
        ("ndim", ctypes.c_int32),
        ("shape", ctypes.c_int64 * TE_MAX_DIMS),
        ("strides", ctypes.c_int64 * TE_MAX_DIMS),
    ]


class GemmOptions(ctypes.Structure):
    _fields_ = [
        ("a_trans", ctypes.c_int32),
        ("b_trans", ctypes.c_int32),
        ("alpha", ctypes.c_float),
        ("beta", ctypes.c_float),
        ("activation", ctypes.c_int32),
    ]


def view(ptr, dtype, shape, strides=None, device=0):
    """A te_tensor over memory at `ptr` (row-major strides unless given)."""
    t = Tensor()
    t.data = ptr
    t.dtype = DTYPES[dtype]
    t.device = device
    t.ndim = len(shape)
    if strides is None:
        strides, acc = [], 1
        for n in reversed(shape):
            strides.insert(0, acc)
            acc *= n
    for i, (n, s) in enumerate(zip(shape, strides)):
        t.shape[i] = n
        t.strides[i] = s
    return t


def load(path=None):
    lib = ctypes.CDLL(path or os.environ.get("TINYEMO_LIB", "build-capi/libtinyemo.so"))
    lib.te_version.restype = ctypes.c_char_p
    lib.te_last_error.restype = ctypes.c_char_p
    lib.te_cpu_isa.restype = ctypes.c_char_p
    lib.te_status_name.restype = ctypes.c_char_p
    lib.te_gemm.argtypes = [ctypes.POINTER(Tensor)] * 4 + [ctypes.POINTER(GemmOptions)]
    return lib


def check(lib, status):
    if status != 0:
        raise RuntimeError(f"{lib.te_status_name(status).decode()}: {lib.te_last_error().decode()}")
