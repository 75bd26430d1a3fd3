"""ctypes access to libtinyemo's C ABI (native/include/tinyemo.h), for Python
harnesses on machines without Node.js. Standard library only."""
import ctypes
import os

TE_MAX_DIMS = 8
DTYPES = {"f32": 0, "f16": 1, "bf16": 2, "i32": 3, "i64": 4, "u8": 5}


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


class ProjectionWeights(ctypes.Structure):
    _fields_ = [(n, Tensor) for n in ("w1", "b1", "bn_weight", "bn_bias", "running_mean", "running_var", "w2", "b2")] + [
        ("eps", ctypes.c_float)
    ]


class ProjectionGrads(ctypes.Structure):
    _fields_ = [(n, Tensor) for n in ("w1", "b1", "bn_weight", "bn_bias", "w2", "b2")]


class ProjectionSaved(ctypes.Structure):
    _fields_ = [(n, Tensor) for n in ("z1", "mean", "rstd")]


class Dropout(ctypes.Structure):
    _fields_ = [("p", ctypes.c_float), ("seed", ctypes.c_uint64)]


class AdamWOptions(ctypes.Structure):
    _fields_ = [(n, ctypes.c_float) for n in ("lr", "beta1", "beta2", "eps", "weight_decay")] + [("step", ctypes.c_int64)]


class AttentionOptions(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("causal", ctypes.c_int32)]


ACTIVATIONS = {"none": 0, "gelu": 1, "gelu_tanh": 2, "quick_gelu": 3, "silu": 4, "relu": 5}
DEVICE_CPU, DEVICE_CUDA = 0, 1


def view(ptr, dtype, shape, strides=None, device=0, device_index=0):
    """A te_tensor over memory at `ptr` (row-major strides unless given);
    device 1 with device_index for CUDA memory."""
    t = Tensor()
    t.data = ptr
    t.dtype = DTYPES[dtype]
    t.device = device
    t.device_index = device_index
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
    T = ctypes.POINTER(Tensor)
    f32, i32, i64 = ctypes.c_float, ctypes.c_int32, ctypes.c_int64
    signatures = {
        "te_copy": [T, T],
        "te_activation": [T, i32, T],
        "te_swiglu": [T, T, T],
        "te_softmax": [T, f32, T],
        "te_add": [T, T, f32, T],
        "te_scale": [T, f32, T],
        "te_dropout_apply": [T, ctypes.POINTER(Dropout), i32, T],
        "te_layer_norm": [T, T, T, f32, T],
        "te_rms_norm": [T, T, f32, T],
        "te_rope": [T, T, i64, i32, f32, T],
        "te_embedding": [T, T, T],
        "te_patch_embed": [T, T, T, T],
        "te_l2_normalize": [T, T, f32],
        "te_cosine": [T, T, T],
        "te_cosine_topk": [T, T, i32, i32, T, T],
        "te_attention": [T, T, T, T, ctypes.POINTER(AttentionOptions)],
        "te_projection_forward": [T, ctypes.POINTER(ProjectionWeights), T],
        "te_projection_forward_train": [T, ctypes.POINTER(ProjectionWeights), f32, ctypes.POINTER(Dropout),
                                        ctypes.POINTER(ProjectionSaved), T],
        "te_projection_backward": [T, T, ctypes.POINTER(ProjectionWeights), ctypes.POINTER(ProjectionSaved),
                                   ctypes.POINTER(Dropout), ctypes.POINTER(ProjectionGrads), T],
        "te_adamw_step": [i32, T, T, T, T, ctypes.POINTER(AdamWOptions)],
        "te_metric_loss": [T, T, T, i32, f32, T, T],
        "te_cross_entropy": [T, T, f32, T, T],
        "te_layer_norm_backward": [T, T, f32, T, T, T, T, i32],
        "te_rms_norm_backward": [T, T, f32, T, T, T, i32],
        "te_activation_backward": [T, T, i32, T],
        "te_swiglu_backward": [T, T, T, T, T],
        "te_embedding_backward": [T, T, T, i32],
        "te_attention_backward": [T, T, T, T, T, T, T, T, ctypes.POINTER(AttentionOptions)],
        "te_cuda_synchronize": [i32],
        "te_cuda_device_name": [i32, ctypes.c_char_p, ctypes.c_size_t],
        "te_cuda_allow_tf32": [i32],
        "te_cuda_gemm_variant": [i32],
    }
    for name, args in signatures.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes = args
    return lib


def check(lib, status):
    if status != 0:
        raise RuntimeError(f"{lib.te_status_name(status).decode()}: {lib.te_last_error().decode()}")
