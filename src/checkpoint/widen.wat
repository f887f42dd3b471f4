;; bf16 / f16 → f32 in place, with SIMD. The raw 16-bit values are packed at the start of the buffer;
;; element i becomes its float32 at byte 4i. Walking from the back is safe: the 4 bytes written for
;; element i only cover raw elements ≥ i, which are already done. Regenerate the bytes in
;; block-buffer.ts with `node scripts/wat2base64.mjs src/checkpoint/widen.wat` (needs the `wabt` npm package).
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
        (br $chunk))))

  ;; One f16 → f32, exactly: the exponent and mantissa moved to float32's places (<< 13) and scaled by
  ;; 2^112 (0x77800000) rebias the exponent — subnormal halves become normal floats, exactly, as the
  ;; product by a power of two is exact; infinities and NaNs (exponent 31) are set apart; the sign is or'ed.
  (func $half (param $h i32) (result i32)
    (local $em i32)
    (local.set $em (i32.and (local.get $h) (i32.const 0x7fff)))
    (i32.or
      (i32.shl (i32.and (local.get $h) (i32.const 0x8000)) (i32.const 16))
      (select
        (i32.or (i32.shl (local.get $em) (i32.const 13)) (i32.const 0x7f800000))
        (i32.reinterpret_f32 (f32.mul (f32.reinterpret_i32 (i32.shl (local.get $em) (i32.const 13))) (f32.const 0x1p112)))
        (i32.ge_u (local.get $em) (i32.const 0x7c00)))))

  ;; The same on four halves (zero-extended to i32 lanes).
  (func $half4 (param $h v128) (result v128)
    (local $em v128)
    (local.set $em (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
    (v128.or
      (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16))
      (v128.bitselect
        (v128.or (i32x4.shl (local.get $em) (i32.const 13)) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
        (f32x4.mul (i32x4.shl (local.get $em) (i32.const 13)) (v128.const f32x4 0x1p112 0x1p112 0x1p112 0x1p112))
        (i32x4.ge_u (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00)))))

  (func (export "widen_f16") (param $ptr i32) (param $n i32)
    (local $i i32) (local $v v128)
    (local.set $i (local.get $n))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.eq (local.get $i) (i32.and (local.get $n) (i32.const -8))))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (i32.store
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (call $half (i32.load16_u (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 1))))))
        (br $tail)))
    (block $done
      (loop $chunk
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 8)))
        (local.set $v (v128.load align=1 (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 1)))))
        (v128.store offset=16 align=1
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (call $half4 (i32x4.extend_high_i16x8_u (local.get $v))))
        (v128.store align=1
          (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 2)))
          (call $half4 (i32x4.extend_low_i16x8_u (local.get $v))))
        (br $chunk)))))
