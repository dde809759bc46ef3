"""Our own int8 .tflite writer: a 9-operator flatbuffer built with the TFLite schema's generated builders.

Graph (float32 in, float32 out: callers pass raw dB and read probabilities):

    dB [1,3,232,1] f32 → MUL 0.1 → ADD 10 (the codelab's (dB + 100) / 10, in float) → QUANTIZE → DEPTHWISE_CONV_2D(+ReLU) → MAX_POOL_2D → RESHAPE [1,920]
    → FULLY_CONNECTED → SOFTMAX → DEQUANTIZE → probabilities [1,K] f32

A model trained with a bank class (``train.bank_class``) has K+1 dense outputs and one operator
more: a float FULLY_CONNECTED with a constant 0/1 matrix adds the "unknown" probability to the
background class's, so the file still gives one probability per label.

Gotchas this follows (each cost hours; see shared/PLATFORM.md): buffer 0 is the empty sentinel
and every activation uses it; ``file_identifier=b"TFL3"``; both ``deprecated_builtin_code`` and
``builtin_code`` set; op versions as the TF converter writes them; option tables and vectors are
built before the table that holds them (flatbuffers cannot nest); constant buffers have exactly
the tensor's byte length (tflite-runtime checks); data aligned to 16 bytes.

The model's description lives in a metadata entry ``edge_slider`` (JSON, see ``metadata.py``).
"""

from __future__ import annotations

import json

import flatbuffers
import numpy as np
import tflite

from edge.config import NUM_BINS, NUM_FRAMES
from edge.model import network as net
from edge.model.quantize import SOFTMAX_Q, QParams, QuantModel
from edge.model.tflite_meta import METADATA_NAME, read_metadata_entries


_F32, _INT32, _INT8 = tflite.TensorType.FLOAT32, tflite.TensorType.INT32, tflite.TensorType.INT8
_OPS = [  # (builtin code, version): the model's operator codes; operators name theirs by builtin code
    (tflite.BuiltinOperator.MUL, 1),
    (tflite.BuiltinOperator.ADD, 1),
    (tflite.BuiltinOperator.QUANTIZE, 2),
    (tflite.BuiltinOperator.DEPTHWISE_CONV_2D, 3),
    (tflite.BuiltinOperator.MAX_POOL_2D, 2),
    (tflite.BuiltinOperator.RESHAPE, 1),
    (tflite.BuiltinOperator.FULLY_CONNECTED, 4),
    (tflite.BuiltinOperator.SOFTMAX, 2),
    (tflite.BuiltinOperator.DEQUANTIZE, 2),
]
_OPCODE_INDEX = {code: k for k, (code, _version) in enumerate(_OPS)}


class _Writer:
    def __init__(self):
        self.b = flatbuffers.Builder(8192)
        self.buffers: list[bytes] = [b""]          # buffer 0: the empty sentinel
        self.tensors: list = []

    # -- helpers ---------------------------------------------------------------------------
    def _vec(self, start_fn, values, prepend) -> int:
        start_fn(self.b, len(values))
        for v in reversed(values):
            prepend(v)
        return self.b.EndVector()

    def vec_i32(self, start_fn, values) -> int:
        return self._vec(start_fn, [int(v) for v in values], self.b.PrependInt32)

    def vec_i64(self, start_fn, values) -> int:
        return self._vec(start_fn, [int(v) for v in values], self.b.PrependInt64)

    def vec_f32(self, start_fn, values) -> int:
        return self._vec(start_fn, [float(v) for v in values], self.b.PrependFloat32)

    def aligned_bytes(self, data: bytes) -> int:
        b = self.b
        b.StartVector(1, len(data), 16)
        b.head = b.head - len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        return b.EndVector()

    def const(self, array: np.ndarray) -> int:
        self.buffers.append(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())
        return len(self.buffers) - 1

    def tensor(self, name: str, shape, ttype, buffer: int = 0, q: QParams | None = None,
               scales=None, zero_points=None, qdim: int = 0) -> int:
        """Queue a tensor; returns its index. Tables are built in ``finish`` (no nesting)."""
        self.tensors.append((name, list(shape), ttype, buffer, q, scales, zero_points, qdim))
        return len(self.tensors) - 1

    def _build_tensor(self, name, shape, ttype, buffer, q, scales, zero_points, qdim) -> int:
        b = self.b
        name_off = b.CreateString(name)
        shape_off = self.vec_i32(tflite.TensorStartShapeVector, shape)
        quant_off = None
        if q is not None or scales is not None:
            sc = list(scales) if scales is not None else [q.scale]
            zp = list(zero_points) if zero_points is not None else [q.zero_point] * len(sc)
            s_off = self.vec_f32(tflite.QuantizationParametersStartScaleVector, sc)
            z_off = self.vec_i64(tflite.QuantizationParametersStartZeroPointVector, zp)
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, s_off)
            tflite.QuantizationParametersAddZeroPoint(b, z_off)
            tflite.QuantizationParametersAddQuantizedDimension(b, qdim)
            quant_off = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape_off)
        tflite.TensorAddType(b, ttype)
        tflite.TensorAddBuffer(b, buffer)
        tflite.TensorAddName(b, name_off)
        if quant_off is not None:
            tflite.TensorAddQuantization(b, quant_off)
        return tflite.TensorEnd(b)

    def operator(self, builtin: int, inputs, outputs, opt_type: int = 0, opt_off: int | None = None) -> int:
        """One operator; ``builtin`` is its ``tflite.BuiltinOperator`` code (its index in _OPS is looked up)."""
        b = self.b
        opcode = _OPCODE_INDEX[builtin]
        in_off = self.vec_i32(tflite.OperatorStartInputsVector, inputs)
        out_off = self.vec_i32(tflite.OperatorStartOutputsVector, outputs)
        tflite.OperatorStart(b)
        tflite.OperatorAddOpcodeIndex(b, opcode)
        tflite.OperatorAddInputs(b, in_off)
        tflite.OperatorAddOutputs(b, out_off)
        if opt_off is not None:
            tflite.OperatorAddBuiltinOptionsType(b, opt_type)
            tflite.OperatorAddBuiltinOptions(b, opt_off)
        return tflite.OperatorEnd(b)

    def table_vector(self, start_fn, offsets) -> int:
        """A vector of table offsets (tensors, operators, subgraphs, ...)."""
        return self._vec(start_fn, offsets, self.b.PrependUOffsetTRelative)


def _queue_tensors(w: _Writer, qm: QuantModel) -> dict[str, int]:
    """Queue the graph's 17 tensors, 19 with the bank class's fold (constants go to their buffers);
    name → tensor index."""
    k = qm.num_outputs
    window = [1, NUM_FRAMES, NUM_BINS, 1]
    # NOTE: normalizing inside the graph costs ~0.2 µs; the same two numpy ops in Python cost 1.8 µs
    # per window (ufunc call overhead), a fifth of the whole classify call.
    t = {"db": w.tensor("db", window, _F32)}
    t["norm_scale"] = w.tensor("norm_scale", [1], _F32, w.const(np.array([1.0 / net.NORM_STD], np.float32)))
    t["db_scaled"] = w.tensor("db_scaled", window, _F32)
    t["norm_offset"] = w.tensor("norm_offset", [1], _F32,
                                w.const(np.array([-net.NORM_MEAN / net.NORM_STD], np.float32)))
    t["input"] = w.tensor("input", window, _F32)
    t["input_q"] = w.tensor("input_q", window, _INT8, q=qm.input_q)
    t["conv_w"] = w.tensor("conv_w", list(qm.conv_w.shape), _INT8, w.const(qm.conv_w), scales=qm.conv_w_scales,
                           zero_points=[0] * qm.depth, qdim=3)
    t["conv_b"] = w.tensor("conv_b", [qm.depth], _INT32, w.const(qm.conv_b),
                           scales=qm.input_q.scale * qm.conv_w_scales.astype(np.float64),
                           zero_points=[0] * qm.depth)
    t["conv"] = w.tensor("conv", [1, 1, net.CONV_W, qm.depth], _INT8, q=qm.conv_q)
    t["pool"] = w.tensor("pool", [1, 1, net.POOL_W, qm.depth], _INT8, q=qm.conv_q)
    t["flat_shape"] = w.tensor("flat_shape", [2], _INT32, w.const(np.array([1, qm.flat], np.int32)))
    t["flat"] = w.tensor("flat", [1, qm.flat], _INT8, q=qm.conv_q)
    t["dense_w"] = w.tensor("dense_w", list(qm.dense_w.shape), _INT8, w.const(qm.dense_w),
                            scales=qm.dense_w_scales, zero_points=[0] * k, qdim=0)
    t["dense_b"] = w.tensor("dense_b", [k], _INT32, w.const(qm.dense_b),
                            scales=qm.conv_q.scale * qm.dense_w_scales.astype(np.float64), zero_points=[0] * k)
    t["logits"] = w.tensor("logits", [1, k], _INT8, q=qm.logits_q)
    t["probs_q"] = w.tensor("probs_q", [1, k], _INT8, q=SOFTMAX_Q)
    t["probs"] = w.tensor("probs", [1, k], _F32)
    if qm.unknown_into is not None:
        # The bank class's probability goes to the background class: a constant 0/1 matrix, in float
        # after DEQUANTIZE, so the sum is exact (see network.fold).
        m = np.eye(k - 1, k, dtype=np.float32)
        m[qm.unknown_into, k - 1] = 1.0
        t["fold_w"] = w.tensor("fold_w", [k - 1, k], _F32, w.const(m))
        t["labels_probs"] = w.tensor("labels_probs", [1, k - 1], _F32)
    return t


def _option_tables(w: _Writer, qm: QuantModel) -> dict[int, int]:
    """The operators' option tables, built first (flatbuffers cannot nest a table inside another under
    construction); ``tflite.BuiltinOptions`` type → table offset."""
    b, BO = w.b, tflite.BuiltinOptions
    tflite.DepthwiseConv2DOptionsStart(b)
    tflite.DepthwiseConv2DOptionsAddPadding(b, tflite.Padding.VALID)
    tflite.DepthwiseConv2DOptionsAddStrideW(b, 1)
    tflite.DepthwiseConv2DOptionsAddStrideH(b, 1)
    tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, qm.depth)
    tflite.DepthwiseConv2DOptionsAddFusedActivationFunction(b, tflite.ActivationFunctionType.RELU)
    tflite.DepthwiseConv2DOptionsAddDilationWFactor(b, 1)
    tflite.DepthwiseConv2DOptionsAddDilationHFactor(b, 1)
    opts = {BO.DepthwiseConv2DOptions: tflite.DepthwiseConv2DOptionsEnd(b)}
    tflite.Pool2DOptionsStart(b)
    tflite.Pool2DOptionsAddPadding(b, tflite.Padding.VALID)
    tflite.Pool2DOptionsAddStrideW(b, 2)
    tflite.Pool2DOptionsAddStrideH(b, 2)
    tflite.Pool2DOptionsAddFilterWidth(b, 2)
    tflite.Pool2DOptionsAddFilterHeight(b, 1)
    opts[BO.Pool2DOptions] = tflite.Pool2DOptionsEnd(b)
    new_shape = w.vec_i32(tflite.ReshapeOptionsStartNewShapeVector, [1, qm.flat])
    tflite.ReshapeOptionsStart(b)
    tflite.ReshapeOptionsAddNewShape(b, new_shape)
    opts[BO.ReshapeOptions] = tflite.ReshapeOptionsEnd(b)
    tflite.FullyConnectedOptionsStart(b)
    opts[BO.FullyConnectedOptions] = tflite.FullyConnectedOptionsEnd(b)
    tflite.SoftmaxOptionsStart(b)
    tflite.SoftmaxOptionsAddBeta(b, 1.0)
    opts[BO.SoftmaxOptions] = tflite.SoftmaxOptionsEnd(b)
    tflite.MulOptionsStart(b)
    opts[BO.MulOptions] = tflite.MulOptionsEnd(b)
    tflite.AddOptionsStart(b)
    opts[BO.AddOptions] = tflite.AddOptionsEnd(b)
    return opts


def _operators(w: _Writer, t: dict[str, int], opts: dict[int, int]) -> list[int]:
    """The 9 operators (10 with the fold) in graph order, tensors named as ``_queue_tensors`` names them."""
    BO, OP = tflite.BuiltinOptions, tflite.BuiltinOperator

    def op(builtin: int, inputs: list[str], outputs: list[str], opt_type: int = 0) -> int:
        return w.operator(builtin, [t[n] for n in inputs], [t[n] for n in outputs], opt_type,
                          opts[opt_type] if opt_type else None)

    fold = [op(OP.FULLY_CONNECTED, ["probs", "fold_w"], ["labels_probs"], BO.FullyConnectedOptions)] \
        if "fold_w" in t else []
    return [
        op(OP.MUL, ["db", "norm_scale"], ["db_scaled"], BO.MulOptions),
        op(OP.ADD, ["db_scaled", "norm_offset"], ["input"], BO.AddOptions),
        op(OP.QUANTIZE, ["input"], ["input_q"]),
        op(OP.DEPTHWISE_CONV_2D, ["input_q", "conv_w", "conv_b"], ["conv"], BO.DepthwiseConv2DOptions),
        op(OP.MAX_POOL_2D, ["conv"], ["pool"], BO.Pool2DOptions),
        op(OP.RESHAPE, ["pool", "flat_shape"], ["flat"], BO.ReshapeOptions),
        op(OP.FULLY_CONNECTED, ["flat", "dense_w", "dense_b"], ["logits"], BO.FullyConnectedOptions),
        op(OP.SOFTMAX, ["logits"], ["probs_q"], BO.SoftmaxOptions),
        op(OP.DEQUANTIZE, ["probs_q"], ["probs"]),
        *fold,
    ]


def _subgraph(w: _Writer, ops: list[int], inputs: list[int], outputs: list[int]) -> int:
    """The one subgraph ``main``: builds the queued tensors, then the table holding them and ``ops``."""
    b = w.b
    tensors = [w._build_tensor(*t) for t in w.tensors]
    t_vec = w.table_vector(tflite.SubGraphStartTensorsVector, tensors)
    o_vec = w.table_vector(tflite.SubGraphStartOperatorsVector, ops)
    in_vec = w.vec_i32(tflite.SubGraphStartInputsVector, inputs)
    out_vec = w.vec_i32(tflite.SubGraphStartOutputsVector, outputs)
    sg_name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, t_vec)
    tflite.SubGraphAddOperators(b, o_vec)
    tflite.SubGraphAddInputs(b, in_vec)
    tflite.SubGraphAddOutputs(b, out_vec)
    tflite.SubGraphAddName(b, sg_name)
    return tflite.SubGraphEnd(b)


def _operator_codes(w: _Writer) -> list[int]:
    """One OperatorCode table per entry of ``_OPS``, both builtin-code fields set."""
    b = w.b
    codes = []
    for code, version in _OPS:
        tflite.OperatorCodeStart(b)
        tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        tflite.OperatorCodeAddBuiltinCode(b, code)
        tflite.OperatorCodeAddVersion(b, version)
        codes.append(tflite.OperatorCodeEnd(b))
    return codes


def _buffers(w: _Writer) -> list[int]:
    """One Buffer table per queued buffer; the empty ones (the sentinel 0) carry no data vector."""
    b = w.b
    buffer_offs = []
    for data in w.buffers:
        data_off = w.aligned_bytes(data) if data else None
        tflite.BufferStart(b)
        if data_off is not None:
            tflite.BufferAddData(b, data_off)
        buffer_offs.append(tflite.BufferEnd(b))
    return buffer_offs


def _metadata(w: _Writer, buffer: int) -> int:
    """The ``edge_slider`` Metadata table pointing at ``buffer``."""
    b = w.b
    meta_name = b.CreateString(METADATA_NAME)
    tflite.MetadataStart(b)
    tflite.MetadataAddName(b, meta_name)
    tflite.MetadataAddBuffer(b, buffer)
    return tflite.MetadataEnd(b)


def _finish_model(w: _Writer, codes: list[int], subgraph: int, buffers: list[int], meta: int) -> bytes:
    """The root Model table (schema version 3), finished with the ``TFL3`` identifier."""
    b = w.b
    codes_vec = w.table_vector(tflite.ModelStartOperatorCodesVector, codes)
    sg_vec = w.table_vector(tflite.ModelStartSubgraphsVector, [subgraph])
    buf_vec = w.table_vector(tflite.ModelStartBuffersVector, buffers)
    meta_vec = w.table_vector(tflite.ModelStartMetadataVector, [meta])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, sg_vec)
    tflite.ModelAddBuffers(b, buf_vec)
    tflite.ModelAddMetadata(b, meta_vec)
    model = tflite.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def write_model(qm: QuantModel, metadata: dict) -> bytes:
    """Serialize a quantized model and its metadata dict to .tflite bytes.

    The order of the steps is the byte layout (flatbuffers are built back to front): change it and the
    file changes, even where the runtime would read it the same."""
    w = _Writer()
    t = _queue_tensors(w, qm)
    ops = _operators(w, t, _option_tables(w, qm))
    subgraph = _subgraph(w, ops, [t["db"]], [t.get("labels_probs", t["probs"])])
    codes = _operator_codes(w)
    meta_buffer = len(w.buffers)
    w.buffers.append(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode())
    buffers = _buffers(w)
    return _finish_model(w, codes, subgraph, buffers, _metadata(w, meta_buffer))


def read_metadata(data: bytes) -> dict | None:
    """The ``edge_slider`` metadata dict of a .tflite, or None if it has none (a foreign model)."""
    raw = read_metadata_entries(data).get(METADATA_NAME)
    return None if raw is None else json.loads(raw.decode())
