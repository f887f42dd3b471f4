;; bf16 → f32 in place, with SIMD. The raw bf16 values are packed at the start of the buffer; element i
;; becomes (bits << 16) at byte 4i. Walking from the back is safe: the 4 bytes written for element i
;; only cover raw elements ≥ i, which are already done. Regenerate the bytes in widen-wasm.ts with
;; `node scripts/wat2base64.mjs src/checkpoint/widen.wat` (needs the `wabt` npm package).
(module
  (import "env" "memory" (memory 1))
  (func (export "widen_bf16") (param $ptr i32) (param $n i32)
    (local $i i32) (local $v v128)
    (local.set $i (local.get $n))
    ;; the tail (n mod 8 elements), one at a time
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.eq (local.get $i) (i32.and (local.get $n) (i32.const -8))))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (i32.store
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (i32.shl (i32.load16_u (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
        (br $tail)))
    ;; then 8 at a time: 16 bytes of bf16 → 32 bytes of f32
    (block $done
      (loop $chunk
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 8)))
        (local.set $v (v128.load align=1 (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 1)))))
        (v128.store offset=16 align=1
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $v)) (i32.const 16)))
        (v128.store align=1
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $v)) (i32.const 16)))
        (br $chunk)))))
