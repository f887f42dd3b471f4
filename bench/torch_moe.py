#!/usr/bin/python3
"""A PyTorch forward of a Mixtral checkpoint for the bench, beside ours: the peer's scan_torch.py runs only the
dense families, so this script reuses its loading (a copy-on-write memory map, as safetensors' own loader) and
refgen's norm / RoPE / attention, adds transformers' sparse block (softmax, top-k, renormalised, experts looped
in order, index_add), records each routed expert's down_proj input/output and applies the paper's rule per
expert. One pass, like scan_torch.py. Weights stay bf16 (mode bf16) or are widened to f32 as each is used (f32).
Usage: python3 torch_moe.py CKPT_DIR [bf16|f32] [threads=2] [tokens=11]"""
import glob, json, math, os, struct, sys, time
import numpy as np
import torch
sys.path.insert(0, os.environ.get("SUPERWEIGHT_PEER_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tools", "peer")))
import refgen
ckpt, mode = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "bf16")
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
DT = torch.float32 if mode == "f32" else torch.bfloat16
refgen.DT = DT
t0 = time.time()
cfg = json.load(open(os.path.join(ckpt, "config.json")))
W = {}
for fn in sorted(glob.glob(os.path.join(ckpt, "*.safetensors"))):
    with open(fn, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
    mm = np.memmap(fn, dtype=np.uint8, mode="c")
    for k, v in h.items():
        if k == "__metadata__": continue
        a, b = v["data_offsets"]
        W[k] = torch.from_numpy(mm[8 + n + a:8 + n + b].view(np.int16)).view(torch.bfloat16).reshape(v["shape"])
t1 = time.time()
g = lambda name: W[name].to(DT)
T = int(sys.argv[4]) if len(sys.argv) > 4 else 11
ids = [1] + [int(x) for x in torch.randint(3, cfg["vocab_size"], (T - 1,), generator=torch.Generator().manual_seed(0))]
H, nh, nkv, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["num_hidden_layers"]
hd, E, k, eps = H // nh, cfg["num_local_experts"], cfg["num_experts_per_tok"], cfg["rms_norm_eps"]
inv, pos = refgen.rope_inv_freq(cfg, hd), torch.arange(T)
x = g("model.embed_tokens.weight")[torch.tensor(ids)]
found, touched = [], 0
with torch.no_grad():
    for l in range(L):
        p = f"model.layers.{l}."
        h = refgen.rms_norm(x, g(p + "input_layernorm.weight"), eps)
        q = refgen.apply_rope((h @ g(p + "self_attn.q_proj.weight").T).view(T, nh, hd).transpose(0, 1), inv, pos)
        kk = refgen.apply_rope((h @ g(p + "self_attn.k_proj.weight").T).view(T, nkv, hd).transpose(0, 1), inv, pos)
        v = (h @ g(p + "self_attn.v_proj.weight").T).view(T, nkv, hd).transpose(0, 1)
        a = refgen.attention(q.to(DT), kk.to(DT), v, 1 / math.sqrt(hd)).transpose(0, 1).reshape(T, H)
        x = x + a @ g(p + "self_attn.o_proj.weight").T
        h = refgen.rms_norm(x, g(p + "post_attention_layernorm.weight"), eps)
        probs = torch.softmax((h @ g(p + "block_sparse_moe.gate.weight").T).float(), -1)
        w, chosen = torch.topk(probs, k, -1)
        w = (w / w.sum(-1, keepdim=True)).to(DT)
        out = torch.zeros_like(h)
        for e in range(E):
            rows, slot = torch.where(chosen == e)
            if rows.numel() == 0: continue  # an expert no token is routed to is not computed
            touched += 1
            q_ = f"{p}block_sparse_moe.experts.{e}."
            xe = h[rows]
            inner = torch.nn.functional.silu(xe @ g(q_ + "w1.weight").T) * (xe @ g(q_ + "w3.weight").T)
            ye = inner @ g(q_ + "w2.weight").T
            if inner.abs().max() > 50 and ye.abs().max() > 50: found.append([l, e])
            out.index_add_(0, rows, ye * w[rows, slot, None])
        x = x + out
    logits = refgen.rms_norm(x, g("model.norm.weight"), eps) @ g("lm_head.weight").T
t2 = time.time()
print(json.dumps({"tokens": T, "mode": mode, "threads": torch.get_num_threads(), "load_s": round(t1 - t0, 2), "forward_s": round(t2 - t1, 2),
                  "total_s": round(t2 - t0, 2), "experts_touched": touched, "experts_total": L * E, "found": len(found),
                  "found_at": found, "logits_finite": bool(torch.isfinite(logits.float()).all())}))
