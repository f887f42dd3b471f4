// A tiny ONNX ModelProto encoder: just enough protobuf to build the one-node matmul graphs that
// onnxruntime runs for us, in memory, with symbolic (dynamic) dimensions so one session serves
// every shape. No protobuf dependency: the wire format needs only varints and length-delimited
// fields. Field numbers are those of onnx/onnx.proto.

// ---- protobuf wire format ----

/** Wire types used here: 0 = varint, 2 = length-delimited (strings, bytes, sub-messages). */
const VARINT = 0;
const LEN = 2;

/** An encoded message: a list of byte chunks, concatenated once at the end. */
type Chunks = Uint8Array[];

function varint(n: number): Uint8Array {
  // Non-negative integers only (ids, sizes, dims, enum values): 7 bits per byte, low first.
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Uint8Array.from(bytes);
}

function tag(field: number, wire: number): Uint8Array {
  return varint(field * 8 + wire);
}

function concat(chunks: Chunks): Uint8Array {
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** field = integer (int32/int64/enum). */
function int(field: number, n: number): Uint8Array {
  return concat([tag(field, VARINT), varint(n)]);
}

/** field = bytes / sub-message. */
function bytes(field: number, body: Uint8Array): Uint8Array {
  return concat([tag(field, LEN), varint(body.length), body]);
}

/** field = UTF-8 string. */
function str(field: number, s: string): Uint8Array {
  return bytes(field, new TextEncoder().encode(s));
}

// ---- ONNX messages (only the fields we use) ----

/** TensorProto.DataType FLOAT. */
const FLOAT = 1;
/** AttributeProto.AttributeType: INT = 2, INTS = 7. */
const ATTR_INT = 2;
const ATTR_INTS = 7;

/** A dimension: a fixed size or a symbolic name ("M", "K", …). */
export type Dim = number | string;

/** A graph input/output: name and f32 shape. */
export interface ValueInfo {
  name: string;
  shape: Dim[];
}

/** An attribute value: an int (e.g. transB) or a list of ints (e.g. perm). */
export type AttrValue = number | number[];

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  /** Operator domain; "" (default) is standard ONNX. */
  domain?: string;
}

// TensorShapeProto.Dimension { dim_value = 1; dim_param = 2 }
function dimProto(d: Dim): Uint8Array {
  return typeof d === "number" ? int(1, d) : str(2, d);
}

// ValueInfoProto { name = 1; type = 2 } → TypeProto { tensor_type = 1 } → Tensor { elem_type = 1; shape = 2 }
// → TensorShapeProto { dim = 1 (repeated) }
function valueInfoProto(v: ValueInfo): Uint8Array {
  const shape = concat(v.shape.map((d) => bytes(1, dimProto(d))));
  const tensorType = concat([int(1, FLOAT), bytes(2, shape)]);
  return concat([str(1, v.name), bytes(2, bytes(1, tensorType))]);
}

// AttributeProto { name = 1; i = 3; ints = 8 (packed accepted, we write unpacked); type = 20 }
function attributeProto(name: string, value: AttrValue): Uint8Array {
  if (typeof value === "number") return concat([str(1, name), int(3, value), int(20, ATTR_INT)]);
  return concat([str(1, name), ...value.map((i) => int(8, i)), int(20, ATTR_INTS)]);
}

// NodeProto { input = 1; output = 2; name = 3; op_type = 4; attribute = 5; domain = 7 }
function nodeProto(n: Node, index: number): Uint8Array {
  const attrs = Object.entries(n.attrs ?? {}).map(([k, v]) => bytes(5, attributeProto(k, v)));
  return concat([
    ...n.inputs.map((s) => str(1, s)),
    ...n.outputs.map((s) => str(2, s)),
    str(3, `${n.op}_${index}`),
    str(4, n.op),
    ...attrs,
    ...(n.domain ? [str(7, n.domain)] : []),
  ]);
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** Extra operator sets beyond the default ONNX domain, e.g. { "com.microsoft": 1 }. */
export type Opsets = Record<string, number>;

/**
 * ModelProto bytes for a graph of f32 tensors.
 * ModelProto { ir_version = 1; producer_name = 2; graph = 7; opset_import = 8 }
 * GraphProto { node = 1; name = 2; input = 11; output = 12 }
 * OperatorSetIdProto { domain = 1; version = 2 }
 */
export function encodeModel(graph: Graph, opset = 13, extraOpsets: Opsets = {}, irVersion = 7): Uint8Array {
  const graphProto = concat([
    ...graph.nodes.map((n, i) => bytes(1, nodeProto(n, i))),
    str(2, graph.name),
    ...graph.inputs.map((v) => bytes(11, valueInfoProto(v))),
    ...graph.outputs.map((v) => bytes(12, valueInfoProto(v))),
  ]);
  const opsets = [
    bytes(8, int(2, opset)),
    ...Object.entries(extraOpsets).map(([d, v]) => bytes(8, concat([str(1, d), int(2, v)]))),
  ];
  // Stryker disable next-line StringLiteral: equivalent, onnxruntime does not read the producer's name.
  return concat([int(1, irVersion), str(2, "superweight"), bytes(7, graphProto), ...opsets]);
}

// ---- the graphs the matmul backend runs ----

/** Y[M,N] = X[M,K] · W[N,K]ᵀ (transB, torch Linear) or X[M,K] · W[K,N] (GPT-2 Conv1D). */
export function linearModel(transB: boolean): Uint8Array {
  return encodeModel({
    // Stryker disable next-line all: equivalent, onnxruntime does not read a graph's name.
    name: transB ? "linear_nk" : "linear_kn",
    nodes: [{ op: "Gemm", inputs: ["X", "W"], outputs: ["Y"], attrs: { transB: transB ? 1 : 0 } }],
    inputs: [
      { name: "X", shape: ["M", "K"] },
      { name: "W", shape: transB ? ["N", "K"] : ["K", "N"] },
    ],
    outputs: [{ name: "Y", shape: ["M", "N"] }],
  });
}

/**
 * Y[B,M,N] = A[B,M,K] · B[B,K,N], or with transB A[B,M,K] · B[B,N,K]ᵀ written as Transpose + MatMul:
 * at graphOptimizationLevel "all" onnxruntime fuses the pair into one FusedMatMul(transB), so no
 * transposed copy is made.
 */
export function batchedModel(transB: boolean): Uint8Array {
  const nodes: Node[] = transB
    ? [
        { op: "Transpose", inputs: ["B"], outputs: ["Bt"], attrs: { perm: [0, 2, 1] } },
        { op: "MatMul", inputs: ["A", "Bt"], outputs: ["Y"] },
      ]
    : [{ op: "MatMul", inputs: ["A", "B"], outputs: ["Y"] }];
  return encodeModel({
    // Stryker disable next-line all: equivalent, onnxruntime does not read a graph's name.
    name: transB ? "batched_nt" : "batched_nn",
    nodes,
    inputs: [
      { name: "A", shape: ["batch", "M", "K"] },
      { name: "B", shape: ["batch", transB ? "N" : "K", transB ? "K" : "N"] },
    ],
    outputs: [{ name: "Y", shape: ["batch", "M", "N"] }],
  });
}
